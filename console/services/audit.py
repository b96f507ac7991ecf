"""Write and check the audit trail: append-only, one hash chain per org."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
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
from console.models import Member
from console.models import Org
from console.models import OrgRole
from console.models import Participant
from console.models import ParticipantKey
from console.models import Program
from console.models.base import utcnow
from console.pagination import CursorError
from console.pagination import SortKey
from console.pagination import decode_cursor
from console.pagination import encode_cursor
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


# -- reading the trail -----------------------------------------------------------

# The actions the console writes, by area: the action filter offers these, and an
# area ("participant.*") filters on its list.
ACTIONS: dict[str, tuple[str, ...]] = {
    "participant": (
        "participant.viewed",
        "participant.created",
        "participant.joined",
        "participant.profile_updated",
        "participant.suspended",
        "participant.unsuspended",
        "participant.restricted",
        "participant.unrestricted",
        "participant.deactivated",
        "participant.reactivated",
        "participant.removed_from_program",
        "participant.password_reset_required",
        "participant.reset_link_sent",
        "participant.sessions_revoked",
        "participant.email_change_started",
        "participant.email_change_cancelled",
        "participant.email_changed",
        "participant.email_change_requested",
        "participant.email_change_approved",
        "participant.email_change_denied",
        "participant.release_requested",
        "participant.released",
        "participant.release_declined",
        "participant.exported",
        "participant.erased",
        "participant.claim_announced",
        "participant.claimed",
        "participant.claim_dropped",
    ),
    "admin": (
        "admin.added",
        "admin.role_changed",
        "admin.signed_in",
        "admin.signed_out",
        "admin.sign_in_failed",
        "admin.totp_enabled",
        "admin.role_removed",
    ),
    "org": (
        "org.created",
        "program.created",
        "program.renamed",
        "program.deleted",
        "org.claim_notice_changed",
    ),
    "domain": (
        "domain.added",
        "domain.checked",
        "domain.verified",
        "domain.verified_by_hand",
        "domain.updated",
        "domain.lapsed",
        "domain.restored",
        "domain.accounts_released",
        "domain.removed",
    ),
    "scim": ("scim.user_created", "scim.user_updated", "scim.user_deleted", "scim.group_updated"),
    "sso": (
        "sso.connection_created",
        "sso.connection_changed",
        "sso.connection_removed",
        "sso.discovery_checked",
        "sso.tested",
        "sso.signed_in",
        "sso.sign_in_failed",
        "sso.identity_linked",
        "sso.email_updated",
        "sso.break_glass_used",
    ),
    "token": ("token.created", "token.revoked"),
    "audit": ("audit.viewed", "audit.exported"),
    "platform": ("staff.created", "demo.seeded"),
}
# Sign-ins, staff accounts and demo seeding belong to no org: no org's trail holds them.
PLATFORM_ONLY = frozenset(
    {
        "admin.signed_in",
        "admin.signed_out",
        "admin.sign_in_failed",
        "admin.totp_enabled",
        "staff.created",
        "demo.seeded",
    }
)
ACTOR_KINDS: dict[str, tuple[str, ...]] = {
    "tokens": ("token",),
    "participants": ("participant",),
    "staff": ("staff",),
    "system": ("system", "cli"),
}
TRAIL_SORT = SortKey("at", AuditEvent.at, AuditEvent.id, descending=True)
PLATFORM_SCOPE = "platform"
_ACTION = re.compile(r"^[a-z][a-z_]{0,30}\.(?:[a-z][a-z_]{0,30}|\*)$")


class FilterError(ValueError):
    """A trail filter that cannot be applied; the message says which and why."""


@dataclass
class TrailFilters:
    """What part of the trail to read: whose, by whom, what, about whom, when."""

    org: Org | None = None
    staff: bool = False
    platform: bool = False
    actor: str = ""
    action: str = ""
    target: uuid.UUID | None = None
    start: date | None = None
    end: date | None = None
    time_zone: str = "UTC"
    actor_types: tuple[str, ...] = ()
    actor_id: str | None = None
    actions: tuple[str, ...] = ()

    @classmethod
    def for_org(cls, args: Any, org: Org) -> TrailFilters:
        """Read and check the filters of an org's trail."""
        filters = cls(org=org, time_zone=org.time_zone)
        filters._read(args)
        return filters

    @classmethod
    def for_staff(cls, args: Any) -> TrailFilters:
        """Read and check the filters of the platform-wide trail (dates in UTC)."""
        filters = cls(staff=True)
        scope = (args.get("org") or "").strip()
        if scope == PLATFORM_SCOPE:
            filters.platform = True
        elif scope:
            filters.org = db.session.scalar(sa.select(Org).where(Org.slug == scope))
            if filters.org is None:
                raise FilterError("org: no such organization.")
        filters._read(args)
        return filters

    def _read(self, args: Any) -> None:
        self._read_actor((args.get("actor") or "").strip())
        self._read_action((args.get("action") or "").strip())
        if target := (args.get("target") or "").strip():
            try:
                self.target = uuid.UUID(target)
            except ValueError:
                raise FilterError(
                    "target: a participant id has 32 hexadecimal digits, "
                    "like 3f2a9c1e-0b7d-4e5f-9a8b-1c2d3e4f5a6b."
                ) from None
        self.start = _read_day(args, "from")
        self.end = _read_day(args, "to")
        if self.start and self.end and self.start > self.end:
            raise FilterError("from: the first day comes after the last day.")

    def _read_actor(self, actor: str) -> None:
        if not actor:
            return
        self.actor = actor
        if actor in ACTOR_KINDS:
            self.actor_types = ACTOR_KINDS[actor]
            return
        kind, _, ident = actor.partition(":")
        if kind not in ("admin", "token"):
            raise FilterError("actor: choose someone from the list.")
        try:
            actor_id = uuid.UUID(ident)
        except ValueError:
            raise FilterError(f"actor: '{ident}' is not an id the console made.") from None
        if kind == "admin":
            if not self._knows_admin(actor_id):
                raise FilterError("actor: no such administrator in this organization.")
            self.actor_types = ("admin", "staff")
        else:
            tokens = sa.select(ApiToken.id).where(ApiToken.id == actor_id)
            if not self.staff and self.org is not None:
                tokens = tokens.where(ApiToken.org_id == self.org.id)
            if db.session.scalar(tokens) is None:
                raise FilterError("actor: no such API token in this organization.")
            self.actor_types = ("token",)
        self.actor = f"{kind}:{actor_id}"
        self.actor_id = str(actor_id)

    def _knows_admin(self, admin_id: uuid.UUID) -> bool:
        if self.staff or self.org is None:
            return db.session.get(Admin, admin_id) is not None
        current = sa.select(OrgRole.admin_id).where(
            OrgRole.admin_id == admin_id, OrgRole.org_id == self.org.id
        )
        # A former administrator was added to the org once: that event names them
        # as its target (an index lookup), so their actions stay findable.
        former = sa.select(AuditEvent.id).where(
            AuditEvent.target_type == "admin",
            AuditEvent.target_id == str(admin_id),
            AuditEvent.org_id == self.org.id,
        )
        return bool(db.session.scalar(current) or db.session.scalar(former.limit(1)))

    def _read_action(self, action: str) -> None:
        if not action:
            return
        if not _ACTION.match(action):
            raise FilterError("action: choose an action from the list.")
        if action.endswith(".*"):
            area = action.removesuffix(".*")
            if area not in ACTIONS:
                raise FilterError(f"action: there is no area '{area}'.")
            self.actions = ACTIONS[area]
        else:
            self.actions = (action,)
        self.action = action

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """Return the UTC instants the day range covers: from midnight, to before midnight."""
        zone = ZoneInfo(self.time_zone)

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)

        since = midnight(self.start) if self.start else None
        until = midnight(self.end + timedelta(days=1)) if self.end else None
        return since, until

    def as_args(self) -> dict[str, str]:
        """Return the filters as URL parameters, leaving out the empty ones."""
        scope = PLATFORM_SCOPE if self.platform else (self.org.slug if self.org else "")
        args = {
            "org": scope if self.staff else "",
            "actor": self.actor,
            "action": self.action,
            "target": str(self.target) if self.target else "",
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
        }
        return {key: value for key, value in args.items() if value}

    @property
    def active(self) -> bool:
        return bool(set(self.as_args()) - {"org"})


def _read_day(args: Any, name: str) -> date | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or not 1900 <= day.year <= 9998:
        raise FilterError(f"{name}: use a date like 2026-03-31.")
    return day


def trail_query(filters: TrailFilters) -> sa.Select[Any]:
    """Return a select of the events ``filters`` let through (unordered)."""
    stmt = sa.select(AuditEvent)
    if filters.org is not None:
        stmt = stmt.where(AuditEvent.org_id == filters.org.id)
    elif filters.platform:
        stmt = stmt.where(AuditEvent.org_id.is_(None))
    elif not filters.staff:
        raise ValueError("an org's trail is read through its org")
    if filters.actor_types:
        stmt = stmt.where(AuditEvent.actor_type.in_(filters.actor_types))
    if filters.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
    if filters.actions:
        stmt = stmt.where(AuditEvent.action.in_(filters.actions))
    if filters.target is not None:
        stmt = stmt.where(
            AuditEvent.target_type == "participant", AuditEvent.target_id == str(filters.target)
        )
    since, until = filters.bounds()
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    return stmt


@dataclass(frozen=True)
class TrailPage:
    """One page of events, with what it takes to show them."""

    events: list[AuditEvent]
    next_cursor: str | None
    prev_cursor: str | None
    # (target type, target id) -> the target's current name
    names: dict[tuple[str, str], str]
    # participant ids (as in target_id) that are members of the org being read
    members: frozenset[str]
    # event id -> its sealed data, None once the participant's key is gone
    unsealed: dict[uuid.UUID, dict[str, Any] | None]


def read_trail(
    filters: TrailFilters, cursor: str | None, limit: int, *, unseal: bool = False
) -> TrailPage:
    """Return one page of events, newest first; ``unseal`` opens sealed personal data."""
    if cursor:
        at, _, _ = decode_cursor(TRAIL_SORT, cursor)
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise CursorError("The cursor is not valid; start again from the first page.")
    page = paginate(
        trail_query(filters),
        TRAIL_SORT,
        cursor,
        limit,
        key_of=lambda row: (row.AuditEvent.at, row.AuditEvent.id),
    )
    events = [row.AuditEvent for row in page.rows]
    return TrailPage(
        events,
        page.next_cursor,
        page.prev_cursor,
        _target_names(events),
        _members(filters.org, events),
        _unsealed(events) if unseal else {},
    )


def walk_trail(
    filters: TrailFilters, batch: int, before: AuditEvent | None = None
) -> Iterator[TrailPage]:
    """Yield every matching event, newest first, ``batch`` at a time (older than ``before``)."""
    cursor = encode_cursor(TRAIL_SORT, before.at, before.id) if before is not None else None
    while True:
        page = read_trail(filters, cursor, batch)
        if page.events:
            yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _target_names(events: list[AuditEvent]) -> dict[tuple[str, str], str]:
    models: dict[str, Any] = {
        "participant": Participant,
        "admin": Admin,
        "api_token": ApiToken,
        "program": Program,
        "org": Org,
    }
    wanted: dict[str, set[uuid.UUID]] = {}
    for event in events:
        if event.target_type in models and event.target_id:
            try:
                wanted.setdefault(event.target_type, set()).add(uuid.UUID(event.target_id))
            except ValueError:
                continue
    names = {}
    for kind, ids in wanted.items():
        model = models[kind]
        for row in db.session.execute(sa.select(model.id, model.name).where(model.id.in_(ids))):
            names[(kind, str(row.id))] = row.name
    return names


def _members(org: Org | None, events: list[AuditEvent]) -> frozenset[str]:
    ids = {
        uuid.UUID(e.target_id)
        for e in events
        if e.target_type == "participant" and e.target_id and _is_uuid(e.target_id)
    }
    if org is None or not ids:
        return frozenset()
    found = db.session.scalars(
        sa.select(Member.participant_id).where(
            Member.org_id == org.id, Member.participant_id.in_(ids)
        )
    )
    return frozenset(str(pid) for pid in found)


def _unsealed(events: list[AuditEvent]) -> dict[uuid.UUID, dict[str, Any] | None]:
    sealed = [
        e
        for e in events
        if isinstance(e.details, dict)
        and isinstance(e.details.get("sealed"), str)
        and e.target_type == "participant"
        and _is_uuid(e.target_id)
    ]
    if not sealed:
        return {}
    ids = {uuid.UUID(e.target_id) for e in sealed if e.target_id}
    # One query for every key on the page; unseal() then finds them in the session.
    keys = db.session.scalars(
        sa.select(ParticipantKey).where(ParticipantKey.participant_id.in_(ids))
    ).all()
    present = {key.participant_id for key in keys}
    return {
        e.id: unseal(uuid.UUID(e.target_id), e.details["sealed"])
        if uuid.UUID(e.target_id) in present
        else None
        for e in sealed
        if e.target_id
    }


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(value or "")
    except ValueError:
        return False
    return True


def record_reading(
    actor: Any, action: str, filters: TrailFilters, page: TrailPage | None = None
) -> AuditEvent:
    """Record that ``actor`` read (``audit.viewed``) or exported the trail, with the filters.

    Staff reading one org's trail are recorded in that org's chain, where the
    org sees it; reading across orgs is a platform event.
    """
    details: dict[str, Any] = {"filters": filters.as_args()}
    if page is not None:
        details["first_page"] = page.prev_cursor is None
        if opened := sum(1 for data in page.unsealed.values() if data is not None):
            details["private_values"] = opened
    return record(actor, action, org=filters.org, details=details)


@dataclass(frozen=True)
class TrailChoices:
    """What the filters offer: people, tokens, orgs, and the name of the chosen target."""

    admins: list[tuple[str, str, str | None]]  # (value, name, role or None when former)
    tokens: list[tuple[str, str, bool]]  # (value, name, revoked)
    orgs: list[Org]
    target_name: str | None


def trail_choices(filters: TrailFilters) -> TrailChoices:
    """Return the people, tokens and orgs the filters can name."""
    if filters.org is not None:
        admins = [
            (f"admin:{admin.id}", admin.name, role)
            for admin, role in db.session.execute(
                sa.select(Admin, OrgRole.role)
                .join(OrgRole, OrgRole.admin_id == Admin.id)
                .where(OrgRole.org_id == filters.org.id)
                .order_by(Admin.name)
            )
        ]
        tokens = [
            (f"token:{token.id}", token.name, token.revoked_at is not None)
            for token in db.session.scalars(
                sa.select(ApiToken).where(ApiToken.org_id == filters.org.id).order_by(ApiToken.name)
            )
        ]
    else:
        admins = [
            (f"admin:{admin.id}", admin.name, "staff")
            for admin in db.session.scalars(
                sa.select(Admin).where(Admin.is_staff.is_(True)).order_by(Admin.name)
            )
        ]
        tokens = []
    if filters.actor.startswith("admin:") and filters.actor not in {a[0] for a in admins}:
        former = db.session.get(Admin, uuid.UUID(filters.actor_id or ""))
        if former is not None:
            admins.append((filters.actor, former.name, None))
    orgs = list(db.session.scalars(sa.select(Org).order_by(Org.name))) if filters.staff else []
    return TrailChoices(admins, tokens, orgs, _target_name(filters))


def _target_name(filters: TrailFilters) -> str | None:
    if filters.target is None:
        return None
    stmt = sa.select(Participant.name).where(Participant.id == filters.target)
    if not filters.staff:
        # An org names only its own members; any other id stays an id.
        stmt = stmt.join(Member, Member.participant_id == Participant.id).where(
            Member.org_id == filters.org.id if filters.org else sa.false()
        )
    return db.session.scalar(stmt)
