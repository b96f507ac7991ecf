"""The participant's own side of their account: sign-up, sign-in, passwords, data, trail.

Actions an org takes on an account live in ``control``; these are the ones the
participant takes themselves. Like every service they take the participant
explicitly, only flush, and write the audit event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from console.extensions import db
from console.models import AccountLink
from console.models import AccountStatus
from console.models import AuditEvent
from console.models import DomainClaim
from console.models import EmailChangeRequest
from console.models import LinkPurpose
from console.models import Membership
from console.models import Org
from console.models import Participant
from console.models import Program
from console.models import ReleaseRequest
from console.models import RequestStatus
from console.models.base import utcnow
from console.pagination import Page
from console.pagination import SortKey
from console.pagination import paginate
from console.services import audit
from console.services import claims
from console.services import control
from console.services import mail
from console.services import sso
from console.services.auth import EmailError
from console.services.auth import check_password
from console.services.auth import checked_email
from console.services.auth import hash_password
from console.services.auth import normalize_email
from console.services.auth import password_problem
from console.services.participants import create_participant

# Whoever uses the public pages before any account is theirs.
VISITOR = audit.Actor(type="anonymous", name="not signed in")
CONFIRM_RESEND_AFTER = timedelta(minutes=10)
TRAIL_SORT = SortKey("at", AuditEvent.at, AuditEvent.id, descending=True)


class Outcome(StrEnum):
    SIGNED_IN = "signed_in"
    MUST_RESET = "must_reset"
    NO_MATCH = "no_match"
    UNCONFIRMED = "unconfirmed"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    SSO_REQUIRED = "sso_required"


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt; ``participant`` is set only once the password matched."""

    outcome: Outcome
    participant: Participant | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == Outcome.SIGNED_IN


def find_participant(email: str) -> Participant | None:
    """Return the account with ``email``, if any."""
    return db.session.scalar(
        sa.select(Participant).where(Participant.email == normalize_email(email))
    )


# -- sign-up and confirmation ------------------------------------------------------


def register(email: str, name: str, password: str) -> Participant | None:
    """Create an unconfirmed account and mail the link that confirms it.

    An address that already has an account gets a mail saying so instead, and
    the caller shows the same page either way, so the form tells nobody which
    addresses have accounts.
    """
    try:
        email = checked_email(email)
    except EmailError:
        raise control.InvalidInput(_("Enter a valid email address."), "email") from None
    name = " ".join((name or "").split())
    if not name or len(name) > 200:
        raise control.InvalidInput(_("A name must have 1 to 200 characters."), "name")
    if problem := password_problem(password):
        raise control.InvalidInput(problem, "password")
    existing = find_participant(email)
    if existing is not None:
        hash_password(password)  # the same work as a sign-up, so timing tells nothing either
        mail.queue("registration_existing", email, participant=existing)
        audit.record(VISITOR, "participant.registration_repeated", target=existing)
        return None
    participant = create_participant(VISITOR, email, name, password=password, email_verified=False)
    _send_confirmation(participant)
    return participant


def _send_confirmation(participant: Participant) -> None:
    assert participant.email is not None
    token = control.issue_link(
        participant, LinkPurpose.CONFIRM_EMAIL, control.EMAIL_LINK_TTL, new_email=participant.email
    )
    mail.queue(
        "registration_confirm",
        participant.email,
        participant=participant,
        link=mail.external_url("account.confirm_email", token=token),
    )


def usable_link(token: str, purpose: LinkPurpose) -> AccountLink:
    """Return the link ``token`` stands for, or raise ``control.LinkError`` saying why not."""
    return control.find_link(token, purpose)


def confirm_registration(token: str) -> Participant:
    """Mark the address confirmed; from now on the account may sign in.

    Only a confirmed address proves that the person owns it, so anything that
    acts on an account because of its address (a domain claim) must wait for this.
    """
    link = control.find_link(token, LinkPurpose.CONFIRM_EMAIL)
    participant = link.participant
    if link.new_email != participant.email:
        raise control.LinkError(_("This link is for an address the account no longer uses."))
    link.used_at = utcnow()
    participant.email_verified = True
    audit.record(participant, "participant.email_confirmed", target=participant)
    claims.claim_new_sign_up(participant)
    return participant


# -- sign-in -------------------------------------------------------------------------


def sign_in(email: str, password: str) -> SignIn:
    """Check a participant's email and password, and say whether they may come in.

    Why an account is refused (unconfirmed, suspended, deactivated) is only
    told once the password matched: to anyone else every failure looks alike.
    """
    participant = find_participant(email)
    if participant is None:
        check_password(None, password)
        return SignIn(Outcome.NO_MATCH)
    if not check_password(participant.password_hash, password):
        _failed(participant, "password")
        return SignIn(Outcome.NO_MATCH)
    if not participant.email_verified:
        if not _recent_confirmation(participant):
            _send_confirmation(participant)
        _failed(participant, "unconfirmed")
        return SignIn(Outcome.UNCONFIRMED, participant)
    status = participant.effective_status()
    if status == AccountStatus.DEACTIVATED:
        _failed(participant, "deactivated")
        return SignIn(Outcome.DEACTIVATED, participant)
    if status == AccountStatus.SUSPENDED:
        _failed(participant, "suspended")
        return SignIn(Outcome.SUSPENDED, participant)
    if sso.participant_must_use_sso(participant) is not None:
        _failed(participant, "sso_required")
        return SignIn(Outcome.SSO_REQUIRED, participant)
    if participant.must_reset_password:
        return SignIn(Outcome.MUST_RESET, participant)
    record_sign_in(participant)
    return SignIn(Outcome.SIGNED_IN, participant)


def _failed(participant: Participant, reason: str) -> None:
    audit.record(
        VISITOR, "participant.sign_in_failed", target=participant, details={"reason": reason}
    )


def _recent_confirmation(participant: Participant) -> bool:
    return (
        db.session.scalar(
            sa.select(AccountLink.id)
            .where(
                AccountLink.participant_id == participant.id,
                AccountLink.purpose == LinkPurpose.CONFIRM_EMAIL,
                AccountLink.used_at.is_(None),
                AccountLink.created_at > utcnow() - CONFIRM_RESEND_AFTER,
            )
            .limit(1)
        )
        is not None
    )


def record_sign_in(participant: Participant) -> None:
    """Stamp and audit a completed sign-in."""
    participant.last_sign_in_at = utcnow()
    audit.record(participant, "participant.signed_in", target=participant)


def record_sign_out(participant: Participant) -> None:
    """Audit a sign-out."""
    audit.record(participant, "participant.signed_out", target=participant)


# -- passwords --------------------------------------------------------------------------


def request_password_reset(email: str) -> None:
    """Mail a reset link if an account uses ``email``; do nothing visible otherwise."""
    participant = find_participant(email)
    if participant is None or participant.erased_at is not None or not participant.email:
        return
    token = control.issue_link(participant, LinkPurpose.PASSWORD_RESET, control.reset_ttl())
    mail.queue(
        "password_reset_link",
        participant.email,
        participant=participant,
        link=mail.external_url("account.reset_password", token=token),
    )
    audit.record(VISITOR, "participant.reset_link_requested", target=participant)


def reset_password(token: str, password: str) -> Participant:
    """Set a new password through a mailed link, which then dies with every other session.

    Following the link proves the address, so an unconfirmed account becomes
    confirmed. A suspension or deactivation stays as it was.
    """
    link = control.find_link(token, LinkPurpose.PASSWORD_RESET)
    participant = link.participant
    control.set_password(participant, password)
    link.used_at = utcnow()
    participant.email_verified = participant.email is not None
    audit.record(participant, "participant.password_reset", target=participant)
    return participant


def set_new_password(participant: Participant, password: str) -> Participant:
    """Complete a required reset: the new password is set, then the sign-in completes."""
    if check_password(participant.password_hash, password):
        raise control.InvalidInput(
            _("Choose a new password, not the one you have now."), "password"
        )
    control.set_password(participant, password)
    audit.record(
        participant, "participant.password_changed", target=participant, details={"forced": True}
    )
    _notify_password_changed(participant)
    record_sign_in(participant)
    return participant


def change_password(participant: Participant, current: str, new: str) -> Participant:
    """Replace the password after checking the current one; other sessions end."""
    if not check_password(participant.password_hash, current):
        raise control.InvalidInput(_("That is not your current password."), "current_password")
    control.set_password(participant, new)
    audit.record(participant, "participant.password_changed", target=participant)
    _notify_password_changed(participant)
    return participant


def _notify_password_changed(participant: Participant) -> None:
    if participant.email:
        mail.queue(
            "password_changed",
            participant.email,
            org=participant.managed_by,
            participant=participant,
            changed_at=utcnow(),
        )


# -- email, profile, programs, release -------------------------------------------------


@dataclass(frozen=True)
class EmailChange:
    new_email: str
    # The managing org that must approve the change; None when a link was mailed instead.
    waiting_for: Org | None


def change_email(participant: Participant, new_email: str) -> EmailChange:
    """Ask for a new address: a managed account files a request, others confirm by link."""
    org = participant.managed_by
    if org is not None:
        request = control.request_email_change(participant, new_email)
        return EmailChange(request.new_email, org)
    return EmailChange(control.start_email_change(participant, None, participant, new_email), None)


def edit_profile(participant: Participant, changes: dict[str, Any]) -> list[str]:
    """Apply the participant's own profile changes, unless the managing org restricted editing."""
    if participant.restricted:
        raise control.AccountError(restricted_message(participant))
    return control.update_profile(participant, None, participant, changes)


def restricted_message(participant: Participant) -> str:
    """Return why a restricted participant cannot edit, naming the org that decided it."""
    org = participant.managed_by
    return _(
        "%(org)s, which manages your account, has restricted editing: you cannot change or "
        "delete your profile information until they lift it. If you think this is a mistake, "
        "ask %(org)s.",
        org=org.name if org else _("The organization that manages your account"),
    )


def export_my_data(participant: Participant) -> dict[str, Any]:
    """Return everything the console holds about the participant (audited)."""
    return control.export_data(participant, None, participant)


def leave_program(participant: Participant, membership_id: uuid.UUID) -> Membership:
    """End one of the participant's current program memberships; raise LookupError if none."""
    row = db.session.execute(
        sa.select(Membership, Org)
        .join(Org, Org.id == Membership.org_id)
        .where(
            Membership.id == membership_id,
            Membership.participant_id == participant.id,
            Membership.left_at.is_(None),
        )
    ).one_or_none()
    if row is None:
        raise LookupError(membership_id)
    membership, org = row
    membership.left_at = utcnow()
    program = membership.program
    audit.record(
        participant,
        "participant.left_program",
        org=org,
        target=participant,
        details={
            "program": str(program.id) if program else None,
            "program_name": program.name if program else None,
        },
    )
    control.end_membership_if_last(org, participant)
    return membership


def ask_release(participant: Participant, message: str | None) -> ReleaseRequest:
    """Ask the managing org to give up control of the account."""
    return control.ask_release(participant, message)


# -- what the participant sees ------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    memberships: list[tuple[Membership, Program | None, Org]]
    email_request: EmailChangeRequest | None
    email_link: AccountLink | None
    release_request: ReleaseRequest | None
    # A domain claim waiting for its notice period to end.
    pending_claim: DomainClaim | None = None


def overview(participant: Participant) -> Overview:
    """Return what the account page shows besides the account: programs and open requests."""
    memberships = db.session.execute(
        sa.select(Membership, Program, Org)
        .outerjoin(Program, Program.id == Membership.program_id)
        .join(Org, Org.id == Membership.org_id)
        .where(Membership.participant_id == participant.id, Membership.left_at.is_(None))
        .order_by(Org.name, Program.name)
    ).all()
    return Overview(
        memberships=[tuple(row) for row in memberships],  # type: ignore[misc]
        email_request=_pending(EmailChangeRequest, participant),
        email_link=db.session.scalar(
            sa.select(AccountLink)
            .where(
                AccountLink.participant_id == participant.id,
                AccountLink.purpose == LinkPurpose.CHANGE_EMAIL,
                AccountLink.used_at.is_(None),
                AccountLink.expires_at > utcnow(),
            )
            .order_by(AccountLink.created_at.desc())
            .limit(1)
        ),
        release_request=_pending(ReleaseRequest, participant),
        pending_claim=claims.pending_claim(participant),
    )


def _pending(model: Any, participant: Participant) -> Any:
    return db.session.scalar(
        sa.select(model)
        .where(model.participant_id == participant.id, model.status == RequestStatus.PENDING)
        .order_by(model.created_at.desc())
        .limit(1)
    )


def trail(participant: Participant, cursor: str | None, limit: int) -> Page:
    """Return one page of the audit events about the participant, in every org, newest first."""
    stmt = (
        sa.select(AuditEvent, Org.name.label("org_name"))
        .outerjoin(Org, Org.id == AuditEvent.org_id)
        .where(AuditEvent.target_type == "participant", AuditEvent.target_id == str(participant.id))
    )
    return paginate(
        stmt, TRAIL_SORT, cursor, limit, key_of=lambda row: (row.AuditEvent.at, row.AuditEvent.id)
    )
