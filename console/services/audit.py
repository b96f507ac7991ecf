"""Write and check the audit trail: append-only, one hash chain per org."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from flask import g
from flask import has_request_context
from flask import request
from werkzeug.local import LocalProxy

from console import encryption
from console.extensions import db
from console.models import Admin
from console.models import ApiToken
from console.models import AuditEvent
from console.models import Org
from console.models import Participant
from console.models import ParticipantKey
from console.models.base import utcnow
from console.pagination import Page
from console.pagination import SortKey
from console.pagination import paginate

PLATFORM_CHAIN = "platform"
GENESIS = "0" * 64
SECRET_MARKERS = ("password", "secret", "token", "totp")


@dataclass(frozen=True)
class Actor:
    """Who did something, as the trail names them."""

    type: str
    id: str | None = None
    name: str | None = None
    role: str | None = None


SYSTEM = Actor(type="system", name="Partner Console")


def describe_actor(actor: Any, org: Org | None) -> Actor:
    """Return the trail's view of ``actor``, with their role in ``org`` when they have one."""
    if actor is None:
        return SYSTEM
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, Admin):
        role = actor.role_in(org) if org is not None else None
        if role is not None:
            return Actor("admin", str(actor.id), actor.name, role.role)
        return Actor(
            "staff" if actor.is_staff else "admin",
            str(actor.id),
            actor.name,
            "staff" if actor.is_staff else None,
        )
    if isinstance(actor, Participant):
        return Actor("participant", str(actor.id), actor.name, None)
    if isinstance(actor, ApiToken):
        return Actor("token", str(actor.id), actor.name, "token")
    raise TypeError(f"cannot audit actor {actor!r}")


def mask_email(email: str | None) -> str | None:
    """Return ``m***@acme.org`` for ``maria@acme.org``: enough to recognise, not to read."""
    if not email or "@" not in email:
        return email
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def redact(details: Any) -> Any:
    """Replace the value of every key that names a secret, at any depth."""
    if isinstance(details, dict):
        return {
            key: "[redacted]"
            if any(marker in str(key).lower() for marker in SECRET_MARKERS)
            else redact(value)
            for key, value in details.items()
        }
    if isinstance(details, list):
        return [redact(item) for item in details]
    return details


KEY_PURPOSE = "participant-key"


def _participant_fernet(participant_id: Any, create: bool) -> Fernet | None:
    row = db.session.get(ParticipantKey, participant_id)
    if row is None:
        if not create:
            return None
        key = Fernet.generate_key().decode()
        row = ParticipantKey(
            participant_id=participant_id, key=encryption.encrypt(KEY_PURPOSE, key)
        )
        db.session.add(row)
        db.session.flush()
        return Fernet(key.encode())
    return Fernet(encryption.decrypt(KEY_PURPOSE, row.key).encode())


def seal(participant: Participant, data: dict[str, Any]) -> str:
    """Encrypt personal data for an audit event with the participant's own key."""
    fernet = _participant_fernet(participant.id, create=True)
    assert fernet is not None
    return fernet.encrypt(json.dumps(data, default=str).encode()).decode()


def unseal(participant_id: Any, sealed: str) -> dict[str, Any] | None:
    """Return sealed data, or None once the participant was erased (their key is gone)."""
    fernet = _participant_fernet(participant_id, create=False)
    if fernet is None:
        return None
    try:
        return json.loads(fernet.decrypt(sealed.encode()))
    except InvalidToken:
        return None


def shred(participant: Participant) -> None:
    """Destroy the participant's key: everything sealed with it becomes unreadable."""
    db.session.execute(
        sa.delete(ParticipantKey).where(ParticipantKey.participant_id == participant.id)
    )


def record(
    actor: Any,
    action: str,
    *,
    org: Org | None = None,
    target: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the org's chain (or the platform's) in the current transaction."""
    # Views may hand over Flask-Login's current_user proxy; the trail wants the object.
    actor = actor._get_current_object() if isinstance(actor, LocalProxy) else actor
    target = target._get_current_object() if isinstance(target, LocalProxy) else target
    who = describe_actor(actor, org)
    target_type, target_id = _target(target)
    chain = str(org.id) if org is not None else PLATFORM_CHAIN
    _lock_chain(chain)
    head = db.session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    event = AuditEvent(
        id=uuid.uuid4(),
        chain=chain,
        seq=(head.seq + 1) if head else 1,
        org_id=org.id if org is not None else None,
        at=utcnow(),
        actor_type=who.type,
        actor_id=who.id,
        actor_name=who.name,
        actor_role=who.role,
        action=action,
        target_type=target_type,
        target_id=target_id,
        ip=request.remote_addr if has_request_context() else None,
        request_id=g.get("request_id") if has_request_context() else None,
        details=redact(details or {}),
        prev_hash=head.hash if head else GENESIS,
    )
    event.hash = event_hash(event)
    db.session.add(event)
    db.session.flush()
    return event


def event_hash(event: AuditEvent) -> str:
    """Return the SHA-256 over the event's content and the previous event's hash."""
    content = {
        "chain": event.chain,
        "seq": event.seq,
        "org_id": str(event.org_id) if event.org_id else None,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": [event.actor_type, event.actor_id, event.actor_name, event.actor_role],
        "action": event.action,
        "target": [event.target_type, event.target_id],
        "ip": event.ip,
        "request_id": event.request_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    chain: str
    events: int
    broken_at: AuditEvent | None
    reason: str | None


def verify_chain(chain: str, batch: int = 5000) -> ChainCheck:
    """Walk one chain in order and return the first event whose link does not hold."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        events = db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.chain == chain, AuditEvent.seq > last_seq)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if not events:
            return ChainCheck(chain, count, None, None)
        for event in events:
            count += 1
            if event.seq != expected_seq:
                return ChainCheck(chain, count, event, f"sequence jumps to {event.seq}")
            if event.prev_hash != prev_hash:
                return ChainCheck(chain, count, event, "does not link to the previous event")
            if event_hash(event) != event.hash:
                return ChainCheck(chain, count, event, "content does not match its hash")
            prev_hash, expected_seq, last_seq = event.hash, event.seq + 1, event.seq


def _target(target: Any) -> tuple[str | None, str | None]:
    if target is None:
        return None, None
    if isinstance(target, tuple):
        return target[0], str(target[1])
    return type(target).__tablename__.removesuffix("s"), str(target.id)


def _lock_chain(chain: str) -> None:
    # Two transactions appending to one chain would fork it; PostgreSQL serialises
    # them here, SQLite serialises writers anyway, and (chain, seq) is unique on both.
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(chain))))


# -- reading an org's trail -------------------------------------------------------

NEWEST_FIRST = SortKey("-at", AuditEvent.at, AuditEvent.id, descending=True)


class TrailFilterError(ValueError):
    """A trail filter that cannot be applied; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class TrailFilters:
    """Which of an org's events to list; ``since`` is inclusive, ``before`` exclusive."""

    action: str | None = None
    actor: str | None = None
    target: str | None = None
    since: datetime | None = None
    before: datetime | None = None

    @classmethod
    def from_args(cls, args: Any, org: Org) -> TrailFilters:
        """Read ``action``, ``actor``, ``target``, ``from`` and ``to`` from request arguments.

        ``action`` is an action name, or a prefix ending in ``.*``; ``actor`` and
        ``target`` are ids; ``from`` and ``to`` are inclusive, each a date (a whole
        day in the org's time zone) or an ISO 8601 time with an offset.
        """
        filters = cls()
        for name in ("action", "actor", "target"):
            value = (args.get(name) or "").strip()
            if len(value) > 64 or "\x00" in value:
                raise TrailFilterError(name, "too long or not text.")
            setattr(filters, name, value or None)
        zone = ZoneInfo(org.time_zone)
        if value := args.get("from"):
            filters.since = _instant("from", value, zone, end=False)
        if value := args.get("to"):
            filters.before = _instant("to", value, zone, end=True)
        return filters


def _instant(field: str, value: str, zone: ZoneInfo, *, end: bool) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time.min, tzinfo=zone)
            return (start + timedelta(days=1) if end else start).astimezone(UTC)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise TrailFilterError(field, "give the time with its offset, e.g. 2026-01-31T09:00Z.")
        moment = moment.astimezone(UTC)
        return moment + timedelta(microseconds=1) if end else moment
    except (ValueError, OverflowError) as error:
        if isinstance(error, TrailFilterError):
            raise
        raise TrailFilterError(field, "use a date (YYYY-MM-DD) or an ISO 8601 time.") from None


def trail_of(org: Org, filters: TrailFilters) -> sa.Select[Any]:
    """Return the select of the org's events that match ``filters`` (unordered)."""
    stmt = sa.select(AuditEvent).where(AuditEvent.org_id == org.id)
    if filters.action and filters.action.endswith(".*"):
        prefix = filters.action[:-1]
        stmt = stmt.where(AuditEvent.action.startswith(prefix, autoescape=True))
    elif filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor_id == filters.actor)
    if filters.target:
        stmt = stmt.where(AuditEvent.target_id == filters.target)
    if filters.since:
        stmt = stmt.where(AuditEvent.at >= filters.since)
    if filters.before:
        stmt = stmt.where(AuditEvent.at < filters.before)
    return stmt


def list_events(org: Org, filters: TrailFilters, cursor: str | None, limit: int) -> Page:
    """Return one page of the org's events, newest first (keyset: time, then id)."""
    return paginate(
        trail_of(org, filters),
        NEWEST_FIRST,
        cursor,
        limit,
        key_of=lambda row: (row.AuditEvent.at, row.AuditEvent.id),
    )
