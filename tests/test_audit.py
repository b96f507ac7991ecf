"""The audit trail: one hash chain per org, append-only, and tampering is found."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from console.extensions import db
from console.models import AuditEvent
from console.services import audit
from console.services.audit import Actor


def chain_of(org):
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.chain == str(org.id)).order_by(AuditEvent.seq)
        )
    )


def test_events_link_into_one_chain_per_org(make_org):
    first, second = make_org(), make_org()
    for n in range(3):
        audit.record(Actor("system"), "test.happened", org=first, details={"n": n})
    audit.record(Actor("system"), "test.happened", org=second)
    events = chain_of(first)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for earlier, later in zip(events, events[1:], strict=False):
        assert later.prev_hash == earlier.hash
    assert events[0].prev_hash == audit.GENESIS
    assert all(e.org_id == first.id for e in events)
    assert audit.verify_chain(str(first.id)).broken_at is None
    assert audit.verify_chain(str(second.id)).broken_at is None


def test_secrets_are_redacted_and_emails_masked(make_org):
    org = make_org()
    event = audit.record(
        Actor("system"),
        "test.secret",
        org=org,
        details={
            "client_secret": "s3cr3t",
            "nested": {"password": "x", "ok": 1},
            "email": audit.mask_email("maria@acme.org"),
        },
    )
    assert event.details == {
        "client_secret": "[redacted]",
        "nested": {"password": "[redacted]", "ok": 1},
        "email": "m***@acme.org",
    }


def _drop_guard():
    # Only a test may do this, inside its own transaction that is rolled back.
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
        )
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))


def test_the_database_refuses_updates_and_deletes(make_org):
    org = make_org()
    event = audit.record(Actor("system"), "test.happened", org=org)
    for statement in (
        sa.update(AuditEvent).where(AuditEvent.id == event.id).values(action="test.rewritten"),
        sa.delete(AuditEvent).where(AuditEvent.id == event.id),
    ):
        savepoint = db.session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(statement)
        savepoint.rollback()


@pytest.mark.parametrize("tamper", ["content", "delete"])
def test_verify_names_the_first_broken_link(runner, make_org, tamper):
    org = make_org(slug="tampered")
    events = [
        audit.record(Actor("system"), "test.happened", org=org, details={"n": n}) for n in range(4)
    ]
    victim = events[2]
    db.session.commit()
    _drop_guard()
    if tamper == "content":
        db.session.execute(
            sa.update(AuditEvent).where(AuditEvent.id == victim.id).values(details={"n": 99})
        )
    else:
        db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == victim.id))
    db.session.commit()
    db.session.expire_all()

    check = audit.verify_chain(str(org.id))
    assert check.broken_at is not None
    assert check.broken_at.seq == (victim.seq if tamper == "content" else victim.seq + 1)

    result = runner.invoke(args=["audit", "verify", "--org", "tampered"])
    assert result.exit_code == 1
    assert f"BROKEN at seq {check.broken_at.seq}" in result.output


def test_verify_reports_intact_chains(runner, make_org):
    org = make_org(slug="intact")
    audit.record(Actor("system"), "test.happened", org=org)
    db.session.commit()
    result = runner.invoke(args=["audit", "verify", "--org", "intact"])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output
