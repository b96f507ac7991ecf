"""API tokens: random, hashed at rest, scoped, expiring, revocable."""

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


class Scope(StrEnum):
    PARTICIPANTS_READ = "participants:read"
    PARTICIPANTS_WRITE = "participants:write"
    AUDIT_READ = "audit:read"
    REPORTS_READ = "reports:read"
    DOMAINS_WRITE = "domains:write"
    SCIM = "scim"
    EVENTS_WRITE = "events:write"


# Platform tokens belong to no org: they feed the console, they never read an org's data.
PLATFORM_SCOPES = frozenset({Scope.EVENTS_WRITE})


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # None for a platform token.
    org_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    # The first characters, shown so people can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(200))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    org: Mapped[Org | None] = relationship()

    def usable(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes
