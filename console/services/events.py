"""Activity events from the platform: validated one by one, stored and rolled up in bulk.

A batch is checked event by event and each gets its own result: ``accepted``,
``duplicate`` (its id is stored already, or came earlier in the batch) or
``rejected`` with the reason. Nothing that could carry message content is ever
stored: a ``text``, ``body``, ``content`` or ``message`` field anywhere in an
event refuses it. The accepted events, their rollups and the participants'
last-active times are written in the caller's transaction, set-based.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from console.extensions import db
from console.models import ActivityEvent
from console.models import EventType
from console.models import Participant
from console.models.base import utcnow
from console.services import audit
from console.services import rollups

MAX_BATCH = 1000
# Clocks disagree a little: an event may be this far ahead of ours.
FUTURE_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CONTENT_FIELDS = frozenset({"text", "body", "content", "message"})
EVENT_FIELDS = frozenset({"id", "type", "participant_id", "occurred_at", "data"})
MAX_ID_LENGTH = 100
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


class BatchError(ValueError):
    """A batch that cannot be read at all; the message says why."""


class Rejected(ValueError):
    """One event that cannot be stored; the message says why."""


@dataclass(frozen=True)
class Result:
    id: Any
    status: str
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        result = {"id": self.id, "status": self.status}
        if self.detail is not None:
            result["detail"] = self.detail
        return result


@dataclass(frozen=True)
class _Field:
    kind: str  # "count", "number", "uuid", "currency"
    low: float = 0
    high: float = 0
    required: bool = True


def _optional_relationship() -> dict[str, _Field]:
    return {"relationship_id": _Field("uuid", required=False)}


DATA_FIELDS: dict[str, dict[str, _Field]] = {
    EventType.SIGNED_IN: {},
    EventType.PROFILE_UPDATED: {},
    EventType.SURVEY_COMPLETED: {},
    EventType.MENTOR_REQUEST_SENT: _optional_relationship(),
    EventType.MENTOR_REQUEST_RECEIVED: _optional_relationship(),
    EventType.MENTOR_REQUEST_ACCEPTED: _optional_relationship(),
    EventType.MENTOR_REQUEST_DECLINED: _optional_relationship(),
    EventType.MESSAGE_SENT: {"count": _Field("count", 1, 100_000), **_optional_relationship()},
    EventType.SESSION_LOGGED: {"minutes": _Field("count", 1, 1440), **_optional_relationship()},
    EventType.FEEDBACK_GIVEN: {"rating": _Field("count", 1, 5), "relationship_id": _Field("uuid")},
    EventType.OUTCOME_REPORTED: {
        "jobs": _Field("count", 0, 1_000_000),
        "revenue": _Field("number", 0, 1_000_000_000_000),
        "currency": _Field("currency"),
    },
}


def ingest(actor: Any, events: Any, now: datetime | None = None) -> list[Result]:
    """Store a batch of events; return one result per event, in order.

    Idempotent by event id: ids already stored (or repeated within the batch)
    are ``duplicate`` and change nothing.
    """
    if not isinstance(events, list):
        raise BatchError("events: a list of event objects is required.")
    if len(events) > MAX_BATCH:
        raise BatchError(f"events: at most {MAX_BATCH:,} events per request.")
    now = now or utcnow()
    results: list[Result | None] = [None] * len(events)
    ids: list[str | None] = []
    for index, raw in enumerate(events):
        event_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            ids.append(_event_id(raw))
        except Rejected as error:
            ids.append(None)
            results[index] = Result(_echo(event_id), REJECTED, str(error))
    stored = _stored_ids({i for i in ids if i is not None})
    parsed: dict[int, rollups.NewEvent] = {}
    seen: set[str] = set()
    for index, raw in enumerate(events):
        event_id = ids[index]
        if event_id is None:
            continue
        if event_id in stored or event_id in seen:
            results[index] = Result(event_id, DUPLICATE)
            continue
        try:
            parsed[index] = _parse(raw, event_id, now)
        except Rejected as error:
            results[index] = Result(event_id, REJECTED, str(error))
            continue
        seen.add(event_id)
    known = _known_participants({event.participant_id for event in parsed.values()})
    accepted = []
    for index, event in parsed.items():
        if event.participant_id in known:
            accepted.append(event)
            results[index] = Result(event.id, ACCEPTED)
        else:
            results[index] = Result(
                event.id, REJECTED, "participant_id: no participant with this id."
            )
    rollups.record_events(accepted)
    final = [result for result in results if result is not None]
    tally = {
        status: sum(1 for r in final if r.status == status)
        for status in (ACCEPTED, DUPLICATE, REJECTED)
    }
    audit.record(actor, "events.ingested", details=tally)
    return final


def _echo(value: Any) -> Any:
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def _event_id(raw: Any) -> str:
    if not isinstance(raw, dict):
        raise Rejected("An event must be a JSON object.")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise Rejected("id: the platform's event id (a non-empty string) is required.")
    if len(event_id) > MAX_ID_LENGTH:
        raise Rejected(f"id: at most {MAX_ID_LENGTH} characters.")
    return event_id


def _stored_ids(ids: set[str]) -> set[str]:
    found: set[str] = set()
    wanted = sorted(ids)
    for start in range(0, len(wanted), 1000):
        found.update(
            db.session.scalars(
                sa.select(ActivityEvent.id).where(
                    ActivityEvent.id.in_(wanted[start : start + 1000])
                )
            )
        )
    return found


def _known_participants(ids: set[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(db.session.scalars(sa.select(Participant.id).where(Participant.id.in_(ids))))


def _parse(raw: dict[str, Any], event_id: str, now: datetime) -> rollups.NewEvent:
    """Return the event as it will be stored, or raise ``Rejected`` naming the first problem."""
    _refuse_content(raw, top=True)
    unknown = sorted(set(raw) - EVENT_FIELDS)
    if unknown:
        raise Rejected(f"{unknown[0]}: unknown field.")
    kind = raw.get("type")
    if kind not in DATA_FIELDS:
        raise Rejected(f"type: use one of {', '.join(DATA_FIELDS)}.")
    try:
        participant_id = uuid.UUID(raw.get("participant_id"))
    except (TypeError, ValueError, AttributeError):
        raise Rejected("participant_id: a participant id (UUID) is required.") from None
    occurred_at = _moment(raw.get("occurred_at"), now)
    data = _data(kind, raw.get("data"))
    relationship = data.get("relationship_id") if data else None
    return rollups.NewEvent(
        id=event_id,
        participant_id=participant_id,
        type=kind,
        occurred_at=occurred_at,
        data=data or None,
        relationship_id=uuid.UUID(relationship) if relationship else None,
    )


def _refuse_content(value: Any, *, top: bool = False) -> None:
    # Iterative, so a deeply nested payload cannot exhaust the stack.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and key.strip().lower() in CONTENT_FIELDS:
                    raise Rejected(f"{key}: message content is never accepted; send counts only.")
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def _moment(value: Any, now: datetime) -> datetime:
    problem = "occurred_at: an ISO 8601 time with an offset is required (2026-03-01T09:00:00Z)."
    if not isinstance(value, str):
        raise Rejected(problem)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(problem) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Rejected(problem)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise Rejected(problem) from None
    if moment > now + FUTURE_SKEW:
        raise Rejected("occurred_at: this is in the future.")
    if moment < EARLIEST:
        raise Rejected("occurred_at: this is before 2000.")
    return moment


def _data(kind: str, data: Any) -> dict[str, Any]:
    fields = DATA_FIELDS[kind]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Rejected("data: must be a JSON object.")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise Rejected(f"data.{unknown[0]}: not a field of {kind} events.")
    clean: dict[str, Any] = {}
    for name, rule in fields.items():
        if name not in data or data[name] is None:
            if rule.required:
                raise Rejected(f"data.{name}: required for {kind} events.")
            continue
        clean[name] = _value(name, rule, data[name])
    return clean


def _value(name: str, rule: _Field, value: Any) -> Any:
    where = f"data.{name}"
    if rule.kind == "count":
        if not isinstance(value, int) or isinstance(value, bool):
            raise Rejected(f"{where}: a whole number is required.")
        if not rule.low <= value <= rule.high:
            raise Rejected(f"{where}: must be from {rule.low:,.0f} to {rule.high:,.0f}.")
        return value
    if rule.kind == "number":
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise Rejected(f"{where}: a number is required.")
        if not rule.low <= value <= rule.high:
            raise Rejected(f"{where}: must be from {rule.low:,.0f} to {rule.high:,.0f}.")
        return value
    if rule.kind == "currency":
        if not isinstance(value, str) or not _CURRENCY.match(value):
            raise Rejected(f"{where}: a three-letter currency code is required (USD).")
        return value.upper()
    if not isinstance(value, str):
        raise Rejected(f"{where}: a relationship id (UUID) is required.")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Rejected(f"{where}: a relationship id (UUID) is required.") from None
