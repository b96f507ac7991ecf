"""Activity the platform reports about participants (counts and facts, never content)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from console.models.base import db
from console.models.base import utcnow


class EventType(StrEnum):
    SIGNED_IN = "signed_in"
    PROFILE_UPDATED = "profile_updated"
    MENTOR_REQUEST_SENT = "mentor_request_sent"
    MENTOR_REQUEST_RECEIVED = "mentor_request_received"
    MENTOR_REQUEST_ACCEPTED = "mentor_request_accepted"
    MENTOR_REQUEST_DECLINED = "mentor_request_declined"
    MESSAGE_SENT = "message_sent"
    SESSION_LOGGED = "session_logged"
    FEEDBACK_GIVEN = "feedback_given"
    OUTCOME_REPORTED = "outcome_reported"
    SURVEY_COMPLETED = "survey_completed"


class ActivityEvent(db.Model):
    __tablename__ = "activity_events"
    __table_args__ = (
        sa.Index("ix_activity_events_participant_occurred", "participant_id", "occurred_at"),
        sa.Index("ix_activity_events_occurred", "occurred_at"),
    )

    # The platform's own id for the event: replaying it changes nothing.
    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(sa.String(40))
    occurred_at: Mapped[datetime]
    counterpart_id: Mapped[uuid.UUID | None]
    relationship_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any] | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
