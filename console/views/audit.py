"""An org's audit trail: the filtered, paged list and its CSV export."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import g
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_login import current_user

from console.audit_format import action_options
from console.audit_format import actor_kind_options
from console.audit_format import audit_rows
from console.audit_format import csv_chunks
from console.extensions import db
from console.htmx import render
from console.models import Org
from console.pagination import CursorError
from console.permissions import Permission
from console.permissions import require
from console.services import audit as service

bp = Blueprint("audit", __name__, url_prefix="/orgs/<org:org>/audit")
EXPORT_BATCH = 1000


@bp.get("")
@require(Permission.VIEW_AUDIT)
def index(org: Org):
    """List the org's audit events, newest first, filtered and paged."""
    show_private = g.role.can(Permission.VIEW_PRIVATE)
    try:
        filters = service.TrailFilters.for_org(request.args, org)
        page = service.read_trail(
            filters,
            request.args.get("cursor"),
            current_app.config["PAGE_SIZE"],
            unseal=show_private,
        )
    except (service.FilterError, CursorError) as error:
        abort(400, str(error))
    rows = audit_rows(
        page,
        show_private=show_private,
        list_url=lambda **args: url_for("audit.index", org=org, **args),
        member_url=lambda pid: url_for("participants.show", org=org, participant_id=pid),
    )
    service.record_reading(current_user, "audit.viewed", filters, page)
    db.session.commit()
    return render(
        "audit/index.html",
        "audit/_table.html",
        org=org,
        filters=filters,
        page=page,
        rows=rows,
        choices=service.trail_choices(filters),
        action_groups=action_options(platform=False),
        actor_kinds=actor_kind_options(),
        list_endpoint="audit.index",
        list_args=dict(filters.as_args(), org=org),
        trail_url=url_for("audit.index", org=org),
        export_url=url_for("audit.export", org=org, **filters.as_args()),
        show_org=False,
        show_scope=False,
    )


@bp.get("/export.csv")
@require(Permission.VIEW_AUDIT)
def export(org: Org):
    """Stream the filtered trail as CSV, after recording (and committing) the export."""
    try:
        filters = service.TrailFilters.for_org(request.args, org)
    except service.FilterError as error:
        abort(400, str(error))
    event = service.record_reading(current_user, "audit.exported", filters)
    db.session.commit()
    # The export is the trail as it stood when it was asked for, up to its own record.
    pages = service.walk_trail(filters, EXPORT_BATCH, before=event)
    today = datetime.now(ZoneInfo(org.time_zone)).date().isoformat()
    response = Response(stream_with_context(csv_chunks(pages, filters)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{org.slug}-{today}.csv"'
    return response
