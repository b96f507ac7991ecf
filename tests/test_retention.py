"""Retention: spent links, delivered mail, decided requests and long-deactivated accounts go."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import AccountLink
from console.models import AuditEvent
from console.models import EmailChangeRequest
from console.models import LinkPurpose
from console.models import OutboxMessage
from console.models.base import utcnow
from console.services import audit
from console.services import control
from console.services import retention


@pytest.fixture
def org(make_org):
    return make_org()


@pytest.fixture
def owner(org, make_admin):
    return make_admin(org, "owner")


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_old_delivered_mail_goes_but_pending_mail_stays(org, owner, make_participant):
    participant = make_participant(org, managed=True)
    control.restrict(owner, org, participant)
    control.unrestrict(owner, org, participant)
    old, pending = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.kind)).all()
    old.status, old.created_at = "sent", utcnow() - timedelta(days=31)
    pending.created_at = utcnow() - timedelta(days=90)
    db.session.flush()
    report = retention.apply_retention()
    assert report.mail == 1
    assert db.session.scalars(sa.select(OutboxMessage.id)).all() == [pending.id]


def test_spent_links_go_after_a_week(make_participant):
    participant = make_participant()
    control.issue_link(participant, LinkPurpose.PASSWORD_RESET, timedelta(hours=1))
    fresh_token = control.issue_link(participant, LinkPurpose.PASSWORD_RESET, timedelta(hours=1))
    stale = db.session.scalars(sa.select(AccountLink)).first()
    stale.expires_at = utcnow() - timedelta(days=8)
    db.session.flush()
    assert retention.apply_retention(dry_run=True).links == 1
    assert count(AccountLink) == 2  # a dry run changes nothing
    assert retention.apply_retention().links == 1
    assert control.find_link(fresh_token, LinkPurpose.PASSWORD_RESET)


def test_decided_requests_go_after_a_year(org, owner, make_participant):
    participant = make_participant(org, managed=True)
    request = control.request_email_change(participant, "else@mail.example")
    control.decide_email_change(owner, org, request, approve=False)
    request.decided_at = utcnow() - timedelta(days=366)
    db.session.flush()
    assert retention.apply_retention().requests == 1
    assert count(EmailChangeRequest) == 0


def test_accounts_deactivated_past_retention_are_anonymised(org, owner, make_participant):
    gone = make_participant(org, managed=True, email="gone@mail.example")
    recent = make_participant(org, managed=True, email="recent@mail.example")
    control.update_profile(owner, org, gone, {"city": "Quito"})
    control.deactivate(owner, org, gone)
    control.deactivate(owner, org, recent)
    gone.deactivated_at = utcnow() - timedelta(days=731)
    db.session.flush()
    report = retention.apply_retention()
    assert report.anonymized == [str(gone.id)]
    assert gone.erased_at and gone.email is None and gone.profile.city is None
    assert recent.erased_at is None and recent.email == "recent@mail.example"
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.erased")
    ).one()
    assert event.org_id == org.id and event.actor_type == "system"
    assert event.details["reason"] == "retention"
    assert audit.verify_chain(str(org.id)).broken_at is None


def test_retention_command_reports_what_it_did(runner, org, owner, make_participant):
    participant = make_participant(org, managed=True)
    control.deactivate(owner, org, participant)
    participant.deactivated_at = utcnow() - timedelta(days=800)
    db.session.commit()
    dry = runner.invoke(args=["retention", "apply", "--dry-run"])
    assert dry.exit_code == 0 and "would anonymise 1 accounts" in dry.output
    done = runner.invoke(args=["retention", "apply"])
    assert done.exit_code == 0 and f"anonymised {participant.id}" in done.output


def test_a_setting_of_zero_turns_a_rule_off(app, org, owner, make_participant):
    participant = make_participant(org, managed=True)
    control.deactivate(owner, org, participant)
    participant.deactivated_at = utcnow() - timedelta(days=5000)
    app.config["RETENTION_DEACTIVATED_DAYS"] = 0
    try:
        assert retention.apply_retention().anonymized == []
    finally:
        app.config["RETENTION_DEACTIVATED_DAYS"] = 730
