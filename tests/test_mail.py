"""Mail: templates for every kind, links on the base URL, delivery over real SMTP with retries."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import AuditEvent
from console.models import OutboxMessage
from console.models.base import utcnow
from console.services import control
from console.services import mail
from tests.conftest import TEST_CONFIG
from tests.conftest import csrf_token
from tests.conftest import free_port
from tests.conftest import fresh
from tests.conftest import text_of
from tests.factories import ACTOR

ROOT = Path(__file__).resolve().parent.parent
BASE = TEST_CONFIG["BASE_URL"]


def queued_kinds() -> set[str]:
    """Every mail kind the services queue, read from their source."""
    kinds: set[str] = set()
    for source in (ROOT / "console" / "services").glob("*.py"):
        text = source.read_text()
        kinds |= set(re.findall(r'mail\.queue\(\s*"(\w+)"', text))
        kinds |= set(re.findall(r'_notify\(\s*\w+,\s*\w+,\s*"(\w+)"', text))
    return kinds


def test_every_queued_kind_has_both_templates_and_no_template_is_orphaned():
    kinds = queued_kinds()
    assert {"password_reset_required", "email_change_confirm", "registration_confirm"} <= kinds
    templates = {
        p.stem for p in (ROOT / "templates" / "mail").glob("*.*") if not p.name.startswith("_")
    }
    assert kinds == templates
    for kind in kinds:
        for suffix in ("txt", "html"):
            assert (ROOT / "templates" / "mail" / f"{kind}.{suffix}").exists(), (kind, suffix)


SAMPLE = {
    "link": f"{BASE}/account/some/link",
    "reason": "Breach of the code of conduct",
    "until": None,
    "new_email": "n***@people.example",
    "note": "Ask again from your work address",
    "changed_at": None,
    "domain_name": "acme-bank.example",
    "effective_at": None,
    "dropped_because": "email_changed",
}
# Mail to an org's owners rather than to a participant: tests/test_domains.py and
# tests/test_sso.py render it.
TO_OWNERS = {"domain_lapsed", "sso_break_glass_used"}


# Some kinds are only ever queued for an org, others (sign-up) never are.
NEVER_FOR_AN_ORG = {"registration_confirm", "registration_existing"}
SOMETIMES_FOR_AN_ORG = {
    "password_reset_link",
    "email_change_confirm",
    "email_change_started",
    "email_changed",
    "password_changed",
}
RENDERINGS = [
    (kind, with_org)
    for kind in sorted(queued_kinds() - TO_OWNERS)
    for with_org in (True, False)
    if (with_org and kind not in NEVER_FOR_AN_ORG)
    or (not with_org and kind in NEVER_FOR_AN_ORG | SOMETIMES_FOR_AN_ORG)
]


@pytest.mark.parametrize("kind,with_org", RENDERINGS)
def test_every_kind_renders_names_who_did_it_and_links_only_to_the_base_url(
    app, make_org, make_participant, kind, with_org
):
    org = make_org(name="Acme Bank")
    participant = make_participant(org, name="Maria Lopez", managed=with_org)
    context = {
        **SAMPLE,
        "until": utcnow() + timedelta(days=3),
        "changed_at": utcnow(),
        "effective_at": utcnow() + timedelta(days=7),
    }
    if kind == "removed_from_program":
        context["program"] = org.programs[0]
    with app.test_request_context("/", base_url="http://evil.example"):
        message = mail.queue(
            kind,
            "maria@people.example",
            org=org if with_org else None,
            participant=participant,
            **context,
        )
    assert message.subject and "\n" not in message.subject
    assert not message.text_body.startswith("\n")
    for body in (message.text_body, message.html_body):
        assert "Maria Lopez" in body
        assert "None" not in body
        assert "evil.example" not in body
        assert f"{BASE}/account" in body
        if with_org:
            assert "Acme Bank" in body
    links = re.findall(r"https?://[^\s\"<>]+", message.text_body + message.html_body)
    assert links and all(link.startswith(BASE + "/") for link in links), links
    assert "<html" in message.html_body and "<script" not in message.html_body


def test_links_ignore_a_forged_host_header(client, make_participant):
    participant = make_participant()
    evil = "http://evil.example"
    # Cookies are kept per host, so the token is read from the forged host's page.
    page = client.get("/account/password/forgot", base_url=evil).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    response = client.post(
        "/account/password/forgot",
        base_url=evil,
        headers={"X-Forwarded-Host": "evil.example"},
        data={"csrf_token": token.group(1), "email": participant.email},
    )
    assert response.status_code == 303
    message = db.session.scalar(sa.select(OutboxMessage))
    assert f"{BASE}/account/password/reset/" in message.text_body
    assert f'href="{BASE}/account/password/reset/' in message.html_body
    assert "evil.example" not in message.text_body + message.html_body


# -- delivery --------------------------------------------------------------------------------


def test_delivered_mail_is_a_text_and_html_message(mailbox, make_org, make_participant):
    org = make_org(name="Acme Bank")
    participant = make_participant(org, managed=True, name="Maria Lopez")
    control.suspend(ACTOR, org, participant, "Unpaid fee", until=utcnow() + timedelta(days=7))
    [received] = mailbox.deliver()
    assert received["To"] == participant.email
    assert received["Subject"] == "Acme Bank suspended your account"
    assert "Partner Console" in received["From"]
    assert received.get_content_type() == "multipart/alternative"
    html = received.get_body(preferencelist=("html",)).get_content()
    assert "Unpaid fee" in text_of(received) and "Unpaid fee" in html
    assert "suspended it until" in text_of(received)
    stored = db.session.scalar(sa.select(OutboxMessage))
    assert stored.status == "sent" and stored.attempts == 1 and stored.sent_at is not None


def test_outbox_deliver_command_sends_and_says_what_it_did(runner, mailbox, make_participant):
    participant = make_participant()
    control.issue_link(participant, "password_reset", timedelta(hours=1))
    mail.queue("registration_existing", participant.email, participant=participant)
    db.session.flush()
    result = runner.invoke(args=["outbox", "deliver"])
    assert result.exit_code == 0, result.output
    assert "sent" in result.output and "registration_existing" in result.output
    assert "Sent 1, retrying 0, failed 0." in result.output
    assert participant.email not in result.output  # addresses are masked
    assert len(mailbox.to(participant.email)) == 1
    again = runner.invoke(args=["outbox", "deliver"])
    assert "Sent 0, retrying 0, failed 0." in again.output  # nothing is sent twice
    assert len(mailbox.to(participant.email)) == 1


def test_outbox_deliver_needs_a_mail_server(app, runner, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_URL", None)
    result = runner.invoke(args=["outbox", "deliver"])
    assert result.exit_code == 1 and "CONSOLE_MAIL_URL is not set" in result.output
    monkeypatch.setitem(app.config, "MAIL_URL", "http://mail.example")
    result = runner.invoke(args=["outbox", "deliver"])
    assert result.exit_code == 1 and "smtp://host:port" in result.output


def test_outbox_deliver_loop_stops_cleanly_on_ctrl_c(
    runner, mailbox, make_participant, monkeypatch
):
    import console.cli

    participant = make_participant()
    mail.queue("registration_existing", participant.email, participant=participant)
    db.session.flush()
    rounds = []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(console.cli.time, "sleep", sleep)
    result = runner.invoke(args=["outbox", "deliver", "--loop", "--interval", "0.5"])
    assert result.exit_code == 0, result.output
    assert rounds == [0.5, 0.5]
    assert result.output.count("Sent 1") == 1 and result.output.rstrip().endswith("Stopped.")


def test_nothing_is_lost_while_the_mail_server_is_down(app, mailbox, make_participant, monkeypatch):
    participant = make_participant()
    mail.queue("registration_existing", participant.email, participant=participant)
    db.session.flush()
    monkeypatch.setitem(app.config, "MAIL_URL", f"smtp://127.0.0.1:{free_port()}")
    start = utcnow()
    report = mail.deliver_due(now=start)
    message = db.session.scalar(sa.select(OutboxMessage))
    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    assert message.status == "pending" and message.attempts == 1
    assert "cannot reach the mail server" in message.last_error
    assert message.next_attempt_at == start + timedelta(minutes=2)

    # Not due again before its backoff ends; the second failure waits longer.
    assert mail.deliver_due(now=start + timedelta(minutes=1)).retrying == 0
    mail.deliver_due(now=start + timedelta(minutes=3))
    assert message.attempts == 2
    assert message.next_attempt_at == start + timedelta(minutes=3 + 4)

    monkeypatch.setitem(app.config, "MAIL_URL", mailbox.url)
    assert mail.deliver_due(now=start + timedelta(minutes=8)).sent == 1
    assert message.status == "sent" and message.last_error is None
    assert len(mailbox.to(participant.email)) == 1


def test_a_message_that_never_gets_through_is_marked_failed(app, db, make_participant, monkeypatch):
    participant = make_participant()
    mail.queue("registration_existing", participant.email, participant=participant)
    db.session.flush()
    monkeypatch.setitem(app.config, "MAIL_URL", f"smtp://127.0.0.1:{free_port()}")
    now = utcnow()
    for _ in range(mail.MAX_ATTEMPTS):
        now += mail.MAX_BACKOFF
        mail.deliver_due(now=now)
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.status == "failed" and message.attempts == mail.MAX_ATTEMPTS


def test_a_permanently_refused_recipient_is_failed_and_the_rest_still_go(mailbox, make_participant):
    refused, fine = make_participant(), make_participant()
    mailbox.sink.refuse[refused.email] = "550 5.1.1 No such mailbox"
    for participant in (refused, fine):
        mail.queue("registration_existing", participant.email, participant=participant)
    db.session.flush()
    report = mail.deliver_due()
    assert (report.sent, report.failed, report.retrying) == (1, 1, 0)
    failed = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.to_address == refused.email)
    )
    assert failed.status == "failed" and "550" in failed.last_error
    assert len(mailbox.to(fine.email)) == 1


def test_a_temporarily_refused_recipient_is_retried(mailbox, make_participant):
    participant = make_participant()
    mailbox.sink.refuse[participant.email] = "450 4.2.1 Mailbox busy, try later"
    mail.queue("registration_existing", participant.email, participant=participant)
    db.session.flush()
    assert mail.deliver_due().retrying == 1
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.status == "pending" and "450" in message.last_error
    del mailbox.sink.refuse[participant.email]
    assert mail.deliver_due(now=utcnow() + timedelta(minutes=3)).sent == 1


# -- the staff outbox (no mail server: the demo) ---------------------------------------------


def test_staff_read_the_outbox_and_follow_a_reset_link(
    app, client, client_for, make_admin, make_org, make_participant, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_URL", None)
    org = make_org(name="Acme Bank")
    participant = make_participant(org, managed=True)
    control.send_reset_link(ACTOR, org, participant)
    staff = client_for(make_admin(staff=True))

    listing = staff.get("/staff/outbox").get_data(as_text=True)
    assert "A link to set a new password, from Acme Bank" in listing
    message = db.session.scalar(sa.select(OutboxMessage))
    page = staff.get(f"/staff/outbox/{message.id}").get_data(as_text=True)
    match = re.search(rf'<a href="({re.escape(BASE)}/account/password/reset/[^"]+)"', page)
    assert match, page
    link = match.group(1).removeprefix(BASE)
    assert client.get(link).status_code == 200
    # Staff who follow it themselves stay signed in to the console.
    token = csrf_token(staff, link)
    data = {
        "csrf_token": token,
        "password": "demo passphrase 1",
        "password_confirm": "demo passphrase 1",
    }
    assert staff.post(link, data=data).status_code == 303
    assert staff.get("/staff/outbox").status_code == 200

    trail = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "outbox.message_read")
    )
    assert trail.target_id == str(participant.id) and trail.actor_role == "staff"
    own_view = client_for(fresh(participant)).get("/account/activity").get_data(as_text=True)
    assert "Platform staff" in own_view and "Read a message the console sent you" in own_view


def test_outbox_bodies_stay_hidden_when_mail_is_delivered(
    mailbox, client_for, make_admin, make_participant
):
    participant = make_participant()
    mail.queue("registration_existing", participant.email, participant=participant)
    db.session.flush()
    message = db.session.scalar(sa.select(OutboxMessage))
    page = client_for(make_admin(staff=True)).get(f"/staff/outbox/{message.id}")
    assert page.status_code == 200
    assert "/account/password/forgot" not in page.get_data(as_text=True)
    assert (
        db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "outbox.message_read"))
        is None
    )


def test_outbox_is_newest_first_and_keyset_paged(
    app, client_for, make_admin, make_participant, monkeypatch
):
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    people = [make_participant(name=f"Person {n}") for n in range(3)]
    for n, participant in enumerate(people):
        message = mail.queue("registration_existing", participant.email, participant=participant)
        message.created_at = utcnow() + timedelta(seconds=n)
    db.session.flush()
    staff = client_for(make_admin(staff=True))
    first = staff.get("/staff/outbox").get_data(as_text=True)
    assert first.index(people[2].email) < first.index(people[1].email)
    assert people[0].email not in first
    next_url = re.search(r'href="(/staff/outbox\?cursor=[^"]+)"[^>]*rel="next"', first).group(1)
    second = staff.get(next_url, headers={"HX-Request": "true"})
    assert people[0].email in second.get_data(as_text=True)
    assert "<html" not in second.get_data(as_text=True)
    assert staff.get("/staff/outbox?cursor=nonsense").status_code == 400


def test_linkify_escapes_text_and_only_links_web_addresses():
    from console.formatting import linkify

    html = str(linkify("<b>hi</b> see https://a.example/x?y=1&z=2. or javascript:alert(1)"))
    assert "&lt;b&gt;" in html
    assert '<a href="https://a.example/x?y=1&amp;z=2" rel="noreferrer">' in html
    assert 'href="javascript' not in html
