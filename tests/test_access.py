"""One matrix over every route, role and org: who gets 200, 403, 404 or the sign-in page.

A route added without a row here fails ``test_every_route_is_in_the_matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from console.permissions import Permission
from console.permissions import Role
from tests.conftest import csrf_token


@dataclass(frozen=True)
class OrgRoute:
    endpoint: str
    method: str
    path: str  # {org} and {participant} are filled in
    permission: Permission | None
    ok: int = 200


ORG_ROUTES = [
    OrgRoute("orgs.show", "GET", "/orgs/{org}/", None, 302),
    OrgRoute(
        "participants.index", "GET", "/orgs/{org}/participants/", Permission.VIEW_PARTICIPANTS
    ),
    OrgRoute(
        "participants.show",
        "GET",
        "/orgs/{org}/participants/{participant}",
        Permission.VIEW_PARTICIPANTS,
    ),
    OrgRoute("audit.index", "GET", "/orgs/{org}/audit", Permission.VIEW_AUDIT),
    OrgRoute("audit.export", "GET", "/orgs/{org}/audit/export.csv", Permission.VIEW_AUDIT),
]
# Routes outside any org, and who may use them; they get their own tests.
OTHER_ROUTES = {
    "home.index",
    "auth.login",
    "auth.second_factor",
    "auth.second_factor_setup",
    "auth.logout",
    "orgs.index",
    "staff.index",
    "staff.audit",
    "static",
}
ACTORS = ["anonymous", "owner", "admin", "support", "analyst", "foreign_owner", "staff"]


def test_every_route_is_in_the_matrix(app):
    covered = {route.endpoint for route in ORG_ROUTES} | OTHER_ROUTES
    assert {rule.endpoint for rule in app.url_map.iter_rules()} <= covered


@pytest.fixture
def setting(make_org, make_admin, make_participant):
    org, other = make_org(), make_org()
    admins = {role.value: make_admin(org, role.value) for role in Role}
    admins["foreign_owner"] = make_admin(other, "owner")
    admins["staff"] = make_admin(staff=True)
    return {
        "org": org,
        "participant": make_participant(org),
        "foreign_participant": make_participant(other),
        "admins": admins,
    }


def call(client, route: OrgRoute, org, participant):
    url = route.path.format(org=org.slug, participant=participant.id)
    if route.method == "GET":
        # Buffered: a streamed body (CSV exports) is read inside the request's context.
        return client.get(url, buffered=True)
    return client.open(url, method=route.method, data={"csrf_token": csrf_token(client)})


def expected(route: OrgRoute, actor: str) -> int:
    if actor == "anonymous":
        return 302
    if actor in ("foreign_owner", "staff"):
        return 404
    if route.permission is None or Role(actor).can(route.permission):
        return route.ok
    return 403


@pytest.mark.parametrize("route", ORG_ROUTES, ids=lambda r: f"{r.method} {r.endpoint}")
@pytest.mark.parametrize("actor", ACTORS)
def test_org_route_access(app, client_for, setting, route, actor):
    client = app.test_client() if actor == "anonymous" else client_for(setting["admins"][actor])
    response = call(client, route, setting["org"], setting["participant"])
    assert response.status_code == expected(route, actor), response.get_data(as_text=True)[:500]
    if actor == "anonymous":
        assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    "route",
    [r for r in ORG_ROUTES if "{participant}" in r.path],
    ids=lambda r: f"{r.method} {r.endpoint}",
)
def test_another_orgs_participant_is_404_even_for_an_owner(client_for, setting, route):
    client = client_for(setting["admins"]["owner"])
    response = call(client, route, setting["org"], setting["foreign_participant"])
    assert response.status_code == 404


@pytest.mark.parametrize("route", ORG_ROUTES, ids=lambda r: f"{r.method} {r.endpoint}")
def test_unknown_org_is_404_for_administrators_and_sign_in_for_anonymous(
    app, client_for, setting, route
):
    class Missing:
        slug = "no-such-org"

    owner = client_for(setting["admins"]["owner"])
    assert call(owner, route, Missing, setting["participant"]).status_code == 404
    anonymous = app.test_client()
    assert call(anonymous, route, Missing, setting["participant"]).status_code == 302


@pytest.mark.parametrize("url", ["/staff/", "/staff/audit"])
def test_staff_pages_are_for_staff_only(app, client_for, setting, url):
    assert app.test_client().get(url).status_code == 302
    assert client_for(setting["admins"]["owner"]).get(url).status_code == 404
    assert client_for(setting["admins"]["staff"]).get(url).status_code == 200


def test_org_picker_needs_a_sign_in(app, client_for, setting):
    assert app.test_client().get("/orgs/").status_code == 302
    page = client_for(setting["admins"]["analyst"]).get("/orgs/").get_data(as_text=True)
    assert setting["org"].name in page


def test_root_sends_people_where_they_belong(app, client_for, setting):
    assert app.test_client().get("/").headers["Location"] == "/login"
    owner = client_for(setting["admins"]["owner"])
    assert owner.get("/").headers["Location"] == f"/orgs/{setting['org'].slug}/"
    staff = client_for(setting["admins"]["staff"])
    assert staff.get("/").headers["Location"] == "/staff/"
