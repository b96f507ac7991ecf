"""Claims through verified domains: which accounts an org may claim, and claiming them.

A claim makes an unmanaged account with a confirmed email in one of the org's
verified domains an account the org manages. With a notice period the claim
waits (the participant is told and may move to an address outside the
domain); without one it takes effect at once. Accounts managed by another org,
or whose address was never confirmed, are never shown or claimed.

This module takes no part in releasing control (``control.release`` does, and
closes the claim through ``close_claims``), so ``participants`` and ``control``
can call it without an import cycle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from console.extensions import db
from console.models import ClaimStatus
from console.models import DomainClaim
from console.models import DomainStatus
from console.models import JoinedVia
from console.models import Member
from console.models import Org
from console.models import OrgDomain
from console.models import Participant
from console.models import SearchTerm
from console.models.base import utcnow
from console.models.domains import OPEN_CLAIMS
from console.models.participants import email_domain_key
from console.models.participants import reversed_domain
from console.pagination import Page
from console.pagination import SortKey
from console.pagination import paginate
from console.services import audit
from console.services import mail
from console.services import participants
from console.services.auth import EmailError
from console.services.auth import checked_email

CLAIMABLE_SORT = SortKey("email", Participant.email, Participant.id)
CLAIMS_SORT = SortKey("claimed", DomainClaim.created_at, DomainClaim.id, descending=True)
# Accounts claimed (or released) per request when the owner asks for "all":
# re-running picks up where the last batch ended, so any number finishes.
BATCH = 200
MAX_EMAILS = 500


class ClaimError(Exception):
    """A claim that cannot be made; ``status`` is the HTTP status the API answers with."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Via:
    OWNER = "owner"
    API = "api"
    PROVISIONING = "provisioning"
    SIGN_UP = "sign_up"


class Outcome:
    CLAIMED = "claimed"
    PENDING = "pending"
    ALREADY = "already_claimed"
    REFUSED = "refused"


@dataclass(frozen=True)
class ClaimResult:
    email: str
    outcome: str
    detail: str
    participant: Participant | None = None
    claim: DomainClaim | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.CLAIMED, Outcome.PENDING)


# -- which accounts ---------------------------------------------------------------------


def covers(domain: OrgDomain, key: str | None) -> bool:
    """Return whether an email whose reversed domain is ``key`` is in ``domain``."""
    if not key:
        return False
    own = reversed_domain(domain.domain)
    return key == own or (domain.include_subdomains and key.startswith(own + "."))


def _in_domain(domain: OrgDomain) -> sa.ColumnElement[bool]:
    own = reversed_domain(domain.domain)
    exact = Participant.email_domain_key == own
    if not domain.include_subdomains:
        return exact
    # "/" sorts right after ".": the range is every key that starts with own + ".".
    below = sa.and_(
        Participant.email_domain_key >= own + ".", Participant.email_domain_key < own + "/"
    )
    return sa.or_(exact, below)


def _unclaimed() -> sa.ColumnElement[bool]:
    return sa.and_(
        Participant.managed_by_org_id.is_(None),
        Participant.email_verified.is_(True),
        Participant.erased_at.is_(None),
        ~sa.exists().where(
            DomainClaim.participant_id == Participant.id, DomainClaim.status.in_(OPEN_CLAIMS)
        ),
    )


def claimable(domain: OrgDomain, q: str = "") -> sa.Select[Any]:
    """Return a select of the accounts ``domain`` may claim now, matching search ``q``."""
    stmt = sa.select(Participant).where(_in_domain(domain), _unclaimed())
    for word in participants.search_words(q.replace("\x00", "")):
        stmt = stmt.where(
            sa.exists().where(
                SearchTerm.participant_id == Participant.id, participants.prefix_range(word)
            )
        )
    return stmt


def claimable_page(domain: OrgDomain, q: str, cursor: str | None, limit: int) -> Page:
    """Return one page of claimable accounts, by email."""
    return paginate(
        claimable(domain, q),
        CLAIMABLE_SORT,
        cursor,
        limit,
        key_of=lambda row: (row.Participant.email, row.Participant.id),
    )


def count_claimable(domain: OrgDomain, q: str = "", cap: int | None = None) -> tuple[int, bool]:
    """Return how many accounts ``domain`` may claim (up to ``cap``), and whether capped."""
    inner = claimable(domain, q).with_only_columns(Participant.id)
    if cap is not None:
        inner = inner.limit(cap + 1)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(inner.subquery())) or 0
    if cap is None:
        return count, False
    return min(count, cap), count > cap


def claim_counts(domain: OrgDomain) -> dict[str, int]:
    """Return how many of the domain's claims are pending and effective."""
    return claim_counts_of([domain])[domain.id]


def claim_counts_of(domains: list[OrgDomain]) -> dict[uuid.UUID, dict[str, int]]:
    """Return, per domain id, how many of its claims are pending and effective (one query)."""
    counts = {domain.id: {status: 0 for status in OPEN_CLAIMS} for domain in domains}
    rows = db.session.execute(
        sa.select(DomainClaim.domain_id, DomainClaim.status, sa.func.count())
        .where(DomainClaim.domain_id.in_(list(counts)), DomainClaim.status.in_(OPEN_CLAIMS))
        .group_by(DomainClaim.domain_id, DomainClaim.status)
    ).all()
    for domain_id, status, count in rows:
        counts[domain_id][status] = count
    return counts


def claims_page(domain: OrgDomain, cursor: str | None, limit: int) -> Page:
    """Return one page of the domain's open claims (pending and effective), newest first."""
    stmt = (
        sa.select(DomainClaim, Participant)
        .join(Participant, Participant.id == DomainClaim.participant_id)
        .where(DomainClaim.domain_id == domain.id, DomainClaim.status.in_(OPEN_CLAIMS))
    )
    return paginate(
        stmt,
        CLAIMS_SORT,
        cursor,
        limit,
        key_of=lambda row: (row.DomainClaim.created_at, row.DomainClaim.id),
    )


def open_claim(participant: Participant, org: Org | None = None) -> DomainClaim | None:
    """Return the participant's pending or effective claim (by ``org`` when given)."""
    stmt = sa.select(DomainClaim).where(
        DomainClaim.participant_id == participant.id, DomainClaim.status.in_(OPEN_CLAIMS)
    )
    if org is not None:
        stmt = stmt.where(DomainClaim.org_id == org.id)
    return db.session.scalar(stmt)


def pending_claim(participant: Participant) -> DomainClaim | None:
    """Return the claim waiting to take effect on the participant's account, if any."""
    claim = open_claim(participant)
    return claim if claim is not None and claim.status == ClaimStatus.PENDING else None


def accounts_by_id(ids: list[uuid.UUID]) -> list[Participant]:
    """Return the accounts with these ids, in that order (unknown ids are left out)."""
    found = {
        p.id: p for p in db.session.scalars(sa.select(Participant).where(Participant.id.in_(ids)))
    }
    return [found[pid] for pid in ids if pid in found]


def open_claims_by_id(domain: OrgDomain, ids: list[uuid.UUID]) -> list[DomainClaim]:
    """Return the domain's open claims on the given participants, in that order."""
    found = {
        claim.participant_id: claim
        for claim in db.session.scalars(
            sa.select(DomainClaim).where(
                DomainClaim.domain_id == domain.id,
                DomainClaim.status.in_(OPEN_CLAIMS),
                DomainClaim.participant_id.in_(ids),
            )
        )
    }
    return [found[pid] for pid in ids if pid in found]


def verified_domains_for(email: str | None, org: Org | None = None) -> list[OrgDomain]:
    """Return the verified domains that cover ``email``, the most specific first."""
    key = email_domain_key(email)
    if not key:
        return []
    labels = list(reversed(key.split(".")))
    suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    stmt = sa.select(OrgDomain).where(
        OrgDomain.domain.in_(suffixes), OrgDomain.status == DomainStatus.VERIFIED
    )
    if org is not None:
        stmt = stmt.where(OrgDomain.org_id == org.id)
    found = [domain for domain in db.session.scalars(stmt) if covers(domain, key)]
    return sorted(found, key=lambda domain: -len(domain.domain))


# -- claiming ------------------------------------------------------------------------------


def require_verified(domain: OrgDomain) -> None:
    """Raise ``ClaimError`` unless ``domain`` may grant claims now."""
    if domain.status == DomainStatus.LAPSED:
        raise ClaimError(
            _(
                "%(domain)s has lapsed: its DNS record is gone, so it grants no new claims. "
                "Publish the record again and check the domain.",
                domain=domain.domain,
            )
        )
    if domain.status != DomainStatus.VERIFIED:
        raise ClaimError(
            _(
                "%(domain)s is not verified yet: verify it before claiming accounts.",
                domain=domain.domain,
            )
        )


def claim_accounts(
    actor: Any, org: Org, domain: OrgDomain, accounts: list[Participant], via: str = Via.OWNER
) -> list[ClaimResult]:
    """Claim each account; one refusal does not stop the others.

    Safe to repeat: an account this org already claimed is reported, not claimed twice.
    """
    require_verified(domain)
    now = utcnow()
    return [_claim_one(actor, org, domain, participant, via, now) for participant in accounts]


def claim_emails(
    actor: Any, org: Org, domain: OrgDomain, emails: list[str], via: str = Via.API
) -> list[ClaimResult]:
    """Claim the accounts with these addresses, saying for each what happened."""
    require_verified(domain)
    if len(emails) > MAX_EMAILS:
        raise ClaimError(_("Give at most %(limit)s addresses at a time.", limit=MAX_EMAILS))
    now = utcnow()
    addresses: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for given in emails:
        try:
            email: str | None = checked_email(given)
        except EmailError:
            email = None
        if email is None or email not in seen:
            addresses.append((given, email))
        if email is not None:
            seen.add(email)
    accounts = {
        p.email: p
        for p in db.session.scalars(sa.select(Participant).where(Participant.email.in_(seen)))
    }
    results = []
    for given, email in addresses:
        if email is None:
            results.append(ClaimResult(given, Outcome.REFUSED, _("Not a valid email address.")))
        elif not covers(domain, email_domain_key(email)):
            detail = _("This address is not in %(domain)s.", domain=domain.domain)
            results.append(ClaimResult(email, Outcome.REFUSED, detail))
        elif email not in accounts:
            results.append(ClaimResult(email, Outcome.REFUSED, _not_claimable()))
        else:
            results.append(_claim_one(actor, org, domain, accounts[email], via, now))
    return results


def claim_batch(
    actor: Any, org: Org, domain: OrgDomain, via: str = Via.OWNER, batch: int | None = None
) -> tuple[list[ClaimResult], int]:
    """Claim the next ``batch`` claimable accounts; return the results and how many remain."""
    require_verified(domain)
    wanted = claimable(domain).order_by(Participant.email).limit(batch or BATCH)
    accounts = list(db.session.scalars(wanted))
    results = claim_accounts(actor, org, domain, accounts, via)
    remaining, _capped = count_claimable(domain)
    return results, remaining


def _not_claimable() -> str:
    # One answer for "no such account", "unconfirmed" and "managed elsewhere":
    # a claim tells an org nothing about accounts it cannot claim.
    return _(
        "No account with this address can be claimed: there is none, its address was never "
        "confirmed, or another organization manages it."
    )


def _claim_one(
    actor: Any, org: Org, domain: OrgDomain, participant: Participant, via: str, now: datetime
) -> ClaimResult:
    email = participant.email or ""
    existing = open_claim(participant)
    if participant.managed_by_org_id == org.id or (
        existing is not None and existing.org_id == org.id
    ):
        detail = (
            _("Already managed by %(org)s.", org=org.name)
            if participant.managed_by_org_id == org.id
            else _("Already claimed; the claim takes effect on %(date)s.", date=_date(existing))
        )
        return ClaimResult(email, Outcome.ALREADY, detail, participant, existing)
    if (
        existing is not None
        or participant.managed_by_org_id is not None
        or not participant.email_verified
        or participant.erased_at is not None
        or not covers(domain, participant.email_domain_key)
    ):
        return ClaimResult(email, Outcome.REFUSED, _not_claimable(), participant)
    days = org.claim_notice_days
    claim = DomainClaim(
        org_id=org.id,
        participant_id=participant.id,
        domain_id=domain.id,
        domain=domain.domain,
        status=ClaimStatus.PENDING,
        via=via,
        created_at=now,
        notice_until=now + timedelta(days=days),
    )
    try:
        # Two requests claiming one account: the open-claim index lets one win.
        with db.session.begin_nested():
            db.session.add(claim)
            db.session.flush()
    except sa.exc.IntegrityError:
        return ClaimResult(email, Outcome.REFUSED, _not_claimable(), participant)
    if days == 0:
        take_effect(actor, claim, now)
        return ClaimResult(
            email, Outcome.CLAIMED, _("Managed by %(org)s now.", org=org.name), participant, claim
        )
    if participant.email:
        mail.queue("claim_notice", participant.email, **_mail_context(claim))
    audit.record(
        actor,
        "participant.claim_announced",
        org=org,
        target=participant,
        details={
            "domain": domain.domain,
            "via": via,
            "claim": str(claim.id),
            "until": claim.notice_until.isoformat() if claim.notice_until else None,
        },
    )
    return ClaimResult(
        email,
        Outcome.PENDING,
        _("Told; the claim takes effect on %(date)s.", date=_date(claim)),
        participant,
        claim,
    )


def _date(claim: DomainClaim | None) -> str:
    when = claim.notice_until if claim is not None else None
    return when.date().isoformat() if when else "—"


def take_effect(actor: Any, claim: DomainClaim, now: datetime | None = None) -> DomainClaim:
    """Make the org manage the account (a member, joined as claimed) and tell the participant."""
    now = now or utcnow()
    participant, org = claim.participant, claim.org
    participant.managed_by_org_id = org.id
    participant.managed_since = now
    claim.status = ClaimStatus.EFFECTIVE
    claim.effective_at = now
    if db.session.get(Member, (org.id, participant.id)) is None:
        participants.add_member(actor, org, participant, joined_via=JoinedVia.CLAIMED)
    if participant.email:
        mail.queue("claim_effective", participant.email, **_mail_context(claim))
    audit.record(
        actor,
        "participant.claimed",
        org=org,
        target=participant,
        details={"domain": claim.domain, "via": claim.via, "claim": str(claim.id)},
    )
    return claim


def drop(actor: Any, claim: DomainClaim, reason: str, now: datetime | None = None) -> None:
    """End a claim that has not taken effect; the participant is told why."""
    claim.status = ClaimStatus.DROPPED
    claim.ended_at = now or utcnow()
    claim.end_reason = reason
    if claim.participant.email:
        mail.queue("claim_dropped", claim.participant.email, **_mail_context(claim, reason))
    audit.record(
        actor,
        "participant.claim_dropped",
        org=claim.org,
        target=claim.participant,
        details={"domain": claim.domain, "reason": reason, "claim": str(claim.id)},
    )


def close_claims(org: Org | None, participant: Participant, reason: str) -> None:
    """End the open claims on an account (the org's, or every org's when None)."""
    scope = DomainClaim.org_id == org.id if org is not None else sa.true()
    db.session.execute(
        sa.update(DomainClaim)
        .where(
            scope,
            DomainClaim.participant_id == participant.id,
            DomainClaim.status.in_(OPEN_CLAIMS),
        )
        .values(
            status=sa.case(
                (DomainClaim.status == ClaimStatus.EFFECTIVE, ClaimStatus.RELEASED.value),
                else_=ClaimStatus.DROPPED.value,
            ),
            ended_at=utcnow(),
            end_reason=reason[:40],
        )
        .execution_options(synchronize_session="fetch")
    )


def _mail_context(claim: DomainClaim, dropped_because: str = "") -> dict[str, Any]:
    return {
        "org": claim.org,
        "participant": claim.participant,
        "domain_name": claim.unicode_name,
        "effective_at": claim.notice_until,
        "dropped_because": dropped_because,
    }


# -- when claims take effect or end by themselves -------------------------------------


def due(now: datetime | None = None, batch: int = 500) -> list[DomainClaim]:
    """Return pending claims whose notice period is over, oldest first."""
    return list(
        db.session.scalars(
            sa.select(DomainClaim)
            .where(
                DomainClaim.status == ClaimStatus.PENDING,
                DomainClaim.notice_until <= (now or utcnow()),
            )
            .order_by(DomainClaim.notice_until, DomainClaim.id)
            .limit(batch)
        )
    )


def apply(actor: Any, claim: DomainClaim, now: datetime | None = None) -> str:
    """Make a due claim take effect if it still may, else drop it; return which."""
    now = now or utcnow()
    participant, domain = claim.participant, claim.org_domain
    if domain is None or domain.status != DomainStatus.VERIFIED:
        drop(actor, claim, "domain_not_verified", now)
        return "dropped"
    if (
        participant.managed_by_org_id is not None
        or not participant.email_verified
        or participant.erased_at is not None
        or not covers(domain, participant.email_domain_key)
    ):
        drop(actor, claim, "not_claimable", now)
        return "dropped"
    take_effect(actor, claim, now)
    return "effective"


def email_changed(participant: Participant) -> None:
    """Drop a pending claim once the participant's new address is outside its domain."""
    claim = pending_claim(participant)
    if claim is None:
        return
    domain = claim.org_domain
    if domain is None or not covers(domain, participant.email_domain_key):
        drop(participant, claim, "email_changed")


def claim_new_sign_up(participant: Participant) -> DomainClaim | None:
    """Claim a just-confirmed account for the org whose domain claims new sign-ups.

    It takes effect at once, whatever the org's notice period: the person signs up
    after the org asserted control over the domain, and is told at once.
    """
    if participant.managed_by_org_id is not None or open_claim(participant) is not None:
        return None
    domain = next((d for d in verified_domains_for(participant.email) if d.auto_claim), None)
    if domain is None:
        return None
    now = utcnow()
    claim = DomainClaim(
        org_id=domain.org_id,
        participant_id=participant.id,
        domain_id=domain.id,
        domain=domain.domain,
        status=ClaimStatus.PENDING,
        via=Via.SIGN_UP,
        created_at=now,
        notice_until=now,
    )
    db.session.add(claim)
    db.session.flush()
    return take_effect(audit.SYSTEM, claim, now)


def claim_existing_account(actor: Any, org: Org, participant: Participant) -> ClaimResult | None:
    """Claim an existing account the org provisions, if one of its verified domains covers it.

    Returns None when no verified domain of the org covers the address.
    """
    domains = verified_domains_for(participant.email, org)
    if not domains:
        return None
    return claim_accounts(actor, org, domains[0], [participant], Via.PROVISIONING)[0]
