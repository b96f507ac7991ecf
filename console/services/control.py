"""Control of managed accounts: what an org may do to a participant, and what the participant feels.

Every function takes the actor explicitly, refuses accounts the org does not
manage, changes the session, queues the participant's mail and writes the
audit event, all in the caller's transaction. The pages, the API and SCIM call
these same functions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from babel import Locale
from flask import current_app

from console.extensions import db
from console.models import AccountLink
from console.models import AccountStatus
from console.models import ActivityEvent
from console.models import AuditEvent
from console.models import EmailChangeRequest
from console.models import LinkPurpose
from console.models import Member
from console.models import Membership
from console.models import MentoringRelationship
from console.models import Org
from console.models import OutboxMessage
from console.models import Participant
from console.models import ParticipantIdentity
from console.models import Profile
from console.models import Program
from console.models import ReleaseRequest
from console.models import RequestStatus
from console.models import ScimUser
from console.models import SearchTerm
from console.models.base import utcnow
from console.models.participants import PRIVATE_FIELDS
from console.models.participants import PROFILE_FIELDS
from console.services import audit
from console.services import claims
from console.services import mail
from console.services import rollups
from console.services.auth import EmailError
from console.services.auth import checked_email
from console.services.auth import hash_password
from console.services.auth import password_problem
from console.services.participants import index_participant

EMAIL_LINK_TTL = timedelta(hours=48)


class AccountError(Exception):
    """An action that cannot be done; ``status`` is the HTTP status the API answers with."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotManaged(AccountError):
    """The org does not manage this account, so it may not change it."""

    status = 409


class InvalidInput(AccountError):
    """A value that cannot be used; ``field`` names it when there is one."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EmailInUse(InvalidInput):
    """The email belongs to another account: a conflict, not a malformed value."""

    status = 409


class LinkError(AccountError):
    """A link that is unknown, used, expired or for something else."""

    status = 400


def require_managed(org: Org, participant: Participant) -> None:
    """Raise ``NotManaged`` unless ``org`` manages ``participant``."""
    if participant.erased_at is not None:
        raise AccountError("This account was erased.")
    if participant.managed_by_org_id != org.id:
        raise NotManaged(
            f"{org.name} does not manage this account, so it cannot change it. "
            "An org manages an account it provisioned or claimed through a verified domain."
        )


# -- single-use links ---------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(
    participant: Participant, purpose: LinkPurpose, ttl: timedelta, new_email: str | None = None
) -> str:
    """Store a new single-use link and return its token (only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        AccountLink(
            participant_id=participant.id,
            purpose=purpose,
            token_hash=_digest(token),
            new_email=new_email,
            expires_at=utcnow() + ttl,
        )
    )
    db.session.flush()
    return token


def find_link(token: str, purpose: LinkPurpose) -> AccountLink:
    """Return the usable link for ``token``, or raise ``LinkError`` saying what is wrong."""
    link = db.session.scalar(
        sa.select(AccountLink).where(AccountLink.token_hash == _digest(token or ""))
    )
    if link is None or link.purpose != purpose:
        raise LinkError("This link is not valid. Ask for a new one.")
    if link.used_at is not None:
        raise LinkError("This link was already used. Ask for a new one.")
    if link.expires_at <= utcnow():
        raise LinkError("This link has expired. Ask for a new one.")
    return link


def _cancel_links(participant: Participant, *purposes: LinkPurpose) -> None:
    db.session.execute(
        sa.update(AccountLink)
        .where(
            AccountLink.participant_id == participant.id,
            AccountLink.purpose.in_(purposes),
            AccountLink.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )


def cancel_email_change(actor: Any, org: Org, participant: Participant) -> None:
    """Void a pending change of the account's email (its confirmation link dies), if any."""
    pending = db.session.scalar(
        sa.select(AccountLink.id).where(
            AccountLink.participant_id == participant.id,
            AccountLink.purpose == LinkPurpose.CHANGE_EMAIL,
            AccountLink.used_at.is_(None),
        )
    )
    if pending is None:
        return
    _cancel_links(participant, LinkPurpose.CHANGE_EMAIL)
    audit.record(actor, "participant.email_change_cancelled", org=org, target=participant)


def reset_ttl() -> timedelta:
    return timedelta(seconds=int(current_app.config["RESET_TOKEN_TTL"]))


def _reset_link(participant: Participant) -> str:
    token = issue_link(participant, LinkPurpose.PASSWORD_RESET, reset_ttl())
    return mail.external_url("account.reset_password", token=token)


def _revoke(participant: Participant) -> None:
    participant.session_version += 1


def _changed(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after}


# -- passwords and sessions ------------------------------------------------------


def require_password_reset(actor: Any, org: Org, participant: Participant) -> Participant:
    """End every session, force a new password at next sign-in, and mail a reset link."""
    require_managed(org, participant)
    participant.must_reset_password = True
    _revoke(participant)
    _notify(participant, org, "password_reset_required", link=_reset_link(participant))
    audit.record(actor, "participant.password_reset_required", org=org, target=participant)
    return participant


def send_reset_link(actor: Any, org: Org, participant: Participant) -> Participant:
    """Mail a single-use, expiring link to set a new password (never shows or sets one)."""
    require_managed(org, participant)
    _notify(participant, org, "password_reset_link", link=_reset_link(participant))
    audit.record(actor, "participant.reset_link_sent", org=org, target=participant)
    return participant


def revoke_sessions(actor: Any, org: Org, participant: Participant) -> Participant:
    """Sign the participant out everywhere."""
    require_managed(org, participant)
    _revoke(participant)
    audit.record(actor, "participant.sessions_revoked", org=org, target=participant)
    return participant


def set_password(participant: Participant, password: str) -> None:
    """Set a new password: outstanding reset links die, other sessions end.

    It never lifts a suspension or a deactivation.
    """
    if problem := password_problem(password):
        raise InvalidInput(problem, "password")
    participant.password_hash = hash_password(password)
    participant.password_changed_at = utcnow()
    participant.must_reset_password = False
    _cancel_links(participant, LinkPurpose.PASSWORD_RESET)
    _revoke(participant)


# -- suspension, restriction, deactivation --------------------------------------------


def suspend(
    actor: Any, org: Org, participant: Participant, reason: str, until: datetime | None = None
) -> Participant:
    """Suspend sign-in, with a reason and an optional end; sessions end at once."""
    require_managed(org, participant)
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput("Give a reason: the participant is told why.", "reason")
    if len(reason) > 500:
        raise InvalidInput("Keep the reason under 500 characters.", "reason")
    now = utcnow()
    if until is not None and until <= now:
        raise InvalidInput("The end of the suspension must be in the future.", "until")
    if participant.status == AccountStatus.DEACTIVATED:
        raise AccountError("This account is deactivated; reactivate it before suspending it.")
    before = participant.effective_status(now)
    participant.status = AccountStatus.SUSPENDED
    participant.suspended_reason = reason
    participant.suspended_until = until
    participant.suspended_at = now
    _revoke(participant)
    _notify(participant, org, "account_suspended", reason=reason, until=until)
    audit.record(
        actor,
        "participant.suspended",
        org=org,
        target=participant,
        details={
            "status": _changed(before, AccountStatus.SUSPENDED.value),
            "reason": reason,
            "until": until.isoformat() if until else None,
        },
    )
    return participant


def unsuspend(actor: Any, org: Org, participant: Participant) -> Participant:
    """Lift a suspension."""
    require_managed(org, participant)
    if participant.status != AccountStatus.SUSPENDED:
        raise AccountError("This account is not suspended.")
    participant.status = AccountStatus.ACTIVE
    participant.suspended_reason = None
    participant.suspended_until = None
    participant.suspended_at = None
    _notify(participant, org, "account_unsuspended")
    audit.record(
        actor,
        "participant.unsuspended",
        org=org,
        target=participant,
        details={"status": _changed("suspended", "active")},
    )
    return participant


def restrict(actor: Any, org: Org, participant: Participant) -> Participant:
    """Stop the participant from changing or deleting profile data (they can still sign in)."""
    require_managed(org, participant)
    if participant.restricted:
        raise AccountError("Editing is already restricted for this account.")
    participant.restricted = True
    _notify(participant, org, "editing_restricted")
    audit.record(
        actor,
        "participant.restricted",
        org=org,
        target=participant,
        details={"restricted": _changed(False, True)},
    )
    return participant


def unrestrict(actor: Any, org: Org, participant: Participant) -> Participant:
    """Let the participant edit their profile again."""
    require_managed(org, participant)
    if not participant.restricted:
        raise AccountError("Editing is not restricted for this account.")
    participant.restricted = False
    _notify(participant, org, "editing_restored")
    audit.record(
        actor,
        "participant.unrestricted",
        org=org,
        target=participant,
        details={"restricted": _changed(True, False)},
    )
    return participant


def deactivate(actor: Any, org: Org, participant: Participant) -> Participant:
    """Terminate access: no sign-in, sessions end; the data is kept."""
    require_managed(org, participant)
    if participant.status == AccountStatus.DEACTIVATED:
        raise AccountError("This account is already deactivated.")
    before = participant.effective_status()
    participant.status = AccountStatus.DEACTIVATED
    participant.deactivated_at = utcnow()
    participant.suspended_reason = None
    participant.suspended_until = None
    participant.suspended_at = None
    _revoke(participant)
    _notify(participant, org, "account_deactivated")
    audit.record(
        actor,
        "participant.deactivated",
        org=org,
        target=participant,
        details={"status": _changed(before, "deactivated")},
    )
    return participant


def reactivate(actor: Any, org: Org, participant: Participant) -> Participant:
    """Give a deactivated account its access back."""
    require_managed(org, participant)
    if participant.status != AccountStatus.DEACTIVATED:
        raise AccountError("This account is not deactivated.")
    participant.status = AccountStatus.ACTIVE
    participant.deactivated_at = None
    _notify(participant, org, "account_reactivated")
    audit.record(
        actor,
        "participant.reactivated",
        org=org,
        target=participant,
        details={"status": _changed("deactivated", "active")},
    )
    return participant


def remove_from_program(
    actor: Any, org: Org, participant: Participant, program: Program
) -> Membership:
    """End the participant's membership of one program; the account is untouched."""
    require_managed(org, participant)
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.org_id == org.id,
            Membership.participant_id == participant.id,
            Membership.program_id == program.id,
            Membership.left_at.is_(None),
        )
    )
    if membership is None:
        raise AccountError(f"This participant is not in the program {program.name}.")
    membership.left_at = utcnow()
    _notify(participant, org, "removed_from_program", program=program)
    audit.record(
        actor,
        "participant.removed_from_program",
        org=org,
        target=participant,
        details={"program": str(program.id), "program_name": program.name},
    )
    end_membership_if_last(org, participant)
    return membership


def end_membership_if_last(org: Org, participant: Participant) -> None:
    """Drop the org's member row once no program holds the participant.

    An account the org manages stays a member: an org never loses sight of an
    account it is responsible for.
    """
    if participant.managed_by_org_id == org.id:
        rollups.sync_member(org, participant.id)
        return
    active = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Membership)
        .where(
            Membership.org_id == org.id,
            Membership.participant_id == participant.id,
            Membership.left_at.is_(None),
        )
    )
    if not active:
        db.session.execute(
            sa.delete(Member).where(
                Member.org_id == org.id, Member.participant_id == participant.id
            )
        )
    rollups.sync_member(org, participant.id)


# -- profile -----------------------------------------------------------------------


def update_profile(
    actor: Any, org: Org | None, participant: Participant, changes: dict[str, Any]
) -> list[str]:
    """Apply profile changes and return the names of the fields that changed.

    The audit event names the changed fields; their before and after values are
    sealed with the participant's key, so erasing the participant leaves no
    readable copy in the append-only trail.
    """
    if org is not None:
        require_managed(org, participant)
    unknown = set(changes) - set(PROFILE_FIELDS) - {"name", "role"}
    if unknown:
        raise InvalidInput(f"Not profile fields: {', '.join(sorted(unknown))}.")
    profile = participant.profile
    diff: dict[str, dict[str, Any]] = {}
    for field, value in changes.items():
        if isinstance(value, str):
            value = value.strip() or None
        if field == "name":
            if value is not None and not isinstance(value, str):
                raise InvalidInput("A name must be text.", "name")
            value = " ".join((value or "").split())
            if not value or len(value) > 200:
                raise InvalidInput("A name must have 1 to 200 characters.", "name")
            before = participant.name
            if before != value:
                participant.name = value
                diff[field] = _changed(before, value)
            continue
        if field == "role":
            if value not in ("mentor", "entrepreneur", "both"):
                raise InvalidInput("role: use mentor, entrepreneur or both.", "role")
            if participant.role != value:
                diff[field] = _changed(participant.role, value)
                participant.role = value
            continue
        value = clean_profile_value(field, value)
        before = getattr(profile, field)
        if before != value:
            setattr(profile, field, value)
            diff[field] = _changed(before, value)
    if not diff:
        return []
    if "name" in diff:
        index_participant(participant)
    rollups.note_profile(participant)
    audit.record(
        actor,
        "participant.profile_updated",
        org=org,
        target=participant,
        details={
            "fields": sorted(diff),
            "private_fields": sorted(set(diff) & set(PRIVATE_FIELDS)),
            "sealed": audit.seal(participant, diff),
        },
    )
    return sorted(diff)


# Whole-number fields and their bounds; None stands for the current year.
NUMBER_RANGES: dict[str, tuple[int, int | None]] = {
    "years_experience": (0, 80),
    "mentee_capacity": (0, 100),
    "founded_year": (1800, None),
    "employees": (0, 10_000_000),
    "birth_year": (1900, None),
}
URL_FIELDS = ("website", "linkedin_url", "business_website")
LONG_TEXT_LIMIT = 5000
_NUMBER = re.compile(r"[+-]?\d{1,10}")
# CLDR's two-letter territories, less the groupings and pseudo-regions that are no country.
COUNTRY_CODES = frozenset(
    code for code in Locale("en").territories if len(code) == 2 and code.isalpha()
) - {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}


def clean_profile_value(field: str, value: Any) -> Any:
    """Return ``value`` as the profile field stores it, or raise ``InvalidInput`` naming it."""
    if value is None:
        return None
    if field in NUMBER_RANGES:
        if isinstance(value, str) and _NUMBER.fullmatch(value):
            value = int(value)
        low, high = NUMBER_RANGES[field]
        high = high if high is not None else utcnow().year
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"Use a whole number from {low} to {high}.", field)
        return value
    if not isinstance(value, str):
        raise InvalidInput("This must be text.", field)
    if "\x00" in value:
        raise InvalidInput("This contains a character that text cannot hold.", field)
    if field == "country":
        if value.upper() not in COUNTRY_CODES:
            raise InvalidInput("Use a two-letter country code (ISO 3166-1), such as ES.", field)
        return value.upper()
    limit = getattr(Profile.__table__.c[field].type, "length", None) or LONG_TEXT_LIMIT
    if len(value) > limit:
        raise InvalidInput(f"Keep this to {limit} characters or fewer.", field)
    if field in URL_FIELDS and not _web_address(value):
        raise InvalidInput("Give a full web address starting with https://.", field)
    return value


def _web_address(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value
    except ValueError:
        return False


# -- email ------------------------------------------------------------------------


def normalized_new_email(participant: Participant, email: str) -> str:
    """Return ``email`` normalised, or raise if it is invalid, unchanged or taken."""
    try:
        email = checked_email(email)
    except EmailError as error:
        raise InvalidInput(str(error), "email") from None
    if email == participant.email:
        raise InvalidInput("That is already the account's email.", "email")
    taken = db.session.scalar(sa.select(Participant.id).where(Participant.email == email))
    if taken is not None:
        raise EmailInUse("Another account uses that email.", "email")
    return email


def start_email_change(
    actor: Any, org: Org | None, participant: Participant, new_email: str
) -> str:
    """Mail a confirmation link to the new address; the change waits for it.

    Until the new address confirms, nothing changes, so a reset link can never
    be rerouted silently. The current address is told at once.
    """
    if org is not None:
        require_managed(org, participant)
    new_email = normalized_new_email(participant, new_email)
    _cancel_links(participant, LinkPurpose.CHANGE_EMAIL)
    token = issue_link(participant, LinkPurpose.CHANGE_EMAIL, EMAIL_LINK_TTL, new_email=new_email)
    link = mail.external_url("account.confirm_email_change", token=token)
    mail.queue(
        "email_change_confirm",
        new_email,
        org=org,
        participant=participant,
        link=link,
        new_email=new_email,
    )
    if participant.email:
        _notify(participant, org, "email_change_started", new_email=audit.mask_email(new_email))
    audit.record(
        actor,
        "participant.email_change_started",
        org=org,
        target=participant,
        details={
            "email": _changed(audit.mask_email(participant.email), audit.mask_email(new_email))
        },
    )
    return new_email


def confirm_email_change(token: str) -> Participant:
    """Apply the change a confirmation link stands for; every session and reset link ends."""
    link = find_link(token, LinkPurpose.CHANGE_EMAIL)
    participant = link.participant
    new_email = link.new_email or ""
    link.used_at = utcnow()
    if db.session.scalar(
        sa.select(Participant.id).where(
            Participant.email == new_email, Participant.id != participant.id
        )
    ):
        raise LinkError("Another account took that email meanwhile. Ask for the change again.")
    old_email = participant.email
    org = participant.managed_by
    participant.email = new_email
    participant.email_verified = True
    _cancel_links(participant, LinkPurpose.PASSWORD_RESET, LinkPurpose.CHANGE_EMAIL)
    _revoke(participant)
    index_participant(participant)
    claims.email_changed(participant)
    if old_email:
        mail.queue(
            "email_changed",
            old_email,
            org=org,
            participant=participant,
            new_email=audit.mask_email(new_email),
        )
    mail.queue("email_changed", new_email, org=org, participant=participant, new_email=new_email)
    audit.record(
        participant,
        "participant.email_changed",
        org=org,
        target=participant,
        details={"email": _changed(audit.mask_email(old_email), audit.mask_email(new_email))},
    )
    return participant


def request_email_change(participant: Participant, new_email: str) -> EmailChangeRequest:
    """File a managed participant's wish for a new email with the managing org."""
    org = participant.managed_by
    if org is None:
        raise AccountError("Unmanaged accounts change their email directly.")
    new_email = normalized_new_email(participant, new_email)
    db.session.execute(
        sa.update(EmailChangeRequest)
        .where(
            EmailChangeRequest.participant_id == participant.id,
            EmailChangeRequest.status == RequestStatus.PENDING,
        )
        .values(status=RequestStatus.CANCELLED, decided_at=utcnow())
    )
    request = EmailChangeRequest(org_id=org.id, participant_id=participant.id, new_email=new_email)
    db.session.add(request)
    db.session.flush()
    audit.record(
        participant,
        "participant.email_change_requested",
        org=org,
        target=participant,
        details={"request": str(request.id), "email": audit.mask_email(new_email)},
    )
    return request


def decide_email_change(
    actor: Any, org: Org, request: EmailChangeRequest, approve: bool, note: str | None = None
) -> EmailChangeRequest:
    """Approve (the new address then confirms by link) or deny a participant's request."""
    if request.org_id != org.id:
        raise NotManaged("This request is for another organization.")
    if request.status != RequestStatus.PENDING:
        raise AccountError("This request was already decided.")
    participant = request.participant
    require_managed(org, participant)
    request.decided_at = utcnow()
    request.decided_by = audit.describe_actor(actor, org).name
    request.note = (note or "").strip()[:500] or None
    if approve:
        request.status = RequestStatus.APPROVED
        start_email_change(actor, org, participant, request.new_email)
    else:
        request.status = RequestStatus.DENIED
        _notify(participant, org, "email_change_denied", note=request.note)
    audit.record(
        actor,
        "participant.email_change_approved" if approve else "participant.email_change_denied",
        org=org,
        target=participant,
        details={"request": str(request.id)},
    )
    return request


# -- release requests -------------------------------------------------------------------


def ask_release(participant: Participant, message: str | None) -> ReleaseRequest:
    """File the participant's request that the managing org give up control."""
    org = participant.managed_by
    if org is None:
        raise AccountError("No organization manages this account.")
    pending = db.session.scalar(
        sa.select(ReleaseRequest).where(
            ReleaseRequest.participant_id == participant.id,
            ReleaseRequest.org_id == org.id,
            ReleaseRequest.status == RequestStatus.PENDING,
        )
    )
    if pending is not None:
        raise AccountError("You already asked; the request is waiting for the organization.")
    request = ReleaseRequest(
        org_id=org.id,
        participant_id=participant.id,
        message=" ".join((message or "").split())[:1000] or None,
    )
    db.session.add(request)
    db.session.flush()
    audit.record(
        participant,
        "participant.release_requested",
        org=org,
        target=participant,
        details={"request": str(request.id)},
    )
    return request


def release(
    actor: Any,
    org: Org,
    participant: Participant,
    reason: str = "released",
    *,
    notify: bool = True,
    claim_reason: str = "released",
) -> None:
    """Give up control of the account; the participant is told (unless the caller tells them).

    A domain claim through which the org managed the account ends with ``claim_reason``.
    """
    require_managed(org, participant)
    participant.managed_by_org_id = None
    participant.managed_since = None
    participant.restricted = False
    claims.close_claims(org, participant, claim_reason)
    if notify:
        _notify(participant, org, "control_released")
    audit.record(
        actor, "participant.released", org=org, target=participant, details={"reason": reason}
    )
    end_membership_if_last(org, participant)


def deprovision(actor: Any, org: Org, participant: Participant) -> None:
    """End the participant's memberships in the org and give up control; the participant is told.

    This is what an employer's provisioning does when it stops providing
    someone: the platform account survives, as the person's own.
    """
    require_managed(org, participant)
    now = utcnow()
    ended = db.session.execute(
        sa.select(Membership, Program)
        .outerjoin(Program, Program.id == Membership.program_id)
        .where(
            Membership.org_id == org.id,
            Membership.participant_id == participant.id,
            Membership.left_at.is_(None),
        )
    ).all()
    for membership, program in ended:
        membership.left_at = now
        if program is not None:
            audit.record(
                actor,
                "participant.removed_from_program",
                org=org,
                target=participant,
                details={"program": str(program.id), "program_name": program.name},
            )
    _notify(participant, org, "deprovisioned")
    release(actor, org, participant, reason="deprovisioned", notify=False)


def decide_release(
    actor: Any, org: Org, request: ReleaseRequest, approve: bool, note: str | None = None
) -> ReleaseRequest:
    """Release the account as asked, or decline with a note the participant sees."""
    if request.org_id != org.id:
        raise NotManaged("This request is for another organization.")
    if request.status != RequestStatus.PENDING:
        raise AccountError("This request was already decided.")
    request.decided_at = utcnow()
    request.decided_by = audit.describe_actor(actor, org).name
    request.note = (note or "").strip()[:500] or None
    participant = request.participant
    if approve:
        request.status = RequestStatus.APPROVED
        release(actor, org, participant, reason="participant asked")
    else:
        require_managed(org, participant)
        request.status = RequestStatus.DENIED
        _notify(participant, org, "release_declined", note=request.note)
        audit.record(
            actor,
            "participant.release_declined",
            org=org,
            target=participant,
            details={"request": str(request.id)},
        )
    return request


# -- data rights ---------------------------------------------------------------------


def export_data(actor: Any, org: Org | None, participant: Participant) -> dict[str, Any]:
    """Return everything the console holds about the participant, as JSON-ready data.

    With an org, the export is the org's (managed accounts only) and holds that
    org's memberships and trail; without, it is the participant's own download.
    """
    if org is not None:
        require_managed(org, participant)
    data = participant_data(participant, org)
    audit.record(actor, "participant.exported", org=org, target=participant)
    return data


def participant_data(participant: Participant, org: Org | None) -> dict[str, Any]:
    """Return the participant's data (see ``export_data``), without auditing."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    memberships = (
        sa.select(Membership, Program, Org)
        .outerjoin(Program, Program.id == Membership.program_id)
        .join(Org, Org.id == Membership.org_id)
        .where(Membership.participant_id == participant.id)
    )
    trail = (
        sa.select(AuditEvent, Org)
        .outerjoin(Org, Org.id == AuditEvent.org_id)
        .where(AuditEvent.target_type == "participant", AuditEvent.target_id == str(participant.id))
    )
    if org is not None:
        memberships = memberships.where(Membership.org_id == org.id)
        trail = trail.where(AuditEvent.org_id == org.id)
    relationships = db.session.scalars(
        sa.select(MentoringRelationship).where(
            sa.or_(
                MentoringRelationship.mentor_id == participant.id,
                MentoringRelationship.mentee_id == participant.id,
            )
        )
    )
    activity = db.session.scalars(
        sa.select(ActivityEvent)
        .where(ActivityEvent.participant_id == participant.id)
        .order_by(ActivityEvent.occurred_at)
    )
    profile = participant.profile
    return {
        "exported_at": utcnow().isoformat(),
        "account": {
            "id": str(participant.id),
            "email": participant.email,
            "email_verified": participant.email_verified,
            "name": participant.name,
            "role": participant.role,
            "status": participant.effective_status(),
            "suspended_reason": participant.suspended_reason,
            "suspended_until": when(participant.suspended_until),
            "restricted": participant.restricted,
            "must_reset_password": participant.must_reset_password,
            "managed_by": participant.managed_by.slug if participant.managed_by else None,
            "managed_since": when(participant.managed_since),
            "created_at": when(participant.created_at),
            "last_sign_in_at": when(participant.last_sign_in_at),
            "last_active_at": when(participant.last_active_at),
        },
        "profile": {field: getattr(profile, field) for field in PROFILE_FIELDS},
        "memberships": [
            {
                "org": o.slug,
                "program": {"id": str(p.id), "name": p.name} if p else None,
                "role": m.role,
                "joined_at": when(m.joined_at),
                "left_at": when(m.left_at),
                "joined_via": m.joined_via,
            }
            for m, p, o in db.session.execute(memberships.order_by(Membership.joined_at))
        ],
        "relationships": [
            {
                "id": str(r.id),
                "as": "mentor" if r.mentor_id == participant.id else "mentee",
                "counterpart_id": str(
                    r.mentee_id if r.mentor_id == participant.id else r.mentor_id
                ),
                "status": r.status,
                "requested_at": when(r.requested_at),
                "started_at": when(r.started_at),
                "ended_at": when(r.ended_at),
            }
            for r in relationships
        ],
        "activity": [
            {"id": e.id, "type": e.type, "occurred_at": when(e.occurred_at), "data": e.data}
            for e in activity
        ],
        "audit": [
            {
                "at": when(e.at),
                "org": o.slug if o else None,
                "actor_type": e.actor_type,
                "actor_role": e.actor_role,
                "action": e.action,
            }
            for e, o in db.session.execute(trail.order_by(AuditEvent.at))
        ],
    }


ERASED_NAME = "Erased participant"


def erase(actor: Any, org: Org, participant: Participant, confirmation: str) -> Participant:
    """Anonymise the account for good; ``confirmation`` must be its email address.

    The account row stays (activity counts in aggregate reports still add up)
    but nothing in it identifies the person: the profile is emptied, search
    terms and links are deleted, pending mail is redacted, and the key that
    sealed their data in the audit trail is destroyed.
    """
    require_managed(org, participant)
    if (confirmation or "").strip().lower() != (participant.email or "").lower():
        raise InvalidInput("Type the account's email address exactly to confirm.", "confirmation")
    anonymize(participant)
    audit.record(actor, "participant.erased", org=org, target=participant)
    return participant


def anonymize(participant: Participant) -> None:
    """Remove everything that identifies the participant (see ``erase``); no audit."""
    now = utcnow()
    for field in PROFILE_FIELDS:
        setattr(participant.profile, field, None)
    participant.name = ERASED_NAME
    participant.email = None
    participant.email_verified = False
    participant.password_hash = None
    participant.status = AccountStatus.DEACTIVATED
    participant.deactivated_at = participant.deactivated_at or now
    participant.suspended_reason = None
    participant.suspended_until = None
    participant.restricted = False
    participant.must_reset_password = False
    participant.managed_by_org_id = None
    participant.managed_since = None
    participant.erased_at = now
    claims.close_claims(None, participant, "erased")
    _revoke(participant)
    pid = participant.id
    db.session.execute(sa.delete(SearchTerm).where(SearchTerm.participant_id == pid))
    db.session.execute(
        sa.delete(ParticipantIdentity).where(ParticipantIdentity.participant_id == pid)
    )
    db.session.execute(sa.delete(AccountLink).where(AccountLink.participant_id == pid))
    db.session.execute(
        sa.delete(EmailChangeRequest).where(EmailChangeRequest.participant_id == pid)
    )
    db.session.execute(sa.delete(ReleaseRequest).where(ReleaseRequest.participant_id == pid))
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.participant_id == pid)
        .values(
            to_address="erased",
            subject="(erased)",
            text_body="",
            html_body="",
            status=sa.case(
                (OutboxMessage.status == "pending", "failed"), else_=OutboxMessage.status
            ),
        )
    )
    db.session.execute(
        sa.update(Membership)
        .where(Membership.participant_id == pid, Membership.left_at.is_(None))
        .values(left_at=now)
    )
    db.session.execute(sa.delete(Member).where(Member.participant_id == pid))
    # What identity providers provisioned (userName, names, emails) identifies the person too.
    db.session.execute(sa.delete(ScimUser).where(ScimUser.participant_id == pid))
    rollups.sync_participant(pid)
    rollups.note_profile(participant)
    audit.shred(participant)


# -- bulk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    participant: Participant
    ok: bool
    message: str


BULK_ACTIONS: dict[str, Callable[..., Any]] = {
    "require-password-reset": require_password_reset,
    "send-reset-link": send_reset_link,
    "revoke-sessions": revoke_sessions,
    "suspend": suspend,
    "unsuspend": unsuspend,
    "restrict": restrict,
    "unrestrict": unrestrict,
    "deactivate": deactivate,
    "reactivate": reactivate,
}


def bulk(
    actor: Any, org: Org, participants: list[Participant], action: str, **params: Any
) -> list[BulkResult]:
    """Apply one action to each participant; one refusal does not stop the others."""
    function = BULK_ACTIONS[action]
    results = []
    for participant in participants:
        savepoint = db.session.begin_nested()
        try:
            function(actor, org, participant, **params)
        except AccountError as error:
            savepoint.rollback()
            results.append(BulkResult(participant, False, error.message))
        else:
            savepoint.commit()
            results.append(BulkResult(participant, True, "done"))
    return results


# -- mail --------------------------------------------------------------------------------


def _notify(participant: Participant, org: Org | None, kind: str, **context: Any) -> None:
    if participant.email:
        mail.queue(kind, participant.email, org=org, participant=participant, **context)


def participant_by_id(participant_id: str | uuid.UUID) -> Participant | None:
    """Return the participant with this id, if any (callers scope it to their org)."""
    try:
        return db.session.get(Participant, uuid.UUID(str(participant_id)))
    except ValueError:
        return None
