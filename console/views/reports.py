"""An org's reports: the dashboard, members gone quiet, the impact report, exports."""

from __future__ import annotations

import re
import uuid

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import g
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user

from console import report_format
from console.extensions import db
from console.forms.reports import ChangeThresholdForm
from console.htmx import is_partial
from console.htmx import redirect_to
from console.htmx import render
from console.models import Org
from console.pagination import CursorError
from console.permissions import Permission
from console.permissions import require
from console.services import exports
from console.services import participants
from console.services import reports as service

bp = Blueprint("reports", __name__, url_prefix="/orgs/<org:org>/reports")
QUIET_PREVIEW = 10
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_DOWNLOAD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def _filters(org: Org, default: str = "30d") -> service.ReportFilters:
    try:
        return service.ReportFilters.from_args(request.args, org, default)
    except service.FilterError as error:
        abort(400, str(error))


def quiet_filters(program_id: uuid.UUID | None) -> participants.ListFilters:
    """Return the list filters of members who went quiet, most recently active first."""
    return participants.ListFilters(program=program_id, activity="quiet", sort="-last_active")


@bp.get("")
@require(Permission.VIEW_REPORTS)
def index(org: Org):
    """Show the dashboard for a range of days and, optionally, one program."""
    filters = _filters(org)
    dashboard = service.dashboard(org, filters)
    program_id = filters.program.id if filters.program else None
    quiet = participants.list_members(org, quiet_filters(program_id), None, QUIET_PREVIEW)
    response = render(
        "reports/index.html",
        "reports/_report.html",
        org=org,
        filters=filters,
        dashboard=dashboard,
        cards=report_format.cards(dashboard),
        charts=report_format.chart_data(dashboard),
        funnel=report_format.funnel_rows(dashboard),
        quiet=quiet,
        presets=report_format.PRESET_LABELS,
        period_label=report_format.period_label,
        week_label=report_format.week_label,
    )
    if is_partial():
        response.headers["HX-Push-Url"] = url_for("reports.index", org=org, **filters.as_args())
    return response


@bp.get("/quiet")
@require(Permission.VIEW_REPORTS)
def quiet(org: Org):
    """Page through the members who were active once but not in the last 30 days."""
    try:
        program = service.program_in(org, request.args.get("program"))
        page = participants.list_members(
            org,
            quiet_filters(program.id if program else None),
            request.args.get("cursor"),
            current_app.config["PAGE_SIZE"],
        )
    except (service.FilterError, CursorError) as error:
        abort(400, str(error))
    return render(
        "reports/quiet.html",
        "reports/_quiet.html",
        org=org,
        program=program,
        page=page,
        pager_args={"org": org, **({"program": str(program.id)} if program else {})},
    )


def _year(org: Org) -> int:
    value = request.args.get("year", "")
    if not value:
        return service.today_in(org).year
    if not value.isdecimal() or len(value) != 4:
        abort(400, _("year: use a year such as 2026."))
    return int(value)


def _impact(org: Org):
    try:
        return service.impact(org, _year(org))
    except service.FilterError as error:
        abort(400, str(error))


@bp.get("/impact")
@require(Permission.VIEW_REPORTS)
def impact(org: Org):
    """Show the anonymous impact report: programs by quarter, small cells suppressed."""
    form = ChangeThresholdForm(threshold=org.report_threshold)
    return render_template(
        "reports/impact.html",
        org=org,
        report=_impact(org),
        labels=report_format.IMPACT_LABELS,
        form=form if g.role.can(Permission.MANAGE_REPORTS) else None,
    )


@bp.get("/impact.csv")
@require(Permission.VIEW_REPORTS)
def impact_export(org: Org):
    """Download the impact report as CSV (audited)."""
    report = _impact(org)
    labels = {key: str(label) for key, label in report_format.IMPACT_LABELS.items()}
    export = exports.impact_export(org, report, labels, _("All programs"))
    exports.record_export(
        current_user, org, "impact", "csv", {"year": report.year, "threshold": report.threshold}
    )
    db.session.commit()
    return send_export(org, export, "csv")


@bp.post("/impact/threshold")
@require(Permission.MANAGE_REPORTS)
def change_threshold(org: Org):
    """Change the count under which impact report cells are suppressed."""
    form = ChangeThresholdForm()
    if not form.validate_on_submit():
        return render_template(
            "reports/impact.html",
            org=org,
            report=_impact(org),
            labels=report_format.IMPACT_LABELS,
            form=form,
        )
    service.set_threshold(current_user, org, form.threshold.data)
    db.session.commit()
    flash(
        _("Cells counting fewer than %(n)s are now suppressed.", n=org.report_threshold), "success"
    )
    return redirect_to(url_for("reports.impact", org=org))


@bp.get("/activity.<any(csv, xlsx):fmt>")
@require(Permission.VIEW_REPORTS)
def export_activity(org: Org, fmt: str):
    """Download each member's activity totals for the range (the list's filters apply)."""
    filters = _filters(org)
    try:
        members = participants.ListFilters.from_args(request.args, org)
    except participants.FilterError as error:
        abort(400, str(error))
    show_private = g.role.can(Permission.VIEW_PRIVATE)
    export = exports.activity_export(org, members, filters.period, show_private)
    exports.record_export(
        current_user,
        org,
        "activity",
        fmt,
        {**members.as_args(), **filters.as_args(), "private_fields": show_private},
    )
    db.session.commit()
    return send_export(org, export, fmt)


def send_export(org: Org, export: exports.Export, fmt: str) -> Response:
    """Answer with the export as a download: CSV streamed as written, XLSX once written."""
    if fmt == "csv":
        response = Response(stream_with_context(exports.csv_chunks(export)), mimetype="text/csv")
    else:
        response = Response(exports.file_chunks(exports.write_xlsx(export)), mimetype=XLSX)
    today = service.today_in(org).isoformat()
    response.headers["Content-Disposition"] = f'attachment; filename="{export.name}-{today}.{fmt}"'
    # The page shows a progress note until this cookie says the download has begun.
    token = request.args.get("download", "")
    if _DOWNLOAD_TOKEN.match(token):
        response.set_cookie(
            "download",
            token,
            max_age=120,
            samesite="Strict",
            secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return response
