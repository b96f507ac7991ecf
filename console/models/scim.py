"""What an employer's SCIM client provisioned: its users and the programs behind its groups.

A SCIM user is the org's identity for a participant: the ``userName`` and
``externalId`` the identity provider chose, and the name and emails it sent,
kept as sent. The participant (the account) is the truth about who the person
is and whether they may sign in; the SCIM user is what the employer asserted.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from console.models.base import db
from console.models.base import new_id
from console.models.base import utcnow
from console.models.participants import Participant
from console.models.participants import binary_text

USER_NAME_LENGTH = 256
EXTERNAL_ID_LENGTH = 256
TEXT_LENGTH = 200


class ScimUser(db.Model):
    __tablename__ = "scim_users"
    __table_args__ = (
        # userName is caseExact=false (RFC 7643 §4.1.1): unique in the org once folded.
        sa.UniqueConstraint("org_id", "user_name_key"),
        sa.UniqueConstraint("org_id", "participant_id"),
        sa.Index("ix_scim_users_org_created", "org_id", "created_at", "id"),
        sa.Index("ix_scim_users_org_external_id", "org_id", "external_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    user_name: Mapped[str] = mapped_column(sa.String(USER_NAME_LENGTH))
    user_name_key: Mapped[str] = mapped_column(binary_text(2 * USER_NAME_LENGTH))
    external_id: Mapped[str | None] = mapped_column(sa.String(EXTERNAL_ID_LENGTH))
    display_name: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    name_formatted: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    given_name: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    family_name: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    # The participant's name as SCIM last set it: a different name now was edited in the console.
    synced_name: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    # What the identity provider last said about ``active`` (None: it said nothing).
    active: Mapped[bool | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    participant: Mapped[Participant] = relationship()
    emails: Mapped[list[ScimUserEmail]] = relationship(
        order_by="ScimUserEmail.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )


class ScimUserEmail(db.Model):
    """One of the addresses a SCIM user was sent with, in the order they came."""

    __tablename__ = "scim_user_emails"
    __table_args__ = (sa.Index("ix_scim_user_emails_org_value", "org_id", "value_key"),)

    scim_user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("scim_users.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(sa.String(320))
    value_key: Mapped[str] = mapped_column(binary_text(320))
    type: Mapped[str | None] = mapped_column(sa.String(40))
    display: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    primary: Mapped[bool | None]


class ScimGroup(db.Model):
    """What SCIM adds to a program it serves as a group; programs without one have no row."""

    __tablename__ = "scim_groups"
    __table_args__ = (sa.Index("ix_scim_groups_org_external_id", "org_id", "external_id"),)

    program_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(sa.String(EXTERNAL_ID_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
