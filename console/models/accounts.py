"""What account control needs beyond the account itself: single-use links, requests, keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from console.models.base import db
from console.models.base import new_id
from console.models.base import utcnow
from console.models.orgs import Org
from console.models.participants import Participant


class LinkPurpose(StrEnum):
    PASSWORD_RESET = "password_reset"
    CONFIRM_EMAIL = "confirm_email"
    CHANGE_EMAIL = "change_email"


class AccountLink(db.Model):
    """A single-use, expiring link mailed to a participant; only its hash is kept."""

    __tablename__ = "account_links"
    __table_args__ = (
        sa.Index("ix_account_links_participant_purpose", "participant_id", "purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    purpose: Mapped[str] = mapped_column(sa.String(20))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # For CHANGE_EMAIL: the address that confirms by following the link.
    new_email: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship()

    def usable(self, now: datetime | None = None) -> bool:
        return self.used_at is None and self.expires_at > (now or utcnow())


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"


class EmailChangeRequest(db.Model):
    """A managed participant's wish for a new email, waiting for the managing org."""

    __tablename__ = "email_change_requests"
    __table_args__ = (
        sa.Index("ix_email_change_requests_org_status", "org_id", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    new_email: Mapped[str] = mapped_column(sa.String(320))
    status: Mapped[str] = mapped_column(sa.String(12), default=RequestStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.String(500))

    participant: Mapped[Participant] = relationship()
    org: Mapped[Org] = relationship()


class ReleaseRequest(db.Model):
    """A managed participant asking the managing org to give up control."""

    __tablename__ = "release_requests"
    __table_args__ = (sa.Index("ix_release_requests_org_status", "org_id", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    message: Mapped[str | None] = mapped_column(sa.String(1000))
    status: Mapped[str] = mapped_column(sa.String(12), default=RequestStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.String(500))

    participant: Mapped[Participant] = relationship()
    org: Mapped[Org] = relationship()


class ParticipantKey(db.Model):
    """The key that seals a participant's personal data inside audit events.

    Erasing the participant deletes this row: the append-only trail keeps its
    hashes (the chain still verifies) but no readable copy of the data.
    """

    __tablename__ = "participant_keys"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    # Itself encrypted with a key derived from the console's secret key.
    key: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
