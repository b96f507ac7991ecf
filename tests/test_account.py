"""The participant's side, through the participant's eyes: mail read from a real SMTP server."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import AccountLink
from console.models import AuditEvent
from console.models import EmailChangeRequest
from console.models import LinkPurpose
from console.models import Member
from console.models import Membership
from console.models import OutboxMessage
from console.models import Participant
from console.models import ReleaseRequest
from console.models.base import utcnow
from console.services import control
from tests.conftest import csrf_token
from tests.conftest import fresh
from tests.conftest import link_in
from tests.conftest import text_of
from tests.factories import ACTOR
from tests.factories import PASSWORD

NEW_PASSWORD = "a brand new passphrase"
TOKEN_PAGE = "/account/password/forgot"


def post(client, url, data=None, **kwargs):
    """POST ``data`` with a CSRF token, as the browser would."""
    token = csrf_token(client, TOKEN_PAGE)
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)


def sign_in(client, email, password=PASSWORD):
    return post(client, "/account/login", {"email": email, "password": password})


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def html(response) -> str:
    return response.get_data(as_text=True)


def actions(participant) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.target_id == str(participant.id))
            .order_by(AuditEvent.at, AuditEvent.seq)
        )
    )


def outbox_kinds(address: str) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage.kind)
            .where(OutboxMessage.to_address == address)
            .order_by(OutboxMessage.created_at)
        )
    )


@pytest.fixture
def managed(make_org, make_participant):
    """A participant whose account the org "Acme Bank" manages."""
    org = make_org(name="Acme Bank")
    return org, make_participant(org, managed=True, name="Maria Managed")


# -- sign-up ----------------------------------------------------------------------------


def test_register_confirm_by_mailed_link_then_sign_in(client, mailbox):
    response = post(
        client,
        "/account/register",
        {"email": "New.Person@People.example", "name": "New Person", "password": PASSWORD},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/login"
    participant = db.session.scalar(
        sa.select(Participant).where(Participant.email == "new.person@people.example")
    )
    assert participant is not None and not participant.email_verified

    # Unconfirmed: the right password is told why, and still cannot come in.
    refused = sign_in(client, "new.person@people.example")
    assert refused.status_code == 200
    assert "not confirmed yet" in html(refused)
    assert not signed_in(client)

    mailbox.deliver()
    message = mailbox.last("new.person@people.example")
    assert message["Subject"] == "Confirm your email address"
    link = link_in(message, "/account/confirm/")
    # Following the mailed link is the confirmation.
    confirmed = client.get(link)
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == "/account/login"
    assert fresh(participant).email_verified
    assert client.get(link).status_code == 400  # single use

    assert sign_in(client, "new.person@people.example").headers["Location"] == "/account"
    assert signed_in(client)
    assert "participant.email_confirmed" in actions(participant)


def test_unconfirmed_account_with_a_wrong_password_learns_nothing(client, mailbox):
    post(
        client,
        "/account/register",
        {"email": "u@people.example", "name": "U", "password": PASSWORD},
    )
    response = sign_in(client, "u@people.example", "not the password at all")
    assert "not confirmed" not in html(response)
    assert "do not match an account" in html(response)


def test_signing_up_with_a_taken_address_tells_only_its_owner(client, mailbox, make_participant):
    owner = make_participant(email="taken@people.example")
    response = post(
        client,
        "/account/register",
        {"email": "taken@people.example", "name": "Intruder", "password": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert fresh(owner).name != "Intruder"
    assert sign_in(client, "taken@people.example", NEW_PASSWORD).status_code == 200
    mailbox.deliver()
    message = mailbox.last("taken@people.example")
    assert message["Subject"] == "Someone tried to sign up with your address"
    assert link_in(message, "/account/password/forgot")


@pytest.mark.parametrize(
    "field,data",
    [
        ("email", {"email": "not-an-email", "name": "X", "password": PASSWORD}),
        ("email", {"email": "", "name": "X", "password": PASSWORD}),
        ("name", {"email": "x@people.example", "name": "", "password": PASSWORD}),
        ("name", {"email": "x@people.example", "name": "n" * 201, "password": PASSWORD}),
        ("password", {"email": "x@people.example", "name": "X", "password": "short"}),
        ("password", {"email": "x@people.example", "name": "X", "password": " " * 14}),
    ],
)
def test_sign_up_refuses_bad_input(client, field, data):
    response = post(client, "/account/register", data)
    assert response.status_code == 200
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html(response)) or re.search(
        rf'aria-invalid="true"[^>]*id="{field}"', html(response)
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Participant)) == 0


# -- sign-in --------------------------------------------------------------------------------


def test_sign_in_and_sign_out(client, make_participant):
    participant = make_participant()
    response = sign_in(client, participant.email.upper())
    assert response.status_code == 303
    assert signed_in(client)
    assert fresh(participant).last_sign_in_at is not None
    assert client.get("/account/logout").status_code == 405
    out = post(client, "/account/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/account/login"
    assert not signed_in(client)
    assert actions(participant)[-2:] == ["participant.signed_in", "participant.signed_out"]


@pytest.mark.parametrize("email,password", [("known", "wrong password here"), ("nobody", PASSWORD)])
def test_wrong_email_or_password_gets_one_generic_message(
    client, make_participant, email, password
):
    participant = make_participant()
    address = participant.email if email == "known" else "nobody@people.example"
    response = sign_in(client, address, password)
    assert response.status_code == 200
    assert "That email and password do not match an account." in html(response)
    assert not signed_in(client)


@pytest.mark.parametrize(
    "data",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "", "password": PASSWORD},
        {"email": "someone@people.example", "password": ""},
    ],
)
def test_sign_in_refuses_bad_input(client, data):
    response = post(client, "/account/login", data)
    assert response.status_code == 200 and 'aria-invalid="true"' in html(response)
    assert "do not match" not in html(response)  # nothing was looked up
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0


@pytest.mark.parametrize("email", ["not-an-email", "", "x" * 320 + "@people.example"])
def test_forgot_password_refuses_bad_input(client, email):
    response = post(client, "/account/password/forgot", {"email": email})
    assert response.status_code == 200 and 'aria-invalid="true"' in html(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_sign_in_without_csrf_token_is_refused(client, make_participant):
    participant = make_participant()
    response = client.post(
        "/account/login", data={"email": participant.email, "password": PASSWORD}
    )
    assert response.status_code == 400


def test_next_must_stay_on_this_site(client, make_participant):
    participant = make_participant()
    token = csrf_token(client, TOKEN_PAGE)
    data = {"csrf_token": token, "email": participant.email, "password": PASSWORD}
    evil = client.post("/account/login?next=//evil.example/", data=data)
    assert evil.headers["Location"] == "/account"


def test_suspended_account_is_told_only_with_the_right_password(client, managed):
    org, participant = managed
    control.suspend(ACTOR, org, participant, "Unpaid membership fee")
    wrong = sign_in(client, participant.email, "wrong password here")
    assert "suspended" not in html(wrong) and "Unpaid" not in html(wrong)
    assert "do not match an account" in html(wrong)

    right = sign_in(client, participant.email)
    assert right.status_code == 200
    page = html(right)
    assert "This account is suspended, so it cannot sign in." in page
    assert "Unpaid membership fee" in page and "Acme Bank" in page
    assert not signed_in(client)


def test_suspension_with_an_end_names_it_and_stops_blocking_once_past(client, managed):
    org, participant = managed
    control.suspend(ACTOR, org, participant, "Cooling off", until=utcnow() + timedelta(days=2))
    assert "suspended until" in html(sign_in(client, participant.email))
    participant.suspended_until = utcnow() - timedelta(minutes=1)
    db.session.flush()
    assert sign_in(client, participant.email).status_code == 303
    assert signed_in(client)


def test_deactivated_account_cannot_sign_in(client, managed):
    org, participant = managed
    control.deactivate(ACTOR, org, participant)
    assert "do not match an account" in html(sign_in(client, participant.email, "wrong password!"))
    response = sign_in(client, participant.email)
    assert "This account is deactivated, so it cannot sign in." in html(response)
    assert not signed_in(client)


def test_failed_sign_ins_are_rate_limited(app, client, make_participant, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per minute")
    participant = make_participant()
    for _ in range(3):
        assert sign_in(client, participant.email, "wrong password here").status_code == 200
    assert sign_in(client, participant.email, "wrong password here").status_code == 429
    assert sign_in(client, participant.email).status_code == 429


@pytest.mark.parametrize("change", ["revoke", "suspend", "deactivate", "erase"])
def test_an_open_session_ends_on_its_next_request(client_for, managed, change):
    org, participant = managed
    client = client_for(participant)
    assert signed_in(client)
    if change == "revoke":
        control.revoke_sessions(ACTOR, org, participant)
    elif change == "suspend":
        participant.status = "suspended"  # even without the session bump it may not stay
    elif change == "deactivate":
        control.deactivate(ACTOR, org, participant)
    else:
        control.erase(ACTOR, org, participant, participant.email)
    db.session.flush()
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/login")


def test_must_reset_goes_straight_to_a_new_password(client, mailbox, managed):
    org, participant = managed
    control.require_password_reset(ACTOR, org, participant)
    response = sign_in(client, participant.email)
    assert response.headers["Location"] == "/account/password/new"
    assert not signed_in(client)  # not until the new password is set
    page = client.get("/account/password/new")
    assert page.status_code == 200 and "Acme Bank" in html(page)

    mismatch = post(
        client,
        "/account/password/new",
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD + "x"},
    )
    assert mismatch.status_code == 200 and 'aria-invalid="true"' in html(mismatch)
    same = post(
        client, "/account/password/new", {"password": PASSWORD, "password_confirm": PASSWORD}
    )
    assert "not the one you have now" in html(same)
    assert fresh(participant).must_reset_password

    done = post(
        client,
        "/account/password/new",
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert done.status_code == 303 and done.headers["Location"] == "/account"
    assert signed_in(client)
    assert not fresh(participant).must_reset_password
    mailbox.deliver()
    kinds = [m["Subject"] for m in mailbox.to(participant.email)]
    assert kinds == [
        "Acme Bank requires a new password for your account",
        "Your password was changed",
    ]


def test_new_password_page_needs_a_pending_sign_in(client):
    response = client.get("/account/password/new")
    assert response.status_code == 302 and response.headers["Location"] == "/account/login"


# -- reset links --------------------------------------------------------------------------------


def request_reset(client, mailbox, email):
    response = post(client, "/account/password/forgot", {"email": email})
    assert response.status_code == 303
    mailbox.deliver()
    return link_in(mailbox.last(email), "/account/password/reset/")


def test_reset_link_works_once(client, mailbox, make_participant):
    participant = make_participant()
    link = request_reset(client, mailbox, participant.email)
    assert client.get(link).status_code == 200
    response = post(client, link, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/account/login"
    assert sign_in(client, participant.email).status_code == 200
    assert sign_in(client, participant.email, NEW_PASSWORD).status_code == 303

    again = client.get(link)
    assert again.status_code == 400 and "already used" in html(again)
    reused = post(client, link, {"password": "yet another passphrase", "password_confirm": "x"})
    assert reused.status_code == 400


def test_forgot_password_never_says_whether_the_address_exists(client, mailbox, make_participant):
    participant = make_participant()
    pages = []
    for address in (participant.email, "nobody@people.example"):
        response = post(client, "/account/password/forgot", {"email": address})
        assert response.status_code == 303
        pages.append(html(client.get(response.headers["Location"])).replace(address, "ADDRESS"))
    assert "If an account uses ADDRESS" in pages[0]
    assert pages[0] == pages[1]
    assert outbox_kinds("nobody@people.example") == []
    assert outbox_kinds(participant.email) == ["password_reset_link"]


def test_reset_link_expires_after_the_configured_time(
    app, client, mailbox, make_participant, monkeypatch
):
    from console.config import DEFAULTS

    assert DEFAULTS["RESET_TOKEN_TTL"] == 3600
    monkeypatch.setitem(app.config, "RESET_TOKEN_TTL", 600)
    participant = make_participant()
    link = request_reset(client, mailbox, participant.email)
    assert "within 10 minutes" in text_of(mailbox.last(participant.email))
    stored = db.session.scalar(
        sa.select(AccountLink).where(AccountLink.participant_id == participant.id)
    )
    lifetime = stored.expires_at - stored.created_at
    assert timedelta(seconds=595) < lifetime <= timedelta(seconds=600)
    stored.expires_at = utcnow() - timedelta(seconds=1)  # ten minutes later
    db.session.flush()
    response = client.get(link)
    assert response.status_code == 400 and "expired" in html(response)
    assert 'href="/account/password/forgot"' in html(response)


def test_reset_link_dies_when_the_password_changes(client, client_for, mailbox, make_participant):
    participant = make_participant()
    link = request_reset(client, mailbox, participant.email)
    account = client_for(participant)
    changed = post(
        account,
        "/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert client.get(link).status_code == 400


def test_a_reset_never_lifts_a_suspension(client, mailbox, managed):
    org, participant = managed
    control.suspend(ACTOR, org, participant, "Investigation")
    link = request_reset(client, mailbox, participant.email)
    post(client, link, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert fresh(participant).status == "suspended"
    response = sign_in(client, participant.email, NEW_PASSWORD)
    assert "This account is suspended" in html(response)


def test_an_administrators_reset_link_reaches_the_participant(client, mailbox, managed):
    org, participant = managed
    control.send_reset_link(ACTOR, org, participant)
    mailbox.deliver()
    message = mailbox.last(participant.email)
    assert message["Subject"] == "A link to set a new password, from Acme Bank"
    link = link_in(message, "/account/password/reset/")
    post(client, link, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert sign_in(client, participant.email, NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize(
    "data",
    [
        {"password": "short", "password_confirm": "short"},
        {"password": NEW_PASSWORD, "password_confirm": "something else entirely"},
        {"password": "", "password_confirm": ""},
    ],
)
def test_reset_form_refuses_bad_input(client, mailbox, make_participant, data):
    participant = make_participant()
    link = request_reset(client, mailbox, participant.email)
    response = post(client, link, data)
    assert response.status_code == 200 and 'aria-invalid="true"' in html(response)
    assert sign_in(client, participant.email).status_code == 303  # password unchanged


# -- password and email changes ---------------------------------------------------------------


def test_change_password_keeps_this_session_and_ends_the_others(
    client_for, mailbox, make_participant
):
    participant = make_participant()
    this, other = client_for(participant), client_for(participant)
    wrong = post(
        this,
        "/account/password",
        {
            "current_password": "not my password",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 200 and "That is not your current password." in html(wrong)
    response = post(
        this,
        "/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert signed_in(this) and not signed_in(other)
    mailbox.deliver()
    assert mailbox.last(participant.email)["Subject"] == "Your password was changed"


def test_failed_password_changes_are_rate_limited(app, client_for, make_participant, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "2 per minute")
    client = client_for(make_participant())
    data = {"current_password": "guess number one", "password": NEW_PASSWORD}
    data["password_confirm"] = NEW_PASSWORD
    assert post(client, "/account/password", data).status_code == 200
    assert post(client, "/account/password", data).status_code == 200
    assert post(client, "/account/password", data).status_code == 429


def test_managed_participants_email_change_waits_for_approval(
    client_for, mailbox, managed, make_admin
):
    org, participant = managed
    old = participant.email
    client = client_for(participant)
    response = post(client, "/account/email", {"email": "maria@home.example"})
    assert response.status_code == 303
    home = html(client.get("/account"))
    assert "waiting for Acme Bank" in home
    assert fresh(participant).email == old
    request = db.session.scalar(sa.select(EmailChangeRequest))
    assert request.status == "pending" and request.new_email == "maria@home.example"
    assert outbox_kinds("maria@home.example") == []  # nothing is mailed before approval

    control.decide_email_change(make_admin(org, "admin"), org, request, approve=True)
    mailbox.deliver()
    link = link_in(mailbox.last("maria@home.example"), "/account/email/confirm/")
    confirmed = client.get(link)
    assert confirmed.status_code == 303
    assert fresh(participant).email == "maria@home.example"


def test_unmanaged_email_change_needs_the_new_address_and_tells_the_old(
    client, client_for, mailbox, make_participant
):
    participant = make_participant(email="old@people.example")
    account = client_for(participant)
    response = post(account, "/account/email", {"email": "New@People.example"})
    assert response.status_code == 303
    assert fresh(participant).email == "old@people.example"
    assert "We sent a link to new@people.example" in html(account.get("/account"))

    mailbox.deliver()
    started = mailbox.last("old@people.example")
    assert started["Subject"] == "A change of your account's email was started"
    assert "n***@people.example" in text_of(started)
    assert "new@people.example" not in text_of(started)
    link = link_in(mailbox.last("new@people.example"), "/account/email/confirm/")

    assert client.get(link).status_code == 303
    assert fresh(participant).email == "new@people.example"
    assert not signed_in(account)  # every session ended with the change
    mailbox.deliver()
    assert mailbox.last("old@people.example")["Subject"] == "The email of your account has changed"
    assert sign_in(client, "new@people.example").status_code == 303


@pytest.mark.parametrize(
    "email,message",
    [
        ("not an email", "Invalid email address"),
        ("", "This field is required"),
        ("same", "already the account"),
        ("taken", "Another account uses that email"),
    ],
)
def test_email_change_refuses_bad_input(client_for, make_participant, email, message):
    participant = make_participant()
    other = make_participant()
    email = {"same": participant.email, "taken": other.email}.get(email, email)
    response = post(client_for(participant), "/account/email", {"email": email})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in html(response) and message in html(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AccountLink)) == 0


@pytest.mark.parametrize(
    "data",
    [
        {"current_password": "", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        {"current_password": PASSWORD, "password": "short", "password_confirm": "short"},
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "password_confirm": "nope"},
    ],
)
def test_change_password_refuses_bad_input(client_for, make_participant, data):
    participant = make_participant()
    before = participant.password_hash
    response = post(client_for(participant), "/account/password", data)
    assert response.status_code == 200 and 'aria-invalid="true"' in html(response)
    assert fresh(participant).password_hash == before


# -- profile -------------------------------------------------------------------------------


PROFILE = {
    "name": "Maria Lopez",
    "role": "both",
    "headline": "Bakery founder",
    "country": "MX",
    "website": "https://bakery.example",
    "years_experience": "12",
    "founded_year": "2015",
    "business_stage": "growing",
    "employees": "7",
    "phone": "+52 55 1234 5678",
    "birth_year": "1985",
    "postal_code": "06700",
}


def test_edit_profile_saves_what_changed_and_audits_it(client_for, make_participant):
    participant = make_participant()
    client = client_for(participant)
    page = client.get("/account/profile")
    assert page.status_code == 200 and 'value="MX"' in html(page)
    response = post(client, "/account/profile", PROFILE)
    assert response.status_code == 303
    profile = fresh(participant).profile
    assert participant.name == "Maria Lopez" and participant.role == "both"
    assert (profile.country, profile.website, profile.founded_year) == (
        "MX",
        "https://bakery.example",
        2015,
    )
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.profile_updated")
    )
    assert event.org_id is None and event.actor_type == "participant"
    assert "birth_year" in event.details["private_fields"]
    assert "Bakery" not in json.dumps(event.details)  # values are sealed


def test_a_field_left_out_of_the_request_keeps_its_value(client_for, make_participant):
    participant = make_participant()
    participant.profile.city = "Lima"
    db.session.flush()
    post(client_for(participant), "/account/profile", {"name": participant.name, "headline": "Hi"})
    assert (fresh(participant).profile.city, participant.profile.headline) == ("Lima", "Hi")


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", ""),
        ("headline", "h" * 201),
        ("website", "javascript:alert(1)"),
        ("website", "ftp://files.example"),
        ("linkedin_url", "not a url"),
        ("country", "XX"),
        ("country", "EU"),
        ("founded_year", "1700"),
        ("founded_year", "2999"),
        ("birth_year", str(utcnow().year - 5)),
        ("employees", "-1"),
        ("years_experience", "many"),
        ("mentee_capacity", "500"),
        ("business_stage", "unicorn"),
        ("role", "admin"),
        ("phone", "call me maybe"),
        ("postal_code", "<script>"),
    ],
)
def test_edit_profile_refuses_bad_input(client_for, make_participant, field, value):
    participant = make_participant(name="Unchanged Name")
    response = post(client_for(participant), "/account/profile", {**PROFILE, field: value})
    assert response.status_code == 200
    assert re.search(rf'<[^>]*id="{field}"[^>]*aria-invalid="true"', html(response)) or re.search(
        rf'<[^>]*aria-invalid="true"[^>]*id="{field}"', html(response)
    ), html(response)
    assert fresh(participant).name == "Unchanged Name"
    assert participant.profile.headline is None


def test_restricted_participant_cannot_edit(client_for, managed):
    org, participant = managed
    control.restrict(ACTOR, org, participant)
    client = client_for(participant)
    home = html(client.get("/account"))
    assert "Profile editing is restricted." in home and "Edit profile" not in home
    page = client.get("/account/profile")
    assert page.status_code == 200
    assert "Acme Bank, which manages your account, has restricted editing" in html(page)
    assert 'name="headline"' not in html(page)
    crafted = post(client, "/account/profile", {**PROFILE, "headline": "Sneaky"})
    assert crafted.status_code == 403
    assert "has restricted editing" in html(crafted)
    assert fresh(participant).profile.headline is None


# -- the account page, data and trail ------------------------------------------------


def test_home_says_who_manages_the_account_and_what_that_means(client_for, managed):
    _org, participant = managed
    page = html(client_for(participant).get("/account"))
    assert "Managed by Acme Bank since" in page
    assert "require you to set a new password" in page
    assert "export your data, or erase your account" in page
    assert "Ask Acme Bank to release your account" in page


def test_home_of_an_unmanaged_account_says_nobody_manages_it(client_for, make_participant):
    page = html(client_for(make_participant()).get("/account"))
    assert "Nobody manages your account" in page and "Managed by" not in page


def test_download_my_data(client_for, managed):
    _org, participant = managed
    response = client_for(participant).get("/account/data")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    data = json.loads(response.get_data())
    assert data["account"]["email"] == participant.email
    assert data["account"]["managed_by"] == _org.slug
    assert [m["org"] for m in data["memberships"]] == [_org.slug]
    assert "participant.exported" in actions(participant)


def test_trail_lists_views_and_changes_by_role_and_org(client_for, managed, make_admin):
    org, participant = managed
    support = make_admin(org, "support", name="Sam Support")
    owner = make_admin(org, "owner", name="Olga Owner")
    client_for(support).get(f"/orgs/{org.slug}/participants/{participant.id}")
    control.restrict(owner, org, participant)
    page = html(client_for(participant).get("/account/activity"))
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert any(
        "Acme Bank" in t and "Administrator (Owner)" in t and "Restricted editing" in t
        for t in text
    ), text
    assert any(
        "Acme Bank" in t
        and "Administrator (Support)" in t
        and "Viewed your profile, including private details" in t
        for t in text
    ), text
    assert "Sam Support" not in page and "Olga Owner" not in page


def test_trail_is_keyset_paged_and_serves_a_fragment_to_htmx(app, client_for, managed, monkeypatch):
    org, participant = managed
    for _ in range(5):
        control.revoke_sessions(ACTOR, org, participant)
    monkeypatch.setitem(app.config, "PAGE_SIZE", 3)
    # Revoking bumped the session version each time: sign in with the current one.
    client = client_for(fresh(participant))
    first = html(client.get("/account/activity"))
    next_url = re.search(r'href="(/account/activity\?cursor=[^"]+)"[^>]*rel="next"', first)
    assert next_url
    second = client.get(next_url.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert second.status_code == 200
    assert "<html" not in html(second) and 'id="account-trail"' in html(second)
    assert "HX-Request" in second.headers["Vary"]
    assert client.get("/account/activity?cursor=garbage").status_code == 400


def test_leave_a_program(client_for, make_org, make_participant):
    org = make_org(name="Chamber")
    participant = make_participant(org)
    other = make_participant(org)
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.participant_id == participant.id)
    )
    foreign = db.session.scalar(sa.select(Membership).where(Membership.participant_id == other.id))
    client = client_for(participant)
    assert "Leave" in html(client.get("/account"))
    assert post(client, f"/account/programs/{foreign.id}/leave").status_code == 404
    response = post(client, f"/account/programs/{membership.id}/leave")
    assert response.status_code == 303
    assert fresh(membership).left_at is not None
    assert db.session.get(Member, (org.id, participant.id)) is None
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.left_program")
    )
    assert event.org_id == org.id and event.details["program_name"] == "Cohort A"
    assert post(client, f"/account/programs/{membership.id}/leave").status_code == 404


def test_ask_the_managing_org_to_release_control(client_for, managed):
    org, participant = managed
    client = client_for(participant)
    assert client.get("/account/release").status_code == 200
    too_long = post(client, "/account/release", {"message": "x" * 1001})
    assert too_long.status_code == 200 and 'aria-invalid="true"' in html(too_long)
    assert db.session.scalar(sa.select(ReleaseRequest)) is None
    response = post(client, "/account/release", {"message": "I left the bank"})
    assert response.status_code == 303
    request = db.session.scalar(sa.select(ReleaseRequest))
    assert request.org_id == org.id and request.message == "I left the bank"
    assert "waiting for them" in html(client.get("/account"))
    again = post(client, "/account/release", {"message": "again"}, follow_redirects=True)
    assert "already asked" in html(again)


def test_unmanaged_participant_has_nobody_to_ask(client_for, make_participant):
    response = client_for(make_participant()).get("/account/release")
    assert response.status_code == 302 and response.headers["Location"] == "/account"


def test_confirm_links_are_checked_before_anything_is_shown(client):
    for path in (
        "/account/confirm/nope",
        "/account/email/confirm/nope",
        "/account/password/reset/nope",
    ):
        response = client.get(path)
        assert response.status_code == 400 and "not valid" in html(response)


def test_a_link_for_one_purpose_does_not_open_another(client, make_participant):
    participant = make_participant()
    token = control.issue_link(participant, LinkPurpose.CONFIRM_EMAIL, timedelta(hours=1))
    assert client.get(f"/account/password/reset/{token}").status_code == 400
