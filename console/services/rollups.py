"""Keep the report rollups in step with events and memberships, and rebuild them from scratch.

Reports never read raw events. Each accepted event adds its counts to one row
per (org, scope, local day) for every scope the participant belonged to when
it happened, and to the member's own day; each membership change adds to the
day's joins and leaves. Distinct active members over any range come from the
days' gap histograms: a member is active in [F, T] exactly when one of their
active days d in it follows their previous active day by more than d - F
(their first day ever counts too), so the range's count is a sum over its
days, whatever the size of the org. Ingest keeps the histograms exact with
each member's previous and next active day, in any arrival order; ``rebuild``
recomputes every table from events, memberships, profiles and relationships,
and a test holds the two to the same result.
"""

from __future__ import annotations

import bisect
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from console.extensions import db
from console.models import ALL_PROGRAMS
from console.models import ActivityEvent
from console.models import Journey
from console.models import Member
from console.models import MemberDay
from console.models import Membership
from console.models import MentoringRelationship
from console.models import Org
from console.models import Participant
from console.models import Profile
from console.models import ReportDay
from console.models import ReportSpan
from console.models import ScopeDay
from console.models.base import utcnow
from console.models.reports import COUNTERS
from console.models.reports import DELTAS
from console.services.bulk import execute_rows
from console.services.bulk import insert_rows

STAGES = ("reached_profile", "reached_request", "reached_match", "reached_meeting")
_AT = {name: index for index, name in enumerate(COUNTERS)}
# What every profile needs to be complete, and what each role adds.
PROFILE_BASICS = ("headline", "bio", "city", "country")
PROFILE_BY_ROLE = {
    "mentor": ("expertise",),
    "entrepreneur": ("business_name", "business_industry"),
    "both": ("expertise", "business_name", "business_industry"),
}
_BATCH = 20_000

Key = tuple[uuid.UUID, uuid.UUID, date]


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """Return the time zone called ``name`` (cached: orgs share a handful)."""
    return ZoneInfo(name)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """Return the day ``moment`` falls on in ``tz``."""
    return moment.astimezone(tz).date()


def today_in(org: Org) -> date:
    """Return today's date in the org's time zone."""
    return local_day(utcnow(), zone(org.time_zone))


# -- what an event adds ------------------------------------------------------------


def revenue_cents(amount: float | int) -> int:
    """Return an amount in whole cents, rounding half up."""
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def counts_of(kind: str, data: dict[str, Any] | None) -> list[int]:
    """Return what one event adds to each of ``COUNTERS``."""
    counts = [0] * len(COUNTERS)
    counts[0] = 1
    data = data or {}
    if kind == "signed_in":
        counts[_AT["sign_ins"]] = 1
    elif kind == "profile_updated":
        counts[_AT["profile_updates"]] = 1
    elif kind == "mentor_request_sent":
        counts[_AT["requests_sent"]] = 1
    elif kind == "mentor_request_received":
        counts[_AT["requests_received"]] = 1
    elif kind == "mentor_request_accepted":
        counts[_AT["requests_accepted"]] = 1
    elif kind == "mentor_request_declined":
        counts[_AT["requests_declined"]] = 1
    elif kind == "message_sent":
        counts[_AT["messages"]] = int(data.get("count", 0))
    elif kind == "session_logged":
        counts[_AT["sessions"]] = 1
        counts[_AT["session_minutes"]] = int(data.get("minutes", 0))
    elif kind == "feedback_given":
        counts[_AT["feedback_count"]] = 1
        counts[_AT["rating_sum"]] = int(data.get("rating", 0))
    elif kind == "outcome_reported":
        counts[_AT["outcomes"]] = 1
        counts[_AT["jobs"]] = int(data.get("jobs", 0))
        counts[_AT["revenue_cents"]] = revenue_cents(data.get("revenue", 0))
    elif kind == "survey_completed":
        counts[_AT["surveys"]] = 1
    return counts


def _add(total: list[int], counts: list[int]) -> None:
    for index, value in enumerate(counts):
        if value:
            total[index] += value


# -- gap histograms ------------------------------------------------------------------


class Gaps:
    """A day's active members by days since their previous active day (None: first ever)."""

    __slots__ = ("counts", "never")

    def __init__(self, never: int = 0, counts: dict[int, int] | None = None) -> None:
        self.never = never
        self.counts = counts or {}

    @classmethod
    def load(cls, stored: dict[str, Any] | None) -> Gaps:
        if not stored:
            return cls()
        gaps, atleast = stored["g"], stored["c"]
        counts = {
            gap: atleast[i] - (atleast[i + 1] if i + 1 < len(atleast) else 0)
            for i, gap in enumerate(gaps)
        }
        return cls(stored["n"], counts)

    def add(self, gap: int | None, delta: int = 1) -> None:
        if gap is None:
            self.never += delta
            return
        count = self.counts.get(gap, 0) + delta
        if count:
            self.counts[gap] = count
        else:
            self.counts.pop(gap, None)

    def dump(self) -> dict[str, Any] | None:
        if not self.never and not self.counts:
            return None
        gaps = sorted(self.counts)
        atleast = [0] * len(gaps)
        running = 0
        for i in range(len(gaps) - 1, -1, -1):
            running += self.counts[gaps[i]]
            atleast[i] = running
        return {"n": self.never, "g": gaps, "c": atleast}


def returning_after(stored: dict[str, Any] | None, threshold: int) -> int:
    """Return how many of the day's active members had no active day in the ``threshold`` before.

    That is, their gap exceeds ``threshold`` days, or this is their first day.
    """
    if not stored:
        return 0
    gaps = stored["g"]
    index = bisect.bisect_right(gaps, threshold)
    return stored["n"] + (stored["c"][index] if index < len(gaps) else 0)


def active_between(days: Iterable[tuple[date, dict[str, Any] | None]], start: date) -> int:
    """Return how many distinct members were active from ``start`` over ``days`` (day, gaps).

    ``days`` are the rows from ``start`` to the range's end: each member is
    counted on the first of their active days in the range.
    """
    return sum(returning_after(gaps, (day - start).days) for day, gaps in days)


# -- membership spans ------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    org_id: uuid.UUID
    scope_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None


Scope = tuple[uuid.UUID, uuid.UUID]


def cover_ends(spans: Iterable[Span]) -> dict[Scope, datetime | None]:
    """Return, per (org, scope), until when the participant's activity counts there.

    Activity counts up to the end of their last span in the scope, and for ever
    while they belong to it: joining brings their history along, and leaving
    stops what comes after from ever reaching that org.
    """
    ends: dict[Scope, datetime | None] = {}
    for span in spans:
        key = (span.org_id, span.scope_id)
        if key in ends and ends[key] is None:
            continue
        if span.ended_at is None or key not in ends:
            ends[key] = span.ended_at
        else:
            ends[key] = max(ends[key], span.ended_at)  # type: ignore[type-var]
    return ends


def counts_until(end: datetime | None, moment: datetime) -> bool:
    """Return whether activity at ``moment`` counts in a scope whose cover ends at ``end``."""
    return end is None or moment < end


def derive_spans(
    memberships: Iterable[tuple[uuid.UUID, uuid.UUID | None, datetime, datetime | None]],
    members: Iterable[tuple[uuid.UUID, datetime]],
) -> list[Span]:
    """Return one participant's spans from their memberships and member rows.

    A program's span is the union of the participant's memberships in it; the
    org-wide one also covers the time they have had a member row (an org keeps
    sight of the accounts it manages even outside every program).
    """
    intervals: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[datetime, datetime | None]]] = (
        defaultdict(list)
    )
    for org_id, program_id, joined_at, left_at in memberships:
        intervals[(org_id, ALL_PROGRAMS)].append((joined_at, left_at))
        if program_id is not None:
            intervals[(org_id, program_id)].append((joined_at, left_at))
    for org_id, joined_at in members:
        intervals[(org_id, ALL_PROGRAMS)].append((joined_at, None))
    spans = []
    for (org_id, scope_id), found in intervals.items():
        found.sort(key=lambda interval: interval[0])
        start, end = found[0]
        for next_start, next_end in found[1:]:
            if end is None or next_start <= end:
                end = None if end is None or next_end is None else max(end, next_end)
            else:
                spans.append(Span(org_id, scope_id, start, end))
                start, end = next_start, next_end
        spans.append(Span(org_id, scope_id, start, end))
    return sorted(spans, key=lambda s: (s.org_id, s.scope_id, s.started_at))


def _derived_spans(participant_id: uuid.UUID, org_id: uuid.UUID | None = None) -> list[Span]:
    memberships = sa.select(
        Membership.org_id, Membership.program_id, Membership.joined_at, Membership.left_at
    ).where(Membership.participant_id == participant_id)
    members = sa.select(Member.org_id, Member.joined_at).where(
        Member.participant_id == participant_id
    )
    if org_id is not None:
        memberships = memberships.where(Membership.org_id == org_id)
        members = members.where(Member.org_id == org_id)
    return derive_spans(
        [tuple(row) for row in db.session.execute(memberships)],  # type: ignore[misc]
        [tuple(row) for row in db.session.execute(members)],  # type: ignore[misc]
    )


def _stored_spans(participant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Span]]:
    """Return the spans the rollups counted for each participant (raw rows: this is hot)."""
    found: dict[uuid.UUID, list[Span]] = defaultdict(list)
    ids = list(participant_ids)
    connection = db.session.connection()
    sqlite_side = connection.dialect.name != "postgresql"
    by_hex = {pid.hex: pid for pid in ids}
    parsed: dict[Any, uuid.UUID] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        marks = ", ".join("?" if sqlite_side else "%s" for _ in chunk)
        rows = connection.exec_driver_sql(
            "SELECT participant_id, org_id, scope_id, started_at, ended_at FROM report_spans"
            f" WHERE participant_id IN ({marks})",
            tuple(pid.hex if sqlite_side else pid for pid in chunk),
        ).all()
        for pid, org_id, scope_id, started_at, ended_at in rows:
            if sqlite_side:
                pid = by_hex[pid]
                org_id = parsed.get(org_id) or parsed.setdefault(org_id, uuid.UUID(org_id))
                scope_id = parsed.get(scope_id) or parsed.setdefault(scope_id, uuid.UUID(scope_id))
                started_at = _stored_moment(started_at)
                ended_at = _stored_moment(ended_at) if ended_at else None
            found[pid].append(Span(org_id, scope_id, started_at, ended_at))
    return found


def _stored_moment(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# -- the funnel ---------------------------------------------------------------------------


def stage_times(journey: Any) -> tuple[datetime | None, ...]:
    """Return when the participant reached each funnel step after registering.

    The steps are cumulative: a step counts once every step before it is done.
    """
    if journey is None:
        return (None,) * len(STAGES)
    times: list[datetime | None] = []
    reached: datetime | None = datetime.min.replace(tzinfo=UTC)
    for moment in (
        journey.profile_complete_at,
        journey.requested_at,
        journey.matched_at,
        journey.met_at,
    ):
        reached = None if reached is None or moment is None else max(reached, moment)
        times.append(reached)
    return tuple(times)


def profile_is_complete(role: str, profile: Any) -> bool:
    """Return whether a profile has what every profile needs and what the role adds."""
    wanted = PROFILE_BASICS + PROFILE_BY_ROLE.get(role, ())
    return profile is not None and all(getattr(profile, name, None) for name in wanted)


class Deltas:
    """Changes to report days, gathered in memory and written at once."""

    def __init__(self) -> None:
        self.rows: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, key: Key, column: str, delta: int = 1) -> None:
        self.rows[key][column] += delta

    def span(
        self, span: Span, stages: tuple[datetime | None, ...], tz: ZoneInfo, sign: int = 1
    ) -> None:
        """Count a span's join and leave, and the funnel steps its member reached in it."""
        start_day = local_day(span.started_at, tz)
        end_day = local_day(span.ended_at, tz) if span.ended_at is not None else None
        self.add((span.org_id, span.scope_id, start_day), "members_joined", sign)
        if end_day is not None:
            self.add((span.org_id, span.scope_id, end_day), "members_left", sign)
        self.stages(span, stages, tz, sign)

    def stages(
        self, span: Span, stages: tuple[datetime | None, ...], tz: ZoneInfo, sign: int = 1
    ) -> None:
        for column, reached in zip(STAGES, stages, strict=True):
            if reached is None or (span.ended_at is not None and reached >= span.ended_at):
                continue
            since = local_day(max(span.started_at, reached), tz)
            self.add((span.org_id, span.scope_id, since), column, sign)
            if span.ended_at is not None:
                self.add((span.org_id, span.scope_id, local_day(span.ended_at, tz)), column, -sign)

    def write(self) -> None:
        """Add the changes to their rows, and drop rows left with nothing in them."""
        rows = [
            {"org_id": o, "scope_id": s, "day": d, **_zeros(), **dict(changes)}
            for (o, s, d), changes in self.rows.items()
            if any(changes.values())
        ]
        if not rows:
            return
        _upsert_days(rows, replace_gaps=False)
        _drop_empty([(r["org_id"], r["scope_id"], r["day"]) for r in rows])


def _zeros() -> dict[str, int]:
    return dict.fromkeys(COUNTERS + DELTAS, 0)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _upsert_days(rows: list[dict[str, Any]], *, replace_gaps: bool) -> None:
    if not replace_gaps:
        for row in rows:
            row["gaps"] = None
    db.session.execute(_days_upsert(_dialect(), replace_gaps), rows)


@lru_cache(maxsize=4)
def _days_upsert(dialect: str, replace_gaps: bool) -> Any:
    table = ReportDay.__table__
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    changes = {name: table.c[name] + statement.excluded[name] for name in COUNTERS + DELTAS}
    if replace_gaps:
        changes["gaps"] = statement.excluded.gaps
    return statement.on_conflict_do_update(
        index_elements=["org_id", "scope_id", "day"], set_=changes
    )


def _drop_empty(keys: list[Key]) -> None:
    table = ReportDay.__table__
    columns = [table.c[name] for name in COUNTERS + DELTAS]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = db.session.execute(
            sa.select(table.c.org_id, table.c.scope_id, table.c.day, table.c.gaps, *columns).where(
                sa.tuple_(table.c.org_id, table.c.scope_id, table.c.day).in_(chunk)
            )
        ).all()
        empty = [tuple(row[:3]) for row in rows if not row.gaps and not any(row[4:])]
        if empty:
            db.session.execute(
                sa.delete(table).where(
                    sa.tuple_(table.c.org_id, table.c.scope_id, table.c.day).in_(empty)
                )
            )


def _lock(org_ids: Iterable[uuid.UUID]) -> None:
    # Gap histograms are read, changed and written back: on PostgreSQL, one
    # writer per org at a time (SQLite serialises writers anyway).
    if _dialect() != "postgresql":
        return
    for org_id in sorted(set(org_ids)):
        db.session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"reports:{org_id}")))
        )


def _zones(org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ZoneInfo]:
    ids = set(org_ids)
    if not ids:
        return {}
    rows = db.session.execute(sa.select(Org.id, Org.time_zone).where(Org.id.in_(ids)))
    return {row.id: zone(row.time_zone) for row in rows}


# -- membership, profile and relationship changes --------------------------------------------


def sync_member(org: Org, participant_id: uuid.UUID) -> None:
    """Bring the rollups in line with the participant's memberships of ``org``, as of now.

    Idempotent: call it after anything that adds or ends a membership or a
    member row. A new span counts a join today (and the funnel steps already
    reached), an ended one a leave; and when that changes until when the
    participant's activity counts in a scope, their activity (one participant's
    events) is counted again there.
    """
    derived = _derived_spans(participant_id, org.id)
    stored = sorted(
        (span for span in _stored_spans([participant_id])[participant_id] if span.org_id == org.id),
        key=lambda s: (s.org_id, s.scope_id, s.started_at),
    )
    if derived == stored:
        return
    _lock([org.id])
    tz = zone(org.time_zone)
    stages = stage_times(db.session.get(Journey, participant_id))
    deltas = Deltas()
    for span in set(stored) - set(derived):
        deltas.span(span, stages, tz, -1)
        db.session.execute(
            sa.delete(ReportSpan).where(
                ReportSpan.participant_id == participant_id,
                ReportSpan.org_id == span.org_id,
                ReportSpan.scope_id == span.scope_id,
                ReportSpan.started_at == span.started_at,
            )
        )
    added = set(derived) - set(stored)
    for span in added:
        deltas.span(span, stages, tz)
    if added:
        db.session.execute(
            sa.insert(ReportSpan),
            [
                {
                    "participant_id": participant_id,
                    "org_id": span.org_id,
                    "scope_id": span.scope_id,
                    "started_at": span.started_at,
                    "ended_at": span.ended_at,
                }
                for span in added
            ],
        )
    before, after = cover_ends(stored), cover_ends(derived)
    gap_changes: dict[Key, Gaps] = defaultdict(Gaps)
    if before != after:
        _reattribute(org, participant_id, before, after, deltas, gap_changes)
    _write_days({}, gap_changes, deltas)


def _reattribute(
    org: Org,
    participant_id: uuid.UUID,
    before: dict[Scope, datetime | None],
    after: dict[Scope, datetime | None],
    deltas: Deltas,
    gap_changes: dict[Key, Gaps],
) -> None:
    """Count one participant's activity in ``org`` again, with new cover ends.

    The difference goes into ``deltas`` and ``gap_changes`` (their days' entries
    in the gap histograms depend on their own active days only); their
    member days, program days and relationships are rewritten.
    """
    zones = {org.id: zone(org.time_zone)}
    events = [
        tuple(row)
        for row in db.session.execute(
            sa.select(
                ActivityEvent.id, ActivityEvent.type, ActivityEvent.occurred_at, ActivityEvent.data
            )
            .where(ActivityEvent.participant_id == participant_id)
            .order_by(ActivityEvent.occurred_at)
        )
    ]
    old = _count_events(events, before, zones)
    new = _count_events(events, after, zones)
    empty = [0] * len(COUNTERS)
    for scope in old.keys() | new.keys():
        old_days, new_days = old.get(scope, {}), new.get(scope, {})
        for day in old_days.keys() | new_days.keys():
            was, now = old_days.get(day, empty), new_days.get(day, empty)
            for name, a, b in zip(COUNTERS, was, now, strict=True):
                if b != a:
                    deltas.add((*scope, day), name, b - a)
        for sign, days in ((-1, old_days), (1, new_days)):
            previous = None
            for day in sorted(days):
                gap_changes[(*scope, day)].add(_gap(day, previous), sign)
                previous = day
    db.session.execute(
        sa.delete(MemberDay).where(
            MemberDay.org_id == org.id, MemberDay.participant_id == participant_id
        )
    )
    db.session.execute(
        sa.delete(ScopeDay).where(
            ScopeDay.org_id == org.id, ScopeDay.participant_id == participant_id
        )
    )
    member_rows = []
    scope_rows = []
    for (org_id, scope_id), days in new.items():
        for day, counts in days.items():
            if scope_id == ALL_PROGRAMS:
                member_rows.append((org_id, participant_id, day, *counts))
            else:
                scope_rows.append((org_id, scope_id, participant_id, day))
    if member_rows:
        execute_rows(_MEMBER_DAYS_UPSERT, member_rows)
    if scope_rows:
        execute_rows(_SCOPE_DAYS_INSERT, scope_rows)
    relationships = db.session.execute(
        sa.select(
            MentoringRelationship.mentor_id,
            MentoringRelationship.mentee_id,
            MentoringRelationship.started_at,
            MentoringRelationship.ended_at,
        ).where(
            sa.or_(
                MentoringRelationship.mentor_id == participant_id,
                MentoringRelationship.mentee_id == participant_id,
            ),
            MentoringRelationship.started_at.is_not(None),
        )
    ).all()
    others = {pid for row in relationships for pid in row[:2]} - {participant_id}
    ends = {
        pid: {key: end for key, end in cover_ends(found).items() if key[0] == org.id}
        for pid, found in _stored_spans(others).items()
    }
    for mentor_id, mentee_id, started_at, ended_at in relationships:
        for sign, mine in ((-1, before), (1, after)):
            _count_relationship(
                deltas,
                {**ends, participant_id: mine},
                zones,
                [mentor_id, mentee_id],
                started_at,
                ended_at,
                sign,
            )


def sync_participant(participant_id: uuid.UUID) -> None:
    """Run ``sync_member`` for every org the participant is or was counted in."""
    org_ids = set(
        db.session.scalars(
            sa.select(Membership.org_id).where(Membership.participant_id == participant_id)
        )
    )
    org_ids |= set(
        db.session.scalars(
            sa.select(ReportSpan.org_id).where(ReportSpan.participant_id == participant_id)
        )
    )
    for org in db.session.scalars(sa.select(Org).where(Org.id.in_(org_ids)).order_by(Org.id)):
        sync_member(org, participant_id)


def note_profile(participant: Participant) -> None:
    """Record when the participant's profile became complete (or stopped being so)."""
    complete = profile_is_complete(participant.role, participant.profile)
    journey = db.session.get(Journey, participant.id)
    if complete == (journey is not None and journey.profile_complete_at is not None):
        return
    _change_journey(participant.id, profile_complete_at=utcnow() if complete else None)


def note_relationship(
    relationship: MentoringRelationship,
    previous: tuple[datetime | None, datetime | None] | None = None,
) -> None:
    """Count a relationship the platform reported (once), or a change to its start and end.

    ``previous`` is (started_at, ended_at) as last counted. A relationship
    counts in each scope where its mentor's or mentee's activity counts at its start.
    """
    people = [relationship.mentor_id, relationship.mentee_id]
    spans = _stored_spans(people)
    ends = {pid: cover_ends(spans[pid]) for pid in people}
    zones = _zones(span.org_id for pid in people for span in spans[pid])
    _lock(zones)
    deltas = Deltas()
    if previous is not None:
        _count_relationship(deltas, ends, zones, people, *previous, sign=-1)
    _count_relationship(deltas, ends, zones, people, relationship.started_at, relationship.ended_at)
    deltas.write()
    matched = db.session.scalar(
        sa.select(sa.func.min(MentoringRelationship.started_at)).where(
            MentoringRelationship.mentee_id == relationship.mentee_id,
            MentoringRelationship.started_at.is_not(None),
        )
    )
    journey = db.session.get(Journey, relationship.mentee_id)
    if (journey.matched_at if journey else None) != matched:
        _change_journey(relationship.mentee_id, matched_at=matched)


def _count_relationship(
    deltas: Deltas,
    ends: dict[uuid.UUID, dict[Scope, datetime | None]],
    zones: dict[uuid.UUID, ZoneInfo],
    people: list[uuid.UUID],
    started_at: datetime | None,
    ended_at: datetime | None,
    sign: int = 1,
) -> None:
    if started_at is None:
        return
    scopes = {
        scope
        for pid in people
        for scope, end in ends.get(pid, {}).items()
        if counts_until(end, started_at)
    }
    for org_id, scope_id in scopes:
        tz = zones[org_id]
        deltas.add((org_id, scope_id, local_day(started_at, tz)), "relationships_started", sign)
        if ended_at is not None:
            deltas.add((org_id, scope_id, local_day(ended_at, tz)), "relationships_ended", sign)


def _change_journey(participant_id: uuid.UUID, **changes: datetime | None) -> None:
    """Change journey times and move the funnel counts of every span accordingly."""
    journey = db.session.get(Journey, participant_id)
    before = stage_times(journey)
    if journey is None:
        journey = Journey(participant_id=participant_id)
        db.session.add(journey)
    for name, value in changes.items():
        setattr(journey, name, value)
    after = stage_times(journey)
    if not any(
        (journey.profile_complete_at, journey.requested_at, journey.matched_at, journey.met_at)
    ):
        if journey in db.session.new:
            db.session.expunge(journey)
        else:
            db.session.delete(journey)
    db.session.flush()
    if before == after:
        return
    spans = _stored_spans([participant_id])[participant_id]
    zones = _zones(span.org_id for span in spans)
    deltas = Deltas()
    for span in spans:
        deltas.stages(span, before, zones[span.org_id], -1)
        deltas.stages(span, after, zones[span.org_id])
    deltas.write()


@dataclass
class _Times:
    profile_complete_at: datetime | None = None
    requested_at: datetime | None = None
    matched_at: datetime | None = None
    met_at: datetime | None = None


# -- ingest ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEvent:
    """An event that passed validation and is not stored yet."""

    id: str
    participant_id: uuid.UUID
    type: str
    occurred_at: datetime
    data: dict[str, Any] | None
    relationship_id: uuid.UUID | None


EVENT_COLUMNS = (
    "id",
    "participant_id",
    "type",
    "occurred_at",
    "counterpart_id",
    "relationship_id",
    "data",
    "received_at",
)
_JOURNEY_EVENTS = {"mentor_request_sent": "requested_at", "session_logged": "met_at"}


def record_events(events: list[NewEvent]) -> None:
    """Store new events and add them to every rollup, in the caller's transaction."""
    if not events:
        return
    now = utcnow()
    insert_rows(
        ActivityEvent.__table__,
        EVENT_COLUMNS,
        (
            (e.id, e.participant_id, e.type, e.occurred_at, None, e.relationship_id, e.data, now)
            for e in events
        ),
    )
    _note_last_active(events)
    spans = _stored_spans({e.participant_id for e in events})
    ends = {pid: list(cover_ends(found).items()) for pid, found in spans.items()}
    zones = _zones(span.org_id for found in spans.values() for span in found)
    _lock(zones)
    day_counts: dict[Key, list[int]] = {}
    member_counts: dict[Key, list[int]] = {}
    program_days: set[tuple[uuid.UUID, uuid.UUID, uuid.UUID, date]] = set()
    firsts: dict[uuid.UUID, dict[str, datetime]] = defaultdict(dict)
    for event in events:
        counts = counts_of(event.type, event.data)
        if milestone := _JOURNEY_EVENTS.get(event.type):
            found = firsts[event.participant_id]
            if milestone not in found or event.occurred_at < found[milestone]:
                found[milestone] = event.occurred_at
        days: dict[uuid.UUID, date] = {}
        for (org_id, scope_id), end in ends.get(event.participant_id, ()):
            if end is not None and event.occurred_at >= end:
                continue
            day = days.get(org_id)
            if day is None:
                day = days[org_id] = local_day(event.occurred_at, zones[org_id])
            _add(day_counts.setdefault((org_id, scope_id, day), [0] * len(COUNTERS)), counts)
            if scope_id == ALL_PROGRAMS:
                member_key = (org_id, event.participant_id, day)
                _add(member_counts.setdefault(member_key, [0] * len(COUNTERS)), counts)
            else:
                program_days.add((org_id, scope_id, event.participant_id, day))
    deltas = _note_firsts(firsts, spans, zones)
    gap_changes: dict[Key, Gaps] = defaultdict(Gaps)
    _new_days([(o, ALL_PROGRAMS, p, d) for (o, p, d) in member_counts], gap_changes, program=False)
    _new_days(sorted(program_days), gap_changes, program=True)
    if member_counts:
        execute_rows(
            _MEMBER_DAYS_UPSERT,
            [(o, p, d, *counts) for (o, p, d), counts in member_counts.items()],
        )
    _write_days(day_counts, gap_changes, deltas)


_SCOPE_DAYS_INSERT = (
    "INSERT INTO report_scope_days (org_id, scope_id, participant_id, day) VALUES (?, ?, ?, ?)"
)
_MEMBER_DAYS_UPSERT = (
    f"INSERT INTO report_member_days (org_id, participant_id, day, {', '.join(COUNTERS)})"
    f" VALUES (?, ?, ?, {', '.join('?' for _ in COUNTERS)})"
    " ON CONFLICT (org_id, participant_id, day) DO UPDATE SET "
    + ", ".join(f"{c} = report_member_days.{c} + excluded.{c}" for c in COUNTERS)
)


def _note_last_active(events: list[NewEvent]) -> None:
    latest: dict[uuid.UUID, datetime] = {}
    for event in events:
        if event.participant_id not in latest or event.occurred_at > latest[event.participant_id]:
            latest[event.participant_id] = event.occurred_at
    rows = [(at, pid, at) for pid, at in latest.items()]
    for table, key in (("participants", "id"), ("members", "participant_id")):
        execute_rows(
            f"UPDATE {table} SET last_active_at = ? WHERE {key} = ?"
            " AND (last_active_at IS NULL OR last_active_at < ?)",
            rows,
        )


def _new_days(
    candidates: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, date]],
    gap_changes: dict[Key, Gaps],
    *,
    program: bool,
) -> None:
    """Record the candidates (org, scope, participant, day) that are new active days.

    A new day d between the member's previous active day p and next one n
    enters the histogram of d with gap d - p (or as a first day), and moves
    n's entry from n - p to n - d.
    """
    if not candidates:
        return
    # One probe per member finds their latest day; only days before it (events
    # arriving out of order) need the exact neighbours.
    latest = _latest_days(sorted({c[:3] for c in candidates}), program=program)
    late = [c for c in candidates if (last := latest.get(c[:3])) is not None and c[3] <= last]
    neighbours = _neighbours(late, program=program) if late else {}
    for candidate in candidates:
        if candidate not in neighbours:
            neighbours[candidate] = (latest.get(candidate[:3]), None)
    inserted: dict[tuple[uuid.UUID, uuid.UUID, uuid.UUID], list[date]] = defaultdict(list)
    new_rows = []
    for candidate in sorted(candidates):
        org_id, scope_id, pid, day = candidate
        at_or_before, after = neighbours[candidate]
        if at_or_before == day:
            continue
        mine = inserted[(org_id, scope_id, pid)]
        previous = max(
            (d for d in (at_or_before, *mine) if d is not None and d < day), default=None
        )
        following = min((d for d in (after, *mine) if d is not None and d > day), default=None)
        gap_changes[(org_id, scope_id, day)].add(_gap(day, previous))
        if following is not None:
            moved = gap_changes[(org_id, scope_id, following)]
            moved.add(_gap(following, previous), -1)
            moved.add((following - day).days)
        mine.append(day)
        if program:
            new_rows.append(candidate)
    if new_rows:
        execute_rows(_SCOPE_DAYS_INSERT, new_rows)


def _gap(day: date, previous: date | None) -> int | None:
    return None if previous is None else (day - previous).days


def _latest_days(
    members: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]], *, program: bool
) -> dict[tuple[uuid.UUID, uuid.UUID, uuid.UUID], date | None]:
    """Return each (org, scope, participant)'s latest active day, or None."""
    table = "report_scope_days" if program else "report_member_days"
    same = "t.org_id = w.o AND t.participant_id = w.p" + (
        " AND t.scope_id = w.s" if program else ""
    )
    probe = f"(SELECT max(t.day) FROM {table} t WHERE {same})"
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        sql = (
            f"SELECT w.o, w.s, w.p, {probe} FROM unnest("
            "%(o)s::uuid[], %(s)s::uuid[], %(p)s::uuid[]) AS w(o, s, p)"
        )
        columns = [list(c) for c in zip(*members, strict=True)]
        rows = connection.exec_driver_sql(sql, dict(zip("osp", columns, strict=True))).all()
        return {(o, s, p): last for o, s, p, last in rows}
    sql = (
        "WITH w(i, o, s, p) AS (SELECT key, value ->> 0, value ->> 1, value ->> 2"
        f" FROM json_each(?)) SELECT w.i, {probe} FROM w"
    )
    document = json.dumps([[_hex(o), _hex(s), _hex(p)] for o, s, p in members])
    return {
        members[index]: date.fromisoformat(last) if last else None
        for index, last in connection.exec_driver_sql(sql, (document,)).all()
    }


@lru_cache(maxsize=65536)
def _hex(value: uuid.UUID) -> str:
    return value.hex


def _neighbours(
    candidates: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, date]], *, program: bool
) -> dict[tuple[uuid.UUID, uuid.UUID, uuid.UUID, date], tuple[date | None, date | None]]:
    """Return, for each candidate, the member's last active day up to it and first one after.

    Two index probes per candidate, in one statement: the candidates travel as
    arrays on PostgreSQL and as one JSON document on SQLite, which keeps the
    statement the same size however many there are.
    """
    table = "report_scope_days" if program else "report_member_days"
    same = "t.org_id = w.o AND t.participant_id = w.p" + (
        " AND t.scope_id = w.s" if program else ""
    )
    probes = (
        f"(SELECT max(t.day) FROM {table} t WHERE {same} AND t.day <= w.d),"
        f" (SELECT min(t.day) FROM {table} t WHERE {same} AND t.day > w.d)"
    )
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        sql = (
            f"SELECT w.o, w.s, w.p, w.d, {probes} FROM unnest("
            "%(o)s::uuid[], %(s)s::uuid[], %(p)s::uuid[], %(d)s::date[]) AS w(o, s, p, d)"
        )
        columns = list(zip(*candidates, strict=True))
        params: Any = dict(zip("ospd", (list(c) for c in columns), strict=True))
        rows = connection.exec_driver_sql(sql, params).all()
        return {(o, s, p, d): (before, after) for o, s, p, d, before, after in rows}
    sql = (
        "WITH w(i, o, s, p, d) AS (SELECT key, value ->> 0, value ->> 1, value ->> 2,"
        f" value ->> 3 FROM json_each(?)) SELECT w.i, {probes} FROM w"
    )
    document = json.dumps([[_hex(o), _hex(s), _hex(p), d.isoformat()] for o, s, p, d in candidates])
    found = {}
    for index, before, after in connection.exec_driver_sql(sql, (document,)).all():
        found[candidates[index]] = (
            date.fromisoformat(before) if before else None,
            date.fromisoformat(after) if after else None,
        )
    return found


def _write_days(
    day_counts: dict[Key, list[int]], gap_changes: dict[Key, Gaps], deltas: Deltas
) -> None:
    keys = sorted(set(day_counts) | set(gap_changes) | set(deltas.rows))
    if not keys:
        return
    table = ReportDay.__table__
    stored: dict[Key, dict[str, Any] | None] = {}
    wanted = [key for key in keys if key in gap_changes]
    for start in range(0, len(wanted), 500):
        rows = db.session.execute(
            sa.select(table.c.org_id, table.c.scope_id, table.c.day, table.c.gaps).where(
                sa.tuple_(table.c.org_id, table.c.scope_id, table.c.day).in_(
                    wanted[start : start + 500]
                )
            )
        )
        stored.update({(row.org_id, row.scope_id, row.day): row.gaps for row in rows})
    with_gaps, without = [], []
    for key in keys:
        row = {"org_id": key[0], "scope_id": key[1], "day": key[2], **_zeros()}
        if key in day_counts:
            row.update(zip(COUNTERS, day_counts[key], strict=True))
        if key in deltas.rows:
            row.update(deltas.rows[key])
        if key in gap_changes:
            merged = Gaps.load(stored.get(key))
            change = gap_changes[key]
            merged.add(None, change.never)
            for gap, delta in change.counts.items():
                merged.add(gap, delta)
            row["gaps"] = merged.dump()
            with_gaps.append(row)
        else:
            without.append(row)
    if with_gaps:
        _upsert_days(with_gaps, replace_gaps=True)
    if without:
        _upsert_days(without, replace_gaps=False)
    lowered = [k for k, changes in deltas.rows.items() if any(v < 0 for v in changes.values())]
    if lowered:
        _drop_empty(lowered)


def _note_firsts(
    firsts: dict[uuid.UUID, dict[str, datetime]],
    spans: dict[uuid.UUID, list[Span]],
    zones: dict[uuid.UUID, ZoneInfo],
) -> Deltas:
    """Move journeys' first request and first session earlier where the batch says so.

    Returns the funnel changes this makes in every span of those participants.
    """
    deltas = Deltas()
    if not firsts:
        return deltas
    ids = list(firsts)
    journeys = {
        row[0]: _Times(*row[1:])
        for row in db.session.execute(
            sa.select(
                Journey.participant_id,
                Journey.profile_complete_at,
                Journey.requested_at,
                Journey.matched_at,
                Journey.met_at,
            ).where(Journey.participant_id.in_(ids))
        )
    }
    changed = []
    for pid in ids:
        times = journeys.get(pid) or _Times()
        before = stage_times(times)
        moved = False
        for milestone, first in firsts[pid].items():
            current = getattr(times, milestone)
            if current is None or first < current:
                setattr(times, milestone, first)
                moved = True
        if not moved:
            continue
        changed.append({"participant_id": pid, **vars(times)})
        after = stage_times(times)
        if before != after:
            for span in spans.get(pid, ()):
                deltas.stages(span, before, zones[span.org_id], -1)
                deltas.stages(span, after, zones[span.org_id])
    if changed:
        db.session.execute(_journey_upsert(_dialect()), changed)
    return deltas


@lru_cache(maxsize=4)
def _journey_upsert(dialect: str) -> Any:
    table = Journey.__table__
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=["participant_id"],
        set_={
            name: statement.excluded[name]
            for name in ("profile_complete_at", "requested_at", "matched_at", "met_at")
        },
    )


# -- rebuild ----------------------------------------------------------------------------------


@dataclass
class RebuildReport:
    events: int = 0
    days: int = 0
    member_days: int = 0
    scope_days: int = 0
    spans: int = 0
    journeys: int = 0
    seconds: float = 0.0


@dataclass
class _Day:
    counts: list[int] = field(default_factory=lambda: [0] * len(COUNTERS))
    deltas: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    gaps: Gaps = field(default_factory=Gaps)


def rebuild() -> RebuildReport:
    """Recompute every rollup from events, memberships, profiles and relationships."""
    started = time.perf_counter()
    report = RebuildReport()
    zones = {
        org_id: zone(name) for org_id, name in db.session.execute(sa.select(Org.id, Org.time_zone))
    }
    _lock(zones)
    kept_profiles = dict(
        db.session.execute(
            sa.select(Journey.participant_id, Journey.profile_complete_at).where(
                Journey.profile_complete_at.is_not(None)
            )
        ).all()
    )
    for model in (ReportDay, MemberDay, ScopeDay, ReportSpan, Journey):
        db.session.execute(sa.delete(model))
    spans = _all_spans()
    days: dict[Key, _Day] = defaultdict(_Day)
    firsts: dict[uuid.UUID, dict[str, datetime]] = defaultdict(dict)
    member_rows: list[tuple[Any, ...]] = []
    scope_rows: list[tuple[Any, ...]] = []
    for participant_id, events in _events_by_participant():
        report.events += len(events)
        for _id, kind, occurred_at, _data in events:
            if milestone := _JOURNEY_EVENTS.get(kind):
                firsts[participant_id].setdefault(milestone, occurred_at)
        ends = cover_ends(spans.get(participant_id, []))
        active = _count_events(events, ends, zones)
        for (org_id, scope_id), by_day in active.items():
            previous = None
            for day in sorted(by_day):
                found = days[(org_id, scope_id, day)]
                found.gaps.add(_gap(day, previous))
                _add(found.counts, by_day[day])
                previous = day
                if scope_id == ALL_PROGRAMS:
                    member_rows.append((org_id, participant_id, day, *by_day[day]))
                else:
                    scope_rows.append((org_id, scope_id, participant_id, day))
        if len(member_rows) + len(scope_rows) >= _BATCH:
            report.member_days += _flush_member_days(member_rows)
            report.scope_days += _flush_scope_days(scope_rows)
    report.member_days += _flush_member_days(member_rows)
    report.scope_days += _flush_scope_days(scope_rows)
    journeys = _rebuilt_journeys(firsts, kept_profiles)
    for participant_id, found in spans.items():
        stages = stage_times(journeys.get(participant_id))
        for span in found:
            deltas = Deltas()
            deltas.span(span, stages, zones[span.org_id])
            for key, changes in deltas.rows.items():
                for column, delta in changes.items():
                    days[key].deltas[column] += delta
    _count_all_relationships(spans, zones, days)
    report.spans = insert_rows(
        ReportSpan.__table__,
        ("participant_id", "org_id", "scope_id", "started_at", "ended_at"),
        (
            (pid, s.org_id, s.scope_id, s.started_at, s.ended_at)
            for pid, found in spans.items()
            for s in found
        ),
    )
    report.journeys = insert_rows(
        Journey.__table__,
        ("participant_id", "profile_complete_at", "requested_at", "matched_at", "met_at"),
        (
            (pid, j.profile_complete_at, j.requested_at, j.matched_at, j.met_at)
            for pid, j in journeys.items()
        ),
    )
    report.days = insert_rows(
        ReportDay.__table__,
        ("org_id", "scope_id", "day", "gaps", *COUNTERS, *DELTAS),
        (
            (*key, day.gaps.dump(), *day.counts, *(day.deltas.get(name, 0) for name in DELTAS))
            for key, day in sorted(days.items())
            if day.gaps.never or day.gaps.counts or any(day.counts) or any(day.deltas.values())
        ),
    )
    db.session.flush()
    report.seconds = time.perf_counter() - started
    return report


def _all_spans() -> dict[uuid.UUID, list[Span]]:
    memberships: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in db.session.execute(
        sa.select(
            Membership.participant_id,
            Membership.org_id,
            Membership.program_id,
            Membership.joined_at,
            Membership.left_at,
        ).execution_options(yield_per=_BATCH)
    ):
        memberships[row[0]].append(tuple(row[1:]))
    members: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in db.session.execute(
        sa.select(Member.participant_id, Member.org_id, Member.joined_at).execution_options(
            yield_per=_BATCH
        )
    ):
        members[row[0]].append(tuple(row[1:]))
    return {
        pid: derive_spans(memberships.get(pid, []), members.get(pid, []))
        for pid in set(memberships) | set(members)
    }


def _events_by_participant() -> Iterator[tuple[uuid.UUID, list[tuple[Any, ...]]]]:
    """Yield each participant's events, oldest first, one participant at a time."""
    current: uuid.UUID | None = None
    events: list[tuple[Any, ...]] = []
    for participant_id, event in _event_rows():
        if participant_id != current:
            if events and current is not None:
                yield current, events
            current, events = participant_id, []
        events.append(event)
    if events and current is not None:
        yield current, events


def _event_rows() -> Iterator[tuple[uuid.UUID, tuple[Any, ...]]]:
    """Yield (participant, (id, type, occurred_at, data)) for every event, by participant and time.

    A rebuild reads every event once: on SQLite the driver's rows are decoded
    here directly (ids per participant, times by the C parser, JSON only where
    there is some), which costs a fraction of general result processing.
    """
    stmt = (
        sa.select(
            ActivityEvent.participant_id,
            ActivityEvent.id,
            ActivityEvent.type,
            ActivityEvent.occurred_at,
            ActivityEvent.data,
        )
        .order_by(ActivityEvent.participant_id, ActivityEvent.occurred_at)
        .execution_options(yield_per=_BATCH)
    )
    if _dialect() != "sqlite":
        for row in db.session.execute(stmt):
            yield row[0], tuple(row[1:])
        return
    cursor = db.session.connection().connection.dbapi_connection.cursor()
    cursor.execute(
        "SELECT participant_id, id, type, occurred_at, data FROM activity_events"
        " ORDER BY participant_id, occurred_at"
    )
    hex_id, participant = None, None
    moment = datetime.fromisoformat
    while rows := cursor.fetchmany(_BATCH):
        for pid, event_id, kind, occurred_at, data in rows:
            if pid != hex_id:
                hex_id, participant = pid, uuid.UUID(pid)
            yield (
                participant,
                (
                    event_id,
                    kind,
                    moment(occurred_at).replace(tzinfo=UTC),
                    json.loads(data) if data is not None else None,
                ),
            )
    cursor.close()


def _count_events(
    events: list[tuple[Any, ...]],
    ends: dict[Scope, datetime | None],
    zones: dict[uuid.UUID, ZoneInfo],
) -> dict[Scope, dict[date, list[int]]]:
    """Return one participant's counts per scope and local day, given their cover ends."""
    active: dict[Scope, dict[date, list[int]]] = defaultdict(dict)
    if not ends:
        return active
    for _id, kind, occurred_at, data in events:
        counts = None
        local: dict[uuid.UUID, date] = {}
        for (org_id, scope_id), end in ends.items():
            if end is not None and occurred_at >= end:
                continue
            if counts is None:
                counts = counts_of(kind, data)
            day = local.get(org_id)
            if day is None:
                day = local[org_id] = local_day(occurred_at, zones[org_id])
            _add(active[(org_id, scope_id)].setdefault(day, [0] * len(COUNTERS)), counts)
    return active


def _flush_member_days(rows: list[tuple[Any, ...]]) -> int:
    count = insert_rows(MemberDay.__table__, ("org_id", "participant_id", "day", *COUNTERS), rows)
    rows.clear()
    return count


def _flush_scope_days(rows: list[tuple[Any, ...]]) -> int:
    count = insert_rows(ScopeDay.__table__, ("org_id", "scope_id", "participant_id", "day"), rows)
    rows.clear()
    return count


def _rebuilt_journeys(
    firsts: dict[uuid.UUID, dict[str, datetime]], kept_profiles: dict[uuid.UUID, datetime]
) -> dict[uuid.UUID, _Times]:
    journeys: dict[uuid.UUID, _Times] = {}

    def journey(pid: uuid.UUID) -> _Times:
        if pid not in journeys:
            journeys[pid] = _Times()
        return journeys[pid]

    for pid, found in firsts.items():
        for milestone, moment in found.items():
            setattr(journey(pid), milestone, moment)
    matched = db.session.execute(
        sa.select(MentoringRelationship.mentee_id, sa.func.min(MentoringRelationship.started_at))
        .where(MentoringRelationship.started_at.is_not(None))
        .group_by(MentoringRelationship.mentee_id)
    )
    for pid, moment in matched:
        journey(pid).matched_at = moment
    wanted = sorted({*PROFILE_BASICS, *(f for fs in PROFILE_BY_ROLE.values() for f in fs)})
    profiles = db.session.execute(
        sa.select(
            Participant.id,
            Participant.role,
            Profile.updated_at,
            *(getattr(Profile, name) for name in wanted),
        )
        .join(Profile, Profile.participant_id == Participant.id)
        .execution_options(yield_per=_BATCH)
    )
    for row in profiles:
        if profile_is_complete(row.role, row):
            journey(row.id).profile_complete_at = kept_profiles.get(row.id, row.updated_at)
    return journeys


def _count_all_relationships(
    spans: dict[uuid.UUID, list[Span]], zones: dict[uuid.UUID, ZoneInfo], days: dict[Key, _Day]
) -> None:
    ends: dict[uuid.UUID, dict[Scope, datetime | None]] = {}

    def ends_of(pid: uuid.UUID) -> dict[Scope, datetime | None]:
        if pid not in ends:
            ends[pid] = cover_ends(spans.get(pid, []))
        return ends[pid]

    rows = db.session.execute(
        sa.select(
            MentoringRelationship.mentor_id,
            MentoringRelationship.mentee_id,
            MentoringRelationship.started_at,
            MentoringRelationship.ended_at,
        )
        .where(MentoringRelationship.started_at.is_not(None))
        .execution_options(yield_per=_BATCH)
    )
    for mentor_id, mentee_id, started_at, ended_at in rows:
        deltas = Deltas()
        people = [mentor_id, mentee_id]
        found = {pid: ends_of(pid) for pid in people}
        _count_relationship(deltas, found, zones, people, started_at, ended_at)
        for key, changes in deltas.rows.items():
            for column, delta in changes.items():
                days[key].deltas[column] += delta
