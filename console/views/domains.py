"""An org's domains (owners only): add, verify by DNS, claim the accounts, release them."""

from __future__ import annotations

import uuid

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user

from console.extensions import db
from console.forms.auth import EmptyForm
from console.forms.domains import AddDomainForm
from console.forms.domains import DomainSettingsForm
from console.forms.domains import NoticeForm
from console.htmx import redirect_to
from console.htmx import render
from console.models import DomainStatus
from console.models import Org
from console.models import OrgDomain
from console.pagination import CursorError
from console.permissions import Permission
from console.permissions import require
from console.services import claims
from console.services import domains as service
from console.services import participants

bp = Blueprint("domains", __name__, url_prefix="/orgs/<org:org>/domains")

SELECTION_LIMIT = 200


def _load(org: Org, name: str) -> OrgDomain:
    """Return the org's domain by name; another org's (or none) answers 404."""
    return service.find_domain(org, name) or abort(404)


def _checked_form() -> None:
    if not EmptyForm().validate_on_submit():
        abort(400, _("The form expired. Reload the page and try again."))


def _index_page(org: Org, add_form: AddDomainForm, notice_form: NoticeForm):  # type: ignore[no-untyped-def]
    items = service.list_domains(org)
    counts = claims.claim_counts_of(items)
    return render_template(
        "domains/index.html",
        org=org,
        domains=items,
        counts=counts,
        add_form=add_form,
        notice_form=notice_form,
    )


@bp.get("/")
@require(Permission.MANAGE_DOMAINS)
def index(org: Org):
    """List the org's domains, with the forms to add one and to set the claim notice period."""
    return _index_page(org, AddDomainForm(), NoticeForm(notice_days=org.claim_notice_days))


@bp.post("/")
@require(Permission.MANAGE_DOMAINS)
def create(org: Org):
    """Add a domain to verify; public mailbox providers and others' domains are refused."""
    form = AddDomainForm()
    if form.validate_on_submit():
        try:
            domain = service.add_domain(current_user, org, form.domain.data)
        except service.DomainError as error:
            form.domain.errors.append(error.message)
        else:
            db.session.commit()
            flash(
                _(
                    "%(domain)s is added: publish the record below, then check it.",
                    domain=domain.unicode_name,
                ),
                "success",
            )
            return redirect_to(url_for("domains.show", org=org, domain=domain.domain))
    return _index_page(org, form, NoticeForm(notice_days=org.claim_notice_days))


@bp.post("/notice")
@require(Permission.MANAGE_DOMAINS)
def set_notice(org: Org):
    """Set how many days a claim waits before it takes effect (0 to 30)."""
    form = NoticeForm()
    if form.validate_on_submit():
        service.set_claim_notice(current_user, org, form.notice_days.data)
        db.session.commit()
        flash(
            _("Claims now take effect at once.")
            if not org.claim_notice_days
            else _(
                "Claims now take effect %(days)s days after the participant is told.",
                days=org.claim_notice_days,
            ),
            "success",
        )
        return redirect_to(url_for("domains.index", org=org))
    return _index_page(org, AddDomainForm(formdata=None), form)


@bp.get("/<domain>")
@require(Permission.MANAGE_DOMAINS)
def show(org: Org, domain: str):
    """Show a domain: its status, the record to publish, its options and its claims."""
    found = _load(org, domain)
    claimable = None
    if found.status == DomainStatus.VERIFIED:
        claimable = claims.count_claimable(found, cap=current_app.config["COUNT_CAP"])
    return render_template(
        "domains/show.html",
        org=org,
        domain=found,
        deadlines=service.deadlines(found),
        counts=claims.claim_counts(found),
        claimable=claimable,
        message=service.describe_lookup(found, found.last_result),
        settings_form=DomainSettingsForm(obj=found),
        form=EmptyForm(),
    )


@bp.post("/<domain>/check")
@require(Permission.MANAGE_DOMAINS)
def check(org: Org, domain: str):
    """Look the verification record up now and say what was found."""
    found = _load(org, domain)
    _checked_form()
    try:
        result = service.check_domain(current_user, org, found)
    except service.DomainError as error:
        abort(error.status, error.message)
    db.session.commit()
    message = service.describe_lookup(found, result.lookup.outcome)
    if "verified" in result.events or "restored" in result.events:
        flash(
            _("%(domain)s is verified. %(message)s", domain=found.unicode_name, message=message),
            "success",
        )
    else:
        flash(message, "success" if result.lookup.found else "warning")
    return redirect_to(url_for("domains.show", org=org, domain=found.domain))


@bp.post("/<domain>/settings")
@require(Permission.MANAGE_DOMAINS)
def update(org: Org, domain: str):
    """Turn subdomains and the automatic claim of new sign-ups on or off."""
    found = _load(org, domain)
    form = DomainSettingsForm()
    if not form.validate_on_submit():
        abort(400, _("The form expired. Reload the page and try again."))
    service.update_domain(
        current_user,
        org,
        found,
        include_subdomains=form.include_subdomains.data,
        auto_claim=form.auto_claim.data,
    )
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect_to(url_for("domains.show", org=org, domain=found.domain))


@bp.post("/<domain>/remove")
@require(Permission.MANAGE_DOMAINS)
def remove(org: Org, domain: str):
    """Remove a domain; refused while accounts claimed through it are managed."""
    found = _load(org, domain)
    _checked_form()
    name = found.unicode_name
    try:
        service.remove_domain(current_user, org, found)
    except service.DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect_to(url_for("domains.show", org=org, domain=found.domain))
    db.session.commit()
    flash(_("%(domain)s is removed.", domain=name), "success")
    return redirect_to(url_for("domains.index", org=org))


# -- claims ----------------------------------------------------------------------------


def _verified(domain: OrgDomain) -> None:
    try:
        claims.require_verified(domain)
    except claims.ClaimError as error:
        abort(error.status, error.message)


@bp.get("/<domain>/claimable")
@require(Permission.MANAGE_DOMAINS)
def claimable(org: Org, domain: str):
    """Preview the unmanaged, confirmed accounts the domain may claim (search, pages)."""
    found = _load(org, domain)
    _verified(found)
    q = (request.args.get("q") or "").strip()[:200]
    cap = current_app.config["COUNT_CAP"]
    try:
        page = claims.claimable_page(
            found, q, request.args.get("cursor"), current_app.config["PAGE_SIZE"]
        )
    except CursorError as error:
        abort(400, str(error))
    ids = {row.Participant.id for row in page.rows}
    return render(
        "domains/claimable.html",
        "domains/_claimable.html",
        org=org,
        domain=found,
        q=q,
        page=page,
        members=participants.member_ids(org, ids),
        total=claims.count_claimable(found, cap=cap),
        matching=claims.count_claimable(found, q, cap=cap) if q else None,
        form=EmptyForm(),
    )


def _selected_ids() -> list[uuid.UUID]:
    raw = request.form.getlist("ids")
    if not raw:
        abort(400, _("Select at least one account."))
    if len(raw) > SELECTION_LIMIT:
        abort(400, _("Select at most %(limit)s accounts at a time.", limit=SELECTION_LIMIT))
    try:
        return list(dict.fromkeys(uuid.UUID(value) for value in raw))
    except ValueError:
        abort(400, _("The selection is not valid."))


@bp.post("/<domain>/claims")
@require(Permission.MANAGE_DOMAINS)
def claim(org: Org, domain: str):
    """Claim the selected accounts, or the next batch of all of them; safe to repeat."""
    found = _load(org, domain)
    _checked_form()
    remaining = None
    try:
        if request.form.get("all"):
            results, remaining = claims.claim_batch(current_user, org, found)
        else:
            chosen = claims.accounts_by_id(_selected_ids())
            results = claims.claim_accounts(current_user, org, found, chosen)
    except claims.ClaimError as error:
        abort(error.status, error.message)
    db.session.commit()
    return render_template(
        "domains/results.html",
        org=org,
        domain=found,
        results=results,
        remaining=remaining,
        releasing=False,
        form=EmptyForm(),
    )


@bp.get("/<domain>/claims")
@require(Permission.MANAGE_DOMAINS)
def claims_list(org: Org, domain: str):
    """List the accounts claimed through the domain, and those in their notice period."""
    found = _load(org, domain)
    try:
        page = claims.claims_page(
            found, request.args.get("cursor"), current_app.config["PAGE_SIZE"]
        )
    except CursorError as error:
        abort(400, str(error))
    return render(
        "domains/claims.html",
        "domains/_claims.html",
        org=org,
        domain=found,
        page=page,
        counts=claims.claim_counts(found),
        form=EmptyForm(),
    )


@bp.post("/<domain>/claims/release")
@require(Permission.MANAGE_DOMAINS)
def release(org: Org, domain: str):
    """Release the selected claimed accounts, or the next batch of all; each is told."""
    found = _load(org, domain)
    _checked_form()
    remaining = None
    if request.form.get("all"):
        results, remaining = service.release_batch(current_user, org, found)
    else:
        chosen = claims.open_claims_by_id(found, _selected_ids())
        results = service.release_claims(current_user, org, found, chosen)
    db.session.commit()
    return render_template(
        "domains/results.html",
        org=org,
        domain=found,
        results=results,
        remaining=remaining,
        releasing=True,
        form=EmptyForm(),
    )
