"""The participant's side: sign-up, sign-in, passwords, email, profile, data and trail."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_user
from flask_login import logout_user

from console.extensions import db
from console.extensions import limiter
from console.formatting import duration
from console.formatting import trail_rows
from console.forms import account as forms
from console.htmx import redirect_to
from console.htmx import render
from console.models import LinkPurpose
from console.models import Participant
from console.models.base import utcnow
from console.pagination import CursorError
from console.permissions import participant_required
from console.services import account as service
from console.services import control
from console.views.auth import safe_next

bp = Blueprint("account", __name__, url_prefix="/account")

PENDING = "pending_new_password"
PENDING_TTL = 15 * 60


def _failed(response: Response) -> bool:
    # Only failed attempts count towards the limit; signing in often is not an attack.
    submitted = request.form.get("password") or request.form.get("current_password")
    return response.status_code == 200 and request.method == "POST" and bool(submitted)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _email_key() -> str:
    return f"{request.remote_addr}|{(request.form.get('email') or '').strip().lower()}"


def _participant() -> Participant:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _sign_out_participant() -> None:
    # Staff following a link from the demo outbox keep their console session.
    if current_user.is_authenticated and not current_user.is_admin:
        logout_user()
        session.clear()


def _field_error(form: Any, error: control.InvalidInput) -> None:
    field = getattr(form, error.field or "", None)
    if field is None:
        flash(error.message, "error")
    else:
        field.errors.append(error.message)


def _bad_link(error: control.LinkError, again: str | None):  # type: ignore[no-untyped-def]
    html = render_template("account/bad_link.html", message=error.message, again=again)
    return Response(html, status=400, mimetype="text/html")


@bp.get("", strict_slashes=False)
@participant_required
def index():
    """Show the participant their account: who manages it, programs, profile, requests."""
    participant = _participant()
    return render_template(
        "account/index.html", participant=participant, overview=service.overview(participant)
    )


# -- signing in and out ----------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_email_key, deduct_when=_failed)
def login():
    """Sign a participant in with their email and password."""
    if current_user.is_authenticated and not current_user.is_admin:
        return redirect(url_for("account.index"))
    form = forms.SignInForm()
    attempt = None
    if form.validate_on_submit():
        attempt = service.sign_in(form.email.data, form.password.data)
        db.session.commit()
        target = safe_next(request.args.get("next"))
        if attempt.succeeded:
            return _complete(attempt.participant, target)
        if attempt.outcome == service.Outcome.MUST_RESET:
            assert attempt.participant is not None
            return _require_new_password(attempt.participant, target)
    return render_template("account/login.html", form=form, attempt=attempt)


def _complete(participant: Participant | None, target: str | None):  # type: ignore[no-untyped-def]
    # A fresh session on every sign-in: nothing from before it survives (fixation).
    session.clear()
    session["sid"] = secrets.token_urlsafe(16)
    login_user(participant)
    return redirect_to(target or url_for("account.index"))


def _require_new_password(participant: Participant, target: str | None):  # type: ignore[no-untyped-def]
    session.clear()
    session[PENDING] = {
        "id": str(participant.id),
        "v": participant.session_version,
        "at": time.time(),
        "next": target,
    }
    return redirect_to(url_for("account.set_new_password"))


def _pending_participant() -> Participant | None:
    pending = session.get(PENDING)
    if not pending or time.time() - pending["at"] > PENDING_TTL:
        return None
    participant = db.session.get(Participant, uuid.UUID(pending["id"]))
    if (
        participant is None
        or participant.session_version != pending["v"]
        or not participant.must_reset_password
        or not participant.is_active
    ):
        return None
    return participant


@bp.route("/password/new", methods=["GET", "POST"])
def set_new_password():
    """Make a participant whose password must be reset choose a new one before signing in."""
    participant = _pending_participant()
    if participant is None:
        session.pop(PENDING, None)
        flash(_("Sign in again to set your new password."), "info")
        return redirect(url_for("account.login"))
    form = forms.SetPasswordForm()
    if form.validate_on_submit():
        try:
            service.set_new_password(participant, form.password.data)
        except control.InvalidInput as error:
            _field_error(form, error)
        else:
            db.session.commit()
            flash(_("Your new password is set. Other sessions were signed out."), "success")
            return _complete(participant, session[PENDING].get("next"))
    return render_template("account/set_new_password.html", form=form, participant=participant)


@bp.post("/logout")
def logout():
    """Sign the participant out."""
    if current_user.is_authenticated and not current_user.is_admin:
        service.record_sign_out(_participant())
        db.session.commit()
        _sign_out_participant()
        flash(_("You are signed out."), "info")
    return redirect_to(url_for("account.login"))


# -- signing up ---------------------------------------------------------------------------


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_email_key)
def register():
    """Create an account that confirms its address by a mailed link."""
    form = forms.RegisterForm()
    if form.validate_on_submit():
        try:
            service.register(form.email.data, form.name.data, form.password.data)
        except control.InvalidInput as error:
            _field_error(form, error)
        else:
            db.session.commit()
            flash(
                _(
                    "We sent a message to %(email)s. Open the link in it to confirm your "
                    "address, then sign in.",
                    email=form.email.data.strip(),
                ),
                "success",
            )
            return redirect_to(url_for("account.login"))
    return render_template("account/register.html", form=form)


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    """Confirm a new account's address: following the mailed link is the confirmation."""
    try:
        service.confirm_registration(token)
    except control.LinkError as error:
        db.session.rollback()
        return _bad_link(error, None)
    db.session.commit()
    flash(_("Your address is confirmed. You can sign in now."), "success")
    return redirect_to(url_for("account.login"))


# -- passwords -------------------------------------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_email_key)
def forgot_password():
    """Mail a reset link, saying the same thing whether or not the address has an account."""
    form = forms.ForgotPasswordForm()
    if form.validate_on_submit():
        service.request_password_reset(form.email.data)
        db.session.commit()
        flash(
            _(
                "If an account uses %(email)s, we sent it a link to set a new password. "
                "The link works once, within %(ttl)s.",
                email=form.email.data.strip(),
                ttl=duration(current_app.config["RESET_TOKEN_TTL"]),
            ),
            "success",
        )
        return redirect_to(url_for("account.login"))
    return render_template("account/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Set a new password through a mailed single-use link."""
    try:
        service.usable_link(token, LinkPurpose.PASSWORD_RESET)
    except control.LinkError as error:
        return _bad_link(error, url_for("account.forgot_password"))
    form = forms.SetPasswordForm()
    if form.validate_on_submit():
        try:
            service.reset_password(token, form.password.data)
        except control.InvalidInput as error:
            _field_error(form, error)
        else:
            db.session.commit()
            _sign_out_participant()
            flash(_("Your new password is set. Sign in with it."), "success")
            return redirect_to(url_for("account.login"))
    return render_template("account/reset_password.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@participant_required
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
def change_password():
    """Change the password, knowing the current one; other sessions end."""
    participant = _participant()
    form = forms.ChangePasswordForm()
    if form.validate_on_submit():
        try:
            service.change_password(participant, form.current_password.data, form.password.data)
        except control.InvalidInput as error:
            _field_error(form, error)
        else:
            db.session.commit()
            # The new session version ended every session, this one included: renew it.
            login_user(participant)
            flash(_("Your password is changed. Other sessions were signed out."), "success")
            return redirect_to(url_for("account.index"))
    return render_template("account/change_password.html", form=form)


# -- email ---------------------------------------------------------------------------------


@bp.route("/email", methods=["GET", "POST"])
@participant_required
def change_email():
    """Change the address: by link when unmanaged, by the managing org's approval otherwise."""
    participant = _participant()
    form = forms.ChangeEmailForm()
    if form.validate_on_submit():
        try:
            change = service.change_email(participant, form.email.data)
        except control.InvalidInput as error:
            _field_error(form, error)
        else:
            db.session.commit()
            if change.waiting_for is not None:
                message = _(
                    "Your request to use %(email)s is waiting for %(org)s, which manages your "
                    "account. You will get an email when they decide.",
                    email=change.new_email,
                    org=change.waiting_for.name,
                )
            else:
                message = _(
                    "We sent a link to %(email)s. Your address changes only when you open it. "
                    "We also told your current address.",
                    email=change.new_email,
                )
            flash(message, "success")
            return redirect_to(url_for("account.index"))
    return render_template(
        "account/change_email.html",
        form=form,
        participant=participant,
        overview=service.overview(participant),
    )


@bp.route("/email/confirm/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str):
    """Apply an email change: following the link mailed to the new address confirms it."""
    try:
        participant = control.confirm_email_change(token)
    except control.LinkError as error:
        db.session.rollback()
        return _bad_link(error, None)
    db.session.commit()
    _sign_out_participant()
    flash(_("Your email is now %(email)s. Sign in with it.", email=participant.email), "success")
    return redirect_to(url_for("account.login"))


# -- profile and data ----------------------------------------------------------------------


@bp.route("/profile", methods=["GET", "POST"])
@participant_required
def edit_profile():
    """Edit the profile, unless the managing org restricted editing."""
    participant = _participant()
    if participant.restricted:
        if request.method == "POST":
            abort(403, service.restricted_message(participant))
        return render_template(
            "account/edit_profile.html",
            form=None,
            participant=participant,
            restricted=service.restricted_message(participant),
        )
    form = forms.EditProfileForm(data=forms.profile_data(participant))
    if form.validate_on_submit():
        # Only what was sent changes: a field left out of the request keeps its value.
        changes = {name: form[name].data for name in forms.EDITABLE_FIELDS if name in request.form}
        try:
            changed = service.edit_profile(participant, changes)
        except control.InvalidInput as error:
            _field_error(form, error)
        else:
            db.session.commit()
            flash(_("Your profile is saved.") if changed else _("Nothing changed."), "success")
            return redirect_to(url_for("account.index"))
    return render_template(
        "account/edit_profile.html", form=form, participant=participant, restricted=None
    )


@bp.get("/data")
@participant_required
def download_data():
    """Download everything the console holds about the participant, as JSON."""
    data = service.export_my_data(_participant())
    db.session.commit()
    response = current_app.response_class(
        json.dumps(data, indent=2, ensure_ascii=False), mimetype="application/json"
    )
    filename = f"partner-console-data-{utcnow().date().isoformat()}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/activity")
@participant_required
def activity():
    """List who has seen or changed the account: org, role, what, when."""
    participant = _participant()
    try:
        page = service.trail(
            participant, request.args.get("cursor"), current_app.config["PAGE_SIZE"]
        )
    except CursorError as error:
        abort(400, str(error))
    return render(
        "account/activity.html",
        "account/_trail.html",
        page=page,
        rows=trail_rows(page.rows, participant.id),
    )


# -- programs and release ------------------------------------------------------------------


@bp.post("/programs/<uuid:membership_id>/leave")
@participant_required
def leave_program(membership_id: uuid.UUID):
    """Leave one program."""
    try:
        membership = service.leave_program(_participant(), membership_id)
    except LookupError:
        abort(404)
    db.session.commit()
    name = membership.program.name if membership.program else _("the organization")
    flash(_("You left %(program)s.", program=name), "success")
    return redirect_to(url_for("account.index"))


@bp.route("/release", methods=["GET", "POST"])
@participant_required
def ask_release():
    """Ask the managing org to give up control of the account."""
    participant = _participant()
    org = participant.managed_by
    if org is None:
        flash(_("No organization manages your account."), "info")
        return redirect(url_for("account.index"))
    form = forms.AskReleaseForm()
    if form.validate_on_submit():
        try:
            service.ask_release(participant, form.message.data)
        except control.AccountError as error:
            flash(error.message, "error")
        else:
            db.session.commit()
            flash(
                _(
                    "Your request was sent to %(org)s. You will get an email when they decide.",
                    org=org.name,
                ),
                "success",
            )
        return redirect_to(url_for("account.index"))
    return render_template(
        "account/ask_release.html", form=form, org=org, overview=service.overview(participant)
    )
