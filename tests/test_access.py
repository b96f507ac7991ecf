"""One matrix over every route, role and org: who gets 200, 403, 404 or the sign-in page.

A route added without a row here fails ``test_every_route_is_in_the_matrix``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from werkzeug.datastructures import MultiDict

from console.extensions import db
from console.permissions import Permission
from console.permissions import Role
from console.services import control
from console.services import domains
from tests import factories
from tests.conftest import csrf_token


@dataclass(frozen=True)
class OrgRoute:
    endpoint: str
    method: str
    path: str  # {org}, {participant}, {program}, {email_request}, {release_request} filled in
    permission: Permission | None
    ok: int = 200
    data: tuple[tuple[str, str], ...] = ()


P = "/orgs/{org}/participants/{participant}"
REQ = "/orgs/{org}/requests"
RESET = Permission.RESET_PASSWORDS
MANAGE = Permission.MANAGE_PARTICIPANTS
ERASE = Permission.ERASE_PARTICIPANTS
RELEASE = Permission.MANAGE_DOMAINS
DOMAINS = Permission.MANAGE_DOMAINS
D = "/orgs/{org}/domains"
SSO = Permission.MANAGE_SSO
ORG_ROUTES = [
    OrgRoute("orgs.show", "GET", "/orgs/{org}/", None, 302),
    OrgRoute(
        "participants.index", "GET", "/orgs/{org}/participants/", Permission.VIEW_PARTICIPANTS
    ),
    OrgRoute("participants.show", "GET", P, Permission.VIEW_PARTICIPANTS),
    OrgRoute("control.send_reset_link", "POST", P + "/send-reset-link", RESET, 303),
    OrgRoute("control.require_password_reset", "POST", P + "/require-password-reset", RESET, 303),
    OrgRoute("control.revoke_sessions", "POST", P + "/revoke-sessions", RESET, 303),
    OrgRoute("control.unsuspend", "POST", P + "/unsuspend", MANAGE, 409),  # not suspended
    OrgRoute("control.restrict", "POST", P + "/restrict", MANAGE, 303),
    OrgRoute("control.unrestrict", "POST", P + "/unrestrict", MANAGE, 409),  # not restricted
    OrgRoute("control.deactivate", "POST", P + "/deactivate", MANAGE, 303),
    OrgRoute("control.reactivate", "POST", P + "/reactivate", MANAGE, 409),  # not deactivated
    OrgRoute("control.suspend", "GET", P + "/suspend", MANAGE),
    OrgRoute("control.suspend", "POST", P + "/suspend", MANAGE, 303, (("reason", "No-shows"),)),
    OrgRoute("control.change_email", "GET", P + "/email", MANAGE),
    OrgRoute(
        "control.change_email", "POST", P + "/email", MANAGE, 303, (("email", "new@x.example"),)
    ),
    OrgRoute("control.edit", "GET", P + "/edit", MANAGE),
    OrgRoute(
        "control.edit", "POST", P + "/edit", MANAGE, 303, (("name", "New Name"), ("role", "mentor"))
    ),
    OrgRoute("control.export", "GET", P + "/export.json", MANAGE),
    OrgRoute("control.erase", "GET", P + "/erase", ERASE),
    OrgRoute("control.erase", "POST", P + "/erase", ERASE, 303, (("confirmation", "{email}"),)),
    OrgRoute("control.remove_from_program", "POST", P + "/programs/{program}/remove", MANAGE, 303),
    OrgRoute(
        "control.bulk_preview",
        "POST",
        "/orgs/{org}/participants/bulk/restrict/preview",
        MANAGE,
        200,
        (("ids", "{participant}"),),
    ),
    OrgRoute(
        "control.bulk_apply",
        "POST",
        "/orgs/{org}/participants/bulk/restrict",
        MANAGE,
        200,
        (("ids", "{participant}"),),
    ),
    OrgRoute("requests.index", "GET", REQ + "/", MANAGE),
    OrgRoute("requests.approve_email", "POST", REQ + "/email/{email_request}/approve", MANAGE, 303),
    OrgRoute("requests.deny_email", "POST", REQ + "/email/{email_request}/deny", MANAGE, 303),
    OrgRoute(
        "requests.approve_release", "POST", REQ + "/release/{release_request}/approve", RELEASE, 303
    ),
    OrgRoute(
        "requests.deny_release", "POST", REQ + "/release/{release_request}/deny", RELEASE, 303
    ),
    OrgRoute("audit.index", "GET", "/orgs/{org}/audit", Permission.VIEW_AUDIT),
    OrgRoute("audit.export", "GET", "/orgs/{org}/audit/export.csv", Permission.VIEW_AUDIT),
    OrgRoute("domains.index", "GET", D + "/", DOMAINS),
    OrgRoute("domains.create", "POST", D + "/", DOMAINS, 303, (("domain", "added.example"),)),
    OrgRoute("domains.set_notice", "POST", D + "/notice", DOMAINS, 303, (("notice_days", "3"),)),
    OrgRoute("domains.show", "GET", D + "/{domain}", DOMAINS),
    OrgRoute("domains.check", "POST", D + "/{domain}/check", DOMAINS, 303),
    OrgRoute(
        "domains.update", "POST", D + "/{domain}/settings", DOMAINS, 303, (("auto_claim", "y"),)
    ),
    OrgRoute("domains.remove", "POST", D + "/{domain}/remove", DOMAINS, 303),
    OrgRoute("domains.claimable", "GET", D + "/{domain}/claimable", DOMAINS),
    OrgRoute(
        "domains.claim", "POST", D + "/{domain}/claims", DOMAINS, 200, (("ids", "{claimable}"),)
    ),
    OrgRoute("domains.claims_list", "GET", D + "/{domain}/claims", DOMAINS),
    OrgRoute(
        "domains.release", "POST", D + "/{domain}/claims/release", DOMAINS, 200, (("all", "1"),)
    ),
    OrgRoute("sso.show", "GET", "/orgs/{org}/sso", SSO),
    OrgRoute("sso.save", "POST", "/orgs/{org}/sso", SSO),  # no issuer: the form again
    OrgRoute("sso.discover", "POST", "/orgs/{org}/sso/discovery", SSO, 409),  # no connection
    OrgRoute("sso.remove", "POST", "/orgs/{org}/sso/remove", SSO, 409),  # no connection
    OrgRoute("sso.test", "GET", "/orgs/{org}/sso/test", SSO, 409),  # no connection
    OrgRoute("reports.index", "GET", "/orgs/{org}/reports", Permission.VIEW_REPORTS),
    OrgRoute("reports.quiet", "GET", "/orgs/{org}/reports/quiet", Permission.VIEW_REPORTS),
    OrgRoute("reports.impact", "GET", "/orgs/{org}/reports/impact", Permission.VIEW_REPORTS),
    OrgRoute(
        "reports.impact_export", "GET", "/orgs/{org}/reports/impact.csv", Permission.VIEW_REPORTS
    ),
    OrgRoute(
        "reports.change_threshold",
        "POST",
        "/orgs/{org}/reports/impact/threshold",
        Permission.MANAGE_REPORTS,
        303,
        (("threshold", "7"),),
    ),
    OrgRoute(
        "reports.export_activity",
        "GET",
        "/orgs/{org}/reports/activity.csv",
        Permission.VIEW_REPORTS,
    ),
    OrgRoute(
        "reports.export_activity",
        "GET",
        "/orgs/{org}/reports/activity.xlsx",
        Permission.VIEW_REPORTS,
    ),
    OrgRoute(
        "participants.export",
        "GET",
        "/orgs/{org}/participants/export.csv",
        Permission.VIEW_REPORTS,
    ),
    OrgRoute(
        "participants.export",
        "GET",
        "/orgs/{org}/participants/export.xlsx",
        Permission.VIEW_REPORTS,
    ),
    OrgRoute("participants.report", "GET", P + "/report", Permission.VIEW_REPORTS),
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
    "staff.domains",
    "staff.verify_domain",
    # Bearer tokens, not sessions: tests/test_api.py covers every one × scope × org.
    "api.list_participants",
    "api.show_participant",
    "api.create_participant",
    "api.edit_participant",
    "api.suspend",
    "api.unsuspend",
    "api.restrict",
    "api.unrestrict",
    "api.deactivate",
    "api.reactivate",
    "api.require_password_reset",
    "api.send_reset_link",
    "api.revoke_sessions",
    "api.export_participant",
    "api.list_programs",
    "api.list_audit",
    "api.list_domains",
    "api.add_domain",
    "api.verify_domain",
    "api.list_claimable",
    "api.claim_accounts",
    "api.report_summary",
    "api.ingest_events",
    "api.openapi",
    # SCIM: bearer tokens with the scope scim; tests/test_scim.py covers every one.
    *(
        f"scim.{endpoint}"
        for endpoint in (
            "service_provider_config",
            "resource_types",
            "resource_type",
            "schemas",
            "schema",
            "search",
            "list_users",
            "search_users",
            "create_user",
            "show_user",
            "replace_user",
            "patch_user",
            "delete_user",
            "list_groups",
            "search_groups",
            "create_group",
            "show_group",
            "replace_group",
            "patch_group",
            "delete_group",
            "bulk",
            "me",
        )
    ),
    "staff.outbox",
    "staff.outbox_message",
    # The staff twins of the SSO page, and the round trip: tests/test_sso.py.
    "sso.staff_show",
    "sso.staff_save",
    "sso.staff_discover",
    "sso.staff_remove",
    "sso.staff_test",
    "sso.login",
    "sso.participant_login",
    "sso.participant_start",
    "sso.callback",
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
def setting(make_org, make_admin, make_participant, dns):
    org, other = make_org(), make_org()
    admins = {role.value: make_admin(org, role.value) for role in Role}
    admins["foreign_owner"] = make_admin(other, "owner")
    admins["staff"] = make_admin(staff=True)
    participant = make_participant(org, managed=True)
    asker = make_participant(org, managed=True)
    return {
        "org": org,
        "participant": participant,
        "foreign_participant": make_participant(other, managed=True),
        "admins": admins,
        "email_request": control.request_email_change(asker, "asker.new@x.example"),
        "release_request": control.ask_release(asker, "please"),
        "domain": verified_domain(org, "access.example"),
        "claimable": make_participant(email="someone@access.example"),
    }


def verified_domain(org, name: str):
    domain = domains.add_domain(factories.ACTOR, org, name)
    domain.status = "verified"
    domain.verified_at = domain.created_at
    db.session.flush()
    return domain


def call(client, route: OrgRoute, org, participant, setting=None):
    values = {
        "org": org.slug,
        "participant": participant.id,
        "program": org.programs[0].id if getattr(org, "programs", None) else uuid.uuid4(),
        "email_request": setting["email_request"].id if setting else uuid.uuid4(),
        "release_request": setting["release_request"].id if setting else uuid.uuid4(),
        "email": participant.email,
        "domain": setting["domain"].domain if setting else "missing.example",
        "claimable": setting["claimable"].id if setting else uuid.uuid4(),
    }
    url = route.path.format(**values)
    if route.method == "GET":
        # Buffered: a streamed body (CSV exports) is read inside the request's context.
        return client.get(url, buffered=True)
    data = [(key, value.format(**values)) for key, value in route.data]
    data.append(("csrf_token", csrf_token(client)))
    return client.open(url, method=route.method, data=MultiDict(data))


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
    response = call(client, route, setting["org"], setting["participant"], setting)
    assert response.status_code == expected(route, actor), response.get_data(as_text=True)[:500]
    if actor == "anonymous":
        assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    "route",
    [r for r in ORG_ROUTES if "{participant}" in r.path + str(r.data)],
    ids=lambda r: f"{r.method} {r.endpoint}",
)
def test_another_orgs_participant_is_404_even_for_an_owner(client_for, setting, route):
    import sqlalchemy as sa

    from console.extensions import db
    from console.models import AuditEvent

    foreign = setting["foreign_participant"]
    version = foreign.session_version
    client = client_for(setting["admins"]["owner"])
    response = call(client, route, setting["org"], foreign, setting)
    assert response.status_code == 404
    db.session.refresh(foreign)
    assert foreign.session_version == version and foreign.status == "active"
    assert not db.session.scalar(
        sa.select(AuditEvent.id).where(
            AuditEvent.target_id == str(foreign.id), AuditEvent.org_id == setting["org"].id
        )
    )


@pytest.mark.parametrize("route", ORG_ROUTES, ids=lambda r: f"{r.method} {r.endpoint}")
def test_unknown_org_is_404_for_administrators_and_sign_in_for_anonymous(
    app, client_for, setting, route
):
    class Missing:
        slug = "no-such-org"

    owner = client_for(setting["admins"]["owner"])
    assert call(owner, route, Missing, setting["participant"], setting).status_code == 404
    anonymous = app.test_client()
    assert call(anonymous, route, Missing, setting["participant"], setting).status_code == 302


@pytest.mark.parametrize(
    "url", ["/staff/", "/staff/audit", "/staff/domains", "/staff/orgs/{org}/sso"]
)
def test_staff_pages_are_for_staff_only(app, client_for, setting, url):
    url = url.format(org=setting["org"].slug)
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


@pytest.mark.parametrize("kind", ["email", "release"])
@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_another_orgs_request_is_404(
    client_for, make_org, make_participant, setting, kind, decision
):
    other = make_org()
    asker = make_participant(other, managed=True)
    if kind == "email":
        foreign = control.request_email_change(asker, "elsewhere.new@x.example")
    else:
        foreign = control.ask_release(asker, None)
    client = client_for(setting["admins"]["owner"])
    url = f"/orgs/{setting['org'].slug}/requests/{kind}/{foreign.id}/{decision}"
    assert client.post(url, data={"csrf_token": csrf_token(client)}).status_code == 404


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
