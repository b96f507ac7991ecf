"""The rollups: incremental ingest in any order equals a rebuild, and both equal brute force."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import ALL_PROGRAMS
from console.models import ActivityEvent
from console.models import Journey
from console.models import MemberDay
from console.models import Membership
from console.models import Org
from console.models import ReportDay
from console.models import ReportSpan
from console.models import ScopeDay
from console.services import account
from console.services import control
from console.services import participants
from console.services import reports
from console.services import rollups
from console.services.reports import Period
from tests import report_world
from tests.factories import ACTOR

pytestmark = pytest.mark.usefixtures("db")
TABLES = (ReportDay, MemberDay, ScopeDay, ReportSpan, Journey)


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    return {
        model.__tablename__: sorted(
            (tuple(row) for row in db.session.execute(sa.select(model.__table__))), key=repr
        )
        for model in TABLES
    }


def random_events(world: report_world.World, count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    kinds = [
        ("signed_in", None),
        ("profile_updated", None),
        ("message_sent", lambda: {"count": rng.randint(1, 9)}),
        ("mentor_request_sent", None),
        ("mentor_request_received", None),
        ("mentor_request_accepted", None),
        ("mentor_request_declined", None),
        ("session_logged", lambda: {"minutes": rng.randint(1, 1440)}),
        (
            "feedback_given",
            lambda: {"rating": rng.randint(1, 5), "relationship_id": str(uuid.uuid4())},
        ),
        (
            "outcome_reported",
            lambda: {
                "jobs": rng.randint(0, 4),
                "revenue": rng.randint(0, 99999) / 100,
                "currency": "USD",
            },
        ),
        ("survey_completed", None),
    ]
    people = list(world.people.values())
    found = []
    for n in range(count):
        kind, data = rng.choice(kinds)
        moment = world.at(rng.randint(-40, 12), rng.randint(0, 23))
        event = {
            "id": f"random-{seed}-{n}",
            "type": kind,
            "participant_id": str(rng.choice(people).id),
            "occurred_at": moment.isoformat(),
        }
        if data:
            event["data"] = data()
        found.append(event)
    return found


def test_incremental_ingest_in_random_order_equals_a_rebuild():
    world = report_world.build()
    events = world.events + random_events(world, 600, seed=7)
    rng = random.Random(3)
    rng.shuffle(events)
    position = 0
    changes = iter(
        [
            lambda: participants.add_member(
                ACTOR, world.org, world.people["carl"], program=world.programs["A"]
            ),
            lambda: participants.add_member(ACTOR, world.org, world.people["fay"]),
            lambda: account.leave_program(
                world.people["gus"],
                db.session.scalar(
                    sa.select(Membership.id).where(
                        Membership.participant_id == world.people["gus"].id,
                        Membership.org_id == world.org.id,
                    )
                ),
            ),
            lambda: control.update_profile(
                ACTOR, None, world.people["bea"], report_world.COMPLETE_ENTREPRENEUR
            ),
            lambda: control.update_profile(ACTOR, None, world.people["ana"], {"bio": None}),
        ]
    )
    while position < len(events):
        size = rng.randint(1, 150)
        report_world.ingest(world, events[position : position + size])
        position += size
        if change := next(changes, None):
            change()
            db.session.flush()
    incremental = snapshot()
    assert incremental["report_days"] and incremental["report_scope_days"]
    report = rollups.rebuild()
    assert report.events == len(events)
    assert snapshot() == incremental


def test_rebuild_twice_is_the_same():
    world = report_world.build()
    report_world.ingest(world)
    rollups.rebuild()
    first = snapshot()
    rollups.rebuild()
    assert snapshot() == first


def brute_force(org: Org, scope_id: uuid.UUID, period: Period) -> dict[str, int]:
    """Count straight from raw events and the spans, the slow way."""
    tz = rollups.zone(org.time_zone)
    spans = defaultdict(list)
    for span in db.session.scalars(
        sa.select(ReportSpan).where(ReportSpan.org_id == org.id, ReportSpan.scope_id == scope_id)
    ):
        spans[span.participant_id].append(span)
    # A member's activity counts up to when they last left (for ever while they belong).
    until = {
        pid: None if any(s.ended_at is None for s in found) else max(s.ended_at for s in found)
        for pid, found in spans.items()
    }
    active, sessions, messages = set(), 0, 0
    for event in db.session.scalars(sa.select(ActivityEvent)):
        day = event.occurred_at.astimezone(tz).date()
        if not period.start <= day <= period.end:
            continue
        if event.participant_id not in until:
            continue
        end = until[event.participant_id]
        if end is not None and event.occurred_at >= end:
            continue
        active.add(event.participant_id)
        sessions += event.type == "session_logged"
        messages += (event.data or {}).get("count", 0) if event.type == "message_sent" else 0
    return {"active_members": len(active), "sessions": sessions, "messages": messages}


def test_distinct_active_members_over_any_range_are_exact():
    world = report_world.build()
    report_world.ingest(world, world.events + random_events(world, 400, seed=11))
    rng = random.Random(5)
    scopes = [ALL_PROGRAMS, world.programs["A"].id, world.programs["B"].id]
    for _ in range(40):
        start = world.day(rng.randint(-45, 13))
        end = min(start + timedelta(days=rng.randint(0, 30)), world.last)
        scope = rng.choice(scopes)
        period = Period(start, end)
        figures = reports.summary(world.org, scope, period)
        expected = brute_force(world.org, scope, period)
        found = {key: getattr(figures, key) for key in expected}
        assert found == expected, (start, end, scope)


def test_gap_histograms_round_trip_and_answer_thresholds():
    gaps = rollups.Gaps()
    for gap in (None, None, 1, 1, 3, 10):
        gaps.add(gap)
    stored = gaps.dump()
    assert stored == {"n": 2, "g": [1, 3, 10], "c": [4, 2, 1]}
    assert rollups.Gaps.load(stored).dump() == stored
    assert rollups.returning_after(stored, 0) == 6
    assert rollups.returning_after(stored, 1) == 4
    assert rollups.returning_after(stored, 3) == 3
    assert rollups.returning_after(stored, 10) == 2
    gaps.add(3, -1)
    gaps.add(None, -2)
    assert gaps.dump() == {"n": 0, "g": [1, 10], "c": [3, 1]}
    assert rollups.returning_after(None, 4) == 0


def test_spans_merge_overlapping_memberships_and_keep_the_member_row_open():
    org, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    day = date(2026, 1, 1)
    moments = [datetime.combine(day + timedelta(days=n), time(), UTC) for n in range(10)]
    spans = rollups.derive_spans(
        [
            (org, a, moments[0], moments[3]),
            (org, b, moments[2], moments[5]),
            (org, a, moments[7], None),
        ],
        [],
    )
    by_scope = defaultdict(list)
    for span in spans:
        by_scope[span.scope_id].append((span.started_at, span.ended_at))
    assert by_scope[a] == [(moments[0], moments[3]), (moments[7], None)]
    assert by_scope[b] == [(moments[2], moments[5])]
    assert by_scope[ALL_PROGRAMS] == [(moments[0], moments[5]), (moments[7], None)]
    kept = rollups.derive_spans([(org, a, moments[0], moments[3])], [(org, moments[0])])
    assert [(s.scope_id, s.ended_at) for s in kept if s.scope_id == ALL_PROGRAMS] == [
        (ALL_PROGRAMS, None)
    ]


def test_joining_and_leaving_count_once_however_often_synced(make_org, make_participant):
    org = make_org()
    person = make_participant(org, program=org.programs[0])
    today = rollups.today_in(org)
    for _ in range(3):
        rollups.sync_member(org, person.id)
    row = db.session.execute(
        sa.select(ReportDay).where(ReportDay.org_id == org.id, ReportDay.scope_id == ALL_PROGRAMS)
    ).scalar_one()
    assert (row.day, row.members_joined, row.members_left) == (today, 1, 0)
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.participant_id == person.id)
    )
    account.leave_program(person, membership.id)
    for _ in range(2):
        rollups.sync_member(org, person.id)
    db.session.refresh(row)
    assert (row.members_joined, row.members_left) == (1, 1)
    assert reports.summary(org, ALL_PROGRAMS, Period(today, today)).members == 0


def test_erasing_a_member_counts_a_leave_and_their_profile_as_incomplete(
    make_org, make_participant
):
    org = make_org()
    person = make_participant(org, managed=True, email="erase.me@x.example")
    control.update_profile(ACTOR, org, person, report_world.COMPLETE_ENTREPRENEUR)
    today = rollups.today_in(org)
    period = Period(today, today)
    dashboard = reports.dashboard(org, reports.ReportFilters("custom", period, None))
    assert dict(dashboard.funnel)["profile"] == 1
    control.erase(ACTOR, org, person, "erase.me@x.example")
    db.session.flush()
    dashboard = reports.dashboard(org, reports.ReportFilters("custom", period, None))
    assert dict(dashboard.funnel) == {
        "registered": 0,
        "profile": 0,
        "request": 0,
        "match": 0,
        "meeting": 0,
    }
    assert db.session.get(Journey, person.id) is None


@pytest.mark.parametrize(
    "grid,threshold,hidden",
    [
        # One small cell: its row and column each need a second one hidden.
        (
            [[10, 12, 22], [3, 15, 18], [13, 27, 40]],
            5,
            [[True, True, False], [True, True, False], [False, False, False]],
        ),
        # Nothing small: nothing hidden.
        ([[10, 12, 22], [7, 15, 22], [17, 27, 44]], 5, [[False] * 3] * 3),
        # A small total hides a partner in its line too.
        (
            [[2, 1, 3], [8, 9, 17], [10, 10, 20]],
            5,
            [[True, True, True], [True, True, True], [False] * 3],
        ),
    ],
)
def test_secondary_suppression_leaves_no_line_with_one_hidden_cell(grid, threshold, hidden):
    found = reports.suppress(grid, threshold)
    assert found == hidden
    lines = [list(row) for row in found] + [list(col) for col in zip(*found, strict=True)]
    assert all(sum(line) != 1 for line in lines)
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            if value < threshold:
                assert found[r][c]


def test_suppression_holds_on_random_tables():
    rng = random.Random(9)
    for _ in range(200):
        height, width = rng.randint(1, 6), rng.randint(1, 6)
        grid = [[rng.randint(0, 12) for _ in range(width)] for _ in range(height)]
        threshold = rng.randint(3, 8)
        found = reports.suppress(grid, threshold)
        lines = [list(row) for row in found] + [list(col) for col in zip(*found, strict=True)]
        assert all(sum(line) != 1 for line in lines if len(line) > 1)
        assert all(
            found[r][c] for r in range(height) for c in range(width) if grid[r][c] < threshold
        )


def test_joining_brings_history_along_and_leaving_stops_what_follows(make_org, make_participant):
    from console.models.base import utcnow
    from console.services import events

    org = make_org()
    person = make_participant(None, name="Late Joiner")
    earlier = utcnow() - timedelta(days=3)

    def send(moment: datetime, name: str) -> None:
        result = events.ingest(
            ACTOR,
            [
                {
                    "id": name,
                    "type": "message_sent",
                    "participant_id": str(person.id),
                    "occurred_at": moment.isoformat(),
                    "data": {"count": 4},
                }
            ],
        )
        assert result[0].status == "accepted"

    send(earlier, "before-joining")
    today = rollups.today_in(org)
    week = Period(today - timedelta(days=6), today)
    assert reports.summary(org, ALL_PROGRAMS, week).messages == 0
    participants.add_member(ACTOR, org, person, program=org.programs[0])
    for scope in (ALL_PROGRAMS, org.programs[0].id):
        figures = reports.summary(org, scope, week)
        assert (figures.messages, figures.active_members, figures.new_members) == (4, 1, 1)
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.participant_id == person.id)
    )
    account.leave_program(person, membership.id)
    send(utcnow() - timedelta(seconds=1), "just-before-leaving-arrives-late")
    send(utcnow(), "after-leaving")
    figures = reports.summary(org, ALL_PROGRAMS, week)
    assert (figures.messages, figures.members) == (8, 0)
    incremental = snapshot()
    rollups.rebuild()
    assert snapshot() == incremental


def test_the_rebuild_command_says_what_it_made(runner):
    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Rebuilt the report rollups from ")
    assert "report days" in result.output and "membership spans" in result.output
