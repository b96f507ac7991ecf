"""Read the rollups: a range's figures, the dashboard, the impact report, a member's report.

Everything here reads ``report_days`` (a few hundred small rows per question,
whatever the size of the org) or one member's own rows; nothing scans raw
events except a member's timeline, which is that member's events only.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from console.extensions import db
from console.models import ALL_PROGRAMS
from console.models import ActivityEvent
from console.models import MemberDay
from console.models import MentoringRelationship
from console.models import Org
from console.models import Program
from console.models import ReportDay
from console.models import ReportSpan
from console.models.reports import COUNTERS
from console.services import audit
from console.services.rollups import active_between
from console.services.rollups import today_in
from console.services.rollups import zone

PRESETS = ("30d", "quarter", "year", "custom")
MAX_DAYS = 3660
FIRST_DAY = date(2000, 1, 1)
THRESHOLD_RANGE = (3, 100)
TIMELINE_PAGE = 25
SUM_COLUMNS = tuple(name for name in COUNTERS) + ("members_joined", "members_left")


class FilterError(ValueError):
    """A report parameter that cannot be used; the message starts with its name."""


# -- ranges ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Inclusive local days."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """Return the period of the same length just before this one."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def bounds(self, tz: Any) -> tuple[datetime, datetime]:
        """Return the period as UTC instants [start, end)."""
        start = datetime.combine(self.start, time.min, tz).astimezone(UTC)
        end = datetime.combine(self.end + timedelta(days=1), time.min, tz).astimezone(UTC)
        return start, end


def preset_period(preset: str, today: date) -> Period:
    """Return the days a preset covers, up to and including ``today``."""
    if preset == "quarter":
        return Period(date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today)
    if preset == "year":
        return Period(date(today.year, 1, 1), today)
    return Period(today - timedelta(days=29), today)


def parse_day(value: str, name: str) -> date:
    """Return the date an ISO 8601 ``YYYY-MM-DD`` parameter names, or raise FilterError."""
    try:
        if len(value) != 10:
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name}: use a date as YYYY-MM-DD.") from None
    if day < FIRST_DAY:
        raise FilterError(f"{name}: use a date from {FIRST_DAY.isoformat()} on.")
    return day


def custom_period(start: date, end: date) -> Period:
    """Return the period from ``start`` to ``end``, checking its order and length."""
    if start > end:
        raise FilterError("from: must not be after to.")
    if (end - start).days + 1 > MAX_DAYS:
        raise FilterError(f"to: a range covers at most {MAX_DAYS:,} days.")
    return Period(start, end)


def program_in(org: Org, value: str | None) -> Program | None:
    """Return the org's program with the id ``value`` (None for all programs)."""
    if not value:
        return None
    try:
        wanted = uuid.UUID(value)
    except ValueError:
        raise FilterError("program: not a program id.") from None
    found = next((p for p in org.programs if p.id == wanted), None)
    if found is None:
        raise FilterError("program: no such program in this organization.")
    return found


@dataclass(frozen=True)
class ReportFilters:
    """A report's range (a preset or custom days) and program, read from URL parameters."""

    preset: str
    period: Period
    program: Program | None

    @classmethod
    def from_args(cls, args: Any, org: Org, default: str = "30d") -> ReportFilters:
        program = program_in(org, args.get("program"))
        preset = args.get("preset") or ""
        if preset and preset not in PRESETS:
            raise FilterError(f"preset: use one of {', '.join(PRESETS)}.")
        given = args.get("from") or args.get("to")
        if preset == "custom" or (not preset and given):
            today = today_in(org)
            end = parse_day(args["to"], "to") if args.get("to") else today
            start = (
                parse_day(args["from"], "from") if args.get("from") else end - timedelta(days=29)
            )
            return cls("custom", custom_period(start, end), program)
        preset = preset or default
        return cls(preset, preset_period(preset, today_in(org)), program)

    @property
    def scope_id(self) -> uuid.UUID:
        return self.program.id if self.program else ALL_PROGRAMS

    def as_args(self) -> dict[str, str]:
        """Return the filters as URL parameters: the preset, or the custom days."""
        args = {"preset": self.preset}
        if self.preset == "custom":
            args.update({"from": self.period.start.isoformat(), "to": self.period.end.isoformat()})
        if self.program:
            args["program"] = str(self.program.id)
        return args


# -- reading rollups --------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRow:
    day: date
    gaps: dict[str, Any] | None
    sums: dict[str, int]


def day_rows(org: Org, scope_id: uuid.UUID, start: date, end: date) -> list[DayRow]:
    """Return the scope's report days from ``start`` to ``end``, in order."""
    table = ReportDay.__table__
    rows = db.session.execute(
        sa.select(table.c.day, table.c.gaps, *(table.c[name] for name in SUM_COLUMNS))
        .where(
            table.c.org_id == org.id,
            table.c.scope_id == scope_id,
            table.c.day >= start,
            table.c.day <= end,
        )
        .order_by(table.c.day)
    )
    return [DayRow(row[0], row[1], dict(zip(SUM_COLUMNS, row[2:], strict=True))) for row in rows]


def stocks(org: Org, scope_id: uuid.UUID, ends: list[date]) -> dict[date, dict[str, int]]:
    """Return, at the end of each of ``ends``, the scope's members and funnel steps.

    Also how many relationships had started (``started``) and ended
    (``ended``) by then. Each is a running sum of the days' changes.
    """
    table = ReportDay.__table__
    columns = {
        "members": table.c.members_joined - table.c.members_left,
        "started": table.c.relationships_started,
        "ended": table.c.relationships_ended,
        "profile": table.c.reached_profile,
        "request": table.c.reached_request,
        "match": table.c.reached_match,
        "meeting": table.c.reached_meeting,
    }
    ends = sorted(set(ends))
    selected = [
        sa.func.coalesce(sa.func.sum(sa.case((table.c.day <= end, column), else_=0)), 0)
        for end in ends
        for column in columns.values()
    ]
    row = db.session.execute(
        sa.select(*selected).where(
            table.c.org_id == org.id, table.c.scope_id == scope_id, table.c.day <= ends[-1]
        )
    ).one()
    values = iter(row)
    return {end: {name: int(next(values)) for name in columns} for end in ends}


def _sum(rows: list[DayRow], name: str, start: date, end: date) -> int:
    return sum(row.sums[name] for row in rows if start <= row.day <= end)


def _active(rows: list[DayRow], start: date, end: date) -> int:
    return active_between(((r.day, r.gaps) for r in rows if start <= r.day <= end), start)


# -- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The dashboard's figures for one period (the API's summary)."""

    period: Period
    members: int
    active_members: int
    new_members: int
    mentor_requests: int
    requests_accepted: int
    active_relationships: int
    sessions: int
    messages: int
    feedback_count: int
    rating_sum: int
    jobs_reported: int
    revenue_cents: int

    @property
    def acceptance_rate(self) -> float | None:
        # Acceptances of requests sent before the range can outnumber its requests.
        if not self.mentor_requests:
            return None
        return min(1.0, self.requests_accepted / self.mentor_requests)

    @property
    def average_rating(self) -> float | None:
        return self.rating_sum / self.feedback_count if self.feedback_count else None

    @property
    def revenue_reported(self) -> float:
        return self.revenue_cents / 100

    def to_api(self) -> dict[str, Any]:
        return {
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "members": self.members,
            "active_members": self.active_members,
            "new_members": self.new_members,
            "mentor_requests": self.mentor_requests,
            "requests_accepted": self.requests_accepted,
            "acceptance_rate": self.acceptance_rate,
            "active_relationships": self.active_relationships,
            "sessions": self.sessions,
            "messages": self.messages,
            "average_rating": self.average_rating,
            "jobs_reported": self.jobs_reported,
            "revenue_reported": self.revenue_reported,
        }


def _figures(
    period: Period, rows: list[DayRow], at_end: dict[str, int], before_start: dict[str, int]
) -> Figures:
    start, end = period.start, period.end
    return Figures(
        period=period,
        members=at_end["members"],
        active_members=_active(rows, start, end),
        new_members=_sum(rows, "members_joined", start, end),
        mentor_requests=_sum(rows, "requests_sent", start, end),
        requests_accepted=_sum(rows, "requests_accepted", start, end),
        # Started by the end and not ended before the start.
        active_relationships=at_end["started"] - before_start["ended"],
        sessions=_sum(rows, "sessions", start, end),
        messages=_sum(rows, "messages", start, end),
        feedback_count=_sum(rows, "feedback_count", start, end),
        rating_sum=_sum(rows, "rating_sum", start, end),
        jobs_reported=_sum(rows, "jobs", start, end),
        revenue_cents=_sum(rows, "revenue_cents", start, end),
    )


def summary(org: Org, scope_id: uuid.UUID, period: Period) -> Figures:
    """Return the figures of ``period`` for the org, or one of its programs."""
    rows = day_rows(org, scope_id, period.start, period.end)
    day_before = period.start - timedelta(days=1)
    found = stocks(org, scope_id, [period.end, day_before])
    return _figures(period, rows, found[period.end], found[day_before])


@dataclass(frozen=True)
class Point:
    start: date
    end: date
    values: dict[str, float]


@dataclass(frozen=True)
class Dashboard:
    filters: ReportFilters
    current: Figures
    previous: Figures
    weekly_active: list[Point]
    funnel: list[tuple[str, int]]
    outcomes: list[Point]
    monthly: bool


FUNNEL_STEPS = ("registered", "profile", "request", "match", "meeting")


def dashboard(org: Org, filters: ReportFilters) -> Dashboard:
    """Return this period and the one before it, weekly activity, the funnel and outcomes."""
    period, scope_id = filters.period, filters.scope_id
    previous = period.previous()
    rows = day_rows(org, scope_id, previous.start, period.end)
    before_previous = previous.start - timedelta(days=1)
    found = stocks(org, scope_id, [period.end, previous.end, before_previous])
    current = _figures(period, rows, found[period.end], found[previous.end])
    earlier = _figures(previous, rows, found[previous.end], found[before_previous])
    at_end = found[period.end]
    funnel = [("registered", at_end["members"])] + [
        (step, at_end[step]) for step in FUNNEL_STEPS[1:]
    ]
    weekly = [
        Point(start, end, {"active": _active(rows, start, end)}) for start, end in weeks(period)
    ]
    monthly = period.days > 92
    buckets = months(period) if monthly else weeks(period)
    outcomes = [
        Point(
            start,
            end,
            {
                "outcomes": _sum(rows, "outcomes", start, end),
                "jobs": _sum(rows, "jobs", start, end),
                "revenue": _sum(rows, "revenue_cents", start, end) / 100,
            },
        )
        for start, end in buckets
    ]
    return Dashboard(filters, current, earlier, weekly, funnel, outcomes, monthly)


def weeks(period: Period) -> list[tuple[date, date]]:
    """Return the period's weeks (Monday to Sunday), the first and last cut to the period."""
    found = []
    start = period.start
    while start <= period.end:
        end = min(start + timedelta(days=6 - start.weekday()), period.end)
        found.append((start, end))
        start = end + timedelta(days=1)
    return found


def months(period: Period) -> list[tuple[date, date]]:
    """Return the period's calendar months, the first and last cut to the period."""
    found = []
    start = period.start
    while start <= period.end:
        following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        end = min(following - timedelta(days=1), period.end)
        found.append((start, end))
        start = end + timedelta(days=1)
    return found


# -- impact report --------------------------------------------------------------------------

IMPACT_METRICS = ("members", "new_members", "active_members", "sessions", "jobs")


@dataclass
class Cell:
    value: int
    suppressed: bool = False


@dataclass
class ImpactTable:
    metric: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]]


@dataclass
class Impact:
    year: int
    years: list[int]
    threshold: int
    quarters: list[Period]
    tables: list[ImpactTable] = field(default_factory=list)


def impact_years(org: Org) -> list[int]:
    """Return the years the org has report data for, through this one, newest first."""
    first = db.session.scalar(
        sa.select(sa.func.min(ReportDay.day)).where(ReportDay.org_id == org.id)
    )
    this_year = today_in(org).year
    first_year = first.year if first else this_year
    return list(range(this_year, first_year - 1, -1))


def impact(org: Org, year: int) -> Impact:
    """Return the impact report: per program and quarter, small cells suppressed.

    Rows are the programs and the whole org, columns the quarters that have
    begun and the year. Every cell under the org's threshold is suppressed,
    then more cells are, until no row or column has exactly one suppressed
    cell, so none can be recovered from a total.
    """
    today = today_in(org)
    years = impact_years(org)
    if year not in years:
        raise FilterError("year: no report data for this year.")
    quarters = [
        Period(date(year, month, 1), min(_quarter_end(year, month), today))
        for month in (1, 4, 7, 10)
        if date(year, month, 1) <= today
    ]
    whole = Period(date(year, 1, 1), min(date(year, 12, 31), today))
    periods = [*quarters, whole]
    scopes: list[tuple[str, uuid.UUID]] = [(p.name, p.id) for p in org.programs]
    scopes.append(("", ALL_PROGRAMS))
    values: dict[str, list[list[int]]] = {metric: [] for metric in IMPACT_METRICS}
    for _name, scope_id in scopes:
        rows = day_rows(org, scope_id, whole.start, whole.end)
        found = stocks(org, scope_id, [p.end for p in periods])
        values["members"].append([found[p.end]["members"] for p in periods])
        values["new_members"].append(
            [_sum(rows, "members_joined", p.start, p.end) for p in periods]
        )
        values["active_members"].append([_active(rows, p.start, p.end) for p in periods])
        values["sessions"].append([_sum(rows, "sessions", p.start, p.end) for p in periods])
        values["jobs"].append([_sum(rows, "jobs", p.start, p.end) for p in periods])
    columns = [f"Q{index + 1}" for index in range(len(quarters))] + [str(year)]
    report = Impact(year, years, org.report_threshold, quarters)
    for metric in IMPACT_METRICS:
        grid = values[metric]
        hidden = suppress(grid, org.report_threshold)
        report.tables.append(
            ImpactTable(
                metric,
                columns,
                [
                    (name, [Cell(v, h) for v, h in zip(line, mask, strict=True)])
                    for (name, _), line, mask in zip(scopes, grid, hidden, strict=True)
                ],
            )
        )
    return report


def _quarter_end(year: int, month: int) -> date:
    return date(year + (month + 2) // 12, (month + 2) % 12 + 1, 1) - timedelta(days=1)


def suppress(grid: list[list[int]], threshold: int) -> list[list[bool]]:
    """Return which cells to hide: those under ``threshold``, then enough others.

    The last row and the last column are totals of the others. Secondary
    suppression hides the smallest visible cell of any row or column that has
    exactly one hidden cell, until none has, so a hidden value cannot be worked
    out by subtracting the visible ones from a total.
    """
    hidden = [[value < threshold for value in line] for line in grid]
    if not grid:
        return hidden
    height, width = len(grid), len(grid[0])
    lines = [[(r, c) for c in range(width)] for r in range(height)]
    lines += [[(r, c) for r in range(height)] for c in range(width)]
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(hidden[r][c] for r, c in line) != 1:
                continue
            visible = [(grid[r][c], r, c) for r, c in line if not hidden[r][c]]
            if visible:
                _, r, c = min(visible)
                hidden[r][c] = True
                changed = True
    return hidden


def set_threshold(actor: Any, org: Org, threshold: int) -> Org:
    """Change the count under which impact report cells are suppressed."""
    low, high = THRESHOLD_RANGE
    if not low <= threshold <= high:
        raise FilterError(f"threshold: use a whole number from {low} to {high}.")
    before = org.report_threshold
    if before == threshold:
        return org
    org.report_threshold = threshold
    db.session.flush()
    audit.record(
        actor,
        "org.report_threshold_changed",
        org=org,
        target=org,
        details={"threshold": {"before": before, "after": threshold}},
    )
    return org


# -- a member's report -------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberTotals:
    active_days: int
    sums: dict[str, int]

    @property
    def average_rating(self) -> float | None:
        count = self.sums["feedback_count"]
        return self.sums["rating_sum"] / count if count else None


def member_totals(org: Org, participant_id: uuid.UUID, period: Period) -> MemberTotals:
    """Return the member's sums over the period (their activity while a member of the org)."""
    table = MemberDay.__table__
    row = db.session.execute(
        sa.select(
            sa.func.count(),
            *(sa.func.coalesce(sa.func.sum(table.c[name]), 0) for name in COUNTERS),
        ).where(
            table.c.org_id == org.id,
            table.c.participant_id == participant_id,
            table.c.day >= period.start,
            table.c.day <= period.end,
        )
    ).one()
    return MemberTotals(row[0], {name: int(v) for name, v in zip(COUNTERS, row[1:], strict=True)})


def _member_window(org: Org, participant_id: uuid.UUID, period: Period) -> sa.ColumnElement[bool]:
    """Return the condition on the member's events that fall in the period and count for the org.

    As in the rollups: everything up to when they last left the org (all of it
    while they belong to it).
    """
    start, end = period.bounds(zone(org.time_zone))
    spans = db.session.execute(
        sa.select(ReportSpan.started_at, ReportSpan.ended_at).where(
            ReportSpan.participant_id == participant_id,
            ReportSpan.org_id == org.id,
            ReportSpan.scope_id == ALL_PROGRAMS,
        )
    ).all()
    if not spans:
        return sa.false()
    ends = [ended for _, ended in spans]
    if None not in ends:
        end = min(end, max(ends))  # type: ignore[type-var]
    return sa.and_(ActivityEvent.occurred_at >= start, ActivityEvent.occurred_at < end)


@dataclass(frozen=True)
class Timeline:
    events: list[ActivityEvent]
    next_cursor: str | None


def encode_event_cursor(event: ActivityEvent) -> str:
    raw = json.dumps({"t": event.occurred_at.isoformat(), "k": event.id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_event_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        moment = datetime.fromisoformat(payload["t"])
        key = payload["k"]
        if moment.tzinfo is None or not isinstance(key, str):
            raise ValueError(cursor)
        return moment, key
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise FilterError("cursor: not valid; start again from the first page.") from None


def timeline(
    org: Org,
    participant_id: uuid.UUID,
    period: Period,
    cursor: str | None,
    limit: int = TIMELINE_PAGE,
) -> Timeline:
    """Return one page of the member's events in the period, newest first (keyset on time, id)."""
    stmt = sa.select(ActivityEvent).where(
        ActivityEvent.participant_id == participant_id,
        _member_window(org, participant_id, period),
    )
    if cursor:
        moment, key = decode_event_cursor(cursor)
        stmt = stmt.where(
            sa.or_(
                ActivityEvent.occurred_at < moment,
                sa.and_(ActivityEvent.occurred_at == moment, ActivityEvent.id < key),
            )
        )
    stmt = stmt.order_by(ActivityEvent.occurred_at.desc(), ActivityEvent.id.desc()).limit(limit + 1)
    events = list(db.session.scalars(stmt))
    more = len(events) > limit
    events = events[:limit]
    return Timeline(events, encode_event_cursor(events[-1]) if more and events else None)


def outcomes_of(org: Org, participant_id: uuid.UUID, period: Period) -> list[ActivityEvent]:
    """Return the business outcomes the member reported in the period, newest first."""
    return list(
        db.session.scalars(
            sa.select(ActivityEvent)
            .where(
                ActivityEvent.participant_id == participant_id,
                ActivityEvent.type == "outcome_reported",
                _member_window(org, participant_id, period),
            )
            .order_by(ActivityEvent.occurred_at.desc())
            .limit(100)
        )
    )


@dataclass(frozen=True)
class RelationshipFeedback:
    relationship: MentoringRelationship
    ratings: list[tuple[uuid.UUID, int, datetime]]  # (who gave it, rating, when)

    @property
    def average(self) -> float | None:
        if not self.ratings:
            return None
        return sum(rating for _, rating, _ in self.ratings) / len(self.ratings)


def relationship_feedback(
    relationships: list[MentoringRelationship], visible: set[uuid.UUID]
) -> list[RelationshipFeedback]:
    """Return each relationship with the feedback given in it by the org's members (``visible``)."""
    ids = [r.id for r in relationships]
    givers = visible & ({r.mentor_id for r in relationships} | {r.mentee_id for r in relationships})
    ratings: dict[uuid.UUID, list[tuple[uuid.UUID, int, datetime]]] = {rid: [] for rid in ids}
    if ids and givers:
        rows = db.session.execute(
            sa.select(
                ActivityEvent.relationship_id,
                ActivityEvent.participant_id,
                ActivityEvent.data,
                ActivityEvent.occurred_at,
            )
            .where(
                ActivityEvent.participant_id.in_(givers),
                ActivityEvent.type == "feedback_given",
                ActivityEvent.relationship_id.in_(ids),
            )
            .order_by(ActivityEvent.occurred_at)
        )
        for relationship_id, giver, data, occurred_at in rows:
            rating = (data or {}).get("rating")
            if isinstance(rating, int):
                ratings[relationship_id].append((giver, rating, occurred_at))
    return [RelationshipFeedback(r, ratings[r.id]) for r in relationships]
