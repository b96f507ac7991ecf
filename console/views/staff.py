"""Platform staff: the partner orgs, the whole audit trail and the mail outbox."""

import uuid

import sqlalchemy as sa
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user

from console.audit_format import action_options
from console.audit_format import actor_kind_options
from console.audit_format import audit_rows
from console.extensions import db
from console.htmx import render
from console.models import Member
from console.models import Org
from console.models import OutboxMessage
from console.pagination import CursorError
from console.permissions import staff_required
from console.services import audit as trail
from console.services import mail

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
