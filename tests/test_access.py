"""One matrix over every route, role and org: who gets 200, 403, 404 or the sign-in page.

A route added without a row here fails ``test_every_route_is_in_the_matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from console.extensions import db
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
    "staff.outbox",
    "staff.outbox_message",
    "static",
    *(
        f"account.{endpoint}"
        for endpoint in (
            "index",
            "login",
            "logout",
            "register",
            "confirm_email",
            "forgot_password",
            "reset_password",
            "set_new_password",
            "change_password",
            "change_email",
            "confirm_email_change",
            "edit_profile",
            "download_data",
            "activity",
            "leave_program",
            "ask_release",
        )
    ),
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
        return client.get(url)
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


def test_staff_pages_are_for_staff_only(app, client_for, setting):
    assert app.test_client().get("/staff/").status_code == 302
    assert client_for(setting["admins"]["owner"]).get("/staff/").status_code == 404
    assert client_for(setting["admins"]["staff"]).get("/staff/").status_code == 200


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


# -- the participant's side and the staff outbox ----------------------------------

# Pages only a signed-in participant may open; administrators are sent to the
# participant sign-in, as anyone else is.
PARTICIPANT_PAGES = [
    "/account",
    "/account/password",
    "/account/email",
    "/account/profile",
    "/account/data",
    "/account/activity",
    "/account/release",
]
PUBLIC_PAGES = ["/account/login", "/account/register", "/account/password/forgot"]


@pytest.mark.parametrize("path", PARTICIPANT_PAGES)
@pytest.mark.parametrize("actor", ["anonymous", "owner", "staff", "participant"])
def test_account_pages_are_for_signed_in_participants(app, client_for, setting, path, actor):
    participant = setting["participant"]
    participant.managed_by_org_id = setting["org"].id  # so /account/release has an org to ask
    db.session.flush()
    if actor == "anonymous":
        client = app.test_client()
    elif actor == "participant":
        client = client_for(participant)
    else:
        client = client_for(setting["admins"][actor])
    response = client.get(path)
    if actor == "participant":
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/account/login?next=")


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_account_pages_are_open_to_anyone(app, path):
    assert app.test_client().get(path).status_code == 200


def test_account_posts_need_a_participant(app, client_for, setting):
    owner = client_for(setting["admins"]["owner"])
    token = csrf_token(owner, "/account/login")
    for path in ("/account/profile", "/account/email", "/account/release", "/account/password"):
        response = owner.post(path, data={"csrf_token": token})
        assert response.status_code == 302, path
    membership = "00000000-0000-0000-0000-000000000000"
    leave = owner.post(f"/account/programs/{membership}/leave", data={"csrf_token": token})
    assert leave.status_code == 302


def test_participants_cannot_open_console_pages(client_for, setting):
    client = client_for(setting["participant"])
    org = setting["org"].slug
    for path in (f"/orgs/{org}/participants/", f"/orgs/{org}/", "/staff/", "/staff/outbox"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path
    assert client.get("/orgs/").status_code == 404


def test_staff_outbox_is_for_staff_only(app, client_for, setting):
    assert app.test_client().get("/staff/outbox").headers["Location"].startswith("/login")
    assert client_for(setting["admins"]["owner"]).get("/staff/outbox").status_code == 404
    assert client_for(setting["admins"]["staff"]).get("/staff/outbox").status_code == 200
    missing = "/staff/outbox/00000000-0000-0000-0000-000000000000"
    assert client_for(setting["admins"]["owner"]).get(missing).status_code == 404
    assert client_for(setting["admins"]["staff"]).get(missing).status_code == 404


def test_root_sends_participants_to_their_account(client_for, setting):
    assert client_for(setting["participant"]).get("/").headers["Location"] == "/account"
