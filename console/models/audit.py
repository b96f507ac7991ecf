"""The append-only, hash-chained audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from console.models.base import db
from console.models.base import new_id
from console.models.base import utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    # Every filter of the trail pages is an index range read newest first, so a
    # rare action or actor in a large org is found without scanning the org.
    __table_args__ = (
        sa.UniqueConstraint("chain", "seq"),
        sa.Index("ix_audit_events_org_at", "org_id", "at"),
        sa.Index("ix_audit_events_org_action_at", "org_id", "action", "at"),
        sa.Index("ix_audit_events_org_actor_at", "org_id", "actor_id", "at"),
        sa.Index("ix_audit_events_org_actor_type_at", "org_id", "actor_type", "at"),
        sa.Index("ix_audit_events_target", "target_type", "target_id", "at"),
        sa.Index("ix_audit_events_at", "at"),
        sa.Index(
            "ix_audit_events_platform_at",
            "at",
            sqlite_where=sa.text("org_id IS NULL"),
            postgresql_where=sa.text("org_id IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # One chain per org, and one ("platform") for events outside any org.
    chain: Mapped[str] = mapped_column(sa.String(36))
    seq: Mapped[int]
    org_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("orgs.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_type: Mapped[str] = mapped_column(sa.String(20))
    actor_id: Mapped[str | None] = mapped_column(sa.String(64))
    actor_name: Mapped[str | None] = mapped_column(sa.String(320))
    actor_role: Mapped[str | None] = mapped_column(sa.String(20))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str | None] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))
