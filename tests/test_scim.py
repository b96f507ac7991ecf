"""SCIM 2.0 under /scim/v2: what scim2-tester finds, then the rules DESIGN.md sets."""

from __future__ import annotations

import collections
import contextvars
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_tester import Status
from scim2_tester import check_server

from console.extensions import db
from console.models import AuditEvent
from console.models import Member
from console.models import Membership
from console.models import OutboxMessage
from console.models import Participant
from console.models import Program
from console.models import ScimUser
from console.models.base import utcnow
from console.services import account
from console.services import control
from console.services import tokens
from tests.conftest import fresh
from tests.factories import ACTOR
from tests.factories import PASSWORD

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@dataclass
class ScimClient:
    client: Any
    token: Any
    secret: str

    def open(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.secret}", **kwargs.pop("headers", {})}
        if "json" in kwargs:
            kwargs["content_type"] = "application/scim+json"
        return self.client.open("/scim/v2" + url, method=method, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.open("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.open("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.open("PUT", url, **kwargs)

    def patch(self, url: str, *operations: dict[str, Any]) -> Any:
        return self.open("PATCH", url, json={"schemas": [PATCH_OP], "Operations": list(operations)})

    def delete(self, url: str) -> Any:
        return self.open("DELETE", url)

    def create_user(self, user_name: str, status: int = 201, **attributes: Any) -> dict[str, Any]:
        response = self.post(
            "/Users", json={"schemas": [USER], "userName": user_name, **attributes}
        )
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()


@pytest.fixture
def scim_for(app, db):
    def make(org, *scopes: str) -> ScimClient:
        token, secret = tokens.create_token(ACTOR, org, list(scopes or ["scim"]))
        return ScimClient(app.test_client(), token, secret)

    return make


@pytest.fixture
def org(make_org):
    return make_org(name="Acme Bank", programs=("Accelerator", "Export"))


@pytest.fixture
def scim(scim_for, org):
    return scim_for(org)


def is_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    body = response.get_json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    assert body.get("scimType") == scim_type
    return body


def account_of(resource: dict[str, Any]) -> Participant:
    scim_user = db.session.get(ScimUser, uuid.UUID(resource["id"]))
    return fresh(scim_user.participant)


def trail(org, action: str | None = None) -> list[AuditEvent]:
    query = sa.select(AuditEvent).where(AuditEvent.org_id == org.id).order_by(AuditEvent.seq)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def mail_to(participant: Participant, kind: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(
                OutboxMessage.participant_id == participant.id, OutboxMessage.kind == kind
            )
        )
    )


# -- scim2-tester ----------------------------------------------------------------------


def isolated(wsgi_app: Any) -> Any:
    """Run each request in its own context, as a server would (see IsolatedClient)."""

    def app(environ: Any, start_response: Any) -> Any:
        return contextvars.Context().run(lambda: list(wsgi_app(environ, start_response)))

    return app


def test_scim2_tester_finds_every_check_successful(app, make_org, scim_for):
    # A disposable org: the tester creates, changes and deletes real resources.
    org = make_org(name="Tester Org")
    secret = scim_for(org).secret
    client = WSGISCIMClient(
        isolated(app.wsgi_app),
        base_url=f"{app.config['BASE_URL']}/scim/v2",
        headers={"Authorization": f"Bearer {secret}"},
    )
    results = check_server(client)
    statuses = collections.Counter(result.status for result in results)
    failures = [(r.resource_type, r.title, r.reason) for r in results if r.status != Status.SUCCESS]
    assert not failures, failures
    assert statuses[Status.SUCCESS] == len(results) >= 70
    assert {r.resource_type for r in results} >= {"User", "Group"}


# -- authentication --------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer pc_nope"])
def test_no_usable_token_is_401_with_a_challenge(client, org, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/scim/v2/Users", headers=headers)
    is_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_the_scim_scope_is_403(scim_for, org):
    scim = scim_for(org, "participants:read", "participants:write")
    for response in (
        scim.get("/Users"),
        scim.post("/Users", json={"schemas": [USER], "userName": "x"}),
        scim.get("/Groups"),
        scim.post("/.search", json={}),
    ):
        body = is_error(response, 403)
        assert "scim" in body["detail"]
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScimUser)) == 0


def test_a_platform_token_reaches_no_org(scim_for):
    is_error(scim_for(None, "events:write").get("/Users"), 403)


def test_a_browser_session_never_authenticates_scim(client_for, org, make_admin):
    browser = client_for(make_admin(org, "owner"))
    is_error(browser.get("/scim/v2/Users"), 401)


def test_writes_need_no_csrf_token_and_set_no_cookie(scim):
    response = scim.post("/Users", json={"schemas": [USER], "userName": "nocookie"})
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


# -- discovery -------------------------------------------------------------------------


def test_service_provider_config_says_what_is_supported(client):
    response = client.get("/scim/v2/ServiceProviderConfig")
    assert response.status_code == 200
    assert response.mimetype == "application/scim+json"
    config = response.get_json()
    assert config["patch"] == {"supported": True}
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["changePassword"] == {"supported": False}
    assert config["sort"] == {"supported": False}
    assert config["etag"] == {"supported": False}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert config["meta"]["location"] == "http://console.test/scim/v2/ServiceProviderConfig"


def test_resource_types_and_schemas_are_listed_and_found_by_id(client):
    types = client.get("/scim/v2/ResourceTypes").get_json()
    assert types["schemas"] == [LIST]
    assert {t["id"]: t["endpoint"] for t in types["Resources"]} == {
        "User": "/Users",
        "Group": "/Groups",
    }
    assert client.get("/scim/v2/ResourceTypes/Group").get_json()["schema"] == GROUP
    schemas = client.get("/scim/v2/Schemas").get_json()["Resources"]
    user = next(s for s in schemas if s["id"] == USER)
    names = {a["name"]: a for a in user["attributes"]}
    assert set(names) == {"userName", "name", "displayName", "active", "emails", "account"}
    assert names["userName"]["caseExact"] is False and names["userName"]["uniqueness"] == "server"
    assert names["account"]["mutability"] == "readOnly"
    assert client.get(f"/scim/v2/Schemas/{GROUP}").get_json()["id"] == GROUP
    is_error(client.get("/scim/v2/Schemas/urn:nope"), 404)
    is_error(client.get("/scim/v2/ResourceTypes/Robot"), 404)


def test_discovery_refuses_a_filter(client):
    is_error(client.get('/scim/v2/Schemas?filter=id eq "x"'), 403)


def test_bulk_and_me_are_not_implemented(scim):
    is_error(scim.post("/Bulk", json={}), 501)
    is_error(scim.get("/Me"), 501)


def test_unknown_paths_and_methods_answer_scim_errors(scim):
    is_error(scim.get("/Robots"), 404)
    response = scim.post("/Schemas", json={})
    is_error(response, 405)
    assert "GET" in response.headers["Allow"]


# -- creating users: the DESIGN rules --------------------------------------------------


def test_a_provisioned_user_is_a_new_managed_member_with_a_confirmed_email(scim, org):
    created = scim.create_user(
        "Maria.Lopez",
        externalId="HR-0042",
        name={"givenName": "María", "familyName": "López"},
        displayName="Maria",
        emails=[
            {"value": "maria@home.example", "type": "home"},
            {"value": "Maria.Lopez@acme.example", "type": "work", "primary": True},
        ],
    )
    assert created["userName"] == "Maria.Lopez"
    assert created["externalId"] == "HR-0042"
    assert "active" not in created  # the client said nothing about it
    assert created["meta"]["resourceType"] == "User"
    assert created["meta"]["location"] == f"http://console.test/scim/v2/Users/{created['id']}"
    assert created["account"] == {
        "email": "maria.lopez@acme.example",
        "status": "active",
        "managed": True,
    }
    participant = account_of(created)
    assert participant.email == "maria.lopez@acme.example" and participant.email_verified
    assert participant.name == "María López"
    assert participant.managed_by_org_id == org.id
    member = db.session.get(Member, (org.id, participant.id))
    assert member is not None and member.joined_via == "provisioned"


def test_the_location_header_names_the_new_user(scim):
    response = scim.post("/Users", json={"schemas": [USER], "userName": "located"})
    assert response.status_code == 201
    assert response.headers["Location"] == response.get_json()["meta"]["location"]
    assert scim.get(response.headers["Location"].removeprefix("http://console.test/scim/v2"))


def test_user_name_is_the_email_when_no_emails_are_sent(scim):
    created = scim.create_user("Ann.Lee@Acme.example")
    assert created["userName"] == "Ann.Lee@Acme.example"
    assert "emails" not in created
    assert account_of(created).email == "ann.lee@acme.example"


def test_a_sole_email_counts_as_primary(scim):
    created = scim.create_user("solo", emails=[{"value": "solo@acme.example"}])
    assert account_of(created).email == "solo@acme.example"


def test_without_an_email_the_account_exists_but_cannot_sign_in(scim, org):
    created = scim.create_user("employee-7", name={"formatted": "Tom Baker"})
    assert created["account"] == {"status": "active", "managed": True}
    participant = account_of(created)
    assert participant.email is None and not participant.email_verified
    assert participant.name == "Tom Baker"
    assert db.session.get(Member, (org.id, participant.id)) is not None
    # Sign-in is by email: nothing to type reaches this account.
    assert account.sign_in("employee-7", PASSWORD).participant is None

    patched = scim.patch(
        f"/Users/{created['id']}",
        {"op": "add", "path": "emails", "value": [{"value": "tom@acme.example", "primary": True}]},
    )
    assert patched.status_code == 200, patched.get_data(as_text=True)
    # The first address is set at once, as provisioning would have: nobody used the account yet.
    assert patched.get_json()["account"]["email"] == "tom@acme.example"
    participant = fresh(participant)
    assert participant.email == "tom@acme.example" and participant.email_verified


def test_user_name_is_unique_in_the_org_ignoring_case(scim, scim_for, make_org):
    scim.create_user("Bob.Smith")
    body = is_error(
        scim.post("/Users", json={"schemas": [USER], "userName": "bob.SMITH"}), 409, "uniqueness"
    )
    assert "bob.SMITH" in body["detail"]
    elsewhere = scim_for(make_org()).create_user("Bob.Smith")
    assert elsewhere["userName"] == "Bob.Smith"


def test_an_unmanaged_accounts_email_is_a_conflict_never_a_takeover(scim, org, make_participant):
    person = make_participant(email="sam@people.example", name="Sam Self")
    before = (person.name, person.managed_by_org_id, person.session_version)
    is_error(
        scim.post(
            "/Users",
            json={
                "schemas": [USER],
                "userName": "sam",
                "emails": [{"value": "SAM@people.example"}],
            },
        ),
        409,
        "uniqueness",
    )
    person = fresh(person)
    assert (person.name, person.managed_by_org_id, person.session_version) == before
    assert db.session.get(Member, (org.id, person.id)) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScimUser)) == 0
    # userName that is the address: the same conflict.
    is_error(
        scim.post("/Users", json={"schemas": [USER], "userName": "sam@people.example"}),
        409,
        "uniqueness",
    )


def test_an_account_another_org_manages_is_a_conflict(scim, make_org, make_participant):
    other = make_org()
    theirs = make_participant(other, email="theirs@other.example", managed=True)
    response = scim.post("/Users", json={"schemas": [USER], "userName": "theirs@other.example"})
    is_error(response, 409, "uniqueness")
    assert fresh(theirs).managed_by_org_id == other.id


def test_provisioning_is_audited_with_the_token_as_actor(scim, org):
    created = scim.create_user("audited", emails=[{"value": "audited@acme.example"}])
    participant = account_of(created)
    events = [e for e in trail(org) if e.target_id == str(participant.id)]
    assert [e.action for e in events] == [
        "participant.created",
        "participant.joined",
        "scim.user_created",
    ]
    assert {(e.actor_type, e.actor_id) for e in events} == {("token", str(scim.token.id))}
    assert events[-1].details == {"scim_id": created["id"]}


# -- reading users ---------------------------------------------------------------------


def test_get_returns_the_user_and_honours_attributes(scim):
    created = scim.create_user("reader", displayName="Reader", emails=[{"value": "r@acme.example"}])
    url = f"/Users/{created['id']}"
    assert scim.get(url).get_json() == created
    only = scim.get(url + "?attributes=displayName").get_json()
    assert set(only) == {"schemas", "id", "displayName"}
    without = scim.get(url + "?excludedAttributes=emails,account").get_json()
    assert "emails" not in without and "account" not in without and without["userName"] == "reader"
    is_error(scim.get(url + "?attributes=userName&excludedAttributes=emails"), 400, "invalidValue")


def test_a_renamed_account_shows_its_name_as_formatted(scim, org):
    created = scim.create_user("renamed", name={"givenName": "Ann", "familyName": "Lee"})
    participant = account_of(created)
    control.update_profile(ACTOR, org, participant, {"name": "Ann Lee-Smith"})
    db.session.flush()
    name = scim.get(f"/Users/{created['id']}").get_json()["name"]
    assert name == {"formatted": "Ann Lee-Smith", "givenName": "Ann", "familyName": "Lee"}


@pytest.fixture
def people(scim):
    made = [
        scim.create_user(
            "Alice@acme.example",
            externalId="E-1",
            displayName="Alice",
            emails=[{"value": "alice@acme.example", "type": "work", "primary": True}],
        ),
        scim.create_user(
            "bob",
            externalId="e-2",
            emails=[
                {"value": "bob@home.example", "type": "home"},
                {"value": "bob@acme.example", "type": "work", "primary": True},
            ],
        ),
        scim.create_user("carol", active=False),
        scim.create_user("dave", name={"givenName": "Dave", "familyName": "Jones"}),
    ]
    return {user["userName"]: user["id"] for user in made}


def found(scim, query: str) -> set[str]:
    response = scim.get("/Users?" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["schemas"] == [LIST]
    assert body["totalResults"] == len(body.get("Resources", []))
    return {user["userName"] for user in body.get("Resources", [])}


@pytest.mark.parametrize(
    "query,expected",
    [
        ('filter=userName eq "alice@ACME.example"', {"Alice@acme.example"}),
        ('filter=externalId eq "E-1"', {"Alice@acme.example"}),
        ('filter=externalId eq "e-1"', set()),
        ('filter=emails eq "BOB@home.example"', {"bob"}),
        ('filter=emails.value eq "bob@acme.example"', {"bob"}),
        ('filter=emails[type eq "work" and value eq "bob@home.example"]', set()),
        ('filter=emails[type eq "home" and value eq "bob@home.example"]', {"bob"}),
        ('filter=userName sw "b" and externalId pr', {"bob"}),
        ('filter=userName eq "bob" or userName eq "carol"', {"bob", "carol"}),
        ("filter=not (externalId pr)", {"carol", "dave"}),
        ('filter=displayName co "LIC"', {"Alice@acme.example"}),
        ('filter=name.familyName eq "jones"', {"dave"}),
        ("filter=active eq false", {"carol"}),
        (
            'filter=meta.created gt "2000-01-01T00:00:00Z"',
            {"Alice@acme.example", "bob", "carol", "dave"},
        ),
        ('filter=urn:ietf:params:scim:schemas:core:2.0:User:userName eq "dave"', {"dave"}),
        ('filter=userName eq "x\\" or userName pr"', set()),
    ],
)
def test_filters(scim, people, query, expected):
    assert found(scim, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        'filter=userName eq "a" and',
        "filter=nickName eq 1",
        'filter=title eq "x"',
        "filter=userName eq 5",
        "filter=active gt true",
        'filter=meta.created gt "yesterday"',
        'filter=id sw "a"',
        "count=many",
    ],
)
def test_bad_filters_are_400(scim, people, query):
    scim_type = "invalidValue" if query.startswith("count") else "invalidFilter"
    is_error(scim.get("/Users?" + query), 400, scim_type)


def test_index_pagination_is_bounded(scim, people):
    page = scim.get("/Users?startIndex=2&count=2").get_json()
    assert page["totalResults"] == 4
    assert page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["bob", "carol"]
    empty = scim.get("/Users?count=0").get_json()
    assert empty["totalResults"] == 4 and empty["itemsPerPage"] == 0
    beyond = scim.get("/Users?startIndex=99").get_json()
    assert beyond["totalResults"] == 4 and not beyond.get("Resources")
    assert scim.get("/Users?startIndex=-3&count=-1").get_json()["startIndex"] == 1


def test_search_with_a_body(scim, people):
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "bob"',
        "attributes": ["userName"],
    }
    result = scim.post("/Users/.search", json=body).get_json()
    assert [set(u) for u in result["Resources"]] == [{"schemas", "id", "userName"}]
    everything = scim.post("/.search", json={"schemas": body["schemas"], "count": 100}).get_json()
    kinds = collections.Counter(r["schemas"][0] for r in everything["Resources"])
    assert kinds == {USER: 4, GROUP: 2}
    # At the root, an attribute only users have is false for groups.
    emails = scim.post("/.search", json={"filter": 'emails eq "bob@acme.example"'}).get_json()
    assert emails["totalResults"] == 1


# -- changing users --------------------------------------------------------------------


def test_put_replaces_and_renames_the_account(scim, org):
    created = scim.create_user("putme", externalId="X", emails=[{"value": "putme@acme.example"}])
    replaced = scim.put(
        f"/Users/{created['id']}",
        json={
            "schemas": [USER],
            "userName": "PutMe",
            "name": {"formatted": "Put Me"},
            "emails": [{"value": "putme@acme.example", "primary": True}],
        },
    )
    assert replaced.status_code == 200, replaced.get_data(as_text=True)
    body = replaced.get_json()
    assert body["userName"] == "PutMe" and "externalId" not in body
    participant = account_of(created)
    assert participant.name == "Put Me"
    updated = trail(org, "scim.user_updated")[-1]
    assert updated.details["fields"] == ["userName", "externalId", "name", "emails"]
    assert trail(org, "participant.profile_updated")


def test_patch_without_a_path_and_with_filters(scim):
    created = scim.create_user(
        "patchy", emails=[{"value": "patchy@acme.example", "type": "work", "primary": True}]
    )
    url = f"/Users/{created['id']}"
    response = scim.patch(
        url,
        {"op": "add", "value": {"displayName": "Patchy", "name.givenName": "Pat"}},
        {"op": "replace", "path": 'emails[type eq "work"].display', "value": "Work"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["displayName"] == "Patchy" and body["name"]["givenName"] == "Pat"
    assert body["emails"][0]["display"] == "Work"
    assert account_of(created).name == "Pat"


def test_active_false_deactivates_revokes_sessions_and_tells_the_person(scim, org):
    created = scim.create_user("leaver", emails=[{"value": "leaver@acme.example"}])
    participant = account_of(created)
    version = participant.session_version
    # Microsoft Entra sends the operation capitalised and the boolean as a string.
    response = scim.patch(
        f"/Users/{created['id']}", {"op": "Replace", "path": "active", "value": "False"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["active"] is False
    participant = fresh(participant)
    assert participant.status == "deactivated" and participant.session_version > version
    assert mail_to(participant, "account_deactivated")
    event = trail(org, "participant.deactivated")[-1]
    assert event.actor_type == "token" and event.target_id == str(participant.id)
    assert scim.get(f"/Users/{created['id']}").get_json()["account"]["status"] == "deactivated"

    back = scim.patch(f"/Users/{created['id']}", {"op": "replace", "value": {"active": True}})
    assert back.get_json()["active"] is True
    assert fresh(participant).status == "active"
    assert mail_to(participant, "account_reactivated")


def test_creating_an_inactive_user_deactivates_it(scim):
    created = scim.create_user("dormant", active=False)
    assert created["active"] is False
    assert account_of(created).status == "deactivated"


def test_taking_back_active_false_reactivates_but_a_console_deactivation_stays(scim, org):
    created = scim.create_user("toggled", active=False)
    removed = scim.patch(f"/Users/{created['id']}", {"op": "remove", "path": "active"})
    assert "active" not in removed.get_json()
    assert account_of(created).status == "active"

    control.deactivate(ACTOR, org, account_of(created))
    db.session.flush()
    shown = scim.get(f"/Users/{created['id']}").get_json()
    assert shown["active"] is False
    # A client repeating the true it said before does not undo the console.
    scim.patch(f"/Users/{created['id']}", {"op": "replace", "path": "active", "value": True})
    assert account_of(created).status == "active"
    control.deactivate(ACTOR, org, account_of(created))
    db.session.flush()
    scim.put(
        f"/Users/{created['id']}", json={"schemas": [USER], "userName": "toggled", "active": True}
    )
    assert account_of(created).status == "deactivated"
    shown = scim.get(f"/Users/{created['id']}").get_json()
    # A PUT that repeats what it was shown changes nothing.
    again = scim.put(
        f"/Users/{created['id']}", json={k: v for k, v in shown.items() if k != "meta"}
    )
    assert again.status_code == 200, again.get_data(as_text=True)
    assert account_of(created).status == "deactivated"


def test_changing_the_email_waits_for_the_new_address_to_confirm(scim, org, client):
    created = scim.create_user("mover", emails=[{"value": "old@acme.example", "primary": True}])
    url = f"/Users/{created['id']}"
    new = [{"value": "new@acme.example", "primary": True}]
    response = scim.patch(url, {"op": "replace", "path": "emails", "value": new})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["emails"] == new
    assert body["account"]["email"] == "old@acme.example"
    assert body["account"]["pendingEmail"] == "new@acme.example"
    participant = account_of(created)
    assert participant.email == "old@acme.example"
    assert mail_to(participant, "email_change_started")
    [confirm] = [m for m in mail_to(participant, "email_change_confirm")]
    assert confirm.to_address == "new@acme.example"
    # Sending the same again does not mail another link.
    scim.put(url, json={"schemas": [USER], "userName": "mover", "emails": new})
    assert len(mail_to(participant, "email_change_confirm")) == 1

    # The new address follows the link it was mailed.
    link = re.search(r"http://console\.test(/account/email/confirm/\S+)", confirm.text_body)
    assert link and client.get(link.group(1)).status_code in (200, 302, 303)
    after = scim.get(url).get_json()["account"]
    assert after == {"email": "new@acme.example", "status": "active", "managed": True}


def test_going_back_to_the_current_email_cancels_a_pending_change(scim, org):
    created = scim.create_user("undecided", emails=[{"value": "one@acme.example"}])
    url = f"/Users/{created['id']}"
    scim.patch(url, {"op": "replace", "path": "emails", "value": [{"value": "two@acme.example"}]})
    back = scim.patch(
        url, {"op": "replace", "path": "emails", "value": [{"value": "one@acme.example"}]}
    )
    assert "pendingEmail" not in back.get_json()["account"]
    # The cancelled change is in the audit trail, attributed to the token; repeating it is not.
    [cancelled] = trail(org, "participant.email_change_cancelled")
    assert (cancelled.actor_type, cancelled.target_id) == ("token", str(account_of(created).id))
    scim.patch(url, {"op": "replace", "path": "emails", "value": [{"value": "one@acme.example"}]})
    assert len(trail(org, "participant.email_change_cancelled")) == 1


def test_an_email_another_account_uses_is_a_conflict(scim, make_participant):
    make_participant(email="taken@people.example")
    created = scim.create_user("wanting", emails=[{"value": "mine@acme.example"}])
    response = scim.patch(
        f"/Users/{created['id']}",
        {"op": "replace", "path": "emails", "value": [{"value": "taken@people.example"}]},
    )
    is_error(response, 409, "uniqueness")
    assert account_of(created).email == "mine@acme.example"


def test_an_account_the_org_no_longer_manages_cannot_be_changed(scim, org, make_org):
    created = scim.create_user("released", emails=[{"value": "released@acme.example"}])
    participant = account_of(created)
    control.release(ACTOR, org, participant)
    participant.managed_by_org_id = make_org().id
    db.session.flush()
    response = scim.patch(
        f"/Users/{created['id']}", {"op": "replace", "path": "displayName", "value": "x"}
    )
    is_error(response, 409)
    assert fresh(participant).name != "x"
    assert scim.get(f"/Users/{created['id']}").get_json()["account"]["managed"] is False


# -- bad input -------------------------------------------------------------------------


def test_bad_bodies_are_400_with_the_right_scim_type(scim):
    created = scim.create_user("target")
    url = f"/Users/{created['id']}"
    cases = [
        (scim.post("/Users", data="{nope", content_type="application/scim+json"), "invalidSyntax"),
        (scim.post("/Users", json=["a list"]), "invalidSyntax"),
        (
            scim.post("/Users", json={"schemas": [USER, "urn:x:y"], "userName": "u"}),
            "invalidSyntax",
        ),
        (scim.post("/Users", json={"schemas": [USER]}), "invalidValue"),
        (scim.post("/Users", json={"schemas": [USER], "userName": "  "}), "invalidValue"),
        (scim.post("/Users", json={"schemas": [USER], "userName": 7}), "invalidValue"),
        (
            scim.post("/Users", json={"schemas": [USER], "userName": "u", "emails": "x"}),
            "invalidValue",
        ),
        (
            scim.post("/Users", json={"schemas": [USER], "userName": "u", "active": "maybe"}),
            "invalidValue",
        ),
        (scim.post("/Users", json={"schemas": [USER], "userName": "u\u0000"}), "invalidValue"),
        (
            scim.post(
                "/Users", json={"schemas": [USER], "userName": "u", "emails": [{"value": "no"}]}
            ),
            "invalidValue",
        ),
        (scim.post("/Users", json={"schemas": [USER], "userName": "u" * 300}), "invalidValue"),
        (scim.patch(url, {"op": "replace", "path": "emails[value eq", "value": 1}), "invalidPath"),
        (scim.patch(url, {"op": "replace", "path": "nickName", "value": "x"}), "invalidPath"),
        (scim.patch(url, {"op": "replace", "path": "id", "value": "x"}), "mutability"),
        (
            scim.patch(url, {"op": "replace", "path": "account.email", "value": "a@b.example"}),
            "mutability",
        ),
        (scim.patch(url, {"op": "remove", "path": "userName"}), "mutability"),
        (scim.patch(url, {"op": "move", "path": "active"}), "invalidValue"),
        (scim.patch(url, {"op": "replace", "path": "active", "value": "maybe"}), "invalidValue"),
        (scim.open("PATCH", url, json={"schemas": [PATCH_OP], "Operations": []}), "invalidValue"),
        (scim.open("PATCH", url, json={"schemas": ["urn:x"], "Operations": []}), "invalidSyntax"),
    ]
    for response, scim_type in cases:
        is_error(response, 400, scim_type)
    assert scim.get(url).get_json() == created


def test_unknown_attributes_in_a_body_are_ignored(scim):
    # Okta sends locale and password; this service publishes neither.
    created = scim.create_user("okta", locale="en-US", password="Secret-123456")
    assert "locale" not in created
    assert account_of(created).password_hash is None


def test_a_body_over_the_size_limit_is_413(app, scim, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 100)
    response = scim.post("/Users", json={"schemas": [USER], "userName": "x" * 200})
    is_error(response, 413)


# -- deleting users --------------------------------------------------------------------


def test_delete_stops_provisioning_releases_control_and_tells_the_person(scim, org):
    created = scim.create_user("goner", emails=[{"value": "goner@acme.example"}])
    participant = account_of(created)
    group = scim.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Mentors", "members": [{"value": created["id"]}]},
    ).get_json()
    response = scim.delete(f"/Users/{created['id']}")
    assert response.status_code == 204 and not response.data
    is_error(scim.get(f"/Users/{created['id']}"), 404)
    is_error(scim.delete(f"/Users/{created['id']}"), 404)
    participant = fresh(participant)
    assert participant.managed_by_org_id is None
    assert participant.status == "active" and participant.email == "goner@acme.example"
    assert db.session.get(Member, (org.id, participant.id)) is None
    assert not db.session.scalars(
        sa.select(Membership).where(
            Membership.participant_id == participant.id, Membership.left_at.is_(None)
        )
    ).all()
    assert mail_to(participant, "deprovisioned")
    assert "members" not in scim.get(f"/Groups/{group['id']}").get_json()
    actions = [e.action for e in trail(org) if e.target_id == str(participant.id)]
    assert actions[-3:] == [
        "participant.removed_from_program",
        "participant.released",
        "scim.user_deleted",
    ]


# -- groups ----------------------------------------------------------------------------


def test_groups_are_the_orgs_programs(scim, org):
    listed = scim.get("/Groups").get_json()
    assert sorted(g["displayName"] for g in listed["Resources"]) == ["Accelerator", "Export"]
    created = scim.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Cohort 2027", "externalId": "G-1"}
    )
    assert created.status_code == 201
    group = created.get_json()
    program = db.session.get(Program, uuid.UUID(group["id"]))
    assert program.org_id == org.id and program.name == "Cohort 2027"
    assert group["externalId"] == "G-1"
    assert trail(org, "program.created")[-1].actor_type == "token"
    is_error(
        scim.post("/Groups", json={"schemas": [GROUP], "displayName": "cohort 2027"}),
        409,
        "uniqueness",
    )
    assert found_groups(scim, 'filter=displayName eq "export"') == {"Export"}


def test_group_members_are_program_memberships(scim, org):
    ann = scim.create_user("ann", emails=[{"value": "ann@acme.example"}])
    ben = scim.create_user("ben", emails=[{"value": "ben@acme.example"}])
    program = next(p for p in org.programs if p.name == "Export")
    url = f"/Groups/{program.id}"
    response = scim.patch(
        url, {"op": "add", "path": "members", "value": [{"value": ann["id"]}, {"value": ben["id"]}]}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    members = response.get_json()["members"]
    assert {m["value"] for m in members} == {ann["id"], ben["id"]}
    assert members[0]["$ref"].startswith("http://console.test/scim/v2/Users/")
    assert members[0]["type"] == "User"

    def current(person):
        return db.session.scalar(
            sa.select(Membership).where(
                Membership.participant_id == account_of(person).id,
                Membership.program_id == program.id,
                Membership.left_at.is_(None),
            )
        )

    assert current(ann).joined_via == "provisioned" and current(ben)
    members_filter = scim.get(f'/Groups?filter=members[value eq "{ann["id"]}"]').get_json()
    assert [g["displayName"] for g in members_filter["Resources"]] == ["Export"]
    removed = scim.patch(url, {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'})
    assert [m["value"] for m in removed.get_json()["members"]] == [ben["id"]]
    assert current(ann) is None
    assert mail_to(account_of(ann), "removed_from_program")
    # Microsoft Entra removes a member by value rather than by path filter.
    entra = scim.patch(url, {"op": "Remove", "path": "members", "value": [{"value": ben["id"]}]})
    assert "members" not in entra.get_json()
    light = scim.get("/Groups?excludedAttributes=members").get_json()
    assert all("members" not in g for g in light["Resources"])


def test_only_this_orgs_provisioned_users_can_be_members(
    scim, scim_for, org, make_org, make_participant
):
    theirs = scim_for(make_org()).create_user("theirs")
    program = org.programs[0]
    mine_unprovisioned = make_participant(org, managed=True)
    for value in (theirs["id"], str(mine_unprovisioned.id), "not-an-id"):
        response = scim.patch(
            f"/Groups/{program.id}", {"op": "add", "path": "members", "value": [{"value": value}]}
        )
        is_error(response, 400, "invalidValue")


def test_renaming_and_deleting_a_group(scim, org):
    member = scim.create_user("stayer", emails=[{"value": "stayer@acme.example"}])
    group = scim.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Old", "members": [{"value": member["id"]}]},
    ).get_json()
    url = f"/Groups/{group['id']}"
    renamed = scim.put(
        url, json={"schemas": [GROUP], "displayName": "New", "members": [{"value": member["id"]}]}
    )
    assert renamed.get_json()["displayName"] == "New"
    assert trail(org, "program.renamed")[-1].details == {"name": {"before": "Old", "after": "New"}}
    is_error(
        scim.patch(url, {"op": "replace", "path": "displayName", "value": "Export"}),
        409,
        "uniqueness",
    )

    response = scim.delete(url)
    assert response.status_code == 204
    is_error(scim.get(url), 404)
    assert db.session.get(Program, uuid.UUID(group["id"])) is None
    participant = account_of(member)
    assert mail_to(participant, "removed_from_program")
    deleted = trail(org, "program.deleted")[-1]
    assert deleted.details == {"name": "New", "members": 1} and deleted.actor_type == "token"
    # A managed account stays a member of the org when its last program goes.
    assert db.session.get(Member, (org.id, participant.id)) is not None


# -- other orgs ------------------------------------------------------------------------


def test_another_orgs_users_and_groups_are_404(scim, scim_for, make_org):
    other = make_org()
    theirs = scim_for(other).create_user("hidden", emails=[{"value": "hidden@other.example"}])
    participant = account_of(theirs)
    version = participant.session_version
    user_url, group_url = f"/Users/{theirs['id']}", f"/Groups/{other.programs[0].id}"
    for response in (
        scim.get(user_url),
        scim.put(user_url, json={"schemas": [USER], "userName": "mine"}),
        scim.patch(user_url, {"op": "replace", "path": "active", "value": False}),
        scim.delete(user_url),
        scim.get(group_url),
        scim.put(group_url, json={"schemas": [GROUP], "displayName": "Mine"}),
        scim.patch(group_url, {"op": "replace", "path": "displayName", "value": "Mine"}),
        scim.delete(group_url),
        scim.get("/Users/not-a-uuid"),
    ):
        is_error(response, 404)
    participant = fresh(participant)
    assert participant.session_version == version and participant.status == "active"
    assert not found(scim, 'filter=userName eq "hidden"')
    # Their program was neither renamed nor deleted.
    names = db.session.scalars(sa.select(Program.name).where(Program.org_id == other.id)).all()
    assert "Mine" not in names and len(names) == len(other.programs)


def test_a_user_who_left_the_org_is_no_longer_visible(scim, org):
    created = scim.create_user("quitter", emails=[{"value": "quitter@acme.example"}])
    participant = account_of(created)
    control.release(ACTOR, org, participant)
    db.session.execute(
        sa.update(Membership)
        .where(Membership.participant_id == participant.id)
        .values(left_at=utcnow() - timedelta(seconds=1))
    )
    control.end_membership_if_last(org, participant)
    db.session.flush()
    is_error(scim.get(f"/Users/{created['id']}"), 404)
    assert not found(scim, 'filter=userName eq "quitter"')


def test_the_accounts_email_can_be_filtered_on(scim, people):
    assert found(scim, 'filter=account.email eq "BOB@acme.example"') == {"bob"}


def test_groups_are_created_with_members_and_replaced_whole(scim, org):
    ann = scim.create_user("ann", emails=[{"value": "ann@acme.example"}])
    ben = scim.create_user("ben", emails=[{"value": "ben@acme.example"}])
    created = scim.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Pairs", "members": [{"value": ann["id"]}]},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    group = created.get_json()
    assert [m["value"] for m in group["members"]] == [ann["id"]]
    replaced = scim.put(
        f"/Groups/{group['id']}",
        json={"schemas": [GROUP], "displayName": "Pairs", "members": [{"value": ben["id"]}]},
    )
    assert [m["value"] for m in replaced.get_json()["members"]] == [ben["id"]]
    assert found_groups(scim, f'filter=members.value eq "{ben["id"]}"') == {"Pairs"}
    assert found_groups(scim, f'filter=members.value eq "{ann["id"]}"') == set()
    is_error(
        scim.post("/Groups", json={"schemas": [USER], "displayName": "x"}), 400, "invalidSyntax"
    )
    is_error(scim.post("/Groups", json={"schemas": [GROUP]}), 400, "invalidValue")


def found_groups(scim, query: str) -> set[str]:
    response = scim.get("/Groups?" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {group["displayName"] for group in response.get_json().get("Resources", [])}


def test_group_filters(scim, org):
    scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Tagged", "externalId": "T-1"})
    assert found_groups(scim, 'filter=externalId eq "T-1"') == {"Tagged"}
    assert found_groups(scim, "filter=externalId pr") == {"Tagged"}
    assert found_groups(scim, 'filter=displayName sw "acc"') == {"Accelerator"}
    export = next(p for p in org.programs if p.name == "Export")
    assert found_groups(scim, f'filter=id eq "{export.id}"') == {"Export"}
    is_error(scim.get('/Groups?filter=userName eq "x"'), 400, "invalidFilter")


def test_a_member_whose_account_the_org_no_longer_manages_cannot_join(scim, org):
    created = scim.create_user("free", emails=[{"value": "free@acme.example"}])
    control.release(ACTOR, org, account_of(created))
    db.session.flush()
    program = org.programs[0]
    response = scim.patch(
        f"/Groups/{program.id}",
        {"op": "add", "path": "members", "value": [{"value": created["id"]}]},
    )
    is_error(response, 409)


def test_erasing_the_account_erases_what_was_provisioned(scim, org):
    created = scim.create_user(
        "Erin.Doe@acme.example", externalId="HR-9", name={"givenName": "Erin", "familyName": "Doe"}
    )
    participant = account_of(created)
    control.erase(ACTOR, org, participant, "erin.doe@acme.example")
    db.session.flush()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScimUser)) == 0
    is_error(scim.get(f"/Users/{created['id']}"), 404)
    # The name is free again: the person can be provisioned anew.
    assert scim.create_user("Erin.Doe@acme.example")["id"] != created["id"]


def test_the_trail_page_tells_what_provisioning_did(scim, org, client_for, make_admin):
    created = scim.create_user("told", emails=[{"value": "told@acme.example"}])
    scim.patch(f"/Users/{created['id']}", {"op": "replace", "path": "displayName", "value": "T"})
    group = scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Told"}).get_json()
    scim.patch(f"/Groups/{group['id']}", {"op": "replace", "path": "displayName", "value": "Heard"})
    scim.delete(f"/Groups/{group['id']}")
    scim.delete(f"/Users/{created['id']}")
    page = client_for(make_admin(org, "owner")).get(f"/orgs/{org.slug}/audit")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    for sentence in (
        "provisioned",
        "changed what it provisions about",
        "renamed the program Told to Heard",
        "deleted the program Heard",
        "stopped provisioning",
    ):
        assert sentence in text, sentence


def test_a_put_that_changes_nothing_changes_nothing(scim, org):
    program = next(p for p in org.programs if p.name == "Export")
    shown = scim.get(f"/Groups/{program.id}").get_json()
    again = scim.put(f"/Groups/{program.id}", json=shown)
    assert again.status_code == 200 and again.get_json() == shown
    created = scim.create_user("steady", emails=[{"value": "steady@acme.example"}])
    events = len(trail(org))
    again = scim.put(f"/Users/{created['id']}", json=created)
    assert again.status_code == 200 and again.get_json() == created
    assert len(trail(org)) == events
    tagged = scim.patch(f"/Groups/{program.id}", {"op": "add", "path": "externalId", "value": "X"})
    assert tagged.get_json()["meta"]["lastModified"] > shown["meta"]["lastModified"]
