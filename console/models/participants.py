"""Platform accounts, their profiles, and how they belong to orgs and to each other."""

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
from console.models.orgs import Program


class ParticipantRole(StrEnum):
    MENTOR = "mentor"
    ENTREPRENEUR = "entrepreneur"
    BOTH = "both"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"


class JoinedVia(StrEnum):
    INVITED = "invited"
    SELF_IDENTIFIED = "self_identified"
    CLAIMED = "claimed"
    PROVISIONED = "provisioned"


class RelationshipStatus(StrEnum):
    REQUESTED = "requested"
    ACTIVE = "active"
    ENDED = "ended"
    DECLINED = "declined"


def binary_text(length: int) -> sa.types.TypeEngine[str]:
    """A string compared byte by byte on every database, so ranges and order agree."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def reversed_domain(domain: str) -> str:
    """Return a domain with its labels reversed: ``example.acme`` for ``acme.example``."""
    return ".".join(reversed(domain.lower().split(".")))


def email_domain_key(email: str | None) -> str | None:
    """Return the reversed domain of an address, the key domain claims look accounts up by."""
    if not email or "@" not in email:
        return None
    return reversed_domain(email.rpartition("@")[2])[:253]


def _check(column: str, values: type[StrEnum]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=column)


class Participant(UserMixin, db.Model):
    """A platform account: a mentor, an entrepreneur, or both."""

    is_admin = False

    __tablename__ = "participants"
    __table_args__ = (
        _check("role", ParticipantRole),
        _check("status", AccountStatus),
        # Few accounts are suspended or deactivated: these let a status filter
        # start from them instead of scanning every member.
        sa.Index(
            "ix_participants_suspended",
            "id",
            sqlite_where=sa.text("status = 'suspended'"),
            postgresql_where=sa.text("status = 'suspended'"),
        ),
        sa.Index(
            "ix_participants_deactivated",
            "id",
            sqlite_where=sa.text("status = 'deactivated'"),
            postgresql_where=sa.text("status = 'deactivated'"),
        ),
        # A domain and its subdomains are one range of reversed domains (domain claims).
        sa.Index("ix_participants_email_domain_key", "email_domain_key", "email"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Stored normalised (lower case) so uniqueness is case-insensitive on every database.
    email: Mapped[str | None] = mapped_column(sa.String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Follows ``email`` (see ``email_domain_key``); set whenever the email is.
    email_domain_key: Mapped[str | None] = mapped_column(binary_text(253))
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(12), default=ParticipantRole.ENTREPRENEUR)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(
        sa.String(12), default=AccountStatus.ACTIVE, server_default=AccountStatus.ACTIVE.value
    )
    suspended_reason: Mapped[str | None] = mapped_column(sa.Text)
    suspended_at: Mapped[datetime | None]
    suspended_until: Mapped[datetime | None]
    restricted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    must_reset_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    managed_by_org_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="SET NULL"), index=True
    )
    managed_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]
    last_active_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    deactivated_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]

    profile: Mapped[Profile] = relationship(
        back_populates="participant", cascade="all, delete-orphan", uselist=False
    )
    managed_by: Mapped[Org | None] = relationship()

    def effective_status(self, now: datetime | None = None) -> str:
        """Return the status that applies now: a lapsed suspension no longer counts."""
        if self.status == AccountStatus.SUSPENDED and self.suspended_until is not None:
            if self.suspended_until <= (now or utcnow()):
                return AccountStatus.ACTIVE
        return self.status

    def is_managed_by(self, org: Org) -> bool:
        return self.managed_by_org_id == org.id

    @property
    def is_active(self) -> bool:
        return self.erased_at is None and self.effective_status() == AccountStatus.ACTIVE

    def get_id(self) -> str:
        # The session version makes "revoke every session" a single increment.
        return f"participant:{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<Participant {self.id}>"


@sa.event.listens_for(Participant.email, "set")
def _keep_email_domain_key(target: Participant, value: str | None, *_: object) -> None:
    target.email_domain_key = email_domain_key(value)


class Profile(db.Model):
    """Profile fields, grouped as the privacy policy groups them."""

    __tablename__ = "profiles"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    # Public: shown to other participants on the platform.
    headline: Mapped[str | None] = mapped_column(sa.String(200))
    bio: Mapped[str | None] = mapped_column(sa.Text)
    city: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    languages: Mapped[str | None] = mapped_column(sa.String(200))
    website: Mapped[str | None] = mapped_column(sa.String(500))
    linkedin_url: Mapped[str | None] = mapped_column(sa.String(500))
    # Mentor.
    expertise: Mapped[str | None] = mapped_column(sa.String(500))
    mentor_industries: Mapped[str | None] = mapped_column(sa.String(500))
    years_experience: Mapped[int | None]
    mentee_capacity: Mapped[int | None]
    # Entrepreneur.
    business_name: Mapped[str | None] = mapped_column(sa.String(200))
    business_stage: Mapped[str | None] = mapped_column(sa.String(20))
    business_industry: Mapped[str | None] = mapped_column(sa.String(100))
    founded_year: Mapped[int | None]
    employees: Mapped[int | None]
    business_website: Mapped[str | None] = mapped_column(sa.String(500))
    needs: Mapped[str | None] = mapped_column(sa.String(500))
    # Private demographics: never shown to analysts or to other participants.
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    birth_year: Mapped[int | None]
    gender: Mapped[str | None] = mapped_column(sa.String(40))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    education_level: Mapped[str | None] = mapped_column(sa.String(40))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    participant: Mapped[Participant] = relationship(back_populates="profile")


PUBLIC_FIELDS = ("headline", "bio", "city", "country", "languages", "website", "linkedin_url")
MENTOR_FIELDS = ("expertise", "mentor_industries", "years_experience", "mentee_capacity")
ENTREPRENEUR_FIELDS = (
    "business_name",
    "business_stage",
    "business_industry",
    "founded_year",
    "employees",
    "business_website",
    "needs",
)
PRIVATE_FIELDS = ("phone", "birth_year", "gender", "postal_code", "education_level")
PROFILE_FIELDS = PUBLIC_FIELDS + MENTOR_FIELDS + ENTREPRENEUR_FIELDS + PRIVATE_FIELDS


class Member(db.Model):
    """A participant's current affiliation with an org: the row the org's lists are read from.

    It carries copies of the participant's sort keys so that every list is an
    index range scan inside one org, whatever the size of the others.
    """

    __tablename__ = "members"
    __table_args__ = (
        sa.Index("ix_members_org_sort_name", "org_id", "sort_name", "participant_id"),
        sa.Index("ix_members_org_joined", "org_id", "joined_at", "participant_id"),
        sa.Index("ix_members_org_last_active", "org_id", "last_active_at", "participant_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    joined_via: Mapped[str] = mapped_column(sa.String(20))
    sort_name: Mapped[str] = mapped_column(binary_text(200))
    last_active_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship()
    org: Mapped[Org] = relationship()


class Membership(db.Model):
    """A participant's place in one program, current or past."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.Index("ix_memberships_org_participant", "org_id", "participant_id"),
        sa.Index("ix_memberships_program_participant", "program_id", "participant_id"),
        _check("joined_via", JoinedVia),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    program_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(sa.String(12))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None]
    joined_via: Mapped[str] = mapped_column(sa.String(20))

    participant: Mapped[Participant] = relationship()
    program: Mapped[Program | None] = relationship()


class MentoringRelationship(db.Model):
    __tablename__ = "relationships"
    __table_args__ = (_check("status", RelationshipStatus),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    mentor_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    mentee_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    program_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(sa.String(12))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    mentor: Mapped[Participant] = relationship(foreign_keys=[mentor_id])
    mentee: Mapped[Participant] = relationship(foreign_keys=[mentee_id])
    program: Mapped[Program | None] = relationship()


class SearchTerm(db.Model):
    """A folded word of a participant's name, or their whole email, for prefix search."""

    __tablename__ = "search_terms"
    __table_args__ = (sa.Index("ix_search_terms_participant_term", "participant_id", "term"),)

    term: Mapped[str] = mapped_column(binary_text(320), primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
