"""Email domains an org has proved it owns, and the accounts it claimed through them."""

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

TXT_PREFIX = "_partner-console."
TXT_VALUE_PREFIX = "partner-console-verification="


class DomainStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    LAPSED = "lapsed"
    FAILED = "failed"


class ClaimStatus(StrEnum):
    PENDING = "pending"
    EFFECTIVE = "effective"
    DROPPED = "dropped"
    RELEASED = "released"


OPEN_CLAIMS = (ClaimStatus.PENDING.value, ClaimStatus.EFFECTIVE.value)


def display_domain(domain: str) -> str:
    """Return a stored (ASCII) domain as people write it: ``bücher.example``."""
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


def _check(column: str, values: type[StrEnum]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=column)


class OrgDomain(db.Model):
    """A domain an org added; verified by a DNS TXT record (or by staff, with a reason)."""

    __tablename__ = "org_domains"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "domain"),
        _check("status", DomainStatus),
        # A domain is verified by one org at most: two orgs may not both claim its accounts.
        sa.Index(
            "ix_org_domains_verified_domain",
            "domain",
            unique=True,
            sqlite_where=sa.text("status = 'verified'"),
            postgresql_where=sa.text("status = 'verified'"),
        ),
        sa.Index("ix_org_domains_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    # ASCII (IDNA) form, lower case, no trailing dot.
    domain: Mapped[str] = mapped_column(sa.String(253))
    # Random, per org and domain; a removed and re-added domain gets a new one.
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    status: Mapped[str] = mapped_column(
        sa.String(10), default=DomainStatus.PENDING, server_default=DomainStatus.PENDING.value
    )
    include_subdomains: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    auto_claim: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    # What the last look-up found: found, nxdomain, no_record, wrong_value, timeout, error.
    last_result: Mapped[str | None] = mapped_column(sa.String(20))
    last_seen_at: Mapped[datetime | None]
    # Since when consecutive checks have not found the record (None while it is found).
    missing_since: Mapped[datetime | None]
    lapsed_at: Mapped[datetime | None]
    # Set when staff verified the domain by hand for a partner who cannot publish DNS.
    manual_reason: Mapped[str | None] = mapped_column(sa.String(500))
    manual_by: Mapped[str | None] = mapped_column(sa.String(200))

    org: Mapped[Org] = relationship()

    @property
    def txt_name(self) -> str:
        return TXT_PREFIX + self.domain

    @property
    def txt_value(self) -> str:
        return TXT_VALUE_PREFIX + self.token

    @property
    def verified_by_hand(self) -> bool:
        return self.manual_reason is not None

    @property
    def unicode_name(self) -> str:
        return display_domain(self.domain)

    def __repr__(self) -> str:
        return f"<OrgDomain {self.domain} {self.status}>"


class DomainClaim(db.Model):
    """An org's claim on an unmanaged account through one of its verified domains.

    Pending during the org's notice period, then effective (the org manages the
    account) until control is released; dropped when it never took effect.
    """

    __tablename__ = "domain_claims"
    __table_args__ = (
        _check("status", ClaimStatus),
        # One open claim per account: at most one org ever manages it.
        sa.Index(
            "ix_domain_claims_open_participant",
            "participant_id",
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'effective')"),
            postgresql_where=sa.text("status IN ('pending', 'effective')"),
        ),
        sa.Index("ix_domain_claims_domain_status", "domain_id", "status", "created_at"),
        sa.Index("ix_domain_claims_org_status", "org_id", "status"),
        sa.Index("ix_domain_claims_status_notice", "status", "notice_until"),
        sa.Index("ix_domain_claims_participant", "participant_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orgs.id", ondelete="CASCADE"))
    participant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("participants.id", ondelete="CASCADE")
    )
    domain_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("org_domains.id", ondelete="SET NULL")
    )
    # Kept as text too: the trail of a claim outlives a removed domain.
    domain: Mapped[str] = mapped_column(sa.String(253))
    status: Mapped[str] = mapped_column(sa.String(10))
    # How the claim began: owner (page), api, provisioning, sign_up (automatic).
    via: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When a pending claim takes effect.
    notice_until: Mapped[datetime | None]
    effective_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(sa.String(40))

    participant: Mapped[Participant] = relationship()
    org: Mapped[Org] = relationship()
    org_domain: Mapped[OrgDomain | None] = relationship()

    @property
    def unicode_name(self) -> str:
        return display_domain(self.domain)
