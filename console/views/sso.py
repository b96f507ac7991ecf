"""Single sign-on: the org's connection page (owners and staff), and the round trip with the IdP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from console.extensions import db
from console.extensions import limiter
from console.forms import account as account_forms
from console.forms.auth import EmptyForm
from console.forms.sso import ConnectionForm
from console.forms.sso import SsoSignInForm
from console.htmx import redirect_to
from console.models import Org
from console.models import SsoConnection
from console.permissions import Permission
from console.permissions import Role
from console.permissions import require
from console.permissions import staff_required
from console.services import orgs as orgs_service
from console.services import sso as service
from console.services.domains import owners_of
from console.views.account import _complete as complete_participant
from console.views.auth import _complete as complete_admin
from console.views.auth import safe_next

bp = Blueprint("sso", __name__)

FLOW = "sso_flow"
STAFF = "sso.staff_"


def _limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _refused(response: Response) -> bool:
    # Only failed round trips count: a burst of forged callbacks must not flood the trail.
    return response.status_code >= 400


def manage_sso(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let owners (``MANAGE_SSO``) use the org's page, and staff its ``staff_`` twin."""
    for_owners = require(Permission.MANAGE_SSO)(view)

    @staff_required
    def for_staff(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("org") is None:
            abort(404)
        return view(*args, **kwargs)

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if (request.endpoint or "").startswith(STAFF):
            return for_staff(*args, **kwargs)
        return for_owners(*args, **kwargs)

    return wrapped


def _endpoint(name: str) -> str:
    staff = (request.endpoint or "").startswith(STAFF)
    return (STAFF if staff else "sso.") + name


def _connection_or_409(org: Org) -> SsoConnection:
    connection = service.get_connection(org)
    if connection is None:
        abort(409, _("%(org)s has no single sign-on connection yet.", org=org.name))
    return connection


def _page(org: Org, form: ConnectionForm):  # type: ignore[no-untyped-def]
    connection = service.get_connection(org)
    owners = owners_of(org)
    return render_template(
        "sso/show.html",
        org=org,
        connection=connection,
        form=form,
        owners=owners,
        break_glass=service.break_glass_owners(org) if connection else [],
        redirect_uri=service.redirect_uri(org),
        endpoint=_endpoint,
        staff=(request.endpoint or "").startswith(STAFF),
        button_form=EmptyForm(),
    )


def _owner_choices(form: ConnectionForm, org: Org) -> None:
    form.break_glass.choices = [
        SelectChoice(str(owner.id), f"{owner.name} ({owner.email})") for owner in owners_of(org)
    ]


@bp.get("/orgs/<org:org>/sso", endpoint="show")
@bp.get("/staff/orgs/<org:org>/sso", endpoint="staff_show")
@manage_sso
def show(org: Org):
    """Show the org's SSO connection: what to register at the IdP, discovery, the settings."""
    connection = service.get_connection(org)
    data: dict[str, Any] = {}
    if connection is not None:
        data = {
            "issuer": connection.issuer,
            "client_id": connection.client_id,
            "scopes": connection.scopes,
            "groups_claim": connection.groups_claim,
            "role_mapping": service.format_role_mapping(connection.role_mapping or []),
            "default_role": connection.default_role or "",
            "enforce_admins": connection.enforce_admins,
            "enforce_participants": connection.enforce_participants,
            "break_glass": [str(owner.id) for owner in service.break_glass_owners(org)],
        }
    form = ConnectionForm(data=data)
    _owner_choices(form, org)
    return _page(org, form)


@bp.post("/orgs/<org:org>/sso", endpoint="save")
@bp.post("/staff/orgs/<org:org>/sso", endpoint="staff_save")
@manage_sso
def save(org: Org):
    """Create or change the connection; the issuer is discovered before anything is kept."""
    form = ConnectionForm()
    _owner_choices(form, org)
    if form.validate_on_submit():
        settings = service.ConnectionSettings(
            issuer=form.issuer.data,
            client_id=form.client_id.data,
            client_secret=form.client_secret.data or None,
            scopes=form.scopes.data,
            groups_claim=form.groups_claim.data,
            role_mapping=form.mapping,
            default_role=form.default_role.data or None,
            enforce_admins=form.enforce_admins.data,
            enforce_participants=form.enforce_participants.data,
            break_glass=[uuid.UUID(value) for value in form.break_glass.data],
        )
        try:
            service.save_connection(current_user, org, settings)
        except service.SettingsError as error:
            getattr(form, error.field or "issuer").errors.append(error.message)
        else:
            db.session.commit()
            flash(
                _("Single sign-on is set up. Test the connection before you rely on it."), "success"
            )
            return redirect_to(url_for(_endpoint("show"), org=org))
    return _page(org, form)


@bp.post("/orgs/<org:org>/sso/discovery", endpoint="discover")
@bp.post("/staff/orgs/<org:org>/sso/discovery", endpoint="staff_discover")
@manage_sso
def discover(org: Org):
    """Fetch the issuer's discovery document again and show what it says."""
    if not EmptyForm().validate_on_submit():
        abort(400, _("The form expired. Reload the page and try again."))
    connection = _connection_or_409(org)
    try:
        service.refresh_discovery(current_user, org, connection)
    except service.DiscoveryError as error:
        flash(error.message, "error")
    else:
        flash(_("The discovery document was fetched again."), "success")
    db.session.commit()
    return redirect_to(url_for(_endpoint("show"), org=org))


@bp.post("/orgs/<org:org>/sso/remove", endpoint="remove")
@bp.post("/staff/orgs/<org:org>/sso/remove", endpoint="staff_remove")
@manage_sso
def remove(org: Org):
    """Remove the connection: everyone signs in with a password again."""
    if not EmptyForm().validate_on_submit():
        abort(400, _("The form expired. Reload the page and try again."))
    connection = _connection_or_409(org)
    service.remove_connection(current_user, org, connection)
    db.session.commit()
    flash(_("Single sign-on is removed. Everyone signs in with a password again."), "success")
    return redirect_to(url_for(_endpoint("show"), org=org))


@bp.get("/orgs/<org:org>/sso/test", endpoint="test")
@bp.get("/staff/orgs/<org:org>/sso/test", endpoint="staff_test")
@manage_sso
def test(org: Org):
    """Run a sign-in round trip with the IdP and show the claims, signing nobody in."""
    connection = _connection_or_409(org)
    back = url_for(_endpoint("show"), org=org)
    return _begin(connection, service.Purpose.TEST, back=back)


# -- signing in ------------------------------------------------------------------------------


def _begin(
    connection: SsoConnection,
    purpose: str,
    login_hint: str | None = None,
    next_url: str | None = None,
    back: str | None = None,
):  # type: ignore[no-untyped-def]
    org = connection.org
    # One round trip at a time: abandoned ones would otherwise pile up in the cookie.
    _forget_flow()
    try:
        url, state = service.begin(connection, login_hint)
    except service.SignInFailure as failure:
        _record(org, purpose, failure, connection=connection)
        db.session.commit()
        return _failed(org, failure, purpose, back)
    session[FLOW] = {
        "org": str(org.id),
        "purpose": purpose,
        "state": state,
        "next": next_url,
        "back": back,
    }
    return redirect(url, 303)


def _hint() -> str | None:
    hint = (request.args.get("login_hint") or "").strip()
    return hint if "@" in hint and len(hint) <= 320 else None


def _org_and_connection(slug: str) -> tuple[Org, SsoConnection | None]:
    org = orgs_service.find_org(slug)
    if org is None:
        abort(404)
    return org, service.get_connection(org)


@bp.get("/sso/<slug>/login")
@limiter.limit(_limit, deduct_when=_refused)
def login(slug: str):
    """Send an administrator to the org's IdP (the link to share with the org's people)."""
    org, connection = _org_and_connection(slug)
    if connection is None:
        return _failed(org, service.SignInFailure("not_configured"), service.Purpose.ADMIN)
    next_url = safe_next(request.args.get("next"))
    return _begin(connection, service.Purpose.ADMIN, _hint(), next_url)


@bp.get("/sso/<slug>/login/participant")
@limiter.limit(_limit, deduct_when=_refused)
def participant_login(slug: str):
    """Send a managed participant to their org's IdP, when the org enforces it for them."""
    org, connection = _org_and_connection(slug)
    if connection is None:
        return _failed(org, service.SignInFailure("not_configured"), service.Purpose.PARTICIPANT)
    if not connection.enforce_participants:
        return _failed(org, service.SignInFailure("not_enforced"), service.Purpose.PARTICIPANT)
    next_url = safe_next(request.args.get("next"))
    return _begin(connection, service.Purpose.PARTICIPANT, _hint(), next_url)


@bp.post("/account/login/sso")
@limiter.limit(_limit, methods=["POST"])
def participant_start():
    """Take a participant's email and, if their org signs them in, go to its IdP."""
    form = SsoSignInForm()
    if form.validate_on_submit():
        connection = service.participant_connection(form.email.data)
        if connection is not None:
            target = url_for(
                "sso.participant_login",
                slug=connection.org.slug,
                login_hint=form.email.data,
                next=safe_next(request.args.get("next")),
            )
            return render_template("sso/redirect.html", org=connection.org, target=target)
    sign_in = account_forms.SignInForm()
    sign_in.email.errors = list(form.email.errors) or [
        _(
            "No organization signs in addresses at this domain through single sign-on: "
            "sign in with your password."
        )
    ]
    return render_template("account/login.html", form=sign_in, attempt=None)


@bp.get("/sso/<slug>/callback")
@limiter.limit(_limit, deduct_when=_refused)
def callback(slug: str):
    """Finish a round trip: sign the administrator or participant in, or show the test."""
    org, connection = _org_and_connection(slug)
    flow = session.pop(FLOW, None)
    purpose = flow["purpose"] if flow else service.Purpose.ADMIN
    back = flow.get("back") if flow else None
    if connection is None:
        _forget_flow()
        return _failed(org, service.SignInFailure("not_configured"), purpose)
    state = request.args.get("state")
    # Some IdPs leave the state out of an error answer; one started here is still shown.
    error_here = request.args.get("error") and state is None
    if not flow or flow["org"] != str(org.id) or (flow["state"] != state and not error_here):
        return _refuse(org, purpose, service.SignInFailure("state"), connection, back=back)
    try:
        claims = service.finish(connection, request.args)
    except service.SignInFailure as failure:
        return _refuse(org, purpose, failure, connection, back=back)
    if purpose == service.Purpose.TEST:
        return _test_result(org, connection, claims, back)
    if purpose == service.Purpose.PARTICIPANT:
        try:
            participant = service.sign_in_participant(connection, claims)
        except service.SignInFailure as failure:
            return _refuse(org, purpose, failure, connection, claims)
        db.session.commit()
        return complete_participant(participant, flow.get("next"))
    try:
        admin = service.sign_in_admin(connection, claims)
    except service.SignInFailure as failure:
        return _refuse(org, purpose, failure, connection, claims)
    return complete_admin(admin, flow.get("next"), method="sso")


def _test_result(org: Org, connection: SsoConnection, claims: dict[str, Any], back: str | None):  # type: ignore[no-untyped-def]
    if not _may_test(org):
        abort(403)
    role = current_user.role_in(org)
    if role is not None:
        g.org, g.role = org, role  # the org's navigation, as on its other pages
    decision = service.decide_admin(connection, claims)
    refusal = decision.refusal
    service.record_test(current_user, connection, refusal.reason if refusal else "ok", claims)
    db.session.commit()
    return render_template(
        "sso/test_result.html",
        org=org,
        connection=connection,
        decision=decision,
        refusal=service.describe(refusal, org) if refusal else None,
        claims_json=service.claims_json(claims),
        back=back or url_for("sso.show", org=org),
    )


def _may_test(org: Org) -> bool:
    if not current_user.is_authenticated or not getattr(current_user, "is_admin", False):
        return False
    if current_user.is_staff:
        return True
    role = current_user.role_in(org)
    return role is not None and Role(role.role).can(Permission.MANAGE_SSO)


def _refuse(
    org: Org,
    purpose: str,
    failure: service.SignInFailure,
    connection: SsoConnection,
    claims: dict[str, Any] | None = None,
    back: str | None = None,
):  # type: ignore[no-untyped-def]
    _forget_flow()
    _record(org, purpose, failure, claims, connection)
    db.session.commit()
    return _failed(org, failure, purpose, back)


def _record(
    org: Org,
    purpose: str,
    failure: service.SignInFailure,
    claims: dict[str, Any] | None = None,
    connection: SsoConnection | None = None,
) -> None:
    if purpose == service.Purpose.TEST and connection is not None and _may_test(org):
        service.record_test(current_user, connection, failure.reason, claims)
    else:
        service.record_failure(org, purpose, failure, claims, connection)


def _forget_flow() -> None:
    session.pop(FLOW, None)
    for key in [key for key in session if key.startswith("_state_sso-")]:
        session.pop(key, None)


def _failed(org: Org | None, failure: service.SignInFailure, purpose: str, back: str | None = None):  # type: ignore[no-untyped-def]
    problem, remedy = service.describe(failure, org)
    html = render_template(
        "sso/failed.html",
        org=org,
        reason=failure.reason,
        problem=problem,
        remedy=remedy,
        purpose=purpose,
        back=back,
    )
    return Response(html, status=failure.status, mimetype="text/html")
