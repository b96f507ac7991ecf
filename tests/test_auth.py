"""Administrator sign-in: email first, generic failures, fresh sessions, staff second factor."""

from __future__ import annotations

import pyotp
import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import AuditEvent
from tests.conftest import csrf_token
from tests.conftest import fresh
from tests.factories import PASSWORD


def sign_in(client, email, password=PASSWORD, next_url=None):
    token = csrf_token(client)
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"csrf_token": token, "email": email, "password": password})


def actions(target_id) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.target_id == str(target_id))
            .order_by(AuditEvent.at, AuditEvent.seq)
        )
    )


def test_email_step_then_password_step(client, make_org, make_admin):
    admin = make_admin(make_org(), "owner")
    page = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in page and 'name="password"' not in page

    token = csrf_token(client)
    response = client.post("/login", data={"csrf_token": token, "email": admin.email})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="password"' in html and f'value="{admin.email}"' in html


def test_owner_of_one_org_lands_on_it(client, make_org, make_admin):
    org = make_org()
    admin = make_admin(org, "owner")
    response = sign_in(client, admin.email)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/orgs/{org.slug}/"
    assert client.get(f"/orgs/{org.slug}/participants/").status_code == 200
    assert "admin.signed_in" in actions(admin.id)


def test_administrator_of_several_orgs_picks_one(client, make_org, make_admin):
    first, second = make_org(name="Alpha"), make_org(name="Beta")
    admin = make_admin(first, "admin")
    make_admin(second, "analyst", email=admin.email)
    response = sign_in(client, admin.email)
    assert response.headers["Location"] == "/orgs/"
    page = client.get("/orgs/").get_data(as_text=True)
    assert "Alpha" in page and "Beta" in page


def test_email_is_case_insensitive(client, make_org, make_admin):
    make_admin(make_org(), "owner", email="mixed@admins.example")
    assert sign_in(client, "MIXED@Admins.Example").status_code == 303


@pytest.mark.parametrize(
    "email,password",
    [
        ("known", "wrong password here"),
        ("nobody@admins.example", PASSWORD),
    ],
)
def test_wrong_email_or_password_gets_one_generic_message(
    client, make_org, make_admin, email, password
):
    admin = make_admin(make_org(), "owner")
    response = sign_in(client, admin.email if email == "known" else email, password)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "That email and password do not match an active administrator." in html
    assert client.get("/orgs/").status_code == 302


def test_failed_password_is_audited(client, make_org, make_admin):
    admin = make_admin(make_org(), "owner")
    sign_in(client, admin.email, "not the password at all")
    assert "admin.sign_in_failed" in actions(admin.id)


def test_disabled_administrator_cannot_sign_in(client, make_org, make_admin):
    admin = make_admin(make_org(), "owner")
    admin.status = "disabled"
    db.session.flush()
    response = sign_in(client, admin.email)
    assert response.status_code == 200
    assert "do not match an active administrator" in response.get_data(as_text=True)


def test_disabled_administrator_loses_an_open_session(client_for, make_org, make_admin):
    org = make_org()
    admin = make_admin(org, "owner")
    client = client_for(admin)
    assert client.get(f"/orgs/{org.slug}/participants/").status_code == 200
    admin.status = "disabled"
    db.session.flush()
    assert client.get(f"/orgs/{org.slug}/participants/").status_code == 302


def test_sign_in_starts_a_fresh_session(client, make_org, make_admin):
    admin = make_admin(make_org(), "owner")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    sign_in(client, admin.email)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("sid")


def test_next_must_stay_on_this_site(client, make_org, make_admin):
    org = make_org()
    admin = make_admin(org, "owner")
    ok = sign_in(client, admin.email, next_url=f"/orgs/{org.slug}/participants/")
    assert ok.headers["Location"] == f"/orgs/{org.slug}/participants/"
    client.post(
        "/logout", data={"csrf_token": csrf_token(client, f"/orgs/{org.slug}/participants/")}
    )
    evil = sign_in(client, admin.email, next_url="//evil.example/steal")
    assert evil.headers["Location"] == f"/orgs/{org.slug}/"


def test_sign_out_is_post_only_and_audited(client, make_org, make_admin):
    org = make_org()
    admin = make_admin(org, "owner")
    sign_in(client, admin.email)
    assert client.get("/logout").status_code == 405
    token = csrf_token(client, f"/orgs/{org.slug}/participants/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get(f"/orgs/{org.slug}/participants/").status_code == 302
    assert "admin.signed_out" in actions(admin.id)


def test_sign_out_without_csrf_token_is_refused(client, make_org, make_admin):
    org = make_org()
    admin = make_admin(org, "owner")
    sign_in(client, admin.email)
    assert client.post("/logout").status_code == 400
    assert client.get(f"/orgs/{org.slug}/participants/").status_code == 200


def test_sign_in_without_csrf_token_is_refused(client, make_org, make_admin):
    admin = make_admin(make_org(), "owner")
    response = client.post("/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_malformed_email_is_told(client):
    token = csrf_token(client)
    response = client.post("/login", data={"csrf_token": token, "email": "not-an-email"})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.get_data(as_text=True)


def test_staff_set_up_a_second_factor_then_land_on_staff(client, make_admin):
    staff = make_admin(staff=True)
    response = sign_in(client, staff.email)
    assert response.headers["Location"] == "/login/verify/setup"
    # Not signed in until the second factor is done.
    assert client.get("/staff/").status_code == 302

    page = client.get("/login/verify/setup").get_data(as_text=True)
    secret = page.split('data-secret="')[1].split('"')[0]
    assert f">{secret}<" in page  # shown as text beside the QR code
    assert "<svg" in page
    token = csrf_token(client, "/login/verify/setup")
    wrong = client.post("/login/verify/setup", data={"csrf_token": token, "code": "000000"})
    assert "not valid" in wrong.get_data(as_text=True)
    ok = client.post(
        "/login/verify/setup", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()}
    )
    assert ok.status_code == 303 and ok.headers["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200
    assert fresh(staff).totp_secret and secret not in staff.totp_secret  # stored encrypted


def test_staff_with_a_second_factor_must_give_a_fresh_code(client, make_admin):
    from console.services import auth

    staff = make_admin(staff=True)
    secret = auth.new_totp_secret()
    auth.enable_totp(staff, secret)
    db.session.flush()
    response = sign_in(client, staff.email)
    assert response.headers["Location"] == "/login/verify"
    token = csrf_token(client, "/login/verify")
    code = pyotp.TOTP(secret).now()
    assert client.post("/login/verify", data={"csrf_token": token, "code": code}).status_code == 303
    # The same code cannot be replayed for a second sign-in.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/staff/")})
    sign_in(client, staff.email)
    token = csrf_token(client, "/login/verify")
    replay = client.post("/login/verify", data={"csrf_token": token, "code": code})
    assert replay.status_code == 200
    assert client.get("/staff/").status_code == 302


def test_second_factor_page_needs_a_password_first(client):
    assert client.get("/login/verify").headers["Location"] == "/login"
    assert client.get("/login/verify/setup").headers["Location"] == "/login"


def test_repeated_failures_are_rate_limited(app, client, make_org, make_admin):
    admin = make_admin(make_org(), "owner")
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    try:
        statuses = [
            sign_in(client, admin.email, "wrong password again").status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        # Another address from the same client is not locked out by these failures.
        other = make_admin(make_org(), "owner")
        assert sign_in(client, other.email).status_code == 303
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"


def test_successful_sign_ins_do_not_count_towards_the_limit(app, client, make_org, make_admin):
    org = make_org()
    admin = make_admin(org, "owner")
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    try:
        for _ in range(4):
            assert sign_in(client, admin.email).status_code == 303
            client.post(
                "/logout",
                data={"csrf_token": csrf_token(client, f"/orgs/{org.slug}/participants/")},
            )
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
