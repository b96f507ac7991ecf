"""Event ingest: one result per event, idempotent by id, nothing that could carry content."""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import ActivityEvent
from console.models import AuditEvent
from console.models import Member
from console.models import MemberDay
from console.models import ReportDay
from console.models.base import utcnow
from console.services import tokens
from tests.conftest import fresh
from tests.factories import ACTOR
from tests.report_world import backdate
from tests.test_api import ApiClient
from tests.test_api import is_problem

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def platform(app) -> ApiClient:
    token, secret = tokens.create_token(ACTOR, None, ["events:write"])
    return ApiClient(app.test_client(), token, secret)


@pytest.fixture
def person(make_org, make_participant):
    org = make_org(time_zone="Europe/Madrid")
    found = make_participant(org)
    backdate(org, found, datetime(2025, 1, 1, tzinfo=UTC))
    return found


def event(participant: Any, kind: str = "signed_in", **overrides: Any) -> dict[str, Any]:
    found = {
        "id": f"evt-{uuid.uuid4().hex}",
        "type": kind,
        "participant_id": str(participant.id),
        "occurred_at": (utcnow() - timedelta(minutes=5)).isoformat(),
    }
    found.update(overrides)
    return {key: value for key, value in found.items() if value is not ...}


def send(platform: ApiClient, *events: Any) -> list[dict[str, Any]]:
    response = platform.post("/api/v1/events", json={"events": list(events)})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"results"} and len(body["results"]) == len(events)
    return body["results"]


def stored() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ActivityEvent))


def rollup_state() -> list[Any]:
    rows = []
    for model in (ReportDay, MemberDay):
        rows += sorted(tuple(row) for row in db.session.execute(sa.select(model.__table__)))
    return rows


def test_a_batch_is_accepted_stored_and_answered_in_order(platform, person):
    batch = [
        event(person),
        event(person, "message_sent", data={"count": 4}),
        event(person, "session_logged", data={"minutes": 45}),
        event(person, "outcome_reported", data={"jobs": 1, "revenue": 99.99, "currency": "EUR"}),
    ]
    results = send(platform, *batch)
    assert results == [{"id": e["id"], "status": "accepted"} for e in batch]
    assert stored() == 4
    outcome = db.session.get(ActivityEvent, batch[3]["id"])
    assert outcome.data == {"jobs": 1, "revenue": 99.99, "currency": "EUR"}
    assert outcome.participant_id == person.id
    assert db.session.scalar(sa.select(sa.func.sum(MemberDay.messages))) == 4
    assert db.session.scalar(sa.select(sa.func.sum(ReportDay.revenue_cents))) == 2 * 9999


def test_a_replayed_batch_changes_nothing(platform, person):
    batch = [event(person), event(person, "message_sent", data={"count": 2})]
    send(platform, *batch)
    before = (stored(), rollup_state(), fresh(person).last_active_at)
    results = send(platform, *batch)
    assert [r["status"] for r in results] == ["duplicate", "duplicate"]
    assert "detail" not in results[0]
    assert (stored(), rollup_state(), fresh(person).last_active_at) == before


def test_an_id_repeated_within_a_batch_counts_once(platform, person):
    first = event(person, "message_sent", data={"count": 2})
    again = {**first, "data": {"count": 7}}
    assert [r["status"] for r in send(platform, first, again)] == ["accepted", "duplicate"]
    assert db.session.scalar(sa.select(sa.func.sum(MemberDay.messages))) == 2


def test_a_stored_id_is_a_duplicate_whatever_else_changed(platform, person):
    original = event(person)
    send(platform, original)
    changed = {**original, "type": "survey_completed"}
    assert send(platform, changed)[0]["status"] == "duplicate"
    assert db.session.get(ActivityEvent, original["id"]).type == "signed_in"


def test_an_unknown_participant_is_rejected_and_the_rest_accepted(platform, person):
    unknown = event(person, participant_id=str(uuid.uuid4()))
    good = event(person)
    results = send(platform, unknown, good)
    assert results[0]["status"] == "rejected" and "participant" in results[0]["detail"]
    assert results[1] == {"id": good["id"], "status": "accepted"}
    assert stored() == 1


NOW = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "overrides,problem",
    [
        ({"data": {"text": "hello"}}, "text"),
        ({"data": {"count": 1, "body": "hi"}}, "body"),
        ({"data": {"count": 1, "meta": {"content": "x"}}}, "content"),
        ({"data": {"count": 1, "items": [{"Message": "x"}]}}, "Message"),
        ({"message": "see you"}, "message"),
        ({"data": {"count": 0}}, "data.count"),
        ({"data": {"count": True}}, "data.count"),
        ({"data": {"count": "3"}}, "data.count"),
        ({"data": {}}, "data.count"),
        ({"data": None}, "data.count"),
        ({"data": {"count": 1, "extra": 1}}, "data.extra"),
        ({"data": [1]}, "data"),
        ({"type": "message_posted"}, "type"),
        ({"type": None}, "type"),
        ({"participant_id": "nope"}, "participant_id"),
        ({"participant_id": 5}, "participant_id"),
        ({"occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": 1700000000}, "occurred_at"),
        ({"occurred_at": "1999-12-31T23:59:59Z"}, "occurred_at"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_each_rule_rejects_the_event_with_a_reason(platform, person, overrides, problem):
    payload = event(person, "message_sent", data={"count": 1})
    payload.update(overrides)
    payload = {key: value for key, value in payload.items() if value is not ...}
    result = send(platform, payload)[0]
    assert result["status"] == "rejected" and result["id"] == payload["id"]
    assert result["detail"].startswith(problem), result["detail"]
    assert stored() == 0


@pytest.mark.parametrize(
    "kind,data,field",
    [
        ("session_logged", {"minutes": 0}, "data.minutes"),
        ("session_logged", {"minutes": 1441}, "data.minutes"),
        ("session_logged", {"minutes": 30, "relationship_id": "x"}, "data.relationship_id"),
        ("feedback_given", {"rating": 6, "relationship_id": str(uuid.uuid4())}, "data.rating"),
        ("feedback_given", {"rating": 0, "relationship_id": str(uuid.uuid4())}, "data.rating"),
        ("feedback_given", {"rating": 4.5, "relationship_id": str(uuid.uuid4())}, "data.rating"),
        ("feedback_given", {"rating": 4}, "data.relationship_id"),
        ("outcome_reported", {"jobs": -1, "revenue": 1, "currency": "USD"}, "data.jobs"),
        ("outcome_reported", {"jobs": 1, "revenue": -0.01, "currency": "USD"}, "data.revenue"),
        ("outcome_reported", {"jobs": 1, "revenue": "12", "currency": "USD"}, "data.revenue"),
        ("outcome_reported", {"jobs": 1, "revenue": 1, "currency": "US"}, "data.currency"),
        ("outcome_reported", {"jobs": 1, "revenue": 1, "currency": "U$D"}, "data.currency"),
        ("outcome_reported", {"jobs": 1, "revenue": 1}, "data.currency"),
        ("signed_in", {"count": 1}, "data.count"),
        ("mentor_request_sent", {"relationship_id": 7}, "data.relationship_id"),
    ],
)
def test_data_is_checked_per_type(platform, person, kind, data, field):
    result = send(platform, event(person, kind, data=data))[0]
    assert result["status"] == "rejected" and result["detail"].startswith(field), result


def test_an_event_from_the_future_is_rejected_beyond_a_small_skew(platform, person):
    soon = event(person, occurred_at=(utcnow() + timedelta(minutes=2)).isoformat())
    later = event(person, occurred_at=(utcnow() + timedelta(hours=1)).isoformat())
    results = send(platform, soon, later)
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert "future" in results[1]["detail"]


def test_events_that_are_not_objects_or_lack_an_id_are_rejected(platform, person):
    no_id = event(person)
    del no_id["id"]
    results = send(platform, "x", no_id, {**event(person), "id": ""}, {**event(person), "id": 7})
    assert [r["status"] for r in results] == ["rejected"] * 4
    assert [r["id"] for r in results] == [None, None, "", 7]


def test_offsets_are_honoured_and_revenue_is_counted_in_cents(platform, person):
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    payload = event(
        person,
        "outcome_reported",
        occurred_at="2026-03-02T00:30:00+01:00",
        data={"jobs": 0, "revenue": 0.105, "currency": "mxn"},
    )
    send(platform, payload)
    found = db.session.get(ActivityEvent, payload["id"])
    assert found.occurred_at == moment and found.data["currency"] == "MXN"
    row = db.session.execute(sa.select(MemberDay)).scalar_one()
    assert str(row.day) == "2026-03-02"  # Madrid: 00:30 on the 2nd
    assert row.revenue_cents == 11  # rounded half up


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"events": {}},
        {"events": "x"},
        {"events": [], "more": 1},
    ],
)
def test_a_batch_that_cannot_be_read_is_422(platform, body):
    is_problem(platform.post("/api/v1/events", json=body), 422)


def test_bad_json_is_422_and_nothing_is_stored(platform):
    response = platform.post(
        "/api/v1/events", data="{not json", headers={"Content-Type": "application/json"}
    )
    is_problem(response, 422)


def test_more_than_a_thousand_events_is_422(platform, person):
    batch = [event(person) for _ in range(1001)]
    body = is_problem(platform.post("/api/v1/events", json={"events": batch}), 422)
    assert body["errors"][0]["field"] == "events"
    assert stored() == 0


def test_a_thousand_events_is_fine(platform, person):
    batch = [event(person, "message_sent", data={"count": 1}) for _ in range(1000)]
    assert {r["status"] for r in send(platform, *batch)} == {"accepted"}
    assert db.session.scalar(sa.select(sa.func.sum(MemberDay.messages))) == 1000


def test_an_empty_batch_is_fine(platform):
    assert send(platform) == []


def test_only_a_platform_token_may_send_events(app, client, make_org, person):
    token, secret = tokens.create_token(ACTOR, make_org(), ["reports:read", "participants:write"])
    org_token = ApiClient(app.test_client(), token, secret)
    body = is_problem(org_token.post("/api/v1/events", json={"events": []}), 403)
    assert "events:write" in body["detail"]
    is_problem(client.post("/api/v1/events", json={"events": []}), 401)


def test_a_platform_token_cannot_read_reports(platform):
    is_problem(platform.get("/api/v1/reports/summary"), 403)


def test_last_active_moves_forward_never_back(platform, person):
    recent = utcnow() - timedelta(minutes=1)
    older = recent - timedelta(days=3)
    send(platform, event(person, occurred_at=recent.isoformat()))
    send(platform, event(person, occurred_at=older.isoformat()))
    assert fresh(person).last_active_at == recent
    member = db.session.execute(
        sa.select(Member).where(Member.participant_id == person.id)
    ).scalar_one()
    assert member.last_active_at == recent


def test_each_batch_is_audited_with_its_counts_and_the_token(platform, person):
    send(platform, event(person), event(person, participant_id=str(uuid.uuid4())))
    audited = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "events.ingested")
    ).all()
    assert len(audited) == 1
    assert audited[0].details == {"accepted": 1, "duplicate": 0, "rejected": 1}
    assert audited[0].actor_type == "token" and audited[0].org_id is None


def test_events_of_a_participant_in_no_org_are_stored_but_counted_nowhere(
    platform, make_participant
):
    loner = make_participant(None)
    assert send(platform, event(loner))[0]["status"] == "accepted"
    assert stored() == 1
    assert not db.session.scalar(sa.select(sa.func.count()).select_from(ReportDay))
