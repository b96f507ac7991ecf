"""SCIM 2.0 provisioning: the org's users and groups, mapped onto participants and programs.

A SCIM user is the org's identity for an account it provisioned (``userName``,
``externalId``, the name and emails as sent); the participant behind it is the
account. Writes compare what the client wants with what it was shown and act
on the differences only, through the same services the console uses:
``participants.provision_participant`` creates, ``control`` deactivates,
renames, changes the email (by confirmation link) and deprovisions. A SCIM
group is a program.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from scim2_models import Context
from scim2_models import InvalidFilterException
from scim2_models import InvalidValueException
from scim2_models import Meta
from scim2_models import PatchOp
from scim2_models import UniquenessException
from scim2_models.path import CompareOperator
from scim2_models.path import Comparison
from scim2_models.path import FilterNode
from scim2_models.path import FilterVisitor
from scim2_models.path import LogicalExpr
from scim2_models.path import LogicalOperator
from scim2_models.path import Not
from scim2_models.path import Present
from scim2_models.path import ValuePath

from console import scim_schema
from console.extensions import db
from console.models import AccountLink
from console.models import AccountStatus
from console.models import JoinedVia
from console.models import LinkPurpose
from console.models import Member
from console.models import Membership
from console.models import Org
from console.models import Participant
from console.models import Program
from console.models import ScimGroup
from console.models import ScimUser
from console.models import ScimUserEmail
from console.models.base import utcnow
from console.models.scim import EXTERNAL_ID_LENGTH
from console.models.scim import TEXT_LENGTH
from console.models.scim import USER_NAME_LENGTH
from console.services import audit
from console.services import control
from console.services import mail
from console.services import orgs
from console.services import participants
from console.services.auth import EmailError
from console.services.auth import checked_email

MAX_EMAILS = 20


def fold(text: str) -> str:
    """Return the form caseExact=false values are compared in (NFC, case folded)."""
    return unicodedata.normalize("NFC", text).casefold()


def resource_url(endpoint: str, resource_id: Any) -> str:
    """Return a resource's absolute URL, on the configured base URL."""
    return mail.external_url(f"scim.show_{endpoint}", id=str(resource_id))


# -- reading users ---------------------------------------------------------------------


def users_of(org: Org) -> sa.Select:
    """Return the select of the org's SCIM users it may still see, with their accounts.

    A user stays visible while the person is a member of the org and the
    account was not erased: an org never reads about someone who left it.
    """
    return (
        sa.select(ScimUser, Participant)
        .join(Participant, Participant.id == ScimUser.participant_id)
        .join(
            Member,
            sa.and_(Member.org_id == ScimUser.org_id, Member.participant_id == Participant.id),
        )
        .where(ScimUser.org_id == org.id, Participant.erased_at.is_(None))
    )


def find_user(org: Org, scim_id: str) -> ScimUser | None:
    """Return the org's SCIM user with this id, or None (unknown, another org's, or gone)."""
    try:
        wanted = uuid.UUID(scim_id)
    except ValueError:
        return None
    row = db.session.execute(users_of(org).where(ScimUser.id == wanted)).first()
    return row.ScimUser if row else None


def pending_emails(participant_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Return, per participant, the new address waiting for its confirmation link."""
    if not participant_ids:
        return {}
    rows = db.session.execute(
        sa.select(AccountLink.participant_id, AccountLink.new_email)
        .where(
            AccountLink.participant_id.in_(participant_ids),
            AccountLink.purpose == LinkPurpose.CHANGE_EMAIL,
            AccountLink.used_at.is_(None),
            AccountLink.expires_at > utcnow(),
        )
        .order_by(AccountLink.created_at)
    )
    return {participant_id: new_email for participant_id, new_email in rows}


def shown_active(scim_user: ScimUser) -> bool | None:
    """Return ``active`` as a client reads it.

    A deactivated account is inactive whoever deactivated it; otherwise the
    value is what the client last said, and absent when it never said.
    """
    if scim_user.participant.status == AccountStatus.DEACTIVATED:
        return False
    return None if scim_user.active is None else True


def user_resource(org: Org, scim_user: ScimUser, pending: str | None) -> scim_schema.User:
    """Return the SCIM representation of a user."""
    participant = scim_user.participant
    formatted = scim_user.name_formatted
    if participant.name != scim_user.synced_name:
        # Renamed in the console since SCIM last wrote: the account's name is the truth.
        formatted = participant.name
    name = None
    if formatted or scim_user.given_name or scim_user.family_name:
        name = scim_schema.Name(
            formatted=formatted,
            given_name=scim_user.given_name,
            family_name=scim_user.family_name,
        )
    emails = [
        scim_schema.Email(
            value=email.value,
            type=email.type,
            display=email.display,
            primary=email.primary,
        )
        for email in scim_user.emails
    ]
    return scim_schema.User(
        id=str(scim_user.id),
        external_id=scim_user.external_id,
        user_name=scim_user.user_name,
        name=name,
        display_name=scim_user.display_name,
        active=shown_active(scim_user),
        emails=emails or None,
        account=scim_schema.Account(
            email=participant.email,
            pending_email=pending,
            status=participant.effective_status(),
            managed=participant.managed_by_org_id == org.id,
        ),
        meta=Meta(
            resource_type="User",
            created=scim_user.created_at,
            last_modified=scim_user.updated_at,
            location=resource_url("user", scim_user.id),
        ),
    )


def user_resources(org: Org, scim_users: list[ScimUser]) -> list[scim_schema.User]:
    """Return the SCIM representations of several users, reading pending changes at once."""
    pending = pending_emails([scim_user.participant_id for scim_user in scim_users])
    return [user_resource(org, u, pending.get(u.participant_id)) for u in scim_users]


def show_user(org: Org, scim_user: ScimUser) -> scim_schema.User:
    """Return the SCIM representation of one user."""
    return user_resources(org, [scim_user])[0]


@dataclass(frozen=True)
class Found:
    total: int
    resources: list[Any]


def search_users(org: Org, where: sa.ColumnElement[bool], start: int, count: int) -> Found:
    """Return one page of the org's users matching ``where``, oldest first, and how many match."""
    matching = users_of(org).where(where)
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(matching.with_only_columns(ScimUser.id).subquery())
    )
    if count == 0:
        return Found(total or 0, [])
    # The accounts load with the page, so each user's participant is already at hand.
    rows = db.session.execute(
        matching.order_by(ScimUser.created_at, ScimUser.id).offset(start - 1).limit(count)
    ).all()
    return Found(total or 0, user_resources(org, [row.ScimUser for row in rows]))


# -- writing users ---------------------------------------------------------------------


def _text(value: str | None, field: str, limit: int = TEXT_LENGTH) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        raise InvalidValueException(detail=f"{field} may have at most {limit} characters.")
    if "\x00" in value:
        raise InvalidValueException(detail=f"{field} contains a character text cannot hold.")
    return value


def _user_name(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidValueException(detail="userName is required and cannot be blank.")
    return _text(value, "userName", USER_NAME_LENGTH) or value


def _require_free_user_name(org: Org, user_name: str, scim_user: ScimUser | None) -> None:
    taken = sa.select(ScimUser.id).where(
        ScimUser.org_id == org.id, ScimUser.user_name_key == fold(user_name)
    )
    if scim_user is not None:
        taken = taken.where(ScimUser.id != scim_user.id)
    if db.session.scalar(taken) is not None:
        raise UniquenessException(detail=f"The userName {user_name!r} is already in use.")


def _email_address(value: str) -> str | None:
    try:
        return checked_email(value)
    except EmailError:
        return None


def wanted_email(user_name: str, emails: list[scim_schema.Email]) -> str | None:
    """Return the address the account should have, normalised; None when nothing says.

    The primary ``emails`` value (or the only one), else ``userName`` when it
    is an email address.
    """
    values = [email for email in emails if email.value]
    chosen = next((email for email in values if email.primary), None)
    if chosen is None and len(values) == 1:
        chosen = values[0]
    if chosen is not None:
        address = _email_address(str(chosen.value))
        if address is None:
            raise InvalidValueException(detail=f"{chosen.value!r} is not a usable email address.")
        return address
    return _email_address(user_name)


def derived_name(user_name: str, name: scim_schema.Name | None, display_name: str | None) -> str:
    """Return the participant's name: formatted, else given and family, displayName, userName."""
    candidates = []
    if name is not None:
        candidates.append(name.formatted or "")
        candidates.append(" ".join(part for part in (name.given_name, name.family_name) if part))
    candidates += [display_name or "", user_name]
    for candidate in candidates:
        cleaned = " ".join(candidate.split())[:TEXT_LENGTH].strip()
        if cleaned:
            return cleaned
    return user_name.strip()[:TEXT_LENGTH]


def _check_user(resource: scim_schema.User) -> None:
    _text(resource.external_id, "externalId", EXTERNAL_ID_LENGTH)
    _text(resource.display_name, "displayName")
    if resource.name is not None:
        _text(resource.name.formatted, "name.formatted")
        _text(resource.name.given_name, "name.givenName")
        _text(resource.name.family_name, "name.familyName")
    emails = resource.emails or []
    if len(emails) > MAX_EMAILS:
        raise InvalidValueException(detail=f"A user may have at most {MAX_EMAILS} emails.")
    for email in emails:
        if not email.value:
            raise InvalidValueException(detail="Every emails entry needs a value.")
        _text(str(email.value), "emails.value", 320)
        _text(email.display, "emails.display")
        _text(str(email.type) if email.type else None, "emails.type", 40)


def _store_emails(org: Org, scim_user: ScimUser, emails: list[scim_schema.Email]) -> None:
    scim_user.emails.clear()
    db.session.flush()
    for position, email in enumerate(emails):
        value = str(email.value)
        scim_user.emails.append(
            ScimUserEmail(
                position=position,
                org_id=org.id,
                value=value,
                value_key=fold(value),
                type=str(email.type) if email.type else None,
                display=email.display,
                primary=email.primary,
            )
        )


def _email_dump(emails: list[scim_schema.Email] | None) -> list[dict[str, Any]]:
    return [email.model_dump(scim_ctx=None) for email in emails or []]


def _name_dump(name: scim_schema.Name | None) -> dict[str, Any] | None:
    if name is None:
        return None
    dumped = name.model_dump(scim_ctx=None)
    return dumped if any(dumped.values()) else None


def create_user(actor: Any, org: Org, resource: scim_schema.User) -> ScimUser:
    """Provision a new managed account for a SCIM user, as a member of the org.

    An address already in use is a conflict (``participants.provision_participant``
    decides); with neither an email nor an email-like userName the account is
    made without an address and cannot sign in until one is set.
    """
    user_name = _user_name(resource.user_name)
    _check_user(resource)
    _require_free_user_name(org, user_name, None)
    emails = resource.emails or []
    email = wanted_email(user_name, emails)
    name = derived_name(user_name, resource.name, resource.display_name)
    try:
        if email is not None:
            participant = participants.provision_participant(actor, org, email, name)
        else:
            # No address, so nothing to conflict with: the account simply has none yet.
            participant = participants.create_participant(
                actor,
                None,
                name,
                org=org,
                managed=True,
                joined_via=JoinedVia.PROVISIONED,
                email_verified=False,
            )
    except participants.EmailTaken as error:
        raise UniquenessException(detail=str(error)) from None
    if db.session.scalar(
        sa.select(ScimUser.id).where(
            ScimUser.org_id == org.id, ScimUser.participant_id == participant.id
        )
    ):
        raise UniquenessException(detail="This account is already provisioned as another user.")
    now = utcnow()
    scim_user = ScimUser(
        org_id=org.id,
        participant_id=participant.id,
        participant=participant,
        user_name=user_name,
        user_name_key=fold(user_name),
        external_id=resource.external_id,
        display_name=resource.display_name,
        name_formatted=resource.name.formatted if resource.name else None,
        given_name=resource.name.given_name if resource.name else None,
        family_name=resource.name.family_name if resource.name else None,
        synced_name=participant.name,
        active=resource.active,
        created_at=now,
        updated_at=now,
    )
    _insert(scim_user)
    _store_emails(org, scim_user, emails)
    db.session.flush()
    audit.record(
        actor,
        "scim.user_created",
        org=org,
        target=participant,
        details={"scim_id": str(scim_user.id)},
    )
    if resource.active is False:
        control.deactivate(actor, org, participant)
    return scim_user


def _insert(scim_user: ScimUser) -> None:
    try:
        with db.session.begin_nested():
            db.session.add(scim_user)
    except sa.exc.IntegrityError:
        # Another request took the userName between the check and the insert.
        raise UniquenessException(detail="The userName is already in use.") from None


def replace_user(actor: Any, org: Org, scim_user: ScimUser, resource: scim_schema.User) -> ScimUser:
    """Make the user what ``resource`` says (PUT), acting on what differs from what was shown.

    The account's email changes only once the new address confirms by the
    link mailed to it, unless the account had none; ``active: false``
    deactivates, and taking back a false the client had sent reactivates.
    """
    participant = scim_user.participant
    control.require_managed(org, participant)
    shown = show_user(org, scim_user)
    user_name = _user_name(resource.user_name)
    _check_user(resource)
    changed = []
    if user_name != scim_user.user_name:
        _require_free_user_name(org, user_name, scim_user)
        try:
            with db.session.begin_nested():
                scim_user.user_name, scim_user.user_name_key = user_name, fold(user_name)
        except sa.exc.IntegrityError:
            raise UniquenessException(
                detail=f"The userName {user_name!r} is already in use."
            ) from None
        changed.append("userName")
    if resource.external_id != scim_user.external_id:
        scim_user.external_id = resource.external_id
        changed.append("externalId")
    if resource.display_name != scim_user.display_name:
        scim_user.display_name = resource.display_name
        changed.append("displayName")
    if _name_dump(resource.name) != _name_dump(shown.name):
        name = resource.name or scim_schema.Name()
        scim_user.name_formatted = name.formatted
        scim_user.given_name = name.given_name
        scim_user.family_name = name.family_name
        changed.append("name")
    emails = resource.emails or []
    if _email_dump(emails) != _email_dump(shown.emails):
        _store_emails(org, scim_user, emails)
        changed.append("emails")
    if resource.active != shown.active:
        changed.append("active")
    if changed:
        scim_user.updated_at = utcnow()
        db.session.flush()
        audit.record(
            actor,
            "scim.user_updated",
            org=org,
            target=participant,
            details={"scim_id": str(scim_user.id), "fields": changed},
        )
    if {"userName", "displayName", "name"} & set(changed):
        name = derived_name(scim_user.user_name, resource.name, scim_user.display_name)
        if name != scim_user.synced_name or name != participant.name:
            control.update_profile(actor, org, participant, {"name": name})
            scim_user.synced_name = participant.name
    if {"userName", "emails"} & set(changed):
        _apply_email(actor, org, participant, wanted_email(user_name, emails))
    if "active" in changed:
        _apply_active(actor, org, scim_user, resource.active)
    return scim_user


def patch_user(actor: Any, org: Org, scim_user: ScimUser, patch: PatchOp[Any]) -> ScimUser:
    """Apply PATCH operations (RFC 7644 §3.5.2) to what was shown, then replace with the result."""
    control.require_managed(org, scim_user.participant)
    return replace_user(actor, org, scim_user, patched(show_user(org, scim_user), patch))


def patched(resource: Any, patch: PatchOp[Any]) -> Any:
    """Return ``resource`` with the operations applied, checked as a PUT body would be."""
    try:
        with scim_schema.POLICY:
            patch.patch(resource)
            return type(resource).model_validate(
                resource.model_dump(scim_ctx=None, by_alias=True, exclude_none=True),
                scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST,
            )
    except ValidationError as error:
        raise scim_schema.scim_exception(error) from None


def _apply_email(actor: Any, org: Org, participant: Participant, wanted: str | None) -> None:
    if wanted is None:
        return  # nothing names an address: the account keeps the one it has
    if wanted == participant.email:
        control.cancel_email_change(actor, org, participant)
        return
    if participant.email is None:
        _set_first_email(actor, org, participant, wanted)
        return
    if pending_emails([participant.id]).get(participant.id) == wanted:
        return
    try:
        control.start_email_change(actor, org, participant, wanted)
    except control.EmailInUse:
        raise UniquenessException(detail=f"Another account uses {wanted}.") from None


def _set_first_email(actor: Any, org: Org, participant: Participant, email: str) -> None:
    """Give an account provisioned without an address its first one, as provisioning would have.

    No one could sign in to it before, so no sign-in or reset link is rerouted.
    """
    if db.session.scalar(sa.select(Participant.id).where(Participant.email == email)):
        raise UniquenessException(detail=f"Another account uses {email}.")
    participant.email = email
    participant.email_verified = True
    participants.index_participant(participant)
    audit.record(
        actor,
        "participant.email_changed",
        org=org,
        target=participant,
        details={"email": {"before": None, "after": audit.mask_email(email)}},
    )


def _apply_active(actor: Any, org: Org, scim_user: ScimUser, active: bool | None) -> None:
    """Act on a new ``active`` from the client, given what it said before.

    ``false`` always deactivates. ``true`` reactivates unless the client was
    already saying ``true``: then the deactivation was the console's, and a
    client repeating itself does not undo it. Taking back a ``false`` (an
    absent value) ends the deactivation that ``false`` caused.
    """
    participant = scim_user.participant
    deactivated = participant.status == AccountStatus.DEACTIVATED
    said = scim_user.active
    scim_user.active = active
    if active is False and not deactivated:
        control.deactivate(actor, org, participant)
    elif deactivated and (
        (active is True and said is not True) or (active is None and said is False)
    ):
        control.reactivate(actor, org, participant)


def delete_user(actor: Any, org: Org, scim_user: ScimUser) -> None:
    """Stop provisioning the person: their memberships here end and control is released.

    The platform account survives as the person's own, and they are told. An
    account the org no longer manages (released in the console) only loses
    its SCIM identity.
    """
    participant = scim_user.participant
    if participant.managed_by_org_id == org.id:
        control.deprovision(actor, org, participant)
    audit.record(
        actor,
        "scim.user_deleted",
        org=org,
        target=participant,
        details={"scim_id": str(scim_user.id)},
    )
    db.session.delete(scim_user)
    db.session.flush()


# -- groups ----------------------------------------------------------------------------


def groups_of(org: Org) -> sa.Select:
    """Return the select of the org's programs, with what SCIM keeps about each."""
    return (
        sa.select(Program, ScimGroup)
        .outerjoin(ScimGroup, ScimGroup.program_id == Program.id)
        .where(Program.org_id == org.id)
    )


def find_group(org: Org, group_id: str) -> Program | None:
    """Return the org's program with this id, or None."""
    try:
        wanted = uuid.UUID(group_id)
    except ValueError:
        return None
    return db.session.scalar(
        sa.select(Program).where(Program.id == wanted, Program.org_id == org.id)
    )


def _members_by_program(org: Org, program_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ScimUser]]:
    result: dict[uuid.UUID, list[ScimUser]] = {pid: [] for pid in program_ids}
    if not program_ids:
        return result
    rows = db.session.execute(
        sa.select(Membership.program_id, ScimUser)
        .join(
            ScimUser,
            sa.and_(
                ScimUser.participant_id == Membership.participant_id,
                ScimUser.org_id == Membership.org_id,
            ),
        )
        .where(
            Membership.org_id == org.id,
            Membership.program_id.in_(program_ids),
            Membership.left_at.is_(None),
        )
        .order_by(Membership.joined_at, ScimUser.id)
    )
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for program_id, scim_user in rows:
        if (program_id, scim_user.id) not in seen:
            seen.add((program_id, scim_user.id))
            result[program_id].append(scim_user)
    return result


def group_resources(
    org: Org, rows: list[tuple[Program, ScimGroup | None]], with_members: bool = True
) -> list[scim_schema.Group]:
    """Return the SCIM representations of programs; members only when asked for."""
    members = _members_by_program(org, [program.id for program, _ in rows] if with_members else [])
    resources = []
    for program, scim_group in rows:
        entries = [
            scim_schema.GroupMember(value=str(u.id), ref=resource_url("user", u.id), type="User")
            for u in members.get(program.id, [])
        ]
        resources.append(
            scim_schema.Group(
                id=str(program.id),
                external_id=scim_group.external_id if scim_group else None,
                display_name=program.name,
                members=entries or None,
                meta=Meta(
                    resource_type="Group",
                    created=program.created_at,
                    last_modified=scim_group.updated_at if scim_group else program.created_at,
                    location=resource_url("group", program.id),
                ),
            )
        )
    return resources


def show_group(org: Org, program: Program) -> scim_schema.Group:
    """Return the SCIM representation of one program."""
    scim_group = db.session.get(ScimGroup, program.id)
    return group_resources(org, [(program, scim_group)])[0]


def search_groups(
    org: Org, where: sa.ColumnElement[bool], start: int, count: int, with_members: bool
) -> Found:
    """Return one page of the org's programs matching ``where``, by name, and how many match."""
    matching = groups_of(org).where(where)
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(matching.with_only_columns(Program.id).subquery())
    )
    if count == 0:
        return Found(total or 0, [])
    rows = db.session.execute(
        matching.order_by(Program.name, Program.id).offset(start - 1).limit(count)
    ).all()
    return Found(total or 0, group_resources(org, [tuple(row) for row in rows], with_members))


def _group_name(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidValueException(detail="displayName is required and cannot be blank.")
    return _text(value.strip(), "displayName") or value


def _require_free_group_name(org: Org, name: str, program: Program | None) -> None:
    taken = sa.select(Program.id).where(
        Program.org_id == org.id, sa.func.lower(Program.name) == name.lower()
    )
    if program is not None:
        taken = taken.where(Program.id != program.id)
    if db.session.scalar(taken) is not None:
        raise UniquenessException(detail=f"A program named {name!r} already exists.")


def _scim_group(org: Org, program: Program) -> ScimGroup:
    scim_group = db.session.get(ScimGroup, program.id)
    if scim_group is None:
        scim_group = ScimGroup(program_id=program.id, org_id=org.id, updated_at=utcnow())
        db.session.add(scim_group)
        db.session.flush()
    return scim_group


def create_group(actor: Any, org: Org, resource: scim_schema.Group) -> Program:
    """Create a program for a SCIM group, with the members it names."""
    name = _group_name(resource.display_name)
    _text(resource.external_id, "externalId", EXTERNAL_ID_LENGTH)
    _require_free_group_name(org, name, None)
    try:
        with db.session.begin_nested():
            program = orgs.add_program(actor, org, name)
    except orgs.OrgError as error:
        raise InvalidValueException(detail=str(error)) from None
    except sa.exc.IntegrityError:
        # Another request made a program of that name since the check.
        raise UniquenessException(detail=f"A program named {name!r} already exists.") from None
    scim_group = _scim_group(org, program)
    scim_group.external_id = resource.external_id
    db.session.flush()
    _set_members(actor, org, program, resource.members or [])
    return program


def replace_group(actor: Any, org: Org, program: Program, resource: scim_schema.Group) -> Program:
    """Make the program what ``resource`` says (PUT): its name, externalId and SCIM members."""
    name = _group_name(resource.display_name)
    _text(resource.external_id, "externalId", EXTERNAL_ID_LENGTH)
    scim_group = db.session.get(ScimGroup, program.id)
    changed = []
    if name != program.name:
        _require_free_group_name(org, name, program)
        try:
            orgs.rename_program(actor, org, program, name)
        except orgs.OrgError as error:
            raise InvalidValueException(detail=str(error)) from None
        changed.append("displayName")
    if resource.external_id != (scim_group.external_id if scim_group else None):
        scim_group = _scim_group(org, program)
        scim_group.external_id = resource.external_id
        changed.append("externalId")
        audit.record(
            actor,
            "scim.group_updated",
            org=org,
            target=program,
            details={"fields": ["externalId"]},
        )
    if _set_members(actor, org, program, resource.members or []):
        changed.append("members")
    if changed:
        _scim_group(org, program).updated_at = utcnow()
        db.session.flush()
    return program


def patch_group(actor: Any, org: Org, program: Program, patch: PatchOp[Any]) -> Program:
    """Apply PATCH operations to what was shown, then replace with the result."""
    return replace_group(actor, org, program, patched(show_group(org, program), patch))


def _set_members(
    actor: Any, org: Org, program: Program, members: list[scim_schema.GroupMember]
) -> bool:
    """Make the program's SCIM members exactly ``members``; return whether anything changed."""
    ids: dict[str, uuid.UUID | None] = {}
    for member in members:
        if member.type not in (None, "User"):
            raise InvalidValueException(detail="Members are users: groups do not nest.")
        try:
            ids[member.value or ""] = uuid.UUID(member.value or "")
        except ValueError:
            ids[member.value or ""] = None
    # One query for every member named, however many.
    known = [i for i in ids.values() if i is not None]
    found = {
        row.ScimUser.id: row.ScimUser
        for row in db.session.execute(users_of(org).where(ScimUser.id.in_(known)))
    }
    wanted: dict[str, ScimUser] = {}
    for value, scim_id in ids.items():
        if scim_id not in found:
            raise InvalidValueException(
                detail=f"{value!r} is not a user provisioned by this organization."
            )
        wanted[str(scim_id)] = found[scim_id]
    current = {str(u.id): u for u in _members_by_program(org, [program.id])[program.id]}
    for scim_id, scim_user in wanted.items():
        if scim_id not in current:
            control.require_managed(org, scim_user.participant)
            participants.add_member(
                actor, org, scim_user.participant, program=program, joined_via=JoinedVia.PROVISIONED
            )
    for scim_id, scim_user in current.items():
        if scim_id not in wanted:
            control.remove_from_program(actor, org, scim_user.participant, program)
    return set(wanted) != set(current)


def delete_group(actor: Any, org: Org, program: Program) -> None:
    """Delete the program behind a SCIM group: its members leave it, each told."""
    orgs.delete_program(actor, org, program)


# -- filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """How a filter reaches an attribute: its SQL expression and how values compare."""

    # "key" (stored folded), "lower" (stored lower-cased), "text" (compared lower-cased),
    # "exact", "id", "bool", "time", or "sql" (a function of the operator and value)
    kind: str
    column: Any


class UnknownAttribute(Exception):
    """A filter names an attribute this resource type does not have."""


class _SqlFilter(FilterVisitor[sa.ColumnElement[bool]]):
    """Turn a parsed SCIM filter into an SQL condition on one resource type."""

    schema = ""
    fields: dict[tuple[str, str | None], _Field] = {}

    def __init__(self, lenient: bool = False) -> None:
        # At the root a filter spans resource types: an attribute only one of them
        # has is false for the others (RFC 7644 §3.4.2.1).
        self.lenient = lenient

    def field(self, node_path: Any) -> _Field:
        if node_path.uri and node_path.uri.lower() != self.schema.lower():
            raise UnknownAttribute(str(node_path))
        key = (node_path.attr.lower(), node_path.sub_attr.lower() if node_path.sub_attr else None)
        if key not in self.fields and key[1] is None and (key[0], "value") in self.fields:
            key = (key[0], "value")
        if key not in self.fields:
            raise UnknownAttribute(str(node_path))
        return self.fields[key]

    def visit(self, node: FilterNode) -> sa.ColumnElement[bool]:
        try:
            return super().visit(node)
        except UnknownAttribute as error:
            if self.lenient:
                return sa.false()
            raise InvalidFilterException(detail=f"Cannot filter on {error}.") from None

    def visit_logical_expr(self, node: LogicalExpr) -> sa.ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return sa.and_(*terms) if node.op == LogicalOperator.and_ else sa.or_(*terms)

    def visit_not(self, node: Not) -> sa.ColumnElement[bool]:
        return sa.not_(self.visit(node.expr))

    def visit_present(self, node: Present) -> sa.ColumnElement[bool]:
        return present(self.field(node.attr_path))

    def visit_comparison(self, node: Comparison) -> sa.ColumnElement[bool]:
        return compare(self.field(node.attr_path), node.op, node.value, str(node.attr_path))

    def visit_value_path(self, node: ValuePath) -> sa.ColumnElement[bool]:
        raise UnknownAttribute(str(node.attr_path))


def present(field: _Field) -> sa.ColumnElement[bool]:
    """Return the condition that an attribute has a (non-empty) value."""
    if field.kind == "sql":
        return field.column("pr", None)
    if field.kind in ("key", "lower", "text", "exact"):
        return sa.and_(field.column.is_not(None), field.column != "")
    return field.column.is_not(None)


def compare(field: _Field, op: CompareOperator, value: Any, name: str) -> sa.ColumnElement[bool]:
    """Return the SQL condition of ``<attribute> <op> <value>``; never NULL, so ``not`` holds."""
    if field.kind == "sql":
        return field.column(op, value)
    column = field.column
    if field.kind == "bool":
        flag = _boolean(value, name)
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise InvalidFilterException(detail=f"{name} is true or false: use eq or ne.")
        condition = column == flag
        return sa.and_(column.is_not(None), condition if op == CompareOperator.eq else ~condition)
    if field.kind == "id":
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise InvalidFilterException(detail=f"Compare {name} with eq or ne.")
        try:
            matches = column == uuid.UUID(str(value))
        except ValueError:
            matches = sa.false()
        return matches if op == CompareOperator.eq else sa.not_(matches)
    if field.kind == "time":
        value = _moment(value, name)
    elif not isinstance(value, str):
        raise InvalidFilterException(detail=f"Compare {name} with a string.")
    elif field.kind == "key":
        value = fold(value)
    elif field.kind == "lower":
        value = value.lower()
    elif field.kind == "text":
        column, value = sa.func.lower(column), value.lower()
    if field.kind == "time" and op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
        raise InvalidFilterException(detail=f"{name} is a time: use eq, ne, gt, ge, lt or le.")
    condition = {
        CompareOperator.eq: lambda: column == value,
        CompareOperator.ne: lambda: column != value,
        CompareOperator.co: lambda: column.contains(value, autoescape=True),
        CompareOperator.sw: lambda: column.startswith(value, autoescape=True),
        CompareOperator.ew: lambda: column.endswith(value, autoescape=True),
        CompareOperator.gt: lambda: column > value,
        CompareOperator.ge: lambda: column >= value,
        CompareOperator.lt: lambda: column < value,
        CompareOperator.le: lambda: column <= value,
    }[op]()
    if op == CompareOperator.ne:
        return sa.or_(field.column.is_(None), condition)
    return sa.and_(field.column.is_not(None), condition)


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidFilterException(detail=f"{name} is true or false.")


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidFilterException(detail=f"{name} takes a date and time.") from None
    if moment.tzinfo is None:
        raise InvalidFilterException(detail=f"{name} takes a date and time with an offset.")
    return moment


def _active(op: Any, value: Any) -> sa.ColumnElement[bool]:
    deactivated = Participant.status == AccountStatus.DEACTIVATED
    shown_true = sa.and_(~deactivated, ScimUser.active.is_not(None))
    if op == "pr":
        return sa.or_(deactivated, ScimUser.active.is_not(None))
    if op not in (CompareOperator.eq, CompareOperator.ne):
        raise InvalidFilterException(detail="active is true or false: use eq or ne.")
    wanted = _boolean(value, "active") == (op == CompareOperator.eq)
    return shown_true if wanted else deactivated


def _email_exists(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    # The org lets a lookup by address start from the (org, value) index.
    return sa.exists().where(
        ScimUserEmail.org_id == ScimUser.org_id,
        ScimUserEmail.scim_user_id == ScimUser.id,
        condition,
    )


class _EmailFilter(_SqlFilter):
    schema = scim_schema.USER_SCHEMA
    fields = {
        ("value", None): _Field("key", ScimUserEmail.value_key),
        ("type", None): _Field("text", ScimUserEmail.type),
        ("display", None): _Field("text", ScimUserEmail.display),
        ("primary", None): _Field("bool", ScimUserEmail.primary),
    }


def _email_attribute(sub: str) -> _Field:
    inner = _EmailFilter.fields[(sub, None)]
    return _Field(
        "sql",
        lambda op, value: _email_exists(
            present(inner) if op == "pr" else compare(inner, op, value, f"emails.{sub}")
        ),
    )


class UserFilter(_SqlFilter):
    """A filter on the org's SCIM users."""

    schema = scim_schema.USER_SCHEMA
    fields = {
        ("id", None): _Field("id", ScimUser.id),
        ("externalid", None): _Field("exact", ScimUser.external_id),
        ("username", None): _Field("key", ScimUser.user_name_key),
        ("displayname", None): _Field("text", ScimUser.display_name),
        ("name", "formatted"): _Field("text", ScimUser.name_formatted),
        ("name", "givenname"): _Field("text", ScimUser.given_name),
        ("name", "familyname"): _Field("text", ScimUser.family_name),
        ("active", None): _Field("sql", _active),
        ("meta", "created"): _Field("time", ScimUser.created_at),
        ("meta", "lastmodified"): _Field("time", ScimUser.updated_at),
        ("emails", "value"): _email_attribute("value"),
        ("emails", "type"): _email_attribute("type"),
        ("emails", "display"): _email_attribute("display"),
        ("emails", "primary"): _email_attribute("primary"),
        ("account", "email"): _Field("lower", Participant.email),
    }

    def visit_value_path(self, node: ValuePath) -> sa.ColumnElement[bool]:
        if node.attr_path.attr.lower() != "emails" or node.attr_path.sub_attr:
            raise UnknownAttribute(str(node.attr_path))
        return _email_exists(_EmailFilter(self.lenient).visit(node.val_filter))


def _member_exists(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return (
        sa.select(Membership.id)
        .join(
            ScimUser,
            sa.and_(
                ScimUser.participant_id == Membership.participant_id,
                ScimUser.org_id == Membership.org_id,
            ),
        )
        .where(
            Membership.program_id == Program.id,
            Membership.left_at.is_(None),
            condition,
        )
        .exists()
    )


def _is_user_type(op: Any, value: Any) -> sa.ColumnElement[bool]:
    # Every member is a user: groups do not nest.
    if op == "pr":
        return sa.true()
    is_user = str(value).lower() == "user"
    return sa.true() if is_user == (op == CompareOperator.eq) else sa.false()


class _MemberFilter(_SqlFilter):
    schema = scim_schema.GROUP_SCHEMA
    fields = {
        ("value", None): _Field("id", ScimUser.id),
        ("type", None): _Field("sql", lambda op, value: _is_user_type(op, value)),
    }


class GroupFilter(_SqlFilter):
    """A filter on the org's programs as SCIM groups."""

    schema = scim_schema.GROUP_SCHEMA
    fields = {
        ("id", None): _Field("id", Program.id),
        ("externalid", None): _Field("exact", ScimGroup.external_id),
        ("displayname", None): _Field("text", Program.name),
        ("meta", "created"): _Field("time", Program.created_at),
        (
            "meta",
            "lastmodified",
        ): _Field("time", sa.func.coalesce(ScimGroup.updated_at, Program.created_at)),
        ("members", "value"): _Field(
            "sql",
            lambda op, value: _member_exists(
                sa.true()
                if op == "pr"
                else compare(_Field("id", ScimUser.id), op, value, "members")
            ),
        ),
    }

    def visit_value_path(self, node: ValuePath) -> sa.ColumnElement[bool]:
        if node.attr_path.attr.lower() != "members" or node.attr_path.sub_attr:
            raise UnknownAttribute(str(node.attr_path))
        return _member_exists(_MemberFilter(self.lenient).visit(node.val_filter))


def where(
    visitor: type[_SqlFilter], node: FilterNode | None, lenient: bool = False
) -> sa.ColumnElement[bool]:
    """Return the SQL condition of a parsed filter (everything when there is none)."""
    if node is None:
        return sa.true()
    return visitor(lenient).visit(node)


FILTERS: dict[str, type[_SqlFilter]] = {"User": UserFilter, "Group": GroupFilter}


def search(
    org: Org,
    kinds: list[str],
    node: FilterNode | None,
    start: int,
    count: int,
    with_members: bool = True,
) -> Found:
    """Return one page of the org's resources of ``kinds`` matching a parsed filter.

    Users come first, then groups: one index runs through both, as a search
    at the root needs (RFC 7644 §3.4.3). An attribute only one kind has is
    false for the other there.
    """
    total, resources = 0, []
    skip, wanted = start - 1, count
    for kind in kinds:
        condition = where(FILTERS[kind], node, lenient=len(kinds) > 1)
        if kind == "User":
            page = search_users(org, condition, skip + 1, wanted)
        else:
            page = search_groups(org, condition, skip + 1, wanted, with_members)
        resources += page.resources
        wanted -= len(page.resources)
        skip = max(skip - page.total, 0)
        total += page.total
    return Found(total, resources)
