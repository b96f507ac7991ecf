"""The JSON API: bearer tokens, scopes, the participants' actions, the trail, problem documents."""

from __future__ import annotations

import hashlib
import json
import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from jinja2 import ChoiceLoader
from jinja2 import FunctionLoader
from werkzeug.routing import BuildError

from console.extensions import db
from console.models import AccountLink
from console.models import ApiToken
from console.models import AuditEvent
from console.models import Member
from console.models import OutboxMessage
from console.models import Participant
from console.models import Scope
from console.models.base import utcnow
from console.services import audit
from console.services import control
from console.services import mail
from console.services import tokens
from console.services.auth import check_password
from tests.conftest import fresh
from tests.factories import ACTOR
from tests.test_participants import names_on

ORG_SCOPES = [s.value for s in Scope if s.value != "events:write"]
PARTICIPANT_KEYS = {
    "id",
    "email",
    "name",
    "role",
    "status",
    "suspended_until",
    "restricted",
    "must_reset_password",
    "managed",
    "managed_by",
    "programs",
    "joined_at",
    "last_active_at",
}
EVENT_KEYS = {"id", "at", "actor", "action", "target", "details", "ip", "request_id"}


@pytest.fixture(autouse=True)
def mail_stand_ins(app, monkeypatch):
    """Stand in for mail templates and account links that this branch does not have yet.

    The account area brings ``templates/mail/*`` and the ``account.*`` endpoints;
    where they exist they win, and this changes nothing.
    """

    def template(name: str) -> str | None:
        if not name.startswith("mail/"):
            return None
        if name.endswith(".txt"):
            return "Subject: " + name + "\n\n{{ link | default('') }}\n"
        return "<p>{{ link | default('') }}</p>"

    loader = ChoiceLoader([app.jinja_env.loader, FunctionLoader(template)])
    monkeypatch.setattr(app.jinja_env, "loader", loader)
    real_url = mail.external_url

    def external_url(endpoint: str, **values: Any) -> str:
        try:
            return real_url(endpoint, **values)
        except BuildError:
            return f"{app.config['BASE_URL']}/stand-in/{endpoint}?token={values.get('token')}"

    monkeypatch.setattr(mail, "external_url", external_url)


@dataclass
class ApiClient:
    client: Any
    token: ApiToken
    secret: str

    def open(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.secret}", **kwargs.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.open("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.open("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.open("PATCH", url, **kwargs)


@pytest.fixture
def api_for(app, db):
    def make(org, *scopes: str, **kwargs: Any) -> ApiClient:
        token, secret = tokens.create_token(ACTOR, org, list(scopes or ORG_SCOPES), **kwargs)
        return ApiClient(app.test_client(), token, secret)

    return make


@pytest.fixture
def world(make_org, make_participant, make_admin):
    org = make_org(programs=("Accelerator", "Export"), time_zone="Europe/Madrid")
    other = make_org()
    return {
        "org": org,
        "other": other,
        "managed": make_participant(
            org, name="Ana Ortega", email="ana@acme.example", managed=True, program="Export"
        ),
        "member": make_participant(org, name="Bruno Vidal", email="bruno@mail.example"),
        "foreign": make_participant(other, name="Carla Ruiz", managed=True),
        "owner": make_admin(org, "owner"),
    }


@pytest.fixture
def api(api_for, world):
    return api_for(world["org"])


def is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["type"] and body["title"]
    return body


def trail(org) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.org_id == org.id).order_by(AuditEvent.seq)
        )
    )


def mail_to(participant, kind: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(
                OutboxMessage.participant_id == participant.id, OutboxMessage.kind == kind
            )
        )
    )


def snapshot(participant) -> dict[str, Any]:
    participant = fresh(participant)
    columns = Participant.__table__.columns.keys()
    state = {name: getattr(participant, name) for name in columns}
    state["profile"] = {
        name: getattr(fresh(participant.profile), name)
        for name in participant.profile.__table__.columns.keys()
    }
    return state


# -- authentication ------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer pc_unknown",
        "Bearer nope",
        "pc_x",
    ],
)
def test_no_usable_token_is_401_with_a_bearer_challenge(client, world, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/v1/participants", headers=headers)
    is_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("state", ["expired", "revoked"])
def test_expired_and_revoked_tokens_are_401(api, world, state):
    if state == "expired":
        api.token.expires_at = utcnow() - timedelta(seconds=1)
    else:
        tokens.revoke_token(ACTOR, world["org"], api.token)
    db.session.flush()
    response = api.get("/api/v1/participants")
    is_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_that_has_not_expired_yet_works(api_for, world):
    api = api_for(world["org"], "participants:read", expires_days=1)
    assert api.get("/api/v1/participants").status_code == 200


def test_the_scheme_is_case_insensitive(api):
    response = api.client.get(
        "/api/v1/participants", headers={"Authorization": f"bearer {api.secret}"}
    )
    assert response.status_code == 200


def test_a_signed_in_browser_session_never_authenticates_the_api(client_for, world):
    browser = client_for(world["owner"])
    assert browser.get(f"/orgs/{world['org'].slug}/participants/").status_code == 200
    is_problem(browser.get("/api/v1/participants"), 401)
    is_problem(browser.post(f"/api/v1/participants/{world['managed'].id}/restrict", json={}), 401)
    assert not fresh(world["managed"]).restricted


def test_api_writes_need_no_csrf_token_and_set_no_cookie(api, world):
    response = api.post(f"/api/v1/participants/{world['managed'].id}/restrict", json={})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_the_token_is_hashed_at_rest(api):
    row = db.session.execute(sa.select(ApiToken.__table__).where(ApiToken.id == api.token.id)).one()
    assert api.secret not in json.dumps([str(value) for value in row])
    assert row.token_hash == hashlib.sha256(api.secret.encode()).hexdigest()
    assert api.secret.startswith("pc_") and len(api.secret) > 40


def test_each_use_is_noted_cheaply(api, monkeypatch):
    assert api.token.last_used_at is None
    assert api.get("/api/v1/programs").status_code == 200
    first = fresh(api.token).last_used_at
    assert first is not None and utcnow() - first < timedelta(seconds=30)
    assert api.get("/api/v1/programs").status_code == 200
    assert fresh(api.token).last_used_at == first  # within a minute: no write
    api.token.last_used_at = first - tokens.USE_GRANULARITY
    db.session.flush()
    assert api.get("/api/v1/programs").status_code == 200
    assert fresh(api.token).last_used_at > first


# -- scopes -------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/api/v1/participants", None, "participants:read"),
    ("GET", "/api/v1/participants/{id}", None, "participants:read"),
    ("GET", "/api/v1/programs", None, "participants:read"),
    ("POST", "/api/v1/participants", {"email": "new@x.example", "name": "N"}, "participants:write"),
    ("PATCH", "/api/v1/participants/{id}", {"headline": "Hi"}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/suspend", {"reason": "r"}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/unsuspend", {}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/restrict", {}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/unrestrict", {}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/deactivate", {}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/reactivate", {}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/require-password-reset", {}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/send-reset-link", {}, "participants:write"),
    ("POST", "/api/v1/participants/{id}/revoke-sessions", {}, "participants:write"),
    ("GET", "/api/v1/participants/{id}/export", None, "participants:write"),
    ("GET", "/api/v1/audit", None, "audit:read"),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _, _ in ENDPOINTS]


@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS, ids=ENDPOINT_IDS)
def test_every_endpoint_refuses_a_token_without_its_scope(
    api_for, world, method, path, body, scope
):
    api = api_for(world["org"], *[s for s in ORG_SCOPES if s != scope])
    before = snapshot(world["managed"])
    events = len(trail(world["org"]))
    response = api.open(method, path.format(id=world["managed"].id), json=body)
    is_problem(response, 403)
    assert scope in response.get_json()["detail"]
    assert snapshot(world["managed"]) == before
    assert len(trail(world["org"])) == events


@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS, ids=ENDPOINT_IDS)
def test_every_endpoint_needs_a_token(client, world, method, path, body, scope):
    response = client.open(path.format(id=world["managed"].id), method=method, json=body)
    is_problem(response, 401)


@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS, ids=ENDPOINT_IDS)
def test_every_endpoint_works_with_its_scope_alone(api_for, world, method, path, body, scope):
    participant = world["managed"]
    if path.endswith("/unsuspend"):
        control.suspend(ACTOR, world["org"], participant, "before")
    elif path.endswith("/unrestrict"):
        control.restrict(ACTOR, world["org"], participant)
    elif path.endswith("/reactivate"):
        control.deactivate(ACTOR, world["org"], participant)
    db.session.flush()
    api = api_for(world["org"], scope)
    response = api.open(method, path.format(id=participant.id), json=body)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    assert response.mimetype == "application/json"


def test_a_platform_token_reaches_no_org_data(api_for, world):
    api = api_for(None, "events:write")
    is_problem(api.get("/api/v1/participants"), 403)
    is_problem(api.get("/api/v1/audit"), 403)


# -- reading participants ---------------------------------------------------------------


def test_participant_shape(api, world):
    participant = world["managed"]
    response = api.get(f"/api/v1/participants/{participant.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == PARTICIPANT_KEYS
    export = next(p for p in world["org"].programs if p.name == "Export")
    member = db.session.get(Member, (world["org"].id, participant.id))
    assert body == {
        "id": str(participant.id),
        "email": "ana@acme.example",
        "name": "Ana Ortega",
        "role": "entrepreneur",
        "status": "active",
        "suspended_until": None,
        "restricted": False,
        "must_reset_password": False,
        "managed": True,
        "managed_by": world["org"].slug,
        "programs": [{"id": str(export.id), "name": "Export"}],
        "joined_at": member.joined_at.isoformat(),
        "last_active_at": None,
    }
    assert datetime.fromisoformat(body["joined_at"]).utcoffset() == timedelta(0)


def test_status_is_effective_and_managed_is_about_this_org(api, world, make_participant):
    org, other = world["org"], world["other"]
    lapsed = make_participant(
        org, status="suspended", suspended_until=utcnow() - timedelta(hours=1)
    )
    until = utcnow() + timedelta(days=3)
    current = make_participant(org, status="suspended", suspended_until=until)
    elsewhere = make_participant(other, managed=True)
    from console.services.participants import add_member

    add_member(ACTOR, org, elsewhere)
    db.session.flush()
    lapsed_body = api.get(f"/api/v1/participants/{lapsed.id}").get_json()
    assert lapsed_body["status"] == "active" and lapsed_body["suspended_until"] is None
    current_body = api.get(f"/api/v1/participants/{current.id}").get_json()
    assert current_body["status"] == "suspended"
    assert datetime.fromisoformat(current_body["suspended_until"]) == until
    elsewhere_body = api.get(f"/api/v1/participants/{elsewhere.id}").get_json()
    assert elsewhere_body["managed"] is False and elsewhere_body["managed_by"] == other.slug
    member_body = api.get(f"/api/v1/participants/{world['member'].id}").get_json()
    assert member_body["managed"] is False and member_body["managed_by"] is None


def test_reading_a_participant_is_audited_with_the_token_as_actor(api, world):
    participant = world["managed"]
    api.get(f"/api/v1/participants/{participant.id}", headers={"X-Request-ID": "req-1"})
    event = trail(world["org"])[-1]
    assert event.action == "participant.viewed" and event.target_id == str(participant.id)
    assert (event.actor_type, event.actor_id) == ("token", str(api.token.id))
    assert event.request_id == "req-1"


@pytest.mark.parametrize("which", ["foreign", "unknown", "malformed"])
def test_ids_outside_the_org_are_404(api, world, which):
    ident = {
        "foreign": world["foreign"].id,
        "unknown": uuid.uuid4(),
        "malformed": "not-a-uuid",
    }[which]
    events = len(trail(world["other"])), len(trail(world["org"]))
    is_problem(api.get(f"/api/v1/participants/{ident}"), 404)
    assert (len(trail(world["other"])), len(trail(world["org"]))) == events


@pytest.fixture
def crowd(world, make_participant):
    org = world["org"]
    now = utcnow()
    make_participant(org, name="María García", email="maria@acme.example", last_active_at=now)
    make_participant(
        org, name="Pedro Garcés", role="mentor", last_active_at=now - timedelta(days=40)
    )
    make_participant(org, name="Zoë Zamora", role="both", status="suspended")
    make_participant(org, name="Gustavo Ido", status="deactivated", program="Export")
    make_participant(world["other"], name="María Otra")
    return org


def api_names(api, **params) -> list[str]:
    response = api.get("/api/v1/participants", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [row["name"] for row in response.get_json()["data"]]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "garc"},
        {"q": "maria@"},
        {"role": "mentor"},
        {"status": "suspended"},
        {"status": "active"},
        {"managed": "true"},
        {"managed": "false"},
        {"activity": "active"},
        {"activity": "never", "sort": "-name"},
        {"sort": "-joined"},
        {"sort": "last_active"},
        {"q": "g", "status": "active"},
        {"program": "Export"},
    ],
)
def test_list_filters_agree_with_the_page(api, client_for, world, crowd, params):
    if "program" in params:
        params = {"program": str(next(p.id for p in crowd.programs if p.name == "Export"))}
    page = client_for(world["owner"]).get(f"/orgs/{crowd.slug}/participants/", query_string=params)
    assert api_names(api, **params) == names_on(page.get_data(as_text=True))


def test_cursor_pages_cover_the_list_once_and_agree_with_the_page(api, client_for, world, crowd):
    everyone = api_names(api)
    assert "María Otra" not in everyone and len(everyone) == 6
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, "sort": "-name", **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/participants", query_string=params).get_json()
        assert len(body["data"]) <= 2
        seen += [row["name"] for row in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if pages == 1:
            page = client_for(world["owner"]).get(
                f"/orgs/{crowd.slug}/participants/",
                query_string={"sort": "-name", "cursor": cursor},
            )
            assert names_on(page.get_data(as_text=True)) == list(reversed(everyone))[2:]
        if cursor is None:
            break
    assert seen == list(reversed(everyone)) and pages == 3


@pytest.mark.parametrize(
    "params,field",
    [
        ({"status": "frozen"}, "status"),
        ({"role": "boss"}, "role"),
        ({"managed": "maybe"}, "managed"),
        ({"activity": "sometimes"}, "activity"),
        ({"sort": "email"}, "sort"),
        ({"program": "not-a-uuid"}, "program"),
        ({"program": str(uuid.uuid4())}, "program"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
    ],
)
def test_bad_list_parameters_are_422_naming_the_parameter(api, world, params, field):
    body = is_problem(api.get("/api/v1/participants", query_string=params), 422)
    assert [error["field"] for error in body["errors"]] == [field]
    assert body["errors"][0]["parameter"] == field


def test_another_orgs_program_is_not_a_filter(api, world):
    program = world["other"].programs[0]
    is_problem(api.get("/api/v1/participants", query_string={"program": str(program.id)}), 422)


def test_a_cursor_of_another_sort_is_refused(api, world, crowd):
    cursor = api.get("/api/v1/participants", query_string={"limit": 1}).get_json()["next_cursor"]
    response = api.get("/api/v1/participants", query_string={"sort": "-joined", "cursor": cursor})
    is_problem(response, 422)


def test_limit_defaults_to_50_and_goes_to_200(api, world, make_participant):
    for n in range(55):
        make_participant(world["org"], name=f"Many {n:02}", password=None)
    first = api.get("/api/v1/participants").get_json()
    assert len(first["data"]) == 50 and first["next_cursor"]
    assert len(api.get("/api/v1/participants?limit=200").get_json()["data"]) == 57


def test_programs(api, world):
    body = api.get("/api/v1/programs").get_json()
    assert body == {
        "data": [{"id": str(p.id), "name": p.name} for p in world["org"].programs],
        "next_cursor": None,
    }


# -- creating ------------------------------------------------------------------------


def test_create_provisions_a_managed_member_with_a_confirmed_email(api, world):
    org = world["org"]
    accelerator = next(p for p in org.programs if p.name == "Accelerator")
    response = api.post(
        "/api/v1/participants",
        json={
            "email": "New.Person@Acme.example",
            "name": "New  Person",
            "program": str(accelerator.id),
            "password": "a long enough password",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == PARTICIPANT_KEYS
    assert body["email"] == "new.person@acme.example" and body["name"] == "New Person"
    assert body["managed"] is True and body["managed_by"] == org.slug
    assert body["programs"] == [{"id": str(accelerator.id), "name": "Accelerator"}]
    assert response.headers["Location"] == f"/api/v1/participants/{body['id']}"
    created = db.session.get(Participant, uuid.UUID(body["id"]))
    assert created.email_verified and created.managed_by_org_id == org.id
    assert check_password(created.password_hash, "a long enough password")
    member = db.session.get(Member, (org.id, created.id))
    assert member.joined_via == "provisioned"
    actions = {e.action: e for e in trail(org) if e.target_id == body["id"]}
    assert {"participant.created", "participant.joined"} <= set(actions)
    assert actions["participant.created"].actor_type == "token"
    assert actions["participant.created"].actor_id == str(api.token.id)
    assert api.get(f"/api/v1/participants/{body['id']}").status_code == 200


def test_create_without_password_or_program(api, world):
    response = api.post(
        "/api/v1/participants", json={"email": "np@x.example", "name": "No Pass", "role": "mentor"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["programs"] == [] and body["role"] == "mentor"
    assert db.session.get(Participant, uuid.UUID(body["id"])).password_hash is None


@pytest.mark.parametrize("where", ["member", "foreign", "unaffiliated"])
def test_create_with_an_email_that_has_an_account_is_409(api, world, make_participant, where):
    email = {
        "member": "bruno@mail.example",
        "foreign": world["foreign"].email,
        "unaffiliated": make_participant(email="solo@mail.example").email,
    }[where]
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Participant))
    response = api.post("/api/v1/participants", json={"email": email.upper(), "name": "Twin"})
    body = is_problem(response, 409)
    assert "already exists" in body["detail"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Participant)) == count


@pytest.mark.parametrize(
    "body,fields",
    [
        ({}, ["email", "name"]),
        ({"email": "a@b.example"}, ["name"]),
        ({"email": "not an email", "name": "X"}, ["email"]),
        ({"email": "a@b.example", "name": "   "}, ["name"]),
        ({"email": "a@b.example", "name": "x" * 201}, ["name"]),
        ({"email": "a@b.example", "name": "X", "password": "short"}, ["password"]),
        ({"email": "a@b.example", "name": "X", "role": "boss"}, ["role"]),
        ({"email": "a@b.example", "name": "X", "program": "Export"}, ["program"]),
        ({"email": "a@b.example", "name": "X", "program": str(uuid.uuid4())}, ["program"]),
        ({"email": 5, "name": "X"}, ["email"]),
        ({"email": "a@b.example", "name": ["X"]}, ["name"]),
        ({"email": "a@b.example", "name": "X", "managed": False}, ["managed"]),
        ({"email": "a@b.example", "name": "X", "id": "mine"}, ["id"]),
    ],
)
def test_create_refuses_invalid_fields_with_422(api, world, body, fields):
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Participant))
    problem = is_problem(api.post("/api/v1/participants", json=body), 422)
    assert [error["field"] for error in problem["errors"]] == fields
    assert all(error["pointer"] == f"#/{error['field']}" for error in problem["errors"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Participant)) == count


def test_create_refuses_another_orgs_program(api, world):
    body = {"email": "a@b.example", "name": "X", "program": str(world["other"].programs[0].id)}
    is_problem(api.post("/api/v1/participants", json=body), 422)


# -- editing -----------------------------------------------------------------------


def test_patch_changes_profile_name_and_role_and_audits_sealed(api, world):
    participant = world["managed"]
    response = api.patch(
        f"/api/v1/participants/{participant.id}",
        json={
            "name": "Ana María Ortega",
            "role": "both",
            "headline": "Baker",
            "country": "es",
            "years_experience": 12,
            "founded_year": "2019",
            "website": "https://ana.example",
            "phone": "+34 600 000 000",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["name"] == "Ana María Ortega" and body["role"] == "both"
    profile = fresh(fresh(participant).profile)
    assert (profile.headline, profile.country, profile.years_experience) == ("Baker", "ES", 12)
    assert profile.founded_year == 2019
    event = trail(world["org"])[-1]
    assert event.action == "participant.profile_updated"
    assert (event.actor_type, event.actor_id) == ("token", str(api.token.id))
    assert "phone" in event.details["private_fields"]
    assert "+34 600 000 000" not in json.dumps(event.details)
    assert api_names(api, q="maria") == ["Ana María Ortega"]


def test_patch_can_clear_a_field_and_an_empty_patch_changes_nothing(api, world):
    participant = world["managed"]
    api.patch(f"/api/v1/participants/{participant.id}", json={"headline": "Baker"})
    response = api.patch(f"/api/v1/participants/{participant.id}", json={"headline": None})
    assert response.status_code == 200
    assert fresh(fresh(participant).profile).headline is None
    events = len(trail(world["org"]))
    assert api.patch(f"/api/v1/participants/{participant.id}", json={}).status_code == 200
    assert len(trail(world["org"])) == events


def test_patch_email_waits_for_confirmation_and_answers_202(api, world):
    participant = world["managed"]
    response = api.patch(
        f"/api/v1/participants/{participant.id}",
        json={"email": "Ana.New@Acme.example", "headline": "Moved"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["pending_email"] == "ana.new@acme.example"
    assert body["email"] == "ana@acme.example" == fresh(participant).email
    assert fresh(participant.profile).headline == "Moved"
    confirm = mail_to(participant, "email_change_confirm")
    assert [m.to_address for m in confirm] == ["ana.new@acme.example"]
    assert [m.to_address for m in mail_to(participant, "email_change_started")] == [
        "ana@acme.example"
    ]
    link = db.session.scalar(
        sa.select(AccountLink).where(AccountLink.participant_id == participant.id)
    )
    assert link.purpose == "change_email" and link.new_email == "ana.new@acme.example"
    event = trail(world["org"])[-1]
    assert event.action == "participant.email_change_started"
    assert event.details["email"]["after"] == "a***@acme.example"
    assert event.actor_type == "token"


def test_patch_to_an_email_in_use_is_a_conflict(api, world):
    response = api.patch(
        f"/api/v1/participants/{world['managed'].id}", json={"email": "bruno@mail.example"}
    )
    is_problem(response, 409)
    assert not mail_to(world["managed"], "email_change_confirm")


@pytest.mark.parametrize(
    "body,field",
    [
        ({"country": "Narnia"}, "country"),
        ({"country": "ZZ"}, "country"),
        ({"years_experience": 500}, "years_experience"),
        ({"years_experience": "many"}, "years_experience"),
        ({"years_experience": True}, "years_experience"),
        ({"birth_year": 2999}, "birth_year"),
        ({"website": "ftp://files.example"}, "website"),
        ({"business_website": "http://[not-an-ip"}, "business_website"),
        ({"website": "https://"}, "website"),
        ({"linkedin_url": "javascript:alert(1)"}, "linkedin_url"),
        ({"headline": "x" * 201}, "headline"),
        ({"headline": 5}, "headline"),
        ({"bio": ["a"]}, "bio"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": 7}, "name"),
        ({"role": "boss"}, "role"),
        ({"email": "nope"}, "email"),
        ({"email": None}, "email"),
        ({"email": 5}, "email"),
        ({"password": "a long enough password"}, "password"),
        ({"managed_by": None}, "managed_by"),
    ],
)
def test_patch_refuses_invalid_fields_and_changes_nothing(api, world, body, field):
    participant = world["managed"]
    before = snapshot(participant)
    events = len(trail(world["org"]))
    patch = {"headline": "Valid", **body}
    problem = is_problem(api.patch(f"/api/v1/participants/{participant.id}", json=patch), 422)
    assert [error["field"] for error in problem["errors"]] == [field]
    if field == "country":
        assert "country code" in problem["detail"]
    assert snapshot(participant) == before
    assert len(trail(world["org"])) == events


# -- actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    path: str
    audit: str
    mail: str | None
    revokes: bool
    setup: str | None = None
    body: dict[str, Any] | None = None


ACTIONS = [
    Action("suspend", "participant.suspended", "account_suspended", True, body={"reason": "No"}),
    Action("unsuspend", "participant.unsuspended", "account_unsuspended", False, "suspend"),
    Action("restrict", "participant.restricted", "editing_restricted", False),
    Action("unrestrict", "participant.unrestricted", "editing_restored", False, "restrict"),
    Action("deactivate", "participant.deactivated", "account_deactivated", True),
    Action("reactivate", "participant.reactivated", "account_reactivated", False, "deactivate"),
    Action(
        "require-password-reset",
        "participant.password_reset_required",
        "password_reset_required",
        True,
    ),
    Action("send-reset-link", "participant.reset_link_sent", "password_reset_link", False),
    Action("revoke-sessions", "participant.sessions_revoked", None, True),
]


def prepare(world, action: Action, participant) -> None:
    org = world["org"]
    if action.setup == "suspend":
        participant.status = "suspended"
        participant.suspended_reason = "before"
    elif action.setup == "restrict":
        participant.restricted = True
    elif action.setup == "deactivate":
        participant.status = "deactivated"
    db.session.flush()
    del org


EXPECTED = {
    "suspend": lambda p: p.status == "suspended" and p.suspended_reason == "No",
    "unsuspend": lambda p: p.status == "active" and p.suspended_reason is None,
    "restrict": lambda p: p.restricted,
    "unrestrict": lambda p: not p.restricted,
    "deactivate": lambda p: p.status == "deactivated",
    "reactivate": lambda p: p.status == "active",
    "require-password-reset": lambda p: p.must_reset_password,
    "send-reset-link": lambda p: True,
    "revoke-sessions": lambda p: True,
}


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.path)
def test_actions_have_the_pages_effects_and_are_audited_as_the_token(api, world, action):
    participant = world["managed"]
    prepare(world, action, participant)
    version = fresh(participant).session_version
    response = api.post(
        f"/api/v1/participants/{participant.id}/{action.path}",
        json=action.body or {},
        headers={"X-Request-ID": "act-1"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == PARTICIPANT_KEYS
    participant = fresh(participant)
    assert EXPECTED[action.path](participant)
    assert body["status"] == participant.effective_status()
    assert body["restricted"] == participant.restricted
    assert body["must_reset_password"] == participant.must_reset_password
    assert participant.session_version == version + (1 if action.revokes else 0)
    if action.mail:
        assert [m.to_address for m in mail_to(participant, action.mail)] == ["ana@acme.example"]
    event = trail(world["org"])[-1]
    assert event.action == action.audit and event.target_id == str(participant.id)
    assert (event.actor_type, event.actor_id, event.actor_name) == (
        "token",
        str(api.token.id),
        api.token.name,
    )
    assert (event.request_id, event.ip) == ("act-1", "203.0.113.9")
    assert audit.verify_chain(str(world["org"].id)).broken_at is None


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.path)
def test_actions_on_an_unmanaged_member_are_409_and_change_nothing(api, world, action):
    participant = world["member"]
    prepare(world, action, participant)
    before = snapshot(participant)
    events = len(trail(world["org"]))
    response = api.post(
        f"/api/v1/participants/{participant.id}/{action.path}", json=action.body or {}
    )
    assert "does not manage" in is_problem(response, 409)["detail"]
    assert snapshot(participant) == before
    assert len(trail(world["org"])) == events
    assert not action.mail or not mail_to(participant, action.mail)


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.path)
def test_actions_on_another_orgs_participant_are_404_and_change_nothing(api, world, action):
    participant = world["foreign"]
    before = snapshot(participant)
    events = len(trail(world["org"])), len(trail(world["other"]))
    response = api.post(
        f"/api/v1/participants/{participant.id}/{action.path}", json=action.body or {}
    )
    is_problem(response, 404)
    assert snapshot(participant) == before
    assert (len(trail(world["org"])), len(trail(world["other"]))) == events


@pytest.mark.parametrize("path", ["unsuspend", "unrestrict", "reactivate"], ids=lambda path: path)
def test_an_action_that_does_not_apply_is_409(api, world, path):
    response = api.post(f"/api/v1/participants/{world['managed'].id}/{path}", json={})
    is_problem(response, 409)


def test_patch_on_an_unmanaged_member_is_409(api, world):
    participant = world["member"]
    before = snapshot(participant)
    response = api.patch(f"/api/v1/participants/{participant.id}", json={"headline": "X"})
    is_problem(response, 409)
    response = api.patch(f"/api/v1/participants/{participant.id}", json={"email": "b@x.example"})
    is_problem(response, 409)
    assert snapshot(participant) == before


def test_suspend_until_a_time_or_a_date(api, world):
    participant = world["managed"]
    until = (utcnow() + timedelta(days=7)).replace(microsecond=0)
    response = api.post(
        f"/api/v1/participants/{participant.id}/suspend",
        json={
            "reason": "Cooling off",
            "until": until.astimezone(ZoneInfo("America/Lima")).isoformat(),
        },
    )
    assert response.status_code == 200
    assert datetime.fromisoformat(response.get_json()["suspended_until"]) == until
    assert fresh(participant).suspended_until == until
    api.post(f"/api/v1/participants/{participant.id}/unsuspend", json={})
    day = (utcnow() + timedelta(days=30)).date()
    response = api.post(
        f"/api/v1/participants/{participant.id}/suspend",
        json={"reason": "Again", "until": day.isoformat()},
    )
    # A date ends the suspension as that day begins in the org's time zone (Madrid).
    expected = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("Europe/Madrid"))
    assert fresh(participant).suspended_until == expected.astimezone(UTC)


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": 5}, "reason"),
        ({"reason": "r", "until": "2020-01-01T00:00:00Z"}, "until"),
        ({"reason": "r", "until": "2999-01-01T00:00:00"}, "until"),
        ({"reason": "r", "until": "next week"}, "until"),
        ({"reason": "r", "until": 1767225600}, "until"),
        ({"reason": "r", "until": "0001-01-01"}, "until"),
        ({"reason": "r", "until": "9999-12-31T23:59:59-23:59"}, "until"),
        ({"reason": "r", "days": 3}, "days"),
    ],
)
def test_suspend_refuses_invalid_fields(api, world, body, field):
    participant = world["managed"]
    before = snapshot(participant)
    response = api.post(f"/api/v1/participants/{participant.id}/suspend", json=body)
    problem = is_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == [field]
    assert snapshot(participant) == before


@pytest.mark.parametrize(
    "data,content_type,ok",
    [
        (None, None, True),
        ("{}", "application/json", True),
        ("", "application/json", True),
        ("{}", "text/plain", True),
        ('{"reason": "x"}', "application/json", False),
        ("null", "application/json", False),
        ("[]", "application/json", False),
        ("{", "application/json", False),
        ('{"a": NaN}', "application/json", False),
        (b"\xff\xfe\x00", "application/json", False),
    ],
)
def test_empty_body_actions_take_nothing_or_an_empty_object(api, world, data, content_type, ok):
    response = api.post(
        f"/api/v1/participants/{world['managed'].id}/restrict",
        data=data,
        content_type=content_type,
    )
    if ok:
        assert response.status_code == 200
    else:
        is_problem(response, 422)
        assert fresh(world["managed"]).restricted is False


# -- export --------------------------------------------------------------------------


def test_export_returns_the_managed_accounts_data_and_is_audited(api, world):
    participant = world["managed"]
    response = api.get(f"/api/v1/participants/{participant.id}/export")
    assert response.status_code == 200
    data = response.get_json()
    assert data["account"]["id"] == str(participant.id)
    assert data["account"]["email"] == "ana@acme.example"
    assert [m["org"] for m in data["memberships"]] == [world["org"].slug]
    event = trail(world["org"])[-1]
    assert event.action == "participant.exported" and event.actor_type == "token"


def test_export_of_an_unmanaged_member_is_409(api, world):
    is_problem(api.get(f"/api/v1/participants/{world['member'].id}/export"), 409)


# -- audit ---------------------------------------------------------------------------


def test_audit_lists_the_orgs_events_newest_first(api, world):
    participant = world["managed"]
    api.post(f"/api/v1/participants/{participant.id}/restrict", json={})
    api.patch(f"/api/v1/participants/{participant.id}", json={"phone": "+34 612 345 678"})
    body = api.get("/api/v1/audit").get_json()
    events = trail(world["org"])
    assert [e["id"] for e in body["data"]] == [str(e.id) for e in reversed(events)]
    assert body["next_cursor"] is None
    newest = body["data"][0]
    assert set(newest) == EVENT_KEYS
    assert newest["action"] == "participant.profile_updated"
    assert newest["actor"] == {"type": "token", "id": str(api.token.id), "name": api.token.name}
    assert newest["target"] == {"type": "participant", "id": str(participant.id)}
    sealed = events[-1].details["sealed"]
    assert newest["details"]["sealed"] == sealed and "612 345 678" not in json.dumps(newest)
    other = {str(e.id) for e in trail(world["other"])}
    assert not other & {e["id"] for e in body["data"]}


def test_audit_filters_and_pages(api, world):
    org, participant = world["org"], world["managed"]
    for path in ("restrict", "unrestrict", "restrict", "revoke-sessions"):
        api.post(f"/api/v1/participants/{participant.id}/{path}", json={})

    def actions(**params):
        response = api.get("/api/v1/audit", query_string=params)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [e["action"] for e in response.get_json()["data"]]

    assert actions(action="participant.restricted") == ["participant.restricted"] * 2
    assert actions(action="participant.*", actor=str(api.token.id)) == [
        "participant.sessions_revoked",
        "participant.restricted",
        "participant.unrestricted",
        "participant.restricted",
    ]
    assert set(actions(target=str(world["member"].id))) == {
        "participant.created",
        "participant.joined",
    }
    today = utcnow().astimezone(ZoneInfo(org.time_zone)).date()
    assert len(actions(**{"from": today.isoformat(), "to": today.isoformat()})) == len(trail(org))
    assert actions(**{"to": (today - timedelta(days=1)).isoformat()}) == []
    assert actions(**{"from": (today + timedelta(days=1)).isoformat()}) == []
    first = api.get("/api/v1/audit", query_string={"limit": 3}).get_json()
    second = api.get(
        "/api/v1/audit", query_string={"limit": 3, "cursor": first["next_cursor"]}
    ).get_json()
    everything = api.get("/api/v1/audit").get_json()["data"]
    assert [e["id"] for e in first["data"] + second["data"]] == [e["id"] for e in everything][:6]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "2026-01-01T10:00:00"}, "from"),
        ({"cursor": "bad"}, "cursor"),
        ({"limit": "1000"}, "limit"),
        ({"action": "x" * 100}, "action"),
        ({"actor": "\x00"}, "actor"),
    ],
)
def test_bad_audit_parameters_are_422(api, world, params, field):
    body = is_problem(api.get("/api/v1/audit", query_string=params), 422)
    assert body["errors"][0]["field"] == field


def test_a_participant_cursor_is_not_an_audit_cursor(api, world, crowd):
    cursor = api.get("/api/v1/participants?limit=1").get_json()["next_cursor"]
    is_problem(api.get("/api/v1/audit", query_string={"cursor": cursor}), 422)


# -- HTTP errors ----------------------------------------------------------------------


def test_oversized_bodies_are_413_problems(api, app, world):
    size = app.config["MAX_CONTENT_LENGTH"] + 1
    response = api.post(
        "/api/v1/participants",
        data=json.dumps({"email": "a@b.example", "name": "x" * size}),
        content_type="application/json",
    )
    is_problem(response, 413)


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("DELETE", "/api/v1/participants/{id}", {"GET", "PATCH"}),
        ("PUT", "/api/v1/participants", {"GET", "POST"}),
        ("GET", "/api/v1/participants/{id}/suspend", {"POST"}),
        ("POST", "/api/v1/audit", {"GET"}),
    ],
)
def test_wrong_methods_are_405_with_allow(api, world, method, path, allowed):
    response = api.open(method, path.format(id=world["managed"].id))
    is_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_unknown_api_paths_are_404_problems(api):
    is_problem(api.get("/api/v1/nothing-here"), 404)


# -- garbage in, never a 500 ---------------------------------------------------------------

STRINGS = [
    "",
    " ",
    "\x00",
    "\ud800",
    "x" * 5000,
    "2026-13-45",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31",
    "'; DROP TABLE participants; --",
    "ℌ𝔢𝔩𝔩𝔬 🦄",
    "<script>alert(1)</script>",
    "a@b",
    "someone@example.com",
    "https://example.com",
    "http://[::1",
    "-1",
    "1e309",
    "NaN",
    "true",
    "mentor",
    "00000000-0000-0000-0000-000000000000",
]
FIELDS = ["email", "name", "program", "password", "role", "reason", "until", "country"]
FIELDS += ["years_experience", "birth_year", "website", "bio", "headline", "nested", ""]


def garbage(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**31, 2**70, -(2**70), 1900, 2999])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, 2019.0])
    if kind in (4, 5):
        return rng.choice(STRINGS)
    if kind == 6:
        return [garbage(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(FIELDS): garbage(rng, depth + 1) for _ in range(rng.randrange(4))}


def fuzz_cases(count: int = 48) -> list[tuple[str, str, bytes]]:
    rng = random.Random(20260301)
    targets = [
        ("POST", "/api/v1/participants"),
        ("PATCH", "/api/v1/participants/{id}"),
        ("POST", "/api/v1/participants/{id}/suspend"),
        ("POST", "/api/v1/participants/{id}/restrict"),
    ]
    raw = [b"{", b"[" * 5000, b"\xff\xfe", b'{"name": "\\ud800"}', b"0", b'"x"', b"{}" * 3]
    cases = []
    for n in range(count):
        method, path = targets[n % len(targets)]
        if n < len(raw):
            cases.append((method, path, raw[n]))
            continue
        body = {rng.choice(FIELDS): garbage(rng) for _ in range(rng.randrange(1, 4))}
        if rng.random() < 0.3:
            body = garbage(rng)
        cases.append((method, path, json.dumps(body).encode()))
    return cases


@pytest.mark.parametrize("method,path,data", fuzz_cases())
def test_garbage_bodies_never_get_a_500(api, world, method, path, data):
    response = api.open(
        method, path.format(id=world["managed"].id), data=data, content_type="application/json"
    )
    assert response.status_code in (200, 201, 202, 409, 422), response.get_data(as_text=True)
    if response.status_code >= 400:
        is_problem(response, response.status_code)


# Invalid UTF-8 (a lone surrogate, a stray byte), already percent-encoded.
RAW_BYTES = "%ED%A0%80%FF"


@pytest.mark.parametrize("path", ["/api/v1/participants", "/api/v1/audit"])
@pytest.mark.parametrize(
    "value", ["\x00", RAW_BYTES, "x" * 3000, "%", "_", "ö", "a@", "..", "-", "0", "null"]
)
def test_garbage_parameters_never_get_a_500(api, world, path, value):
    params = {
        name: value
        for name in (
            "q",
            "program",
            "role",
            "status",
            "managed",
            "activity",
            "sort",
            "cursor",
            "limit",
            "action",
            "actor",
            "target",
            "from",
            "to",
        )
    }
    for name, one in [*params.items(), ("all", None)]:
        query = params if one is None else {name: one}
        if value is RAW_BYTES:
            query = "&".join(f"{key}={RAW_BYTES}" for key in query)
        response = api.get(path, query_string=query)
        assert response.status_code in (200, 422), (name, response.get_data(as_text=True))


# -- the OpenAPI document ----------------------------------------------------------------


@pytest.fixture
def spec(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs_in(item)]
    return []


def test_the_document_is_well_formed_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1.") and spec["info"]["title"] and spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    for ref in refs_in(spec):
        resolve(spec, ref)
    operation_ids = []
    for path, item in spec["paths"].items():
        templated = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            assert method in {"get", "post", "patch", "put", "delete"}
            operation_ids.append(operation["operationId"])
            assert operation["responses"] and all(
                re.fullmatch(r"[1-5]\d\d", code) for code in operation["responses"]
            )
            for requirement in operation.get("security", spec["security"]):
                assert set(requirement) <= set(spec["components"]["securitySchemes"])
            parameters = [
                resolve(spec, p["$ref"]) if "$ref" in p else p
                for p in operation.get("parameters", [])
            ]
            in_path = {p["name"] for p in parameters if p["in"] == "path"}
            assert in_path == templated, (path, method)
            assert all(p["required"] for p in parameters if p["in"] == "path")
            for code, response in operation["responses"].items():
                response = resolve(spec, response["$ref"]) if "$ref" in response else response
                assert response["description"]
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in response["content"]
    assert len(operation_ids) == len(set(operation_ids))


def test_every_api_route_is_documented_and_nothing_else(app, spec):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes == documented


def test_every_scope_in_the_document_matches_the_view(spec):
    for method, path, _body, scope in ENDPOINTS:
        operation = spec["paths"][path.removeprefix("/api/v1")][method.lower()]
        assert operation["security"] == [{"bearerAuth": [scope]}], path


TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def conform(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> None:
    """Check ``value`` against the subset of JSON Schema the document uses."""
    if "$ref" in schema:
        return conform(spec, resolve(spec, schema["$ref"]), value, where)
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        assert any(TYPES[kind](value) for kind in kinds), f"{where}: {value!r} is not {kinds}"
    if value is None:
        return None
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if schema.get("format") == "date-time":
        assert datetime.fromisoformat(value).tzinfo is not None, where
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        missing = set(schema.get("required", [])) - set(value)
        assert not missing, f"{where}: missing {missing}"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(properties), f"{where}: extra {set(value) - set(properties)}"
        for key, item in value.items():
            if key in properties:
                conform(spec, properties[key], item, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            conform(spec, schema["items"], item, f"{where}[{index}]")
    return None


def response_schema(spec, path: str, method: str, status: int) -> dict[str, Any]:
    response = spec["paths"][path][method]["responses"][str(status)]
    response = resolve(spec, response["$ref"]) if "$ref" in response else response
    content = response["content"]
    return next(iter(content.values()))["schema"]


def test_responses_match_the_document(api, world, spec, crowd):
    participant = world["managed"]
    api.post(
        f"/api/v1/participants/{participant.id}/suspend",
        json={"reason": "x", "until": "2999-01-01"},
    )
    checks = [
        ("/participants", "get", api.get("/api/v1/participants")),
        ("/participants/{id}", "get", api.get(f"/api/v1/participants/{participant.id}")),
        (
            "/participants",
            "post",
            api.post("/api/v1/participants", json={"email": "d@x.example", "name": "D"}),
        ),
        (
            "/participants/{id}",
            "patch",
            api.patch(f"/api/v1/participants/{participant.id}", json={"email": "n@x.example"}),
        ),
        (
            "/participants/{id}/export",
            "get",
            api.get(f"/api/v1/participants/{participant.id}/export"),
        ),
        ("/programs", "get", api.get("/api/v1/programs")),
        ("/audit", "get", api.get("/api/v1/audit")),
        ("/participants", "post", api.post("/api/v1/participants", json={"email": 1})),
        (
            "/participants/{id}/unsuspend",
            "post",
            api.post(f"/api/v1/participants/{world['member'].id}/unsuspend"),
        ),
        ("/participants/{id}", "get", api.get(f"/api/v1/participants/{uuid.uuid4()}")),
        ("/programs", "get", api.client.get("/api/v1/programs")),
    ]
    for path, method, response in checks:
        schema = response_schema(spec, path, method, response.status_code)
        conform(spec, schema, response.get_json(), f"{method} {path} {response.status_code}")
