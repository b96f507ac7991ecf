"""Partner organizations and their programs."""

from __future__ import annotations

import uuid
from datetime import date
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from console.models.base import db
from console.models.base import new_id
from console.models.base import utcnow


class Org(db.Model):
    __tablename__ = "orgs"
    __table_args__ = (
        sa.CheckConstraint("claim_notice_days BETWEEN 0 AND 30", name="claim_notice_days"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    # Days a domain claim waits before it takes effect, so people can switch to a personal email.
    claim_notice_days: Mapped[int] = mapped_column(default=0, server_default="0")
    # Impact report cells counting fewer than this are suppressed.
    report_threshold: Mapped[int] = mapped_column(default=5, server_default="5")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    programs: Mapped[list[Program]] = relationship(
        back_populates="org", order_by="Program.name", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Org {self.slug}>"


class Program(db.Model):
    """A cohort or track through which participants join an org."""

    __tablename__ = "programs"
    __table_args__ = (sa.UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    org: Mapped[Org] = relationship(back_populates="programs")

    def to_api(self) -> dict[str, str]:
        return {"id": str(self.id), "name": self.name}
