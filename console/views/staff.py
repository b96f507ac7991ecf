"""Platform staff: the partner orgs, their domains, the whole audit trail and the mail outbox."""

import uuid

import sqlalchemy as sa
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user

from console.audit_format import action_options
from console.audit_format import actor_kind_options
from console.audit_format import audit_rows
from console.extensions import db
from console.forms.domains import VerifyByHandForm
from console.htmx import redirect_to
from console.htmx import render
from console.models import Member
from console.models import Org
from console.models import OutboxMessage
from console.pagination import CursorError
from console.permissions import staff_required
from console.services import audit as trail
from console.services import domains as domains_service
from console.services import mail
from console.services import orgs as orgs_service

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.get("/")
@staff_required
def index():
    """List every partner org with its size."""
    members = (
        sa.select(sa.func.count()).where(Member.org_id == Org.id).correlate(Org).scalar_subquery()
    )
    orgs = db.session.execute(sa.select(Org, members.label("members")).order_by(Org.name)).all()
    return render_template("staff/index.html", orgs=orgs)


@bp.get("/audit")
@staff_required
def audit():
    """List every org's audit events and the platform's, newest first, filtered and paged."""
    try:
        filters = trail.TrailFilters.for_staff(request.args)
        page = trail.read_trail(
            filters, request.args.get("cursor"), current_app.config["PAGE_SIZE"]
        )
    except (trail.FilterError, CursorError) as error:
        abort(400, str(error))
    choices = trail.trail_choices(filters)
    scope = {key: value for key, value in filters.as_args().items() if key == "org"}
    rows = audit_rows(
        page,
        show_private=False,
        list_url=lambda **args: url_for("staff.audit", **scope, **args),
        org_names={org.id: org.name for org in choices.orgs},
    )
    trail.record_reading(current_user, "audit.viewed", filters, page)
    db.session.commit()
    return render(
        "staff/audit.html",
        "audit/_table.html",
        filters=filters,
        page=page,
        rows=rows,
        choices=choices,
        action_groups=action_options(platform=True),
        actor_kinds=actor_kind_options(),
        list_endpoint="staff.audit",
        list_args=filters.as_args(),
        trail_url=url_for("staff.audit"),
        export_url=None,
        show_org=filters.org is None and not filters.platform,
        show_scope=True,
    )


@bp.get("/outbox")
@staff_required
def outbox():
    """List the mail outbox, newest first."""
    try:
        page = mail.outbox_page(request.args.get("cursor"), current_app.config["PAGE_SIZE"])
    except CursorError as error:
        abort(400, str(error))
    return render(
        "staff/outbox.html",
        "staff/_outbox.html",
        page=page,
        delivering=bool(current_app.config["MAIL_URL"]),
    )


@bp.get("/outbox/<uuid:message_id>")
@staff_required
def outbox_message(message_id: uuid.UUID):
    """Show one message; its body only when the console delivers no mail (the demo)."""
    message = db.session.get(OutboxMessage, message_id) or abort(404)
    show_body = not current_app.config["MAIL_URL"]
    if show_body:
        mail.read_message(current_user, message)
        db.session.commit()
    return render_template("staff/outbox_message.html", message=message, show_body=show_body)


@bp.get("/domains")
@staff_required
def domains():
    """List every org's domains (or one org's, with ``?org=slug``), by name."""
    slug = request.args.get("org") or None
    org = orgs_service.find_org(slug) if slug else None
    if slug and org is None:
        abort(404)
    try:
        page = domains_service.all_domains(
            org, request.args.get("cursor"), current_app.config["PAGE_SIZE"]
        )
    except CursorError as error:
        abort(400, str(error))
    return render("staff/domains.html", "staff/_domains.html", page=page, org=org)


@bp.route("/domains/<uuid:domain_id>/verify", methods=["GET", "POST"])
@staff_required
def verify_domain(domain_id: uuid.UUID):
    """Mark a domain verified by hand, with a written reason, for a partner without DNS access."""
    domain = domains_service.get_domain(domain_id) or abort(404)
    form = VerifyByHandForm()
    if form.validate_on_submit():
        try:
            domains_service.verify_by_hand(current_user, domain, form.reason.data)
        except domains_service.DomainError as error:
            form.reason.errors.append(error.message)
        else:
            db.session.commit()
            flash(
                _(
                    "%(domain)s is verified for %(org)s.",
                    domain=domain.unicode_name,
                    org=domain.org.name,
                ),
                "success",
            )
            return redirect_to(url_for("staff.domains", org=domain.org.slug))
    return render_template("staff/verify_domain.html", domain=domain, form=form)
