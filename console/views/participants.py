"""An org's participants: the searchable list and the detail page."""

from __future__ import annotations

import uuid

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user

from console.extensions import db
from console.formatting import participant_rows
from console.forms.auth import EmptyForm
from console.htmx import render
from console.models import Org
from console.pagination import CursorError
from console.permissions import Permission
from console.permissions import require
from console.report_format import PRESET_LABELS
from console.report_format import period_label
from console.services import audit
from console.services import exports
from console.services import participants as service
from console.services import reports
from console.tenancy import get_member_or_404
from console.views.control import bulk_actions
from console.views.control import manage_context
from console.views.reports import send_export

bp = Blueprint("participants", __name__, url_prefix="/orgs/<org:org>/participants")


@bp.get("/")
@require(Permission.VIEW_PARTICIPANTS)
def index(org: Org):
    """Search, filter and page through the org's members."""
    try:
        filters = service.ListFilters.from_args(request.args, org)
        page = service.list_members(
            org, filters, request.args.get("cursor"), current_app.config["PAGE_SIZE"]
        )
    except (service.FilterError, CursorError) as error:
        abort(400, str(error))
    count, capped = service.count_members(org, filters, current_app.config["COUNT_CAP"])
    show_private = g.role.can(Permission.VIEW_PRIVATE)
    programs = service.programs_by_participant(org, [row.Participant.id for row in page.rows])
    base_url = url_for("participants.index", org=org)
    return render(
        "participants/index.html",
        "participants/_table.html",
        org=org,
        filters=filters,
        page=page,
        rows=participant_rows(page.rows, programs, org, base_url, show_private),
        bulk_actions=bulk_actions(g.role),
        empty_form=EmptyForm(),
        count=count,
        capped=capped,
        show_private=show_private,
    )


@bp.get("/<uuid:participant_id>")
@require(Permission.VIEW_PARTICIPANTS)
def show(org: Org, participant_id: uuid.UUID):
    """Show one member's profile, account, memberships, relationships and activity."""
    member, participant = get_member_or_404(org, participant_id)
    show_private = g.role.can(Permission.VIEW_PRIVATE)
    relationships = service.relationships_of(participant)
    activity = service.recent_activity(participant)
    counterparts = {r.mentor_id for r in relationships} | {r.mentee_id for r in relationships}
    counterparts |= {e.counterpart_id for e in activity if e.counterpart_id}
    # Name another participant only when they are a member here too.
    visible = service.member_ids(org, counterparts)
    audit.record(
        current_user,
        "participant.viewed",
        org=org,
        target=participant,
        details={"private_fields": show_private},
    )
    db.session.commit()
    return render_template(
        "participants/show.html",
        org=org,
        member=member,
        participant=participant,
        memberships=service.memberships_in(org, participant),
        relationships=relationships,
        activity=activity,
        visible_ids=visible,
        counterpart_names=service.names_of(visible),
        **manage_context(org, participant),
    )


@bp.get("/export.<any(csv, xlsx):fmt>")
@require(Permission.VIEW_REPORTS)
def export(org: Org, fmt: str):
    """Download the participant list with the list page's filters and order (audited)."""
    try:
        filters = service.ListFilters.from_args(request.args, org)
    except service.FilterError as error:
        abort(400, str(error))
    show_private = g.role.can(Permission.VIEW_PRIVATE)
    found = exports.participant_export(org, filters, show_private)
    exports.record_export(
        current_user,
        org,
        "participants",
        fmt,
        {**filters.as_args(), "private_fields": show_private},
    )
    db.session.commit()
    return send_export(org, found, fmt)


@bp.get("/<uuid:participant_id>/report")
@require(Permission.VIEW_REPORTS)
def report(org: Org, participant_id: uuid.UUID):
    """Show a member's activity report: totals, timeline, relationships with feedback, outcomes."""
    member, participant = get_member_or_404(org, participant_id)
    try:
        filters = reports.ReportFilters.from_args(request.args, org, default="year")
        timeline = reports.timeline(org, participant.id, filters.period, request.args.get("cursor"))
    except reports.FilterError as error:
        abort(400, str(error))
    show_private = g.role.can(Permission.VIEW_PRIVATE)
    relationships = service.relationships_of(participant)
    counterparts = {r.mentor_id for r in relationships} | {r.mentee_id for r in relationships}
    visible = service.member_ids(org, counterparts)
    audit.record(
        current_user,
        "participant.report_viewed",
        org=org,
        target=participant,
        details={"private_fields": show_private, **filters.as_args()},
    )
    db.session.commit()
    return render(
        "participants/report.html",
        "participants/_timeline.html",
        org=org,
        member=member,
        participant=participant,
        show_private=show_private,
        filters=filters,
        presets=PRESET_LABELS,
        period_label=period_label,
        totals=reports.member_totals(org, participant.id, filters.period),
        timeline=timeline,
        feedback=reports.relationship_feedback(relationships, visible | {participant.id}),
        outcomes=reports.outcomes_of(org, participant.id, filters.period),
        visible_ids=visible,
        counterpart_names=service.names_of(visible),
    )
