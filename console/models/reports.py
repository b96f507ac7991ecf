"""Report rollups: what the dashboards read instead of raw events.

Days are the org's local days. A *scope* is one of the org's programs or, with
the all-zero id ``ALL_PROGRAMS``, the whole org; a non-null key lets it sit in a
primary key on every database. ``console.services.rollups`` keeps these tables
in step with events and memberships, and rebuilds them from scratch.
"""

from __future__ import annotations

import uuid
from datetime import date
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from console.models.base import db

ALL_PROGRAMS = uuid.UUID(int=0)

# What each event adds to a day: the columns shared by ReportDay and MemberDay.
COUNTERS = (
    "events",
    "sign_ins",
    "profile_updates",
    "requests_sent",
    "requests_received",
    "requests_accepted",
    "requests_declined",
    "messages",
    "sessions",
    "session_minutes",
    "feedback_count",
    "rating_sum",
    "outcomes",
    "jobs",
    "revenue_cents",
    "surveys",
)
# Net changes of the day in how many members the scope has and how far they got.
DELTAS = (
    "members_joined",
    "members_left",
    "relationships_started",
    "relationships_ended",
    "reached_profile",
    "reached_request",
    "reached_match",
    "reached_meeting",
)


def _count() -> Any:
    return mapped_column(sa.Integer, default=0, server_default="0")


def _total() -> Any:
    # Sums of what events report (minutes, counts, jobs) could outgrow 32 bits.
    return mapped_column(sa.BigInteger, default=0, server_default="0")


class _Counters:
    events: Mapped[int] = _count()
    sign_ins: Mapped[int] = _count()
    profile_updates: Mapped[int] = _count()
    requests_sent: Mapped[int] = _count()
    requests_received: Mapped[int] = _count()
    requests_accepted: Mapped[int] = _count()
    requests_declined: Mapped[int] = _count()
    # Sums of message counts, minutes, ratings, jobs: never any content.
    messages: Mapped[int] = _total()
    sessions: Mapped[int] = _count()
    session_minutes: Mapped[int] = _total()
    feedback_count: Mapped[int] = _count()
    rating_sum: Mapped[int] = _total()
    outcomes: Mapped[int] = _count()
    jobs: Mapped[int] = _total()
    # Whole cents, so sums are exact and equal on SQLite and PostgreSQL.
    revenue_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    surveys: Mapped[int] = _count()


class ReportDay(_Counters, db.Model):
    """One scope's day: event sums, who was active, and changes in membership and progress.

    ``gaps`` describes the day's active members by how long ago they were last
    active before it (in days), which answers "how many distinct members were
    active between F and T" from one row per day: ``{"n": first-timers, "g":
    [gaps ascending], "c": [how many had a gap of at least g[i]]}``.
    """

    __tablename__ = "report_days"

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    scope_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    gaps: Mapped[dict[str, Any] | None]
    members_joined: Mapped[int] = _count()
    members_left: Mapped[int] = _count()
    relationships_started: Mapped[int] = _count()
    relationships_ended: Mapped[int] = _count()
    reached_profile: Mapped[int] = _count()
    reached_request: Mapped[int] = _count()
    reached_match: Mapped[int] = _count()
    reached_meeting: Mapped[int] = _count()


class MemberDay(_Counters, db.Model):
    """A member's activity on one of the org's local days, while a member of the org."""

    __tablename__ = "report_member_days"
    __table_args__ = {"sqlite_with_rowid": False}

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)


class ScopeDay(db.Model):
    """A day on which a member of a program was active in it (the org-wide days are MemberDay)."""

    __tablename__ = "report_scope_days"
    __table_args__ = {"sqlite_with_rowid": False}

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    scope_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)


class ReportSpan(db.Model):
    """A stretch of time a participant belonged to a scope, as the rollups counted it.

    Derived from memberships (and the member row); events count where a span
    covers them, so activity before joining or after leaving is never reported.
    """

    __tablename__ = "report_spans"
    __table_args__ = {"sqlite_with_rowid": False}

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    scope_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(primary_key=True)
    ended_at: Mapped[datetime | None]


class Journey(db.Model):
    """When a participant first reached each step of the engagement funnel."""

    __tablename__ = "report_journeys"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    profile_complete_at: Mapped[datetime | None]
    requested_at: Mapped[datetime | None]
    matched_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
