"""Exports of the participant list and of members' activity: CSV and XLSX, in constant memory.

Rows come from one streamed query over the org's members, a thousand at a
time; each thousand brings its programs (and activity sums) in one more
query. CSV goes out as it is written; XLSX is written row by row to a
temporary file (XlsxWriter's constant-memory mode), then sent and deleted.
Text never starts a formula: CSV cells get a leading quote, XLSX cells are
written as strings.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import xlsxwriter

from console.audit_format import csv_safe
from console.audit_format import drain
from console.extensions import db
from console.models import Member
from console.models import MemberDay
from console.models import Membership
from console.models import Org
from console.models import Participant
from console.models import Program
from console.models.base import utcnow
from console.services import audit
from console.services.participants import ListFilters
from console.services.participants import filtered_members
from console.services.participants import sort_key
from console.services.reports import Impact
from console.services.reports import Period
from console.services.rollups import zone

CHUNK = 1000


@dataclass
class Export:
    """A table to write: a name for the file, a header, and rows produced lazily."""

    name: str
    header: list[str]
    rows: Iterator[list[Any]]


def record_export(actor: Any, org: Org, report: str, fmt: str, filters: dict[str, Any]) -> None:
    """Record who exported what, with which filters."""
    audit.record(
        actor,
        "report.exported",
        org=org,
        details={"report": report, "format": fmt, "filters": filters},
    )


def _programs(org: Org) -> sa.ScalarSelect[Any]:
    """Return the member's current programs in the org, comma-separated (a subquery)."""
    names = (
        sa.select(Program.name)
        .join(Membership, Membership.program_id == Program.id)
        .where(
            Membership.org_id == org.id,
            Membership.participant_id == Member.participant_id,
            Membership.left_at.is_(None),
        )
        .order_by(Program.name)
        .correlate(Member)
        .subquery()
    )
    if db.session.get_bind().dialect.name == "postgresql":
        joined = sa.func.string_agg(names.c.name, sa.literal(", "))
    else:
        joined = sa.func.group_concat(names.c.name, ", ")
    return sa.select(joined).scalar_subquery()


def _member_chunks(org: Org, filters: ListFilters) -> Iterator[list[Any]]:
    """Yield the matching members a thousand at a time, in the list's order.

    The id comes as the driver gives it (hex text on SQLite): turning every id
    into a UUID object and back would cost more than the rest of the row.
    """
    sort = sort_key(filters.sort)
    column = sort.column.desc() if sort.descending else sort.column.asc()
    tiebreak = sort.tiebreak.desc() if sort.descending else sort.tiebreak.asc()
    managed = sa.case(
        (Participant.managed_by_org_id.is_(None), "no"),
        (Participant.managed_by_org_id == org.id, "yes"),
        else_="elsewhere",
    )
    stmt = (
        filtered_members(org, filters, accounts=True)
        .with_only_columns(
            sa.type_coerce(Member.participant_id, sa.String).label("participant_id"),
            Participant.name,
            Participant.email,
            Participant.role,
            Participant.status,
            Participant.suspended_until,
            managed.label("managed"),
            _programs(org).label("programs"),
            Member.joined_at,
            Member.last_active_at,
        )
        .order_by(sa.nulls_last(column) if sort.nullable else column, tiebreak)
        .execution_options(yield_per=CHUNK)
    )
    yield from db.session.execute(stmt).partitions()


def _id_text(value: Any) -> str:
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def _local(moment: datetime | None, tz: Any) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(tz).replace(tzinfo=None, microsecond=0)


def participant_export(org: Org, filters: ListFilters, show_private: bool) -> Export:
    """Return the participant list with the list page's filters and order."""
    tz = zone(org.time_zone)
    header = ["id", "name", *(["email"] if show_private else [])]
    header += ["role", "status", "managed", "programs", "joined", "last_active"]

    def rows() -> Iterator[list[Any]]:
        now = utcnow()
        for chunk in _member_chunks(org, filters):
            for row in chunk:
                yield [
                    _id_text(row.participant_id),
                    row.name,
                    *([row.email or ""] if show_private else []),
                    row.role,
                    Participant.effective_status(row, now),  # the row has its two columns
                    row.managed,
                    row.programs or "",
                    row.joined_at.astimezone(tz).date(),
                    _local(row.last_active_at, tz),
                ]

    return Export(f"participants-{org.slug}", header, rows())


ACTIVITY_COLUMNS = (
    "events",
    "sign_ins",
    "messages",
    "requests_sent",
    "requests_accepted",
    "sessions",
    "session_minutes",
    "feedback_count",
    "rating_sum",
    "outcomes",
    "jobs",
    "revenue_cents",
    "surveys",
)


def activity_export(org: Org, filters: ListFilters, period: Period, show_private: bool) -> Export:
    """Return each member's activity totals over ``period``, one row per member."""
    tz = zone(org.time_zone)
    header = ["id", "name", *(["email"] if show_private else [])]
    header += ["from", "to", "active_days"]
    header += [c for c in ACTIVITY_COLUMNS if c not in ("rating_sum", "revenue_cents")]
    header += ["average_rating", "revenue", "last_active"]
    table = MemberDay.__table__

    participant = sa.type_coerce(table.c.participant_id, sa.String)

    def sums(ids: list[Any]) -> dict[Any, list[int]]:
        found = db.session.execute(
            sa.select(
                participant,
                sa.func.count(),
                *(sa.func.sum(table.c[name]) for name in ACTIVITY_COLUMNS),
            )
            .where(
                table.c.org_id == org.id,
                participant.in_(ids),
                table.c.day >= period.start,
                table.c.day <= period.end,
            )
            .group_by(table.c.participant_id)
        )
        return {row[0]: [int(v or 0) for v in row[1:]] for row in found}

    def rows() -> Iterator[list[Any]]:
        empty = [0] * (len(ACTIVITY_COLUMNS) + 1)
        for chunk in _member_chunks(org, filters):
            found = sums([row.participant_id for row in chunk])
            for row in chunk:
                active_days, *values = found.get(row.participant_id, empty)
                totals = dict(zip(ACTIVITY_COLUMNS, values, strict=True))
                feedback = totals["feedback_count"]
                yield [
                    _id_text(row.participant_id),
                    row.name,
                    *([row.email or ""] if show_private else []),
                    period.start,
                    period.end,
                    active_days,
                    *(v for k, v in totals.items() if k not in ("rating_sum", "revenue_cents")),
                    round(totals["rating_sum"] / feedback, 2) if feedback else None,
                    totals["revenue_cents"] / 100,
                    _local(row.last_active_at, tz),
                ]

    return Export(f"activity-{org.slug}-{period.start}-{period.end}", header, rows())


def impact_export(org: Org, report: Impact, labels: dict[str, str], all_label: str) -> Export:
    """Return the impact report's tables as rows: metric, program, then each period's cell."""
    header = ["metric", "program", *(report.tables[0].columns if report.tables else [])]

    def rows() -> Iterator[list[Any]]:
        for table in report.tables:
            for name, cells in table.rows:
                yield [
                    labels.get(table.metric, table.metric),
                    name or all_label,
                    *("suppressed" if cell.suppressed else cell.value for cell in cells),
                ]

    return Export(f"impact-{org.slug}-{report.year}", header, rows())


# -- formats ---------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    convert = _CSV_FORMS.get(type(value))
    return convert(value) if convert is not None else value


# By exact type: one dictionary lookup per cell; text is defused, numbers pass as they are.
_CSV_FORMS: dict[type, Any] = {
    str: csv_safe,
    type(None): lambda value: "",
    datetime: lambda value: value.isoformat(sep=" "),
    date: date.isoformat,
}


def csv_chunks(export: Export) -> Iterator[str]:
    """Yield the export as CSV, a chunk per thousand rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    # The byte order mark lets spreadsheets read accents in names as UTF-8.
    buffer.write("\ufeff")
    writer.writerow(export.header)
    count = 0
    for row in export.rows:
        writer.writerow([_text(value) for value in row])
        count += 1
        if count % CHUNK == 0:
            yield drain(buffer)
    yield drain(buffer)


def write_xlsx(export: Export) -> str:
    """Write the export to a temporary XLSX file, row by row, and return its path."""
    handle, path = tempfile.mkstemp(prefix="console-export-", suffix=".xlsx")
    os.close(handle)
    workbook = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    try:
        sheet = workbook.add_worksheet(export.name[:31])
        bold = workbook.add_format({"bold": True})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        for column, title in enumerate(export.header):
            sheet.write_string(0, column, title, bold)
        for number, row in enumerate(export.rows, start=1):
            for column, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, bool):
                    sheet.write_boolean(number, column, value)
                elif isinstance(value, int | float):
                    sheet.write_number(number, column, value)
                elif isinstance(value, datetime):
                    sheet.write_datetime(number, column, value, moment)
                elif isinstance(value, date):
                    sheet.write_datetime(number, column, value, day)
                else:
                    # Written as a string, never as a formula, whatever it starts with.
                    sheet.write_string(number, column, str(value))
        sheet.freeze_panes(1, 0)
    finally:
        workbook.close()
    return path


def file_chunks(path: str, size: int = 64 * 1024) -> Iterator[bytes]:
    """Yield a file's bytes, then delete the file."""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(size):
                yield chunk
    finally:
        os.unlink(path)
