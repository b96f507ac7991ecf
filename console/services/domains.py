"""Verified domains: add, check by DNS, re-check, lapse, remove; staff verify by hand.

A domain is verified by a TXT record ``_partner-console.<domain>`` whose value is
``partner-console-verification=<token>``. Verification is not forever: ``recheck``
(``flask domains recheck``, run by cron) looks again; a record missing on every
check for ``DOMAIN_LAPSE_GRACE_DAYS`` lapses the domain (no new claims, owners
told), and a domain lapsed for ``DOMAIN_RELEASE_GRACE_DAYS`` more releases the
accounts claimed through it, because an expired domain re-registered by someone
else must not hand them its former staff's accounts.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from console.config import parse_nameservers
from console.extensions import db
from console.models import Admin
from console.models import AdminStatus
from console.models import ClaimStatus
from console.models import DomainClaim
from console.models import DomainStatus
from console.models import Org
from console.models import OrgDomain
from console.models import OrgRole
from console.models.base import utcnow
from console.models.domains import OPEN_CLAIMS
from console.models.domains import TXT_VALUE_PREFIX
from console.pagination import Page
from console.pagination import SortKey
from console.pagination import paginate
from console.services import audit
from console.services import claims
from console.services import control
from console.services import mail

# Mailbox providers anyone can sign up with: owning an address there proves
# nothing about an organization. Kept by hand; add to it as providers appear.
PUBLIC_PROVIDERS = frozenset(
    {
        # Google, Microsoft, Yahoo, Apple, AOL
        "gmail.com", "googlemail.com",
        "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com", "windowslive.com",
        "yahoo.com", "ymail.com", "rocketmail.com",
        "icloud.com", "me.com", "mac.com",
        "aol.com", "aim.com", "verizon.net",
        # Privacy-minded and independent providers
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me",
        "tutanota.com", "tutanota.de", "tutamail.com", "tuta.io", "tuta.com",
        "fastmail.com", "fastmail.fm", "hushmail.com", "mailbox.org", "posteo.de", "posteo.net",
        "runbox.com", "disroot.org", "riseup.net", "hey.com", "duck.com",
        "zoho.com", "zohomail.com", "zohomail.eu",
        # Europe
        "web.de", "t-online.de", "freenet.de", "arcor.de", "online.de",
        "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "laposte.net", "neuf.fr", "bbox.fr",
        "libero.it", "virgilio.it", "tiscali.it", "alice.it", "tin.it",
        "telefonica.net", "terra.es",
        "seznam.cz", "centrum.cz", "wp.pl", "o2.pl", "onet.pl", "interia.pl", "op.pl",
        "btinternet.com", "sky.com", "virginmedia.com", "ntlworld.com", "talktalk.net",
        "blueyonder.co.uk", "bluewin.ch", "telenet.be", "skynet.be", "ziggo.nl", "kpnmail.nl",
        "home.nl", "planet.nl", "xs4all.nl", "sapo.pt", "abv.bg", "freemail.hu",
        # Russia and neighbours
        "mail.ru", "inbox.ru", "list.ru", "bk.ru", "internet.ru", "rambler.ru", "ya.ru",
        "ukr.net", "i.ua",
        # Asia
        "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sina.cn",
        "sohu.com", "aliyun.com", "139.com", "naver.com", "daum.net", "hanmail.net",
        "nate.com", "rediffmail.com",
        # Americas and Oceania
        "mail.com", "email.com", "usa.com", "inbox.com", "lycos.com", "excite.com",
        "comcast.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net", "charter.net",
        "earthlink.net", "optonline.net", "juno.com", "netzero.net",
        "shaw.ca", "rogers.com", "sympatico.ca", "videotron.ca",
        "uol.com.br", "bol.com.br", "terra.com.br", "ig.com.br", "prodigy.net.mx",
        "bigpond.com", "bigpond.net.au", "optusnet.com.au", "iinet.net.au", "xtra.co.nz",
        # Throwaway addresses
        "mailinator.com", "guerrillamail.com", "yopmail.com", "10minutemail.com",
        "temp-mail.org", "trashmail.com", "sharklasers.com", "getnada.com",
    }
)  # fmt: skip
# Providers under many country domains: gmx.de, yahoo.co.uk, yandex.kz, hotmail.fr…
PROVIDER_BRANDS = frozenset(
    {
        "gmail", "googlemail", "outlook", "hotmail", "live", "msn", "yahoo", "ymail",
        "aol", "gmx", "yandex", "protonmail", "zoho", "tutanota", "rediffmail", "libero",
    }
)  # fmt: skip
# Second-level labels of country domains (co.uk, com.br…): never an organization's own.
SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "gob"})
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# What a look-up can say; the last two say nothing about the record.
FOUND, NXDOMAIN, NO_RECORD, WRONG_VALUE, TIMEOUT, ERROR = (
    "found",
    "nxdomain",
    "no_record",
    "wrong_value",
    "timeout",
    "error",
)
INCONCLUSIVE = frozenset({TIMEOUT, ERROR})
DOMAINS_SORT = SortKey("domain", OrgDomain.domain, OrgDomain.id)


class DomainError(Exception):
    """A domain that cannot be added or changed as asked; ``status`` is the HTTP answer."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidDomain(DomainError):
    """Not a domain name at all, or one no organization can own."""

    status = 422


class PublicProvider(DomainError):
    """A mailbox provider anyone can sign up with."""

    status = 422


class DomainTaken(DomainError):
    """Another org has verified this domain."""

    status = 409


# -- names -----------------------------------------------------------------------------


def normalize_domain(raw: str) -> str:
    """Return the domain in its stored form (lower case, IDNA ASCII, no trailing dot)."""
    value = (raw or "").strip()
    if not value:
        raise InvalidDomain(_("Enter a domain, such as acme.org."))
    if any(c in value for c in "@/:\\ \t"):
        raise InvalidDomain(
            _("Enter the domain alone, such as acme.org: not an email or a web address.")
        )
    value = value.lower().removesuffix(".")
    invalid = InvalidDomain(_("%(domain)s is not a valid domain name.", domain=value[:100]))
    try:
        ascii_form = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise invalid from None
    labels = ascii_form.split(".")
    if len(ascii_form) > 253 or not all(_LABEL.match(label) for label in labels):
        raise invalid
    if len(labels) < 2:
        raise InvalidDomain(
            _("%(domain)s is a top-level domain, not an organization's.", domain=value[:100])
        )
    if not re.search(r"[a-z]", labels[-1]):
        raise invalid
    if _public_suffix(labels):
        raise InvalidDomain(
            _("%(domain)s is a public suffix, not an organization's domain.", domain=value[:100])
        )
    for label in labels:
        if label.startswith("xn--"):
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                raise invalid from None
    return ascii_form


def public_provider(domain: str) -> str | None:
    """Return the public mailbox provider ``domain`` belongs to, if it is one (or under one)."""
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        suffix = ".".join(labels[start:])
        if suffix in PUBLIC_PROVIDERS:
            return suffix
        brand, rest = labels[start], labels[start + 1 :]
        if brand in PROVIDER_BRANDS and _public_suffix(rest):
            return suffix
    return None


def _public_suffix(labels: list[str]) -> bool:
    return len(labels) == 1 or (
        len(labels) == 2 and labels[0] in SECOND_LEVEL and len(labels[1]) == 2
    )


# -- DNS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """What a look-up of the verification record found."""

    outcome: str
    detail: str = ""

    @property
    def found(self) -> bool:
        return self.outcome == FOUND


def lookup(domain: OrgDomain) -> Lookup:
    """Resolve the domain's TXT record and say whether it carries the domain's token.

    A name that does not exist (NXDOMAIN), a name without TXT records, a record
    with another value and a server that never answers are told apart.
    """
    try:
        resolver = _resolver()
        answer = resolver.resolve(
            dns.name.from_text(domain.txt_name), "TXT", search=False, raise_on_no_answer=True
        )
    except dns.resolver.NXDOMAIN:
        return Lookup(NXDOMAIN)
    except dns.resolver.NoAnswer:
        return Lookup(NO_RECORD)
    except dns.exception.Timeout:
        return Lookup(TIMEOUT)
    except dns.resolver.NoNameservers as error:
        return Lookup(ERROR, str(error)[:200])
    except dns.exception.DNSException as error:
        return Lookup(ERROR, str(error)[:200] or type(error).__name__)
    values = [b"".join(record.strings).decode("utf-8", "replace").strip() for record in answer]
    if domain.txt_value in values:
        return Lookup(FOUND)
    if any(value.startswith(TXT_VALUE_PREFIX) for value in values):
        return Lookup(WRONG_VALUE)
    return Lookup(NO_RECORD)


def _resolver() -> dns.resolver.Resolver:
    servers = parse_nameservers(current_app.config["DNS_NAMESERVERS"])
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in servers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = float(current_app.config["DNS_TIMEOUT"])
    resolver.timeout = resolver.lifetime
    resolver.cache = None
    return resolver


def describe_lookup(domain: OrgDomain, outcome: str | None) -> str:
    """Return what the last look-up found, in words an owner can act on."""
    name = domain.txt_name
    messages = {
        FOUND: _("The record %(name)s was found with the right value.", name=name),
        NXDOMAIN: _(
            "The name %(name)s does not exist in DNS (NXDOMAIN): publish the TXT record there. "
            "New records can take a while to appear.",
            name=name,
        ),
        NO_RECORD: _(
            "The name %(name)s exists but has no verification TXT record: add one with the "
            "value shown.",
            name=name,
        ),
        WRONG_VALUE: _(
            "A TXT record %(name)s exists, but its value is not this domain's token: copy the "
            "value shown exactly (a value from another organization or an old token does not "
            "count).",
            name=name,
        ),
        TIMEOUT: _(
            "The DNS servers did not answer in time, so nothing is known about the record. "
            "Try again later."
        ),
        ERROR: _(
            "DNS could not be asked (the servers refused or failed), so nothing is known "
            "about the record. Try again later."
        ),
    }
    return messages.get(outcome or "", _("Not checked yet."))


# -- reading ---------------------------------------------------------------------------------


def list_domains(org: Org) -> list[OrgDomain]:
    """Return the org's domains, by name."""
    return list(
        db.session.scalars(
            sa.select(OrgDomain).where(OrgDomain.org_id == org.id).order_by(OrgDomain.domain)
        )
    )


def find_domain(org: Org, raw: str) -> OrgDomain | None:
    """Return the org's domain written ``raw`` (in any case, Unicode or ASCII), if any."""
    try:
        name = normalize_domain(raw)
    except InvalidDomain:
        return None
    return db.session.scalar(
        sa.select(OrgDomain).where(OrgDomain.org_id == org.id, OrgDomain.domain == name)
    )


def all_domains(org: Org | None, cursor: str | None, limit: int) -> Page:
    """Return one page of every org's domains (or one org's) for staff, by name."""
    stmt = sa.select(OrgDomain, Org).join(Org, Org.id == OrgDomain.org_id)
    if org is not None:
        stmt = stmt.where(OrgDomain.org_id == org.id)
    return paginate(
        stmt,
        DOMAINS_SORT,
        cursor,
        limit,
        key_of=lambda row: (row.OrgDomain.domain, row.OrgDomain.id),
    )


def get_domain(domain_id: uuid.UUID) -> OrgDomain | None:
    """Return a domain by id, whatever its org (for staff)."""
    return db.session.get(OrgDomain, domain_id)


def verified_elsewhere(domain: OrgDomain) -> bool:
    """Return whether another org has this domain verified."""
    return (
        db.session.scalar(
            sa.select(OrgDomain.id).where(
                OrgDomain.domain == domain.domain,
                OrgDomain.status == DomainStatus.VERIFIED,
                OrgDomain.id != domain.id,
            )
        )
        is not None
    )


def _taken(domain: str) -> DomainTaken:
    return DomainTaken(
        _(
            "Another organization has verified %(domain)s. A domain is verified by one "
            "organization at a time; if it is yours, ask platform staff.",
            domain=domain,
        )
    )


# -- changing -------------------------------------------------------------------------------


def _target(domain: OrgDomain) -> tuple[str, uuid.UUID]:
    return ("domain", domain.id)


def add_domain(actor: Any, org: Org, raw: str) -> OrgDomain:
    """Add a domain to verify; refuse malformed names, public providers, others' domains."""
    name = normalize_domain(raw)
    provider = public_provider(name)
    if provider is not None:
        raise PublicProvider(
            _(
                "%(domain)s is a public mailbox provider: anyone can have an address there, "
                "so it cannot prove who works for %(org)s.",
                domain=provider,
                org=org.name,
            )
        )
    if db.session.scalar(
        sa.select(OrgDomain.id).where(OrgDomain.org_id == org.id, OrgDomain.domain == name)
    ):
        raise DomainError(_("%(domain)s is already in your list.", domain=name))
    if db.session.scalar(
        sa.select(OrgDomain.id).where(
            OrgDomain.domain == name, OrgDomain.status == DomainStatus.VERIFIED
        )
    ):
        raise _taken(name)
    domain = OrgDomain(org_id=org.id, domain=name, token=secrets.token_urlsafe(24))
    db.session.add(domain)
    db.session.flush()
    audit.record(actor, "domain.added", org=org, target=_target(domain), details={"domain": name})
    return domain


def update_domain(
    actor: Any, org: Org, domain: OrgDomain, *, include_subdomains: bool, auto_claim: bool
) -> OrgDomain:
    """Set whether subdomains count and whether new sign-ups are claimed automatically."""
    changes = {}
    if domain.include_subdomains != include_subdomains:
        changes["include_subdomains"] = {
            "before": domain.include_subdomains,
            "after": include_subdomains,
        }
        domain.include_subdomains = include_subdomains
    if domain.auto_claim != auto_claim:
        changes["auto_claim"] = {"before": domain.auto_claim, "after": auto_claim}
        domain.auto_claim = auto_claim
    if changes:
        audit.record(
            actor,
            "domain.updated",
            org=org,
            target=_target(domain),
            details={"domain": domain.domain, **changes},
        )
    return domain


def remove_domain(actor: Any, org: Org, domain: OrgDomain) -> None:
    """Remove a domain; pending claims through it are dropped (the participants told).

    Refused while accounts claimed through it are managed: release them first,
    so no account stays managed through a domain nobody re-checks.
    """
    effective = claims.claim_counts(domain)[ClaimStatus.EFFECTIVE]
    if effective:
        raise DomainError(
            _(
                "%(count)s accounts were claimed through %(domain)s and are still managed. "
                "Release them first, or keep the domain.",
                count=effective,
                domain=domain.domain,
            )
        )
    now = utcnow()
    for claim in _open_claims(domain, ClaimStatus.PENDING):
        claims.drop(actor, claim, "domain_removed", now)
    audit.record(
        actor,
        "domain.removed",
        org=org,
        target=_target(domain),
        details={"domain": domain.domain, "status": domain.status},
    )
    db.session.delete(domain)
    db.session.flush()


def set_claim_notice(actor: Any, org: Org, days: int) -> Org:
    """Set how many days (0 to 30) a claim waits before it takes effect."""
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 30:
        raise InvalidDomain(_("The notice period is a whole number of days from 0 to 30."))
    if org.claim_notice_days != days:
        audit.record(
            actor,
            "org.claim_notice_changed",
            org=org,
            target=org,
            details={"claim_notice_days": {"before": org.claim_notice_days, "after": days}},
        )
        org.claim_notice_days = days
    return org


def verify_by_hand(actor: Any, domain: OrgDomain, reason: str) -> OrgDomain:
    """Mark a domain verified without DNS (staff, for partners who cannot publish a record)."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidDomain(_("Write why the domain is verified without DNS."))
    if len(reason) > 500:
        raise InvalidDomain(_("Keep the reason under 500 characters."))
    if verified_elsewhere(domain):
        raise _taken(domain.domain)
    before = domain.status
    with _verifying(domain):
        domain.status = DomainStatus.VERIFIED
        domain.verified_at = utcnow()
        domain.lapsed_at = None
        domain.missing_since = None
        domain.manual_reason = reason
        domain.manual_by = audit.describe_actor(actor, domain.org).name
    audit.record(
        actor,
        "domain.verified_by_hand",
        org=domain.org,
        target=_target(domain),
        details={
            "domain": domain.domain,
            "reason": reason,
            "status": {"before": before, "after": "verified"},
        },
    )
    return domain


# -- checking ---------------------------------------------------------------------------------


@dataclass
class Check:
    """One look-up of a domain's record and what it changed."""

    domain: OrgDomain
    lookup: Lookup
    # What changed, in order: verified, failed, missing, lapsed, restored, released.
    events: list[str] = field(default_factory=list)
    released: int = 0


def check_domain(actor: Any, org: Org, domain: OrgDomain, now: datetime | None = None) -> Check:
    """Look the record up now and apply what it says ("check now" and the API's verify)."""
    if domain.status != DomainStatus.VERIFIED and verified_elsewhere(domain):
        raise _taken(domain.domain)
    check = apply_lookup(actor, domain, lookup(domain), now)
    audit.record(
        actor,
        "domain.checked",
        org=org,
        target=_target(domain),
        details={"domain": domain.domain, "result": check.lookup.outcome, "status": domain.status},
    )
    return check


def due_for_recheck() -> list[uuid.UUID]:
    """Return the ids of the domains ``recheck`` looks at: verified by DNS, or lapsed."""
    return list(
        db.session.scalars(
            sa.select(OrgDomain.id)
            .where(
                sa.or_(
                    sa.and_(
                        OrgDomain.status == DomainStatus.VERIFIED,
                        OrgDomain.manual_reason.is_(None),
                    ),
                    OrgDomain.status == DomainStatus.LAPSED,
                )
            )
            .order_by(OrgDomain.domain, OrgDomain.id)
        )
    )


def recheck(domain: OrgDomain, now: datetime | None = None) -> Check:
    """Look one verified or lapsed domain up again, as the scheduled re-check does."""
    return apply_lookup(audit.SYSTEM, domain, lookup(domain), now)


def apply_lookup(
    actor: Any, domain: OrgDomain, found: Lookup, now: datetime | None = None
) -> Check:
    """Move the domain along pending → verified → lapsed → released by what DNS said."""
    now = now or utcnow()
    check = Check(domain, found)
    domain.last_checked_at = now
    domain.last_result = found.outcome
    if found.outcome in INCONCLUSIVE:
        # A server that does not answer says nothing about the record: no clock starts or stops.
        return check
    if found.found:
        domain.last_seen_at = now
        domain.missing_since = None
        if domain.status in (DomainStatus.PENDING, DomainStatus.FAILED):
            _mark_verified(actor, domain, now, "domain.verified")
            check.events.append("verified")
        elif domain.status == DomainStatus.LAPSED and not verified_elsewhere(domain):
            try:
                _mark_verified(actor, domain, now, "domain.restored")
            except DomainTaken:
                return check  # another org verified it meanwhile: it stays lapsed here
            check.events.append("restored")
        elif domain.status == DomainStatus.VERIFIED and domain.verified_by_hand:
            # The record now proves what staff vouched for: re-checks look after it from here.
            domain.manual_reason = None
            domain.manual_by = None
        return check
    if domain.status in (DomainStatus.PENDING, DomainStatus.FAILED):
        domain.status = DomainStatus.FAILED
        check.events.append("failed")
        return check
    if domain.status == DomainStatus.VERIFIED and domain.verified_by_hand:
        return check
    if domain.missing_since is None:
        domain.missing_since = now
    check.events.append("missing")
    if domain.status == DomainStatus.VERIFIED and now - domain.missing_since >= _grace(
        "DOMAIN_LAPSE_GRACE_DAYS"
    ):
        lapse(actor, domain, now)
        check.events.append("lapsed")
    if domain.status == DomainStatus.LAPSED and domain.lapsed_at is not None:
        if now - domain.lapsed_at >= _grace("DOMAIN_RELEASE_GRACE_DAYS"):
            check.released = release_lapsed(actor, domain, now)
            if check.released:
                check.events.append("released")
    return check


@dataclass(frozen=True)
class Deadlines:
    lapse_on: datetime | None
    release_on: datetime | None


def deadlines(domain: OrgDomain) -> Deadlines:
    """Return when a missing record lapses the domain, and when a lapse releases its accounts."""
    lapse_on = release_on = None
    if domain.status == DomainStatus.VERIFIED and domain.missing_since is not None:
        lapse_on = domain.missing_since + _grace("DOMAIN_LAPSE_GRACE_DAYS")
    if domain.status == DomainStatus.LAPSED and domain.lapsed_at is not None:
        release_on = domain.lapsed_at + _grace("DOMAIN_RELEASE_GRACE_DAYS")
    return Deadlines(lapse_on, release_on)


def _grace(setting: str) -> timedelta:
    return timedelta(days=float(current_app.config[setting]))


@contextmanager
def _verifying(domain: OrgDomain) -> Iterator[None]:
    """Apply the changes that verify the domain in a savepoint; refuse if another org won."""
    # Two orgs verifying one domain at once: the partial unique index lets one win.
    try:
        with db.session.begin_nested():
            yield
            db.session.flush()
    except sa.exc.IntegrityError:
        raise _taken(domain.domain) from None


def _mark_verified(actor: Any, domain: OrgDomain, now: datetime, action: str) -> None:
    before = domain.status
    with _verifying(domain):
        domain.status = DomainStatus.VERIFIED
        domain.verified_at = now
        domain.lapsed_at = None
    audit.record(
        actor,
        action,
        org=domain.org,
        target=_target(domain),
        details={"domain": domain.domain, "status": {"before": before, "after": "verified"}},
    )


def _open_claims(domain: OrgDomain, status: str) -> list[DomainClaim]:
    return list(
        db.session.scalars(
            sa.select(DomainClaim)
            .where(DomainClaim.domain_id == domain.id, DomainClaim.status == status)
            .order_by(DomainClaim.created_at, DomainClaim.id)
        )
    )


def owners_of(org: Org) -> list[Admin]:
    """Return the org's active owners, who hear about its domains."""
    return list(
        db.session.scalars(
            sa.select(Admin)
            .join(OrgRole, OrgRole.admin_id == Admin.id)
            .where(
                OrgRole.org_id == org.id,
                OrgRole.role == "owner",
                Admin.status == AdminStatus.ACTIVE,
            )
            .order_by(Admin.email)
        )
    )


def lapse(actor: Any, domain: OrgDomain, now: datetime) -> None:
    """Stop the domain granting claims: pending ones drop, the owners are told at once."""
    org = domain.org
    domain.status = DomainStatus.LAPSED
    domain.lapsed_at = now
    for claim in _open_claims(domain, ClaimStatus.PENDING):
        claims.drop(actor, claim, "domain_lapsed", now)
    managed = claims.claim_counts(domain)[ClaimStatus.EFFECTIVE]
    release_on = now + _grace("DOMAIN_RELEASE_GRACE_DAYS")
    for owner in owners_of(org):
        mail.queue(
            "domain_lapsed",
            owner.email,
            org=org,
            admin=owner,
            domain=domain,
            managed=managed,
            release_on=release_on,
            domain_link=mail.external_url("domains.show", org=org.slug, domain=domain.domain),
        )
    audit.record(
        actor,
        "domain.lapsed",
        org=org,
        target=_target(domain),
        details={
            "domain": domain.domain,
            "missing_since": domain.missing_since.isoformat() if domain.missing_since else None,
            "managed": managed,
        },
    )


def release_lapsed(actor: Any, domain: OrgDomain, now: datetime) -> int:
    """Release every account claimed through a domain that stayed lapsed; each is told."""
    org = domain.org
    released = 0
    for claim in _open_claims(domain, ClaimStatus.EFFECTIVE):
        participant = claim.participant
        if participant.managed_by_org_id == org.id:
            control.release(
                actor,
                org,
                participant,
                reason="domain lapsed",
                notify=False,
                claim_reason="domain_lapsed",
            )
            if participant.email:
                mail.queue(
                    "control_released_lapsed",
                    participant.email,
                    org=org,
                    participant=participant,
                    domain_name=domain.unicode_name,
                )
            released += 1
        else:  # no longer managed by the org: only the claim is left to end
            claims.close_claims(org, participant, "domain_lapsed")
    if released:
        audit.record(
            actor,
            "domain.accounts_released",
            org=org,
            target=_target(domain),
            details={"domain": domain.domain, "released": released, "reason": "domain lapsed"},
        )
    return released


# -- releasing accounts claimed through a domain ---------------------------------------------


@dataclass(frozen=True)
class ReleaseResult:
    claim: DomainClaim
    outcome: str  # released (was effective) or dropped (was pending)


def release_claims(
    actor: Any, org: Org, domain: OrgDomain, chosen: list[DomainClaim]
) -> list[ReleaseResult]:
    """Give up the chosen claims: pending ones drop, effective ones release; each is told."""
    results = []
    now = utcnow()
    for claim in chosen:
        if (
            claim.org_id != org.id
            or claim.domain_id != domain.id
            or claim.status not in OPEN_CLAIMS
        ):
            continue
        if claim.status == ClaimStatus.PENDING:
            claims.drop(actor, claim, "cancelled", now)
            results.append(ReleaseResult(claim, "dropped"))
            continue
        participant = claim.participant
        if participant.managed_by_org_id == org.id:
            control.release(actor, org, participant, reason=f"released from {domain.domain}")
        else:
            claims.close_claims(org, participant, "released")
        results.append(ReleaseResult(claim, "released"))
    return results


def release_batch(
    actor: Any, org: Org, domain: OrgDomain, batch: int | None = None
) -> tuple[list[ReleaseResult], int]:
    """Release the next ``batch`` open claims of the domain; return results and how many remain."""
    chosen = list(
        db.session.scalars(
            sa.select(DomainClaim)
            .where(DomainClaim.domain_id == domain.id, DomainClaim.status.in_(OPEN_CLAIMS))
            .order_by(DomainClaim.created_at, DomainClaim.id)
            .limit(batch or claims.BATCH)
        )
    )
    results = release_claims(actor, org, domain, chosen)
    remaining = sum(claims.claim_counts(domain).values())
    return results, remaining
