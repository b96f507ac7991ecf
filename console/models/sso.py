"""Single sign-on: each org's OpenID Connect connection, and the IdP identities it vouched for."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from console.models.admins import Admin
from console.models.base import JSONType
from console.models.base import db
from console.models.base import new_id
from console.models.base import utcnow
from console.models.orgs import Org
from console.models.participants import Participant

DEFAULT_SCOPES = "openid email profile"
DEFAULT_GROUPS_CLAIM = "groups"


class SsoConnection(db.Model):
    """An org's OpenID Connect identity provider: where to send people and what to trust."""

    __tablename__ = "sso_connections"
    __table_args__ = (
        sa.CheckConstraint(
            "default_role IS NULL OR default_role IN ('owner', 'admin', 'support', 'analyst')",
            name="default_role",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), unique=True
    )
    issuer: Mapped[str] = mapped_column(sa.String(500))
    client_id: Mapped[str] = mapped_column(sa.String(255))
    # Fernet ciphertext (console.encryption): the plaintext never reaches the database.
    client_secret: Mapped[str] = mapped_column(sa.Text)
    scopes: Mapped[str] = mapped_column(
        sa.String(500), default=DEFAULT_SCOPES, server_default=DEFAULT_SCOPES
    )
    # A claim name, or a dotted path into nested claims (realm_access.roles).
    groups_claim: Mapped[str] = mapped_column(
        sa.String(200), default=DEFAULT_GROUPS_CLAIM, server_default=DEFAULT_GROUPS_CLAIM
    )
    # [[group, role], …] in the order the owner wrote them.
    role_mapping: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # The role of people in no mapped group; None lets only mapped people in.
    default_role: Mapped[str | None] = mapped_column(sa.String(12))
    enforce_admins: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    enforce_participants: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The discovery document as last fetched, shown on the connection page.
    discovery: Mapped[dict[str, Any] | None]
    discovered_at: Mapped[datetime | None]
    tested_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    org: Mapped[Org] = relationship()

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def __repr__(self) -> str:
        return f"<SsoConnection {self.issuer}>"


class SsoBreakGlass(db.Model):
    """An owner who may still sign in with a password while SSO is enforced."""

    __tablename__ = "sso_break_glass"

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    admin_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("admins.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    admin: Mapped[Admin] = relationship()


class AdminIdentity(db.Model):
    """An administrator as an IdP knows them: its issuer and the subject it never reassigns.

    Email claims change and can be set by whoever controls the IdP's directory, so
    an administrator is found by (issuer, subject), never by email alone.
    """

    __tablename__ = "admin_identities"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    admin_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("admins.id", ondelete="CASCADE"), index=True
    )
    # The org whose connection first vouched for this identity.
    org_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="SET NULL"), index=True
    )
    issuer: Mapped[str] = mapped_column(sa.String(500))
    subject: Mapped[str] = mapped_column(sa.String(255))
    # The address the IdP gave at the last sign-in.
    email: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]

    admin: Mapped[Admin] = relationship()


class ParticipantIdentity(db.Model):
    """A managed participant as their org's IdP knows them (issuer and subject)."""

    __tablename__ = "participant_identities"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="SET NULL"), index=True
    )
    issuer: Mapped[str] = mapped_column(sa.String(500))
    subject: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship()
