"""Console users: administrators of partner orgs, and platform staff."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from console.models.base import db
from console.models.base import new_id
from console.models.base import utcnow
from console.models.orgs import Org
from console.permissions import Permission
from console.permissions import Role


class AdminStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Admin(UserMixin, db.Model):
    __tablename__ = "admins"

    is_admin = True

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # None for administrators who only ever sign in through their org's SSO.
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(
        sa.String(12), default=AdminStatus.ACTIVE, server_default=AdminStatus.ACTIVE.value
    )
    is_staff: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Encrypted with a key derived from the secret key (console.encryption).
    totp_secret: Mapped[str | None] = mapped_column(sa.String(255))
    # The time step of the last accepted code, so a code cannot be replayed.
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]

    roles: Mapped[list[OrgRole]] = relationship(
        back_populates="admin", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def is_active(self) -> bool:
        return self.status == AdminStatus.ACTIVE

    def get_id(self) -> str:
        # The session version makes "sign out everywhere" a single increment.
        return f"admin:{self.id}:{self.session_version}"

    def role_in(self, org: Org) -> OrgRole | None:
        return next((r for r in self.roles if r.org_id == org.id), None)

    @property
    def orgs(self) -> list[Org]:
        return sorted((r.org for r in self.roles), key=lambda org: org.name.casefold())

    def __repr__(self) -> str:
        return f"<Admin {self.email}>"


class OrgRole(db.Model):
    """An administrator's role in one org."""

    __tablename__ = "org_roles"
    __table_args__ = (
        sa.CheckConstraint("role IN ('owner', 'admin', 'support', 'analyst')", name="role"),
    )

    admin_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("admins.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    admin: Mapped[Admin] = relationship(back_populates="roles")
    org: Mapped[Org] = relationship(lazy="joined")

    def can(self, *permissions: Permission) -> bool:
        return Role(self.role).can(*permissions)
