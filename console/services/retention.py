"""Data retention: what the console stops keeping, and when.

Operational records that carry personal data (delivered mail, spent links,
decided requests) are deleted after a while; accounts deactivated long ago are
anonymised as erasure does. The audit trail is never touched: it is
append-only, and personal data in it is sealed with keys that erasure destroys.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from console.extensions import db
from console.models import AccountLink
from console.models import AccountStatus
from console.models import EmailChangeRequest
from console.models import MailStatus
from console.models import OutboxMessage
from console.models import Participant
from console.models import ReleaseRequest
from console.models import RequestStatus
from console.models.base import utcnow
from console.services import audit
from console.services import control


@dataclass
class RetentionReport:
    mail: int = 0
    links: int = 0
    requests: int = 0
    anonymized: list[str] = field(default_factory=list)


def _days(setting: str) -> int | None:
    value = current_app.config.get(setting)
    return int(value) if value not in (None, "", 0) else None


def apply_retention(now: datetime | None = None, dry_run: bool = False) -> RetentionReport:
    """Delete or anonymise what is past its retention period; with ``dry_run``, only count."""
    now = now or utcnow()
    report = RetentionReport()
    if days := _days("RETENTION_MAIL_DAYS"):
        # Pending mail is never dropped: it has not been delivered yet.
        stale = sa.and_(
            OutboxMessage.status != MailStatus.PENDING,
            OutboxMessage.created_at < now - timedelta(days=days),
        )
        report.mail = _purge(OutboxMessage, stale, dry_run)
    if days := _days("RETENTION_LINK_DAYS"):
        cutoff = now - timedelta(days=days)
        spent = sa.or_(AccountLink.used_at < cutoff, AccountLink.expires_at < cutoff)
        report.links = _purge(AccountLink, spent, dry_run)
    if days := _days("RETENTION_REQUEST_DAYS"):
        cutoff = now - timedelta(days=days)
        for model in (EmailChangeRequest, ReleaseRequest):
            decided = sa.and_(model.status != RequestStatus.PENDING, model.decided_at < cutoff)
            report.requests += _purge(model, decided, dry_run)
    if days := _days("RETENTION_DEACTIVATED_DAYS"):
        due = db.session.scalars(
            sa.select(Participant).where(
                Participant.status == AccountStatus.DEACTIVATED,
                Participant.erased_at.is_(None),
                Participant.deactivated_at < now - timedelta(days=days),
            )
        ).all()
        for participant in due:
            report.anonymized.append(str(participant.id))
            if not dry_run:
                org = participant.managed_by
                control.anonymize(participant)
                audit.record(
                    audit.SYSTEM,
                    "participant.erased",
                    org=org,
                    target=participant,
                    details={"reason": "retention", "deactivated_for_days": days},
                )
    return report


def _purge(model: type, condition: sa.ColumnElement[bool], dry_run: bool) -> int:
    if dry_run:
        return (
            db.session.scalar(sa.select(sa.func.count()).select_from(model).where(condition)) or 0
        )
    return db.session.execute(sa.delete(model).where(condition)).rowcount or 0
