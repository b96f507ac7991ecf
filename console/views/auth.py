"""Administrator sign-in (email first, then password, then a second factor for staff)."""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlsplit

from flask import Blueprint
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
from console.forms.auth import EmptyForm
from console.forms.auth import SignInForm
from console.forms.auth import VerifyCodeForm
from console.htmx import redirect_to
from console.models import Admin
from console.models import Org
from console.services import auth
from console.services import sso

bp = Blueprint("auth", __name__)

PENDING = "pending_second_factor"
SETUP_SECRET = "totp_setup_secret"


def _failed(response) -> bool:  # type: ignore[no-untyped-def]
    # Only failed attempts count towards the limit; signing in often is not an attack.
    submitted = request.form.get("password") or request.form.get("code")
    return response.status_code == 200 and request.method == "POST" and bool(submitted)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _email_key() -> str:
    return f"{request.remote_addr}|{(request.form.get('email') or '').strip().lower()}"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_email_key, deduct_when=_failed)
def login():
    """Sign an administrator in: email first, then the password."""
    if current_user.is_authenticated and getattr(current_user, "is_admin", False):
        return redirect(landing_url(current_user))
    form = SignInForm()
    step = "password" if request.args.get("method") == "password" else "email"
    sso_org = None
    if form.validate_on_submit():
        if form.password.data:
            sso_org = _password_refused(form.email.data)
            if sso_org is None:
                admin = auth.authenticate_admin(form.email.data, form.password.data)
                if admin is not None:
                    sso.use_break_glass(admin, request.remote_addr)
                    return _password_accepted(admin)
                db.session.commit()
                flash(_("That email and password do not match an active administrator."), "error")
        else:
            route = sso.route_for_email(form.email.data)
            if route is not None and route.kind == "idp":
                return _to_identity_provider(route.org, form.email.data)
            sso_org = route.org if route is not None else None
        step = "sso_required" if sso_org is not None else "password"
    elif request.method == "POST" and not form.email.errors:
        step = "password"
    return render_template("auth/login.html", form=form, step=step, sso_org=sso_org)


def _password_refused(email: str) -> Org | None:
    # Enforced SSO refuses the password before it is checked: no guesses against it.
    admin = auth.find_admin(email)
    org = sso.password_refused_by(admin) if admin is not None else None
    if admin is not None and org is not None:
        sso.refuse_password(admin, org)
        db.session.commit()
    return org


def _to_identity_provider(org: Org, email: str):  # type: ignore[no-untyped-def]
    target = url_for(
        "sso.login", slug=org.slug, login_hint=email, next=safe_next(request.args.get("next"))
    )
    return render_template("sso/redirect.html", org=org, target=target)


def _password_accepted(admin: Admin):  # type: ignore[no-untyped-def]
    target = safe_next(request.args.get("next"))
    if admin.is_staff:
        session.clear()
        session[PENDING] = {"id": str(admin.id), "v": admin.session_version, "next": target}
        endpoint = "auth.second_factor" if admin.totp_secret else "auth.second_factor_setup"
        return redirect_to(url_for(endpoint))
    return _complete(admin, target)


def _complete(admin: Admin, target: str | None, method: str = "password"):  # type: ignore[no-untyped-def]
    # A fresh session on every sign-in: nothing from before it survives (fixation).
    session.clear()
    session["sid"] = secrets.token_urlsafe(16)
    login_user(admin)
    auth.record_sign_in(admin, method)
    db.session.commit()
    return redirect_to(target or landing_url(admin))


def _pending_admin() -> Admin | None:
    pending = session.get(PENDING)
    if not pending:
        return None
    admin = db.session.get(Admin, uuid.UUID(pending["id"]))
    if admin is None or not admin.is_active or admin.session_version != pending["v"]:
        return None
    return admin


@bp.route("/login/verify", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
def second_factor():
    """Ask staff for the code from their authenticator app."""
    admin = _pending_admin()
    if admin is None or admin.totp_secret is None:
        return redirect(url_for("auth.login"))
    form = VerifyCodeForm()
    if form.validate_on_submit():
        secret = auth.admin_totp_secret(admin)
        if secret and auth.check_totp(admin, secret, form.code.data):
            return _complete(admin, session[PENDING].get("next"), method="password+totp")
        form.code.errors.append(_("That code is not valid. Codes change every 30 seconds."))
    return render_template("auth/second_factor.html", form=form)


@bp.route("/login/verify/setup", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
def second_factor_setup():
    """Enrol staff in a second factor before their first sign-in completes."""
    admin = _pending_admin()
    if admin is None or admin.totp_secret is not None:
        return redirect(url_for("auth.login"))
    secret = session.get(SETUP_SECRET) or auth.new_totp_secret()
    session[SETUP_SECRET] = secret
    form = VerifyCodeForm()
    if form.validate_on_submit():
        if auth.check_totp(admin, secret, form.code.data):
            auth.enable_totp(admin, secret)
            return _complete(admin, session[PENDING].get("next"), method="password+totp")
        form.code.errors.append(_("That code is not valid. Check the time on your device."))
    uri = auth.totp_uri(admin, secret)
    return render_template(
        "auth/second_factor_setup.html", form=form, secret=secret, qr_svg=auth.qr_svg(uri), uri=uri
    )


@bp.post("/logout")
def logout():
    """Sign the current administrator out."""
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.login"))
    if current_user.is_authenticated and getattr(current_user, "is_admin", False):
        auth.record_sign_out(current_user)
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect_to(url_for("auth.login"))


def landing_url(admin: Admin) -> str:
    """Return where an administrator starts: staff home, their org, or the org picker."""
    if admin.is_staff:
        return url_for("staff.index")
    if len(admin.roles) == 1:
        return url_for("orgs.show", org=admin.roles[0].org)
    return url_for("orgs.index")


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site, else None (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target
