"""Single sign-on against real OpenID Connect providers on 127.0.0.1.

Most tests use oidc-provider-mock (tests choose each subject's claims); the PKCE
and claim-placement tests use panva's oidc-provider, which enforces PKCE and
releases email and groups through UserInfo only; the ID token checks use a
provider that forges its tokens on purpose.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from console import encryption
from console.extensions import db
from console.models import Admin
from console.models import AdminIdentity
from console.models import AuditEvent
from console.models import OutboxMessage
from console.models import ParticipantIdentity
from console.models import SsoConnection
from console.permissions import Role
from console.services import sso
from tests.conftest import TEST_CONFIG
from tests.conftest import csrf_token
from tests.conftest import free_port
from tests.conftest import fresh
from tests.factories import ACTOR
from tests.factories import PASSWORD
from tests.identity_providers import query_of
from tests.test_access import verified_domain

BASE = TEST_CONFIG["BASE_URL"]
SECRET = "acme-client-secret-7f3a9"
MAPPING = [
    ["console-owners", "owner"],
    ["console-admins", "admin"],
    ["CN=Console Support,OU=Groups,DC=acme,DC=example", "support"],
]


def connect(org, issuer: str, **settings):
    """Give ``org`` a connection to ``issuer`` (discovered over HTTP, as the page does)."""
    values = {
        "issuer": issuer,
        "client_id": f"console-{org.slug}",
        "client_secret": SECRET,
        "role_mapping": MAPPING,
        **settings,
    }
    connection = sso.save_connection(ACTOR, org, sso.ConnectionSettings(**values))
    db.session.flush()
    return connection


@pytest.fixture
def acme(make_org, make_admin, oidc_provider):
    org = make_org(name="Acme Bank")
    domain = verified_domain(org, "acme.example")
    owner = make_admin(org, "owner", email="olivia@acme.example", name="Olivia Owner")
    connection = connect(org, oidc_provider.issuer)
    return SimpleNamespace(org=org, domain=domain, owner=owner, connection=connection)


def subject() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def person(idp, email: str, groups=(), verified=True, **claims) -> str:
    """Create a subject at the provider with these claims; return its ``sub``."""
    sub = subject()
    idp.set_user(
        sub,
        email=email,
        email_verified=verified,
        groups=list(groups),
        name=claims.pop("name", "Sam Person"),
        **claims,
    )
    return sub


def through_idp(client, idp, sub: str, start: str):
    """Start at ``start``, sign ``sub`` in at the provider, return the console's answer."""
    response = client.get(start)
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    back = idp.sign_in(response.headers["Location"], sub)
    assert back.startswith(BASE + "/sso/"), back
    return client.get(back.removeprefix(BASE))


def sign_in(client, idp, sub: str, org):
    return through_idp(client, idp, sub, f"/sso/{org.slug}/login")


def text(response) -> str:
    return response.get_data(as_text=True)


def events(action: str, org=None) -> list[AuditEvent]:
    query = sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    if org is not None:
        query = query.where(AuditEvent.org_id == org.id)
    return list(db.session.scalars(query))


def signed_in_admin(client):
    """Return the administrator the client's session belongs to, or None."""
    response = client.get("/orgs/")
    return response.status_code == 200


def admin_by_email(email: str) -> Admin | None:
    return db.session.scalar(sa.select(Admin).where(Admin.email == email))


# -- pure functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "default", "expected"),
    [
        (["console-admins"], None, Role.ADMIN),
        (["console-admins", "console-owners"], None, Role.OWNER),
        (["CN=Console Support,OU=Groups,DC=acme,DC=example"], None, Role.SUPPORT),
        (["marketing"], None, None),
        ([], None, None),
        (["marketing"], "analyst", Role.ANALYST),
        (["console-admins"], "analyst", Role.ADMIN),
        (["Console-Admins"], None, None),  # group names are compared exactly
    ],
)
def test_role_for_gives_the_highest_mapped_role_else_the_default(groups, default, expected):
    assert sso.role_for(groups, MAPPING, default) == expected


def test_role_mapping_reads_lines_and_names_the_bad_one():
    text_ = "# owners first\nconsole-owners = owner\n\nCN=Support,DC=acme,DC=example=support\n"
    assert sso.parse_role_mapping(text_) == [
        ["console-owners", "owner"],
        ["CN=Support,DC=acme,DC=example", "support"],
    ]
    assert sso.parse_role_mapping(sso.format_role_mapping(MAPPING)) == MAPPING
    for bad, words in [
        ("a = owner\nb = boss", "Line 2: 'boss' is not a role"),
        ("just-a-group", "Line 1: write a group"),
        ("= owner", "Line 1: write a group"),
        ("a = owner\na = admin", "Line 2: a is mapped twice"),
    ]:
        with pytest.raises(sso.MappingError, match=re.escape(words)):
            sso.parse_role_mapping(bad)


def test_claim_values_reads_lists_strings_and_nested_paths():
    claims = {
        "groups": ["a", "b", 3, None, {"x": 1}],
        "role": "single",
        "realm_access": {"roles": ["r1", "r2"]},
        "dotted.name": ["literal"],
    }
    assert sso.claim_values(claims, "groups") == ["a", "b", "3"]
    assert sso.claim_values(claims, "role") == ["single"]
    assert sso.claim_values(claims, "realm_access.roles") == ["r1", "r2"]
    assert sso.claim_values(claims, "dotted.name") == ["literal"]
    assert sso.claim_values(claims, "missing") == []
    assert sso.claim_values(claims, "realm_access.missing") == []
    assert sso.claim_values({"groups": {"a": 1}}, "groups") == []


@pytest.mark.parametrize(
    ("value", "verified"),
    [
        (True, True),
        ("true", True),
        ("TRUE", True),
        (False, False),
        ("false", False),
        (None, False),
        (1, False),
        ("yes", False),
    ],
)
def test_only_a_true_email_verified_counts(value, verified):
    assert sso.email_is_verified(value) is verified


def test_read_claims_normalises_the_email_and_reads_groups():
    claims = {
        "sub": "abc",
        "email": " Sam@ACME.example ",
        "email_verified": True,
        "name": " Sam  P ",
    }
    idp = sso.read_claims("https://idp", {**claims, "teams": ["x"]}, "teams")
    assert (idp.subject, idp.email, idp.email_verified, idp.name, idp.groups) == (
        "abc",
        "sam@acme.example",
        True,
        "Sam P",
        ("x",),
    )
    assert sso.read_claims("https://idp", {"sub": "abc", "email": "no-at"}, "groups").email is None


def test_merge_claims_prefers_the_signed_id_token_and_refuses_another_subject():
    merged = sso.merge_claims(
        {"sub": "a", "email": "signed@acme.example"},
        {"sub": "a", "email": "other@acme.example", "groups": ["g"]},
    )
    assert merged == {"sub": "a", "email": "signed@acme.example", "groups": ["g"]}
    assert sso.merge_claims({"sub": "a"}, {}) == {"sub": "a"}
    with pytest.raises(sso.SignInFailure) as refused:
        sso.merge_claims({"sub": "a"}, {"sub": "b", "email": "x@acme.example"})
    assert refused.value.reason == "id_token"


GOOD = {
    "issuer": "https://idp.example/realms/acme",
    "authorization_endpoint": "https://idp.example/auth",
    "token_endpoint": "https://idp.example/token",
    "jwks_uri": "https://idp.example/jwks",
    "response_types_supported": ["code", "id_token"],
    "code_challenge_methods_supported": ["plain", "S256"],
}


@pytest.mark.parametrize(
    ("change", "kind", "words"),
    [
        ({"jwks_uri": None}, "missing_fields", "lacks jwks_uri"),
        ({"issuer": "https://evil.example"}, "issuer_mismatch", "names the issuer https://evil"),
        ({"response_types_supported": ["id_token"]}, "no_code_flow", "authorization code"),
        ({"code_challenge_methods_supported": ["plain"]}, "no_pkce", "S256"),
    ],
)
def test_check_discovery_explains_what_is_wrong(change, kind, words):
    document = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    with pytest.raises(sso.DiscoveryError) as error:
        sso.check_discovery(GOOD["issuer"], document)
    assert error.value.kind == kind and words in error.value.message


def test_check_discovery_forgives_a_trailing_slash_and_wants_https_in_production():
    assert sso.check_discovery(GOOD["issuer"] + "/", GOOD) == GOOD["issuer"]
    with pytest.raises(sso.DiscoveryError, match="not a JSON object"):
        sso.check_discovery(GOOD["issuer"], ["a", "list"])
    plain = {**GOOD, "token_endpoint": "http://idp.example/token"}
    assert sso.check_discovery(GOOD["issuer"], plain) == GOOD["issuer"]
    with pytest.raises(sso.DiscoveryError, match="token_endpoint"):
        sso.check_discovery(GOOD["issuer"], plain, production=True)


def test_token_endpoint_authentication_is_basic_unless_only_post_is_offered():
    assert sso.token_auth_method(None) is None
    assert (
        sso.token_auth_method({"token_endpoint_auth_methods_supported": ["client_secret_basic"]})
        is None
    )
    assert (
        sso.token_auth_method({"token_endpoint_auth_methods_supported": ["client_secret_post"]})
        == "client_secret_post"
    )


# -- first sign-in, roles, identities --------------------------------------------------------


def test_first_sign_in_creates_the_administrator_just_in_time_with_the_mapped_role(
    client, acme, oidc_provider
):
    sub = person(oidc_provider, "sam@acme.example", ["console-admins", "marketing"], name="Sam Lee")
    with client.session_transaction() as before:
        before["planted"] = "by an attacker"
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 303, text(response)
    assert response.headers["Location"] == f"/orgs/{acme.org.slug}/"
    admin = admin_by_email("sam@acme.example")
    assert admin is not None and admin.name == "Sam Lee" and admin.password_hash is None
    assert admin.role_in(acme.org).role == "admin"
    identity = db.session.scalar(sa.select(AdminIdentity).where(AdminIdentity.admin_id == admin.id))
    assert (identity.issuer, identity.subject) == (acme.connection.issuer, sub)
    with client.session_transaction() as after:
        assert "planted" not in after and after["sid"]  # a fresh session: no fixation
        assert not [key for key in after if key.startswith("_state_") or key == "sso_flow"]
    assert signed_in_admin(client)
    assert [e.details["method"] for e in events("admin.signed_in")] == ["sso"]
    assert events("sso.signed_in", acme.org)[0].details["role"] == "admin"
    assert events("sso.identity_linked", acme.org)[0].details["created"] is True
    assert events("admin.added", acme.org)[-1].details["via"] == "sso"


def test_a_concurrent_first_sign_in_of_the_same_person_signs_in_the_loser_too(
    app, client, acme, oidc_provider, monkeypatch
):
    # Two first sign-ins of one person at the same moment: both decide "create",
    # the first commits the administrator and identity, and the second's insert
    # then hits the unique keys. It must end signed in as that administrator,
    # not on an error page and not as a second administrator.
    sub = person(oidc_provider, "kim@acme.example", ["console-admins"], name="Kim Park")
    assert sign_in(app.test_client(), oidc_provider, sub, acme.org).status_code == 303
    kim = admin_by_email("kim@acme.example")
    decide = sso.decide_admin
    stale = []

    def as_if_nobody_existed_yet(connection, claims):
        decision = decide(connection, claims)
        if not stale:  # the first decision, made before the other request committed
            stale.append(decision)
            return dataclasses.replace(decision, admin=None, identity=None, action="create")
        return decision

    monkeypatch.setattr(sso, "decide_admin", as_if_nobody_existed_yet)
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 303, text(response)
    assert stale, "the race was not staged"
    assert signed_in_admin(client)
    assert db.session.scalars(sa.select(Admin).where(Admin.email == "kim@acme.example")).all() == [
        kim
    ]
    assert (
        len(db.session.scalars(sa.select(AdminIdentity).where(AdminIdentity.subject == sub)).all())
        == 1
    )


def test_the_authorization_request_uses_pkce_state_and_nonce(client, acme):
    response = client.get(f"/sso/{acme.org.slug}/login?login_hint=sam@acme.example")
    url = response.headers["Location"]
    assert url.startswith(acme.connection.issuer + "/oauth2/authorize?")
    asked = query_of(url)
    assert asked["response_type"] == "code"
    assert asked["client_id"] == acme.connection.client_id
    assert asked["redirect_uri"] == f"{BASE}/sso/{acme.org.slug}/callback"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 20 and len(asked["nonce"]) >= 20
    assert asked["scope"].split() == ["openid", "email", "profile"]
    assert asked["login_hint"] == "sam@acme.example"
    with client.session_transaction() as session:
        assert session["sso_flow"]["state"] == asked["state"]
        stored = session[f"_state_sso-{acme.org.id.hex}_{asked['state']}"]["data"]
        assert stored["nonce"] == asked["nonce"] and len(stored["code_verifier"]) >= 43


def test_roles_follow_the_groups_at_every_sign_in(app, acme, oidc_provider):
    sub = person(oidc_provider, "rita@acme.example", ["console-admins"])
    assert sign_in(app.test_client(), oidc_provider, sub, acme.org).status_code == 303
    rita = admin_by_email("rita@acme.example")
    assert rita.role_in(acme.org).role == "admin"

    oidc_provider.set_user(
        sub, email="rita@acme.example", email_verified=True, groups=["console-owners"]
    )
    assert sign_in(app.test_client(), oidc_provider, sub, acme.org).status_code == 303
    assert fresh(rita).role_in(acme.org).role == "owner"
    assert events("admin.role_changed", acme.org)[-1].details["role"] == {
        "before": "admin",
        "after": "owner",
    }

    # Out of every mapped group, and no default role: the role goes, and so does the sign-in.
    oidc_provider.set_user(sub, email="rita@acme.example", email_verified=True, groups=["sales"])
    client = app.test_client()
    refused = sign_in(client, oidc_provider, sub, acme.org)
    assert refused.status_code == 403
    assert "no group that gives a role" in text(refused) and "was removed" in text(refused)
    db.session.expire_all()
    assert fresh(rita).role_in(acme.org) is None
    assert events("admin.role_removed", acme.org)[-1].details["role"] == "owner"
    assert not signed_in_admin(client)

    # With a default role, someone in no mapped group falls back to it.
    acme.connection.default_role = "analyst"
    db.session.flush()
    assert sign_in(app.test_client(), oidc_provider, sub, acme.org).status_code == 303
    assert fresh(rita).role_in(acme.org).role == "analyst"


def test_nobody_is_created_when_no_group_maps_and_there_is_no_default(client, acme, oidc_provider):
    sub = person(oidc_provider, "nora@acme.example", ["sales"])
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 403 and "does not let people in without one" in text(response)
    assert admin_by_email("nora@acme.example") is None
    assert events("sso.sign_in_failed", acme.org)[-1].details["reason"] == "no_role"


def test_an_email_change_at_the_idp_keeps_the_same_administrator(app, acme, oidc_provider):
    sub = person(oidc_provider, "kim@acme.example", ["console-admins"])
    assert sign_in(app.test_client(), oidc_provider, sub, acme.org).status_code == 303
    kim = admin_by_email("kim@acme.example")
    oidc_provider.set_user(
        sub, email="kim.lee@acme.example", email_verified=True, groups=["console-admins"]
    )
    assert sign_in(app.test_client(), oidc_provider, sub, acme.org).status_code == 303
    db.session.expire_all()
    assert admin_by_email("kim@acme.example") is None
    assert admin_by_email("kim.lee@acme.example").id == kim.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminIdentity)) == 1
    assert events("sso.email_updated", acme.org)[-1].target_id == str(kim.id)


def test_another_subject_with_an_administrators_email_is_refused(app, acme, oidc_provider):
    first = person(oidc_provider, "lee@acme.example", ["console-admins"])
    assert sign_in(app.test_client(), oidc_provider, first, acme.org).status_code == 303
    lee = admin_by_email("lee@acme.example")
    impostor = person(oidc_provider, "lee@acme.example", ["console-owners"])
    client = app.test_client()
    response = sign_in(client, oidc_provider, impostor, acme.org)
    assert response.status_code == 403 and "different account" in text(response)
    assert not signed_in_admin(client)
    assert fresh(lee).role_in(acme.org).role == "admin"
    assert events("sso.sign_in_failed", acme.org)[-1].details["reason"] == "email_taken"


def test_an_administrator_made_with_a_password_is_linked_on_first_sign_in(
    client, acme, oidc_provider
):
    sub = person(oidc_provider, acme.owner.email, ["console-owners"])
    assert sign_in(client, oidc_provider, sub, acme.org).status_code == 303
    identity = db.session.scalar(sa.select(AdminIdentity).where(AdminIdentity.subject == sub))
    assert identity.admin_id == acme.owner.id
    assert events("sso.identity_linked", acme.org)[-1].details["created"] is False


def test_an_administrator_of_another_org_is_not_taken_over(
    client, acme, oidc_provider, make_org, make_admin
):
    elsewhere = make_admin(make_org(), "owner", email="ola@acme.example")
    sub = person(oidc_provider, "ola@acme.example", ["console-owners"])
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 403 and "another organization" in text(response)
    assert fresh(elsewhere).role_in(acme.org) is None
    assert not db.session.scalar(sa.select(AdminIdentity.id))


# -- what the console refuses to trust --------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason", "words"),
    [
        ({"email": "eve@acme.example", "verified": False}, "email_unverified", "has not verified"),
        (
            {"email": "eve@acme.example", "verified": "false"},
            "email_unverified",
            "has not verified",
        ),
        ({"email": "eve@elsewhere.example"}, "foreign_domain", "not at a domain that Acme Bank"),
        ({"email": "eve@sub.acme.example"}, "foreign_domain", "acme.example"),
    ],
)
def test_untrusted_emails_are_refused_with_no_session(
    client, acme, oidc_provider, claims, reason, words
):
    sub = person(
        oidc_provider, claims["email"], ["console-owners"], verified=claims.get("verified", True)
    )
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 403
    assert words in text(response) and 'data-reason="' + reason + '"' in text(response)
    assert "Nobody was signed in" in text(response)
    assert admin_by_email(claims["email"]) is None
    assert not signed_in_admin(client)
    failed = events("sso.sign_in_failed", acme.org)[-1]
    assert failed.details["reason"] == reason and failed.details["subject"] == sub
    assert failed.details["email"].startswith("e***@")


def test_an_email_at_a_lapsed_domain_is_refused(client, acme, oidc_provider):
    acme.domain.status = "lapsed"
    db.session.flush()
    sub = person(oidc_provider, "sam@acme.example", ["console-owners"])
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 403 and "not at a domain that Acme Bank" in text(response)
    assert admin_by_email("sam@acme.example") is None


def test_an_email_at_another_orgs_verified_domain_is_refused(client, acme, oidc_provider, make_org):
    verified_domain(make_org(), "rival.example")
    sub = person(oidc_provider, "spy@rival.example", ["console-owners"])
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 403 and 'data-reason="foreign_domain"' in text(response)


def test_a_tampered_state_is_refused(client, acme, oidc_provider):
    sub = person(oidc_provider, "sam@acme.example", ["console-owners"])
    response = client.get(f"/sso/{acme.org.slug}/login")
    back = oidc_provider.sign_in(response.headers["Location"], sub)
    tampered = re.sub(r"state=[^&]+", "state=forged", back).removeprefix(BASE)
    refused = client.get(tampered)
    assert refused.status_code == 400 and 'data-reason="state"' in text(refused)
    assert "Start again from the sign-in page" in text(refused)
    assert admin_by_email("sam@acme.example") is None and not signed_in_admin(client)
    assert events("sso.sign_in_failed", acme.org)[-1].details["reason"] == "state"
    # The genuine answer cannot be used afterwards either: the attempt was forgotten.
    assert client.get(back.removeprefix(BASE)).status_code == 400


def test_a_callback_this_browser_never_started_is_refused(app, acme, oidc_provider):
    sub = person(oidc_provider, "sam@acme.example", ["console-owners"])
    victim = app.test_client()
    started = victim.get(f"/sso/{acme.org.slug}/login")
    back = oidc_provider.sign_in(started.headers["Location"], sub)
    attacker = app.test_client()
    response = attacker.get(back.removeprefix(BASE))
    assert response.status_code == 400 and 'data-reason="state"' in text(response)
    assert admin_by_email("sam@acme.example") is None


def test_a_callback_carried_to_another_orgs_address_is_refused(
    client, acme, oidc_provider, make_org
):
    # A round trip started for acme, answered at rival's callback: rival's
    # connection to the same IdP must not sign anyone in from acme's flow.
    rival = make_org(name="Rival Bank")
    verified_domain(rival, "rival.example")
    connect(rival, oidc_provider.issuer)
    sub = person(oidc_provider, "sam@rival.example", ["console-owners"])
    started = client.get(f"/sso/{acme.org.slug}/login")
    back = oidc_provider.sign_in(started.headers["Location"], sub)
    carried = back.removeprefix(BASE).replace(f"/sso/{acme.org.slug}/", f"/sso/{rival.slug}/", 1)
    assert carried.startswith(f"/sso/{rival.slug}/callback?")
    response = client.get(carried)
    assert response.status_code == 400 and 'data-reason="state"' in text(response)
    assert admin_by_email("sam@rival.example") is None
    assert db.session.scalar(sa.select(AdminIdentity).where(AdminIdentity.subject == sub)) is None
    assert not signed_in_admin(client)


def test_an_error_from_the_idp_is_explained(client, acme, oidc_provider):
    response = client.get(f"/sso/{acme.org.slug}/login")
    back = oidc_provider.deny(response.headers["Location"])
    refused = client.get(back.removeprefix(BASE))
    assert refused.status_code == 400 and "access_denied" in text(refused)
    assert "did not sign you in" in text(refused)
    assert events("sso.sign_in_failed", acme.org)[-1].details["reason"] == "idp_error"


def test_staff_never_sign_in_through_an_orgs_sso(client, acme, oidc_provider, make_admin):
    staff = make_admin(staff=True, email="ops@acme.example")
    token = csrf_token(client)
    step = client.post("/login", data={"email": staff.email, "csrf_token": token})
    assert step.status_code == 200 and 'name="password"' in text(step)  # no detour to the IdP
    sub = person(oidc_provider, staff.email, ["console-owners"])
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 403 and "Platform staff sign in with their password" in text(
        response
    )
    assert not signed_in_admin(client)


def test_a_disabled_administrator_is_refused(client, acme, oidc_provider):
    acme.owner.status = "disabled"
    db.session.flush()
    sub = person(oidc_provider, acme.owner.email, ["console-owners"])
    response = sign_in(client, oidc_provider, sub, acme.org)
    assert response.status_code == 403 and "disabled" in text(response)


# -- ID tokens the console must not accept -------------------------------------------------------


@pytest.fixture
def forged(make_org, forging_provider):
    org = make_org(name="Forge Co")
    verified_domain(org, "forge.example")
    connect(org, forging_provider.issuer, default_role="analyst")
    forging_provider.defect = None
    forging_provider.claims = {
        "sub": subject(),
        "email": "fay@forge.example",
        "email_verified": True,
    }
    return org


def forged_sign_in(client, provider, org):
    started = client.get(f"/sso/{org.slug}/login")
    assert started.status_code == 303
    return client.get(provider.follow(started.headers["Location"]).removeprefix(BASE))


def test_a_correct_id_token_from_the_forging_provider_is_accepted(client, forged, forging_provider):
    response = forged_sign_in(client, forging_provider, forged)
    assert response.status_code == 303, text(response)
    assert admin_by_email("fay@forge.example").role_in(forged).role == "analyst"


@pytest.mark.parametrize(
    ("defect", "words"),
    [
        ("other_key", "signature"),
        ("audience", "aud claim"),
        ("issuer", "iss claim"),
        ("expired", "expired"),
        ("nonce", "nonce claim"),
        ("none_alg", "could not be trusted"),
    ],
)
def test_an_id_token_with_a_bad_signature_audience_issuer_expiry_or_nonce_is_refused(
    client, forged, forging_provider, defect, words
):
    forging_provider.defect = defect
    response = forged_sign_in(client, forging_provider, forged)
    assert response.status_code == 502, text(response)
    assert 'data-reason="id_token"' in text(response) and words in text(response)
    assert admin_by_email("fay@forge.example") is None and not signed_in_admin(client)
    assert events("sso.sign_in_failed", forged)[-1].details["reason"] == "id_token"


# -- the connection page ---------------------------------------------------------------------


def form_data(client, url: str, **fields) -> dict:
    data = {
        "csrf_token": csrf_token(client, url),
        "issuer": "",
        "client_id": "console",
        "client_secret": "",
        "scopes": "openid email profile",
        "groups_claim": "groups",
        "role_mapping": "console-owners = owner",
        "default_role": "",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def test_an_owner_sets_up_sso_and_the_secret_is_stored_encrypted(
    client_for, make_org, make_admin, oidc_provider
):
    org = make_org(name="Beta Co")
    owner = make_admin(org, "owner")
    client = client_for(owner)
    url = f"/orgs/{org.slug}/sso"
    page = client.get(url)
    assert page.status_code == 200 and f"{BASE}/sso/{org.slug}/callback" in text(page)
    data = form_data(
        client,
        url,
        issuer=oidc_provider.issuer,
        client_secret="beta-secret-plaintext",
        role_mapping="console-owners = owner\nconsole-admins = admin",
        default_role="analyst",
    )
    response = client.post(url, data=data)
    assert response.status_code == 303, text(response)
    table = SsoConnection.__table__
    row = db.session.execute(sa.select(table).where(table.c.org_id == org.id)).mappings().one()
    assert not any("beta-secret-plaintext" in str(value) for value in row.values())
    connection = db.session.scalar(sa.select(SsoConnection).where(SsoConnection.org_id == org.id))
    assert (
        encryption.decrypt(sso.SECRET_PURPOSE, connection.client_secret) == "beta-secret-plaintext"
    )
    assert connection.role_mapping == [["console-owners", "owner"], ["console-admins", "admin"]]
    assert (
        connection.default_role == "analyst"
        and connection.discovery["issuer"] == oidc_provider.issuer
    )
    shown = text(client.get(url))
    assert "beta-secret-plaintext" not in shown
    assert oidc_provider.issuer + "/oauth2/authorize" in shown and "Enforced" not in shown
    created = events("sso.connection_created", org)[-1]
    assert created.details["client_secret"] == "[redacted]"
    assert "beta-secret-plaintext" not in str(created.details)


def test_an_empty_secret_keeps_the_stored_one_and_a_new_one_replaces_it(client_for, acme):
    client = client_for(acme.owner)
    url = f"/orgs/{acme.org.slug}/sso"
    data = form_data(client, url, issuer=acme.connection.issuer, client_id="renamed")
    assert client.post(url, data=data).status_code == 303
    fresh(acme.connection)
    assert acme.connection.client_id == "renamed" and sso.client_secret(acme.connection) == SECRET
    data = form_data(client, url, issuer=acme.connection.issuer, client_secret="rotated-secret")
    assert client.post(url, data=data).status_code == 303
    assert sso.client_secret(fresh(acme.connection)) == "rotated-secret"


def test_a_new_connection_needs_a_secret_and_sound_settings(
    client_for, make_org, make_admin, oidc_provider
):
    org = make_org()
    client = client_for(make_admin(org, "owner"))
    url = f"/orgs/{org.slug}/sso"
    cases = [
        ({"issuer": oidc_provider.issuer}, "Enter the client secret"),
        ({"client_secret": "s", "issuer": "not a url"}, "must be a URL"),
        (
            {"client_secret": "s", "issuer": oidc_provider.issuer, "scopes": "email"},
            "must include openid",
        ),
        (
            {"client_secret": "s", "issuer": oidc_provider.issuer, "role_mapping": "a = boss"},
            "Line 1",
        ),
        (
            {"client_secret": "s", "issuer": oidc_provider.issuer, "enforce_admins": "y"},
            "break-glass",
        ),
    ]
    for fields, words in cases:
        response = client.post(url, data=form_data(client, url, **fields))
        assert response.status_code == 200 and words in text(response), (
            fields,
            text(response)[-2000:],
        )
        assert 'aria-invalid="true"' in text(response) or "errors" in text(response)
    assert not db.session.scalar(sa.select(SsoConnection.id).where(SsoConnection.org_id == org.id))


@pytest.fixture(scope="module")
def broken_issuers():
    """Issuers that answer discovery wrongly, each in its own way."""
    from flask import Flask
    from flask import jsonify

    from tests.identity_providers import serve

    app = Flask("broken_issuers")
    base = {}

    @app.get("/html/.well-known/openid-configuration")
    def html():
        return "<html><body>Welcome to our portal</body></html>"

    @app.get("/missing/.well-known/openid-configuration")
    def missing():
        return jsonify(issuer=base["url"] + "/missing", authorization_endpoint=base["url"] + "/a")

    @app.get("/mismatch/.well-known/openid-configuration")
    def mismatch():
        return jsonify({**GOOD, "issuer": "https://someone-else.example"})

    with serve(app) as url:
        base["url"] = url
        yield url


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/html", "did not answer JSON (it sent text/html"),
        ("/missing", "lacks token_endpoint, jwks_uri"),
        ("/mismatch", "names the issuer https://someone-else.example"),
        ("/nothing", "answered HTTP 404"),
    ],
)
def test_discovery_errors_are_explained_on_the_page(
    client_for, make_org, make_admin, broken_issuers, path, words
):
    org = make_org()
    client = client_for(make_admin(org, "owner"))
    url = f"/orgs/{org.slug}/sso"
    data = form_data(client, url, issuer=broken_issuers + path, client_secret="s")
    response = client.post(url, data=data)
    assert response.status_code == 200 and words in text(response)
    assert "/.well-known/openid-configuration" in text(response) or path == "/mismatch"


def test_an_unreachable_issuer_is_explained(client_for, make_org, make_admin):
    org = make_org()
    client = client_for(make_admin(org, "owner"))
    url = f"/orgs/{org.slug}/sso"
    dead = f"http://127.0.0.1:{free_port()}"
    response = client.post(url, data=form_data(client, url, issuer=dead, client_secret="s"))
    assert response.status_code == 200
    assert f"Could not reach {dead}/.well-known/openid-configuration" in text(response)
    assert "the connection failed" in text(response)


def test_fetching_discovery_again_and_removing_the_connection(client_for, acme, oidc_provider):
    client = client_for(acme.owner)
    url = f"/orgs/{acme.org.slug}/sso"
    fetched = client.post(url + "/discovery", data={"csrf_token": csrf_token(client, url)})
    assert fetched.status_code == 303
    assert "fetched again" in text(client.get(url))
    acme.connection.issuer = f"http://127.0.0.1:{free_port()}"
    db.session.flush()
    client.post(url + "/discovery", data={"csrf_token": csrf_token(client, url)})
    assert "Could not reach" in text(client.get(url))
    assert [e.details["result"] for e in events("sso.discovery_checked", acme.org)] == [
        "ok",
        "unreachable",
    ]
    removed = client.post(url + "/remove", data={"csrf_token": csrf_token(client, url)})
    assert removed.status_code == 303
    assert not db.session.scalar(
        sa.select(SsoConnection.id).where(SsoConnection.org_id == acme.org.id)
    )
    assert "Not set up" in text(client.get(url))
    assert events("sso.connection_removed", acme.org)


def test_staff_see_and_set_an_orgs_sso_from_their_own_page(client_for, acme, make_admin):
    staff = client_for(make_admin(staff=True))
    url = f"/staff/orgs/{acme.org.slug}/sso"
    page = staff.get(url)
    assert page.status_code == 200 and acme.connection.issuer in text(page)
    assert f'action="{url}"' in text(page) and f"{url}/test" in text(page)
    data = form_data(staff, url, issuer=acme.connection.issuer, default_role="support")
    response = staff.post(url, data=data)
    assert response.status_code == 303 and response.headers["Location"] == url
    assert fresh(acme.connection).default_role == "support"
    assert events("sso.connection_changed", acme.org)[-1].actor_type == "staff"
    assert staff.get("/staff/orgs/no-such-org/sso").status_code == 404
    assert "/staff/orgs/" + acme.org.slug + "/sso" in text(staff.get("/staff/"))


def test_the_sso_page_is_in_the_owners_navigation_only(client_for, acme, make_admin):
    assert f"/orgs/{acme.org.slug}/sso" in text(
        client_for(acme.owner).get(f"/orgs/{acme.org.slug}/sso")
    )
    admin = make_admin(acme.org, "admin")
    page = text(client_for(admin).get(f"/orgs/{acme.org.slug}/participants/"))
    assert f"/orgs/{acme.org.slug}/sso" not in page


# -- the email step -----------------------------------------------------------------------------


def email_step(client, email: str, next_url: str | None = None):
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "csrf_token": csrf_token(client)})


def test_the_email_step_sends_an_sso_domain_to_its_idp_by_a_get_navigation(client, acme):
    response = email_step(client, "sam@acme.example", "/orgs/")
    assert response.status_code == 200 and 'name="password"' not in text(response)
    match = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', text(response))
    target = match.group(1).replace("&amp;", "&")
    assert urlsplit(target).path == f"/sso/{acme.org.slug}/login"
    assert query_of(target) == {"login_hint": "sam@acme.example", "next": "/orgs/"}
    # The page's own policy still allows forms to post only here.
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]
    started = client.get(target)
    assert started.status_code == 303 and started.headers["Location"].startswith(
        acme.connection.issuer
    )


def test_other_addresses_get_the_password_field(client, acme):
    response = email_step(client, "someone@elsewhere.example")
    assert response.status_code == 200 and 'name="password"' in text(response)


def test_a_sign_in_keeps_a_local_next_and_drops_an_offsite_one(app, acme, oidc_provider):
    sub = person(oidc_provider, "sam@acme.example", ["console-admins"])
    client = app.test_client()
    response = through_idp(client, oidc_provider, sub, f"/sso/{acme.org.slug}/login?next=/orgs/")
    assert response.headers["Location"] == "/orgs/"
    client = app.test_client()
    evil = f"/sso/{acme.org.slug}/login?next=//evil.example/"
    response = through_idp(client, oidc_provider, sub, evil)
    assert response.headers["Location"] == f"/orgs/{acme.org.slug}/"


def test_the_direct_link_needs_an_org_with_a_connection(client, make_org):
    assert client.get("/sso/no-such-org/login").status_code == 404
    plain = make_org()
    response = client.get(f"/sso/{plain.slug}/login")
    assert response.status_code == 404 and "does not use single sign-on" in text(response)


def test_changed_settings_take_effect_on_the_next_sign_in(client, acme, oidc_provider):
    first = query_of(client.get(f"/sso/{acme.org.slug}/login").headers["Location"])
    assert first["client_id"] == acme.connection.client_id
    connect(acme.org, oidc_provider.issuer, client_id="console-v2", scopes="openid email groups")
    second = query_of(client.get(f"/sso/{acme.org.slug}/login").headers["Location"])
    assert second["client_id"] == "console-v2" and second["scope"] == "openid email groups"


# -- enforcement, break-glass and an IdP that is down ---------------------------------------------


@pytest.fixture
def enforced(acme, make_admin):
    backup = make_admin(acme.org, "owner", email="bea@acme.example", name="Bea Backup")
    other_owner = make_admin(acme.org, "owner", email="otto@elsewhere.example", name="Otto")
    support = make_admin(acme.org, "support", email="sue@elsewhere.example")
    sso.save_connection(
        ACTOR,
        acme.org,
        sso.ConnectionSettings(
            issuer=acme.connection.issuer,
            client_id=acme.connection.client_id,
            enforce_admins=True,
            break_glass=[backup.id],
            keep_default_role=True,
        ),
    )
    return SimpleNamespace(**vars(acme), backup=backup, other_owner=other_owner, support=support)


def password_post(client, email: str, password: str = PASSWORD):
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)}
    )


def test_enforced_sso_hides_the_password_and_refuses_a_crafted_password_post(client, enforced):
    step = email_step(client, enforced.support.email)
    assert step.status_code == 200 and 'name="password"' not in text(step)
    assert "requires its administrators to sign in through its identity provider" in text(step)
    assert f"/sso/{enforced.org.slug}/login" in text(step)
    for password in (PASSWORD, "wrong password entirely"):
        crafted = password_post(client, enforced.support.email, password)
        assert crafted.status_code == 200 and 'id="sso-required"' in text(crafted)
        assert not signed_in_admin(client)
    refused = events("admin.sign_in_failed")
    assert [e.details["reason"] for e in refused[-2:]] == ["sso_required", "sso_required"]
    # An owner who is not break-glass is refused too; staff are never subject to it.
    assert 'id="sso-required"' in text(password_post(client, enforced.other_owner.email))


def test_when_the_idp_is_down_the_error_is_clear_and_break_glass_still_gets_in(
    app, enforced, mailbox
):
    enforced.connection.issuer = f"http://127.0.0.1:{free_port()}"
    db.session.flush()
    client = app.test_client()
    step = email_step(client, "sam@acme.example")
    target = re.search(r'content="0;url=([^"]+)"', text(step)).group(1).replace("&amp;", "&")
    down = client.get(target)
    assert down.status_code == 502 and 'data-reason="unreachable"' in text(down)
    assert "could not reach Acme Bank" in text(down) and "break-glass" in text(down)
    assert 'href="/login?method=password"' in text(down)
    assert events("sso.sign_in_failed", enforced.org)[-1].details["reason"] == "unreachable"
    assert 'name="password"' in text(client.get("/login?method=password"))

    response = password_post(client, enforced.backup.email)
    assert response.status_code == 303 and signed_in_admin(client)
    used = events("sso.break_glass_used", enforced.org)
    assert len(used) == 1 and used[0].actor_id == str(enforced.backup.id)
    told = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "sso_break_glass_used")
    ).all()
    owners = {enforced.owner.email, enforced.backup.email, enforced.other_owner.email}
    assert {message.to_address for message in told} == owners
    delivered = mailbox.deliver()
    assert len(delivered) == 3
    body = delivered[0].get_body(preferencelist=("plain",)).get_content()
    assert "Bea Backup (bea@acme.example) signed in with a password" in body
    assert f"{BASE}/orgs/{enforced.org.slug}/sso" in body
    assert (
        delivered[0]["Subject"] == "Bea Backup signed in to Acme Bank with a password (break-glass)"
    )
    # Everyone else is still refused a password.
    assert 'id="sso-required"' in text(password_post(app.test_client(), enforced.owner.email))


def test_a_break_glass_owner_who_is_no_longer_owner_loses_break_glass(client, enforced):
    enforced.backup.role_in(enforced.org).role = "admin"
    db.session.flush()
    assert 'id="sso-required"' in text(password_post(client, enforced.backup.email))


def test_staff_keep_their_password_when_an_org_they_belong_to_enforces_sso(
    client, enforced, make_admin
):
    staff = make_admin(enforced.org, "owner", staff=True, email="root@platform.example")
    response = password_post(client, staff.email)
    assert response.status_code == 303 and "/login/verify" in response.headers["Location"]


def test_the_enforcement_page_lists_owners_and_flags_those_without_a_password(
    client_for, enforced, make_admin
):
    make_admin(enforced.org, "owner", email="nopass@acme.example", name="No Pass", password=None)
    page = text(client_for(enforced.owner).get(f"/orgs/{enforced.org.slug}/sso"))
    assert "Enforced" in page and "Bea Backup (bea@acme.example)" in page
    checked = re.search(
        r'<input checked id="break_glass-\d" name="break_glass" type="checkbox" value="([^"]+)"',
        page,
    )
    assert checked and checked.group(1) == str(enforced.backup.id)
    assert "Owners without a password (No Pass)" in page


# -- test connection ---------------------------------------------------------------------------


def test_test_connection_shows_the_claims_and_signs_nobody_in(client_for, acme, oidc_provider):
    client = client_for(acme.owner)
    sub = person(oidc_provider, "tess@acme.example", ["console-admins"], department="Risk")
    response = through_idp(client, oidc_provider, sub, f"/orgs/{acme.org.slug}/sso/test")
    assert response.status_code == 200, text(response)
    page = text(response)
    assert "Nobody was signed in" in page and "&#34;department&#34;: &#34;Risk&#34;" in page
    assert "tess@acme.example" in page and "as a new administrator with the role Admin" in page
    assert admin_by_email("tess@acme.example") is None
    assert client.get(f"/orgs/{acme.org.slug}/sso").status_code == 200  # still the owner
    tested = events("sso.tested", acme.org)[-1]
    assert tested.details["result"] == "ok" and tested.actor_id == str(acme.owner.id)
    assert fresh(acme.connection).tested_at is not None


def test_test_connection_says_why_a_person_would_be_refused(client_for, acme, oidc_provider):
    client = client_for(acme.owner)
    sub = person(oidc_provider, "tess@acme.example", ["console-admins"], verified=False)
    page = text(through_idp(client, oidc_provider, sub, f"/orgs/{acme.org.slug}/sso/test"))
    assert "This person would be refused" in page and "has not verified" in page
    assert events("sso.tested", acme.org)[-1].details["result"] == "email_unverified"


def test_test_connection_with_the_idp_down_goes_back_to_the_page(client_for, acme):
    acme.connection.issuer = f"http://127.0.0.1:{free_port()}"
    db.session.flush()
    client = client_for(acme.owner)
    response = client.get(f"/orgs/{acme.org.slug}/sso/test")
    assert response.status_code == 502 and "The test did not complete" in text(response)
    assert f'href="/orgs/{acme.org.slug}/sso"' in text(response)
    assert events("sso.tested", acme.org)[-1].details["result"] == "unreachable"


# -- participants ------------------------------------------------------------------------------


@pytest.fixture
def managed(acme, make_participant):
    acme.connection.enforce_participants = True
    db.session.flush()
    participant = make_participant(acme.org, managed=True, email="pat@acme.example", name="Pat")
    return SimpleNamespace(**vars(acme), participant=participant)


def participant_sso(client, email: str):
    """Press "Continue with single sign-on" on the participant sign-in page."""
    token = csrf_token(client, "/account/login")
    return client.post("/account/login/sso", data={"email": email, "csrf_token": token})


def test_a_managed_participant_signs_in_through_the_orgs_idp(client, managed, oidc_provider):
    page = participant_sso(client, "pat@acme.example")
    assert page.status_code == 200
    target = re.search(r'content="0;url=([^"]+)"', text(page)).group(1).replace("&amp;", "&")
    assert urlsplit(target).path == f"/sso/{managed.org.slug}/login/participant"
    sub = person(oidc_provider, "pat@acme.example")
    response = through_idp(client, oidc_provider, sub, target)
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200
    identity = db.session.scalar(sa.select(ParticipantIdentity))
    assert (identity.participant_id, identity.subject) == (managed.participant.id, sub)
    signed = events("participant.signed_in")[-1]
    assert signed.details["method"] == "sso" and signed.target_id == str(managed.participant.id)
    # Next time the identity finds the account, whatever the IdP now says the email is.
    oidc_provider.set_user(sub, email="pat.new@acme.example", email_verified=True)
    again = through_idp(client, oidc_provider, sub, f"/sso/{managed.org.slug}/login/participant")
    assert again.status_code == 303 and again.headers["Location"] == "/account"


def test_a_concurrent_first_participant_sign_in_links_one_identity(
    client, managed, oidc_provider, monkeypatch
):
    sub = person(oidc_provider, "pat@acme.example")
    start = f"/sso/{managed.org.slug}/login/participant"
    first = through_idp(client, oidc_provider, sub, start)
    assert first.status_code == 303
    decide = sso.decide_participant
    stale = []

    def as_if_not_linked_yet(connection, claims):
        decision = decide(connection, claims)
        if not stale:
            stale.append(decision)
            return dataclasses.replace(decision, identity=None)
        return decision

    monkeypatch.setattr(sso, "decide_participant", as_if_not_linked_yet)
    again = through_idp(client, oidc_provider, sub, start)
    assert again.status_code == 303 and again.headers["Location"] == "/account", text(again)
    assert stale, "the race was not staged"
    assert len(db.session.scalars(sa.select(ParticipantIdentity)).all()) == 1


def test_a_managed_participant_cannot_use_a_password_while_sso_is_enforced(client, managed):
    token = csrf_token(client, "/account/login")
    response = client.post(
        "/account/login",
        data={"email": "pat@acme.example", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 200 and 'id="sso-required"' in text(response)
    assert "Continue with single sign-on" in text(response)
    assert client.get("/account").status_code == 302
    assert events("participant.sign_in_failed")[-1].details["reason"] == "sso_required"
    managed.connection.enforce_participants = False
    db.session.flush()
    token = csrf_token(client, "/account/login")
    allowed = client.post(
        "/account/login",
        data={"email": "pat@acme.example", "password": PASSWORD, "csrf_token": token},
    )
    assert allowed.status_code == 303


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ("unmanaged", "not_managed", "not managed by Acme Bank"),
        ("suspended", "suspended", "suspended"),
        ("unverified", "email_unverified", "has not verified"),
        ("stranger", "no_account", "manages no account"),
    ],
)
def test_participants_the_idp_cannot_sign_in_are_refused(
    client, managed, oidc_provider, change, reason, words
):
    participant = managed.participant
    email = participant.email
    if change == "unmanaged":
        participant.managed_by_org_id = None
    elif change == "suspended":
        participant.status = "suspended"
    elif change == "stranger":
        email = "nobody@acme.example"
    db.session.flush()
    sub = person(oidc_provider, email, verified=change != "unverified")
    start = f"/sso/{managed.org.slug}/login/participant"
    response = through_idp(client, oidc_provider, sub, start)
    assert response.status_code == 403 and words in text(response)
    assert 'href="/account/login"' in text(response)
    assert client.get("/account").status_code == 302
    assert not db.session.scalar(sa.select(ParticipantIdentity.id))
    failed = events("sso.sign_in_failed", managed.org)[-1]
    assert failed.details["reason"] == reason and failed.details["purpose"] == "participant"


def test_participant_sso_is_offered_only_where_an_org_enforces_it(client, acme, make_participant):
    response = participant_sso(client, "pat@acme.example")
    assert response.status_code == 200 and "sign in with your password" in text(response)
    assert 'name="password"' in text(response)
    assert client.get(f"/sso/{acme.org.slug}/login/participant").status_code == 404
    assert participant_sso(client, "not an email").status_code == 200


def test_erasing_a_participant_forgets_their_identity(managed, oidc_provider, client):
    from console.services import control

    sub = person(oidc_provider, "pat@acme.example")
    through_idp(client, oidc_provider, sub, f"/sso/{managed.org.slug}/login/participant")
    assert db.session.scalar(sa.select(ParticipantIdentity.id))
    control.erase(ACTOR, managed.org, fresh(managed.participant), "pat@acme.example")
    assert not db.session.scalar(sa.select(ParticipantIdentity.id))


# -- the command line -------------------------------------------------------------------------


def test_sso_set_creates_a_connection_and_prints_what_it_set(
    runner, make_org, make_admin, oidc_provider
):
    org = make_org(slug="cli-org")
    verified_domain(org, "cli.example")
    make_admin(org, "owner", email="owner@cli.example")
    result = runner.invoke(
        args=[
            "sso",
            "set",
            "--org",
            "cli-org",
            "--issuer",
            oidc_provider.issuer,
            "--client-id",
            "cli-client",
            "--client-secret",
            "cli-secret-plaintext",
            "--enforce",
            "--default-role",
            "analyst",
            "--map",
            "console-owners=owner",
            "--break-glass",
            "owner@cli.example",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "cli-secret-plaintext" not in result.output
    for words in (
        f"issuer          {oidc_provider.issuer}",
        "client id       cli-client",
        "client secret   stored encrypted",
        "group console-owners -> owner",
        "default role    analyst",
        "enforced        yes (administrators)",
        "break-glass     owner@cli.example",
        f"Register this redirect URI at the IdP: {BASE}/sso/cli-org/callback",
    ):
        assert words in result.output
    connection = db.session.scalar(sa.select(SsoConnection).where(SsoConnection.org_id == org.id))
    assert sso.client_secret(connection) == "cli-secret-plaintext"
    assert "cli-secret-plaintext" not in connection.client_secret
    # Setting it again without --enforce or --default-role keeps both.
    again = runner.invoke(
        args=[
            "sso",
            "set",
            "--org",
            "cli-org",
            "--issuer",
            oidc_provider.issuer,
            "--client-id",
            "cli-client-2",
            "--client-secret",
            "rotated",
        ]
    )
    assert again.exit_code == 0, again.output
    assert "enforced        yes (administrators)" in again.output
    assert "default role    analyst" in again.output


def test_sso_set_fails_clearly(runner, make_org, oidc_provider):
    make_org(slug="cli-org")
    dead = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(
        args=[
            "sso",
            "set",
            "--org",
            "cli-org",
            "--issuer",
            dead,
            "--client-id",
            "c",
            "--client-secret",
            "s",
        ]
    )
    assert result.exit_code == 1 and f"Could not reach {dead}" in result.output
    missing = runner.invoke(
        args=[
            "sso",
            "set",
            "--org",
            "nope",
            "--issuer",
            dead,
            "--client-id",
            "c",
            "--client-secret",
            "s",
        ]
    )
    assert missing.exit_code == 1 and "No org with the slug 'nope'" in missing.output
    stranger = runner.invoke(
        args=[
            "sso",
            "set",
            "--org",
            "cli-org",
            "--issuer",
            oidc_provider.issuer,
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--break-glass",
            "who@else.example",
        ]
    )
    assert stranger.exit_code == 1 and "Not an active owner" in stranger.output
    warned = runner.invoke(
        args=[
            "sso",
            "set",
            "--org",
            "cli-org",
            "--issuer",
            oidc_provider.issuer,
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--enforce",
        ]
    )
    assert warned.exit_code == 0 and "no break-glass owner" in warned.output


# -- panva's oidc-provider: PKCE enforced, email and groups in UserInfo only -----------------


@pytest.fixture
def panva(make_org, make_admin, node_oidc_provider):
    org = make_org(slug="panva", name="Panva Partners")
    verified_domain(org, "panva.example")
    connection = sso.save_connection(
        ACTOR,
        org,
        sso.ConnectionSettings(
            issuer=node_oidc_provider.issuer,
            client_id=node_oidc_provider.client_id,
            client_secret=node_oidc_provider.client_secret,
            scopes="openid email profile groups",
            role_mapping=[["console-admins", "admin"]],
        ),
    )
    return SimpleNamespace(org=org, connection=connection, idp=node_oidc_provider)


def panva_start(client, panva, sub: str) -> str:
    """Start at the console, sign ``sub`` in at the provider; return the callback path."""
    started = client.get(f"/sso/{panva.org.slug}/login")
    assert started.status_code == 303, text(started)
    back = panva.idp.sign_in(started.headers["Location"], sub, BASE)
    assert "code=" in back, back
    return back.removeprefix(BASE)


@pytest.mark.oidc_provider
def test_email_and_groups_from_userinfo_sign_in_with_the_mapped_role(client, panva, monkeypatch):
    sub = subject()
    panva.idp.set_user(
        sub, email="nia@panva.example", email_verified=True, groups=["console-admins"]
    )
    seen = {}
    merge = sso.merge_claims

    def spy(id_token, userinfo):
        seen["id_token"], seen["userinfo"] = dict(id_token), dict(userinfo)
        return merge(id_token, userinfo)

    monkeypatch.setattr(sso, "merge_claims", spy)
    response = client.get(panva_start(client, panva, sub))
    assert response.status_code == 303, text(response)
    assert "email" not in seen["id_token"] and "groups" not in seen["id_token"]
    assert seen["userinfo"]["email"] == "nia@panva.example"
    assert seen["userinfo"]["groups"] == ["console-admins"]
    assert admin_by_email("nia@panva.example").role_in(panva.org).role == "admin"


@pytest.mark.oidc_provider
@pytest.mark.parametrize("verifier", ["wrong", "missing"])
def test_the_provider_refuses_a_wrong_or_missing_code_verifier(client, panva, verifier):
    sub = subject()
    panva.idp.set_user(
        sub, email="nia@panva.example", email_verified=True, groups=["console-admins"]
    )
    callback = panva_start(client, panva, sub)
    state = query_of(callback)["state"]
    key = f"_state_sso-{panva.org.id.hex}_{state}"
    with client.session_transaction() as session:
        data = session[key]["data"]
        if verifier == "wrong":
            data["code_verifier"] = "x" * 64
        else:
            del data["code_verifier"]
        session[key] = {**session[key], "data": data}
    response = client.get(callback)
    assert response.status_code == 502 and 'data-reason="token"' in text(response)
    assert "invalid_grant" in text(response)
    assert admin_by_email("nia@panva.example") is None and not signed_in_admin(client)
    assert events("sso.sign_in_failed", panva.org)[-1].details["reason"] == "token"


@pytest.mark.oidc_provider
def test_the_provider_refuses_an_authorization_request_without_pkce(panva):
    import requests

    asked = {
        "client_id": panva.idp.client_id,
        "response_type": "code",
        "scope": "openid email",
        "redirect_uri": f"{BASE}/sso/panva/callback",
        "state": "s" * 20,
        "nonce": "n" * 20,
    }
    response = requests.get(
        f"{panva.idp.issuer}/auth", params=asked, allow_redirects=False, timeout=5
    )
    assert response.status_code == 303
    refused = query_of(response.headers["Location"])
    assert refused["error"] == "invalid_request" and "requires PKCE" in refused["error_description"]


# -- the trail, and what the console cannot read ---------------------------------------------------


def test_sso_events_read_as_sentences_in_the_orgs_audit_trail(client_for, acme, oidc_provider, app):
    refused = person(oidc_provider, "eve@acme.example", verified=False)
    sign_in(app.test_client(), oidc_provider, refused, acme.org)
    admitted = person(oidc_provider, "sam@acme.example", ["console-admins"])
    sign_in(app.test_client(), oidc_provider, admitted, acme.org)
    page = text(client_for(acme.owner).get(f"/orgs/{acme.org.slug}/audit"))
    for sentence in (
        f"set up single sign-on through {acme.connection.issuer}",
        "refused a sign-in through single sign-on (email_unverified)",
        "signed in through single sign-on as Admin",
        "linked",
        "gave",
    ):
        assert sentence in page, sentence
    only_sso = client_for(acme.owner).get(f"/orgs/{acme.org.slug}/audit?action=sso.*")
    assert only_sso.status_code == 200 and "Single sign-on refused" in text(only_sso)


def test_a_secret_the_console_can_no_longer_decrypt_is_explained(client, acme):
    acme.connection.client_secret = encryption.encrypt("another-purpose", SECRET)
    db.session.flush()
    response = client.get(f"/sso/{acme.org.slug}/login")
    assert response.status_code == 502 and "enter the client secret again" in text(response)
    assert events("sso.sign_in_failed", acme.org)[-1].details["reason"] == "secret"


def test_starting_again_replaces_an_abandoned_round_trip(client, acme, oidc_provider):
    for _ in range(5):
        client.get(f"/sso/{acme.org.slug}/login")
    with client.session_transaction() as session:
        assert len([key for key in session if key.startswith("_state_sso-")]) == 1
    sub = person(oidc_provider, "sam@acme.example", ["console-admins"])
    assert sign_in(client, oidc_provider, sub, acme.org).status_code == 303
