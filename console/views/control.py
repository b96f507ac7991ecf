"""Acting on a managed account from its page: one POST route per action."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint
from flask import Response
from flask import abort
from flask import flash
from flask import g
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm

from console.extensions import db
from console.forms.account import EDITABLE_FIELDS
from console.forms.account import EditProfileForm
from console.forms.account import profile_data
from console.forms.auth import EmptyForm
from console.forms.participants import ChangeEmailForm
from console.forms.participants import EraseForm
from console.forms.participants import SuspendForm
from console.htmx import is_partial
from console.htmx import redirect_to
from console.htmx import render
from console.models import AccountStatus
from console.models import EmailChangeRequest
from console.models import Member
from console.models import Org
from console.models import Participant
from console.models import Program
from console.models import ReleaseRequest
from console.models import RequestStatus
from console.permissions import Permission
from console.permissions import require
from console.services import control
from console.tenancy import get_member_or_404
from console.tenancy import members_of

bp = Blueprint("control", __name__, url_prefix="/orgs/<org:org>/participants")


@dataclass(frozen=True)
class Action:
    """A one-click action: who may do it, when it applies, what to ask and to say."""

    service: Callable[..., Any]
    permission: Permission
    label: Any
    done: Any
    applies: Callable[[Participant], bool]
    confirm: Any = None
    danger: bool = False


def _suspended(p: Participant) -> bool:
    return p.effective_status() == AccountStatus.SUSPENDED


def _not_deactivated(p: Participant) -> bool:
    return p.status != AccountStatus.DEACTIVATED


ACTIONS: dict[str, Action] = {
    "send-reset-link": Action(
        control.send_reset_link,
        Permission.RESET_PASSWORDS,
        _l("Send password reset link"),
        _l("A password reset link was emailed to %(name)s."),
        _not_deactivated,
    ),
    "require-password-reset": Action(
        control.require_password_reset,
        Permission.RESET_PASSWORDS,
        _l("Require password reset"),
        _l("%(name)s is signed out and must set a new password; a reset link was emailed."),
        _not_deactivated,
        confirm=_l("Require %(name)s to reset their password? They are signed out everywhere."),
    ),
    "revoke-sessions": Action(
        control.revoke_sessions,
        Permission.RESET_PASSWORDS,
        _l("Sign out everywhere"),
        _l("%(name)s is signed out on every device."),
        lambda p: True,
        confirm=_l("Sign %(name)s out on every device?"),
    ),
    "unsuspend": Action(
        control.unsuspend,
        Permission.MANAGE_PARTICIPANTS,
        _l("Lift suspension"),
        _l("%(name)s can sign in again; they were told."),
        _suspended,
    ),
    "restrict": Action(
        control.restrict,
        Permission.MANAGE_PARTICIPANTS,
        _l("Restrict editing"),
        _l("%(name)s can no longer change or delete profile data."),
        lambda p: not p.restricted,
        confirm=_l("Stop %(name)s from changing or deleting their profile?"),
    ),
    "unrestrict": Action(
        control.unrestrict,
        Permission.MANAGE_PARTICIPANTS,
        _l("Lift editing restriction"),
        _l("%(name)s can edit their profile again."),
        lambda p: p.restricted,
    ),
    "deactivate": Action(
        control.deactivate,
        Permission.MANAGE_PARTICIPANTS,
        _l("Deactivate"),
        _l("%(name)s's account is deactivated; they cannot sign in. Their data is kept."),
        _not_deactivated,
        confirm=_l("Deactivate %(name)s? They lose access until reactivated; their data is kept."),
        danger=True,
    ),
    "reactivate": Action(
        control.reactivate,
        Permission.MANAGE_PARTICIPANTS,
        _l("Reactivate"),
        _l("%(name)s's account is active again."),
        lambda p: p.status == AccountStatus.DEACTIVATED,
    ),
}


def manage_context(org: Org, participant: Participant) -> dict[str, Any]:
    """Return what the account card needs: the actions this role may take now."""
    role = g.role
    managed = participant.managed_by_org_id == org.id and participant.erased_at is None
    actions = [
        (slug, action)
        for slug, action in ACTIONS.items()
        if managed and role.can(action.permission) and action.applies(participant)
    ]
    pending_email = db.session.scalar(
        sa.select(EmailChangeRequest).where(
            EmailChangeRequest.participant_id == participant.id,
            EmailChangeRequest.org_id == org.id,
            EmailChangeRequest.status == RequestStatus.PENDING,
        )
    )
    pending_release = db.session.scalar(
        sa.select(ReleaseRequest).where(
            ReleaseRequest.participant_id == participant.id,
            ReleaseRequest.org_id == org.id,
            ReleaseRequest.status == RequestStatus.PENDING,
        )
    )
    return {
        "managed": managed,
        "actions": actions,
        "can_manage": managed and role.can(Permission.MANAGE_PARTICIPANTS),
        "can_erase": managed and role.can(Permission.ERASE_PARTICIPANTS),
        "pending_email": pending_email,
        "pending_release": pending_release,
        "empty_form": EmptyForm(),
        "show_private": role.can(Permission.VIEW_PRIVATE),
    }


def _respond(org: Org, member: Member, participant: Participant, message: str) -> Response:
    """Show the changed account card (htmx) or go back to the page with a message."""
    if is_partial():
        response = render(
            "participants/show.html",
            "participants/_manage.html",
            org=org,
            member=member,
            participant=participant,
            message=message,
            **manage_context(org, participant),
        )
        # A form opened inside the card answers with the whole card.
        response.headers["HX-Retarget"] = "#participant-manage"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    flash(message, "success")
    return redirect_to(url_for("participants.show", org=org, participant_id=participant.id))


def _load(
    org: Org, participant_id: uuid.UUID, permission: Permission
) -> tuple[Member, Participant]:
    member, participant = get_member_or_404(org, participant_id)
    if not g.role.can(permission):
        abort(403)
    return member, participant


def _refuse(error: control.AccountError) -> None:
    abort(error.status, error.message)


def _one_click(slug: str, action: Action) -> Callable[..., Any]:
    @require(Permission.VIEW_PARTICIPANTS)
    def view(org: Org, participant_id: uuid.UUID):
        member, participant = _load(org, participant_id, action.permission)
        form = EmptyForm()
        if not form.validate_on_submit():
            abort(400, _("The form expired. Reload the page and try again."))
        try:
            action.service(current_user, org, participant)
        except control.AccountError as error:
            _refuse(error)
        db.session.commit()
        return _respond(org, member, participant, str(action.done) % {"name": participant.name})

    view.__name__ = slug.replace("-", "_")
    view.__doc__ = f"{action.label} for a managed account."
    return view


for _slug, _action in ACTIONS.items():
    bp.add_url_rule(
        f"/<uuid:participant_id>/{_slug}",
        endpoint=_slug.replace("-", "_"),
        view_func=_one_click(_slug, _action),
        methods=["POST"],
    )


def _form_page(
    org: Org,
    member: Member,
    participant: Participant,
    form: FlaskForm,
    *,
    title: str,
    submit: str,
    action: str,
    intro: str = "",
    danger: bool = False,
) -> Response:
    return render(
        "participants/action.html",
        "participants/_action_form.html",
        org=org,
        member=member,
        participant=participant,
        form=form,
        title=title,
        submit=submit,
        action=action,
        intro=intro,
        danger=danger,
    )


def end_of_day(day: Any, org: Org) -> datetime:
    """Return the instant a day (in the org's time zone) ends, in UTC."""
    start_of_next = datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(org.time_zone))
    return start_of_next.astimezone(UTC)


@bp.route("/<uuid:participant_id>/suspend", methods=["GET", "POST"])
@require(Permission.MANAGE_PARTICIPANTS)
def suspend(org: Org, participant_id: uuid.UUID):
    """Suspend a managed account with a reason and an optional last day."""
    member, participant = get_member_or_404(org, participant_id)
    form = SuspendForm()
    if form.validate_on_submit():
        until = end_of_day(form.until.data, org) if form.until.data else None
        try:
            control.suspend(current_user, org, participant, form.reason.data, until)
        except control.InvalidInput as error:
            getattr(form, error.field or "reason").errors.append(error.message)
        except control.AccountError as error:
            _refuse(error)
        else:
            db.session.commit()
            message = _(
                "%(name)s is suspended and signed out; they were told why.", name=participant.name
            )
            return _respond(org, member, participant, message)
    elif participant.managed_by_org_id != org.id:
        _refuse(control.NotManaged(_("%(org)s does not manage this account.", org=org.name)))
    return _form_page(
        org,
        member,
        participant,
        form,
        title=_("Suspend %(name)s", name=participant.name),
        submit=_("Suspend"),
        action=url_for("control.suspend", org=org, participant_id=participant.id),
        intro=_(
            "They cannot sign in while suspended and are signed out at once. "
            "They are emailed the reason."
        ),
        danger=True,
    )


@bp.route("/<uuid:participant_id>/email", methods=["GET", "POST"])
@require(Permission.MANAGE_PARTICIPANTS)
def change_email(org: Org, participant_id: uuid.UUID):
    """Start an email change: the new address confirms by link, the old one is told."""
    member, participant = get_member_or_404(org, participant_id)
    form = ChangeEmailForm()
    if form.validate_on_submit():
        try:
            new_email = control.start_email_change(current_user, org, participant, form.email.data)
        except control.InvalidInput as error:
            form.email.errors.append(error.message)
        except control.AccountError as error:
            _refuse(error)
        else:
            db.session.commit()
            message = _(
                "A confirmation link was sent to %(email)s; the email changes once it is followed.",
                email=new_email,
            )
            return _respond(org, member, participant, message)
    elif participant.managed_by_org_id != org.id:
        _refuse(control.NotManaged(_("%(org)s does not manage this account.", org=org.name)))
    return _form_page(
        org,
        member,
        participant,
        form,
        title=_("Change %(name)s's email", name=participant.name),
        submit=_("Send confirmation link"),
        action=url_for("control.change_email", org=org, participant_id=participant.id),
        intro=_("Nothing changes until the new address confirms; the current address is told now."),
    )


@bp.route("/<uuid:participant_id>/edit", methods=["GET", "POST"])
@require(Permission.MANAGE_PARTICIPANTS)
def edit(org: Org, participant_id: uuid.UUID):
    """Edit a managed account's profile; the audit trail records each changed field."""
    member, participant = get_member_or_404(org, participant_id)
    if participant.managed_by_org_id != org.id:
        _refuse(control.NotManaged(_("%(org)s does not manage this account.", org=org.name)))
    form = EditProfileForm(data=profile_data(participant))
    form.role.label.text = _("Role")
    if form.validate_on_submit():
        # Only what was sent changes: a field left out of the request keeps its value.
        changes = {name: form[name].data for name in EDITABLE_FIELDS if name in request.form}
        try:
            changed = control.update_profile(current_user, org, participant, changes)
        except control.InvalidInput as error:
            getattr(form, error.field or "name").errors.append(error.message)
        except control.AccountError as error:
            _refuse(error)
        else:
            db.session.commit()
            if changed:
                flash(_("Saved: %(fields)s.", fields=", ".join(changed)), "success")
            else:
                flash(_("Nothing changed."), "info")
            return redirect_to(url_for("participants.show", org=org, participant_id=participant.id))
    return render_template("participants/edit.html", org=org, participant=participant, form=form)


@bp.post("/<uuid:participant_id>/programs/<uuid:program_id>/remove")
@require(Permission.MANAGE_PARTICIPANTS)
def remove_from_program(org: Org, participant_id: uuid.UUID, program_id: uuid.UUID):
    """End a managed participant's membership of one program."""
    member, participant = get_member_or_404(org, participant_id)
    program = db.session.scalar(
        sa.select(Program).where(Program.id == program_id, Program.org_id == org.id)
    )
    if program is None:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400, _("The form expired. Reload the page and try again."))
    try:
        control.remove_from_program(current_user, org, participant, program)
    except control.AccountError as error:
        _refuse(error)
    db.session.commit()
    flash(_("%(name)s left %(program)s.", name=participant.name, program=program.name), "success")
    return redirect_to(url_for("participants.show", org=org, participant_id=participant.id))


@bp.get("/<uuid:participant_id>/export.json")
@require(Permission.MANAGE_PARTICIPANTS)
def export(org: Org, participant_id: uuid.UUID):
    """Download everything the console holds about a managed account, as JSON."""
    _member, participant = get_member_or_404(org, participant_id)
    try:
        data = control.export_data(current_user, org, participant)
    except control.AccountError as error:
        _refuse(error)
    db.session.commit()
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="participant-{participant.id}.json"'
    )
    return response


@bp.route("/<uuid:participant_id>/erase", methods=["GET", "POST"])
@require(Permission.ERASE_PARTICIPANTS)
def erase(org: Org, participant_id: uuid.UUID):
    """Erase (anonymise) a managed account: a second step that names the account."""
    member, participant = get_member_or_404(org, participant_id)
    if participant.managed_by_org_id != org.id:
        _refuse(control.NotManaged(_("%(org)s does not manage this account.", org=org.name)))
    form = EraseForm()
    if form.validate_on_submit():
        name = participant.name
        try:
            control.erase(current_user, org, participant, form.confirmation.data)
        except control.InvalidInput as error:
            form.confirmation.errors.append(error.message)
        else:
            db.session.commit()
            flash(_("%(name)s's account was erased.", name=name), "success")
            return redirect_to(url_for("participants.index", org=org))
    return _form_page(
        org,
        member,
        participant,
        form,
        title=_("Erase %(name)s", name=participant.name),
        submit=_("Erase this account for good"),
        action=url_for("control.erase", org=org, participant_id=participant.id),
        intro=_(
            "This cannot be undone. %(name)s's profile, email and password are deleted and "
            "their personal data in the audit trail becomes unreadable. Aggregate activity "
            "counts remain. Type %(email)s to confirm.",
            name=participant.name,
            email=participant.email,
        ),
        danger=True,
    )


BULK_LIMIT = 200


def _bulk_action(action_name: str) -> Action | None:
    if action_name == "suspend":
        return Action(
            control.suspend,
            Permission.MANAGE_PARTICIPANTS,
            _l("Suspend"),
            _l("%(name)s is suspended."),
            lambda p: p.effective_status() == AccountStatus.ACTIVE,
            danger=True,
        )
    return ACTIONS.get(action_name)


BULK_ORDER = (
    "send-reset-link",
    "require-password-reset",
    "revoke-sessions",
    "suspend",
    "unsuspend",
    "restrict",
    "unrestrict",
    "deactivate",
    "reactivate",
)


def bulk_actions(role: Any) -> list[tuple[str, Action]]:
    """Return the bulk actions a role may take, in the order the list shows them."""
    actions = ((name, _bulk_action(name)) for name in BULK_ORDER)
    return [(name, action) for name, action in actions if action and role.can(action.permission)]


def _bulk_selection(org: Org, action_name: str) -> tuple[Action, list[tuple[Member, Participant]]]:
    """Load the selected members through the org; any foreign or unknown id is a 404."""
    action = _bulk_action(action_name)
    if action is None:
        abort(404)
    if not g.role.can(action.permission):
        abort(403)
    raw = request.form.getlist("ids")
    if not raw:
        abort(400, _("Select at least one participant."))
    if len(raw) > BULK_LIMIT:
        abort(400, _("Select at most %(limit)s participants at a time.", limit=BULK_LIMIT))
    try:
        ids = list(dict.fromkeys(uuid.UUID(value) for value in raw))
    except ValueError:
        abort(400, _("The selection is not valid."))
    rows = db.session.execute(members_of(org).where(Member.participant_id.in_(ids))).all()
    if len(rows) != len(ids):
        abort(404)
    order = {pid: n for n, pid in enumerate(ids)}
    return action, sorted(((r.Member, r.Participant) for r in rows), key=lambda r: order[r[1].id])


@bp.post("/bulk/<action_name>/preview")
@require(Permission.VIEW_PARTICIPANTS)
def bulk_preview(org: Org, action_name: str):
    """Show which of the selected accounts the action will change, and which it will skip."""
    action, selection = _bulk_selection(org, action_name)
    if not EmptyForm().validate_on_submit():
        abort(400, _("The form expired. Reload the page and try again."))
    will, skip = [], []
    for _member, participant in selection:
        if participant.managed_by_org_id != org.id:
            skip.append((participant, _("not managed by %(org)s", org=org.name)))
        elif not action.applies(participant):
            skip.append((participant, _("nothing to change")))
        else:
            will.append(participant)
    return render_template(
        "participants/bulk_preview.html",
        org=org,
        action_name=action_name,
        action=action,
        will=will,
        skip=skip,
        form=SuspendForm() if action_name == "suspend" else EmptyForm(),
    )


@bp.post("/bulk/<action_name>")
@require(Permission.VIEW_PARTICIPANTS)
def bulk_apply(org: Org, action_name: str):
    """Apply the action to each selected account and report the result for each."""
    action, selection = _bulk_selection(org, action_name)
    params: dict[str, Any] = {}
    if action_name == "suspend":
        form: FlaskForm = SuspendForm()
        if not form.validate_on_submit():
            participants = [p for _m, p in selection]
            return render_template(
                "participants/bulk_preview.html",
                org=org,
                action_name=action_name,
                action=action,
                will=participants,
                skip=[],
                form=form,
            )
        params = {
            "reason": form.reason.data,
            "until": end_of_day(form.until.data, org) if form.until.data else None,
        }
    elif not EmptyForm().validate_on_submit():
        abort(400, _("The form expired. Reload the page and try again."))
    results = control.bulk(current_user, org, [p for _m, p in selection], action_name, **params)
    db.session.commit()
    return render_template(
        "participants/bulk_result.html",
        org=org,
        action=action,
        results=results,
        done=sum(r.ok for r in results),
    )
