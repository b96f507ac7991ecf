"""Reports on a small world whose every figure was worked out by hand (see report_world)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import ALL_PROGRAMS
from console.models import AuditEvent
from console.models import MemberDay
from console.models import MentoringRelationship
from console.services import events as event_service
from console.services import exports
from console.services import reports
from console.services import rollups
from console.services import tokens
from console.services.reports import Period
from tests import factories
from tests import report_world
from tests.conftest import csrf_token
from tests.conftest import fresh
from tests.factories import ACTOR
from tests.test_api import ApiClient
from tests.test_api import is_problem

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)


@pytest.fixture
def world(db) -> report_world.World:
    found = report_world.build()
    report_world.ingest(found)
    return found


@pytest.fixture
def api(app, world) -> ApiClient:
    token, secret = tokens.create_token(ACTOR, world.org, ["reports:read"])
    return ApiClient(app.test_client(), token, secret)


def summary(api: ApiClient, world: report_world.World, first: int, last: int, **extra: Any):
    response = api.get(
        "/api/v1/reports/summary",
        query_string={
            "from": world.day(first).isoformat(),
            "to": world.day(last).isoformat(),
            **extra,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# -- the summary: every figure by hand ---------------------------------------------------------


def test_the_summary_has_exactly_the_contracted_keys_and_figures(api, world):
    body = summary(api, world, 0, 13)
    assert body == {
        "from": world.day(0).isoformat(),
        "to": world.day(13).isoformat(),
        "members": 5,  # ana, bea, carl, dan, gus (eve left)
        "active_members": 6,  # those five (dan even before he joined) and eve; not fay
        "new_members": 1,  # dan
        "mentor_requests": 2,  # ana, bea
        "requests_accepted": 1,  # carl
        "acceptance_rate": 0.5,
        "active_relationships": 2,  # r1 started in range, r3 before it; r2 ended before
        "sessions": 2,  # ana, carl; fay's is another org's
        "messages": 5,  # 3 + 2
        "average_rating": 4.5,  # (5 + 4) / 2
        "jobs_reported": 2,
        "revenue_reported": 1500.5,
    }
    assert isinstance(body["revenue_reported"], float)
    assert all(isinstance(body[key], int) for key in ("members", "sessions", "messages"))


def test_the_period_before_has_its_own_figures(api, world):
    body = summary(api, world, -14, -1)
    assert body == {
        "from": world.day(-14).isoformat(),
        "to": world.day(-1).isoformat(),
        "members": 5,  # ana, bea, carl, eve, gus; dan joins later
        "active_members": 1,  # bea, three days before
        "new_members": 5,
        "mentor_requests": 0,
        "requests_accepted": 0,
        "acceptance_rate": None,
        "active_relationships": 2,  # r2 and r3
        "sessions": 0,
        "messages": 0,
        "average_rating": None,
        "jobs_reported": 0,
        "revenue_reported": 0.0,
    }


def test_each_program_has_its_own_figures(api, world):
    a = summary(api, world, 0, 13, program=str(world.programs["A"].id))
    assert {k: v for k, v in a.items() if k not in ("from", "to")} == {
        "members": 4,  # ana, bea, dan, gus
        "active_members": 4,
        "new_members": 1,
        "mentor_requests": 2,
        "requests_accepted": 0,
        "acceptance_rate": 0.0,
        "active_relationships": 2,  # r1 (ana), r3 (gus)
        "sessions": 1,
        "messages": 3,
        "average_rating": 5.0,
        "jobs_reported": 2,
        "revenue_reported": 1500.5,
    }
    b = summary(api, world, 0, 13, program=str(world.programs["B"].id))
    assert {k: v for k, v in b.items() if k not in ("from", "to")} == {
        "members": 2,  # bea, carl
        "active_members": 3,  # bea, carl, eve
        "new_members": 0,
        "mentor_requests": 1,
        "requests_accepted": 1,
        "acceptance_rate": 1.0,
        "active_relationships": 2,  # carl's r1 and r3
        "sessions": 1,
        "messages": 2,
        "average_rating": 4.0,
        "jobs_reported": 0,
        "revenue_reported": 0.0,
    }


def test_days_are_the_orgs_local_days(api, world):
    # gus's only event is at 03:00 UTC on day 1: still day 0 in New York.
    body = summary(api, world, 0, 0, program=str(world.programs["A"].id))
    assert body["active_members"] == 2  # ana and gus
    assert summary(api, world, 1, 1, program=str(world.programs["A"].id))["active_members"] == 1


def test_a_rebuild_gives_the_same_figures(api, world):
    before = [summary(api, world, a, b) for a, b in ((0, 13), (-14, -1), (3, 9))]
    rollups.rebuild()
    assert [summary(api, world, a, b) for a, b in ((0, 13), (-14, -1), (3, 9))] == before


def test_the_summary_defaults_to_the_last_30_days(api, world):
    body = api.get("/api/v1/reports/summary").get_json()
    assert body["to"] == world.last.isoformat()
    assert body["from"] == (world.last - timedelta(days=29)).isoformat()
    assert body["active_members"] == 6


@pytest.mark.parametrize(
    "params,field",
    [
        ({"from": "2026-02-30"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-1-1"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "1999-01-01"}, "from"),
        ({"from": "2001-01-01", "to": "2026-01-01"}, "to"),
        ({"program": "nope"}, "program"),
        ({"program": "00000000-0000-0000-0000-000000000001"}, "program"),
    ],
)
def test_bad_summary_parameters_are_422(api, world, params, field):
    body = is_problem(api.get("/api/v1/reports/summary", query_string=params), 422)
    assert body["errors"][0]["field"] == field and body["errors"][0]["parameter"] == field


def test_another_orgs_program_is_not_a_filter(api, world):
    other = str(world.other.programs[0].id)
    is_problem(api.get("/api/v1/reports/summary", query_string={"program": other}), 422)


def test_the_summary_needs_reports_read_on_an_org_token(app, world):
    token, secret = tokens.create_token(ACTOR, world.org, ["participants:read"])
    body = is_problem(
        ApiClient(app.test_client(), token, secret).get("/api/v1/reports/summary"), 403
    )
    assert "reports:read" in body["detail"]
    is_problem(app.test_client().get("/api/v1/reports/summary"), 401)


def test_other_orgs_see_only_their_members(app, world):
    token, secret = tokens.create_token(ACTOR, world.other, ["reports:read"])
    other = ApiClient(app.test_client(), token, secret)
    body = other.get("/api/v1/reports/summary").get_json()
    # fay and gus are its members (joined today, their history with them); no one else.
    assert body["members"] == 2 and body["active_members"] == 2 and body["sessions"] == 1
    fay = world.people["fay"].id
    assert not db.session.scalar(
        sa.select(sa.func.count()).where(
            MemberDay.participant_id == fay, MemberDay.org_id == world.org.id
        )
    )


def test_the_summary_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    schema = spec["components"]["schemas"]["ReportSummary"]
    assert schema["required"] == [
        "from",
        "to",
        "members",
        "active_members",
        "new_members",
        "mentor_requests",
        "requests_accepted",
        "acceptance_rate",
        "active_relationships",
        "sessions",
        "messages",
        "average_rating",
        "jobs_reported",
        "revenue_reported",
    ]
    assert spec["paths"]["/events"]["post"]["security"] == [{"bearerAuth": ["events:write"]}]


# -- the dashboard ---------------------------------------------------------------------------------


@pytest.fixture
def owner(world, client_for):
    return client_for(factories.make_admin(world.org, "owner"))


def dashboard_url(world: report_world.World, first: int = 0, last: int = 13, **extra: str) -> str:
    query = {
        "preset": "custom",
        "from": world.day(first).isoformat(),
        "to": world.day(last).isoformat(),
    }
    query.update(extra)
    return f"/orgs/{world.org.slug}/reports?" + "&".join(f"{k}={v}" for k, v in query.items())


def figures(page: str) -> dict[str, tuple[str, str]]:
    found = {}
    for key, value, change in re.findall(
        r'data-figure="(\w+)">\s*<span class="figure-label">[^<]*</span>\s*'
        r'<span class="figure-value">([^<]*)</span>\s*'
        r'<span class="figure-change[^"]*">\s*([^<]*?)\s*<',
        page,
    ):
        found[key] = (html.unescape(value), html.unescape(change))
    return found


def chart(page: str, name: str) -> dict[str, Any]:
    found = re.search(rf'data-chart-name="{name}"[^>]*data-chart="([^"]*)"', page)
    assert found, name
    return json.loads(html.unescape(found.group(1)))


def test_the_dashboard_shows_every_figure_with_its_change(owner, world):
    page = owner.get(dashboard_url(world)).get_data(as_text=True)
    assert figures(page) == {
        "members": ("5", "±0"),
        "active_members": ("6", "+5 (+500%)"),
        "new_members": ("1", "−4 (−80%)"),
        "mentor_requests": ("2", "+2"),
        "acceptance_rate": ("50%", "no comparison"),
        "active_relationships": ("2", "±0"),
        "sessions": ("2", "+2"),
        "messages": ("5", "+5"),
        "average_rating": ("4.5", "no comparison"),
        "jobs_reported": ("2", "+2"),
        "revenue_reported": ("1,500.5", "+1,500.5"),
    }


def test_the_charts_and_their_tables_carry_the_hand_counted_series(owner, world):
    page = owner.get(dashboard_url(world)).get_data(as_text=True)
    funnel = chart(page, "funnel")
    # Registered, profile complete (ana, carl), asked for a mentor (ana), matched, met.
    assert funnel["series"][0]["data"] == [5, 2, 1, 1, 1]
    active_days = {
        "ana": (0, 1, 2, 9, 12),
        "bea": (3,),
        "carl": (3, 4, 9, 10),
        "dan": (2, 6),
        "eve": (7,),
        "gus": (0,),
    }
    weeks = reports.weeks(Period(world.day(0), world.day(13)))
    expected = [
        sum(any(start <= world.day(d) <= end for d in days) for days in active_days.values())
        for start, end in weeks
    ]
    assert chart(page, "active")["series"][0]["data"] == expected
    outcomes = chart(page, "outcomes")
    jobs, revenue = outcomes["series"][0]["data"], outcomes["series"][1]["data"]
    assert sum(jobs) == 2 and sum(revenue) == 1500.5
    week_of_outcome = next(i for i, (s, e) in enumerate(weeks) if s <= world.day(12) <= e)
    assert jobs[week_of_outcome] == 2
    # Each chart's numbers are also in a table beside it.
    assert page.count('class="chart-numbers"') == 2 and "funnel-table" in page
    assert 'role="img"' in page and "aria-label=" in page


def test_htmx_gets_the_report_body_and_the_canonical_url(owner, world):
    response = owner.get(
        dashboard_url(world, program=str(world.programs["B"].id)), headers={"HX-Request": "true"}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="report-body"')
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["HX-Push-Url"].endswith(f"program={world.programs['B'].id}")
    assert figures(body)["members"][0] == "2"


def test_the_presets_cover_the_last_30_days_the_quarter_and_the_year(owner, world):
    today = world.last
    for preset, start in (
        ("30d", today - timedelta(days=29)),
        ("quarter", date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)),
        ("year", date(today.year, 1, 1)),
    ):
        page = owner.get(f"/orgs/{world.org.slug}/reports?preset={preset}").get_data(as_text=True)
        assert f'name="from" value="{start.isoformat()}"' in page, preset
        assert f'<option value="{preset}" selected>' in page


@pytest.mark.parametrize(
    "query",
    ["preset=decade", "from=2026-13-01", "from=2026-03-05&to=2026-03-01", "program=nope"],
)
def test_bad_dashboard_parameters_are_400(owner, world, query):
    assert owner.get(f"/orgs/{world.org.slug}/reports?{query}").status_code == 400


def test_support_sees_no_reports_and_no_link_to_them(world, client_for):
    support = client_for(factories.make_admin(world.org, "support"))
    assert support.get(dashboard_url(world)).status_code == 403
    page = support.get(f"/orgs/{world.org.slug}/participants/").get_data(as_text=True)
    assert f"/orgs/{world.org.slug}/reports" not in page and "export.csv" not in page
    ana = world.people["ana"].id
    assert support.get(f"/orgs/{world.org.slug}/participants/{ana}/report").status_code == 403
    assert "Activity report" not in support.get(
        f"/orgs/{world.org.slug}/participants/{ana}"
    ).get_data(as_text=True)


def test_gone_quiet_lists_members_active_once_but_not_lately(owner, world):
    quiet = factories.make_participant(
        world.org, name="Quinn Quiet", last_active_at=datetime.now(UTC) - timedelta(days=40)
    )
    quieter = factories.make_participant(
        world.org, name="Quentin Quieter", last_active_at=datetime.now(UTC) - timedelta(days=90)
    )
    factories.make_participant(world.org, name="Never Seen")
    page = owner.get(dashboard_url(world)).get_data(as_text=True)
    names = re.findall(r'<td class="name-cell"><a href="([^"]+)">([^<]+)</a>', page)
    assert [name for _, name in names] == ["Quinn Quiet", "Quentin Quieter"]
    assert names[0][0] == f"/orgs/{world.org.slug}/participants/{quiet.id}"
    full = owner.get(f"/orgs/{world.org.slug}/reports/quiet").get_data(as_text=True)
    assert "Quentin Quieter" in full and str(quieter.id) in full and "Never Seen" not in full


# -- the member report --------------------------------------------------------------------------


def member_url(world: report_world.World, name: str, **extra: str) -> str:
    person = world.people[name].id
    query = {"preset": "custom", "from": world.day(0).isoformat(), "to": world.day(13).isoformat()}
    query.update(extra)
    return f"/orgs/{world.org.slug}/participants/{person}/report?" + "&".join(
        f"{k}={v}" for k, v in query.items()
    )


def test_the_member_report_totals_timeline_feedback_and_outcomes(owner, world):
    page = owner.get(member_url(world, "ana")).get_data(as_text=True)
    totals = dict(re.findall(r'data-total="(\w+)">([^<]*)<', page))
    assert totals == {
        "active_days": "5",
        "sign_ins": "1",
        "messages": "3",
        "requests_sent": "1",
        "sessions": "1",
        "feedback_count": "1",
        "jobs": "2",
        "revenue": "1,500.5",
    }
    assert page.count("<time datetime=") == 6  # her six events, newest first
    assert "they rated 5 of 5" in page and "the other side rated 4 of 5" in page
    assert "ana@x.example" in page  # the owner sees private fields
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.report_viewed")
    ).one()
    assert event.target_id == str(world.people["ana"].id)
    assert event.details["private_fields"] is True and event.details["preset"] == "custom"


def test_analysts_see_the_member_report_without_private_fields(world, client_for):
    analyst = client_for(factories.make_admin(world.org, "analyst"))
    page = analyst.get(member_url(world, "ana")).get_data(as_text=True)
    assert "ana@x.example" not in page and 'data-total="messages">3<' in page
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.report_viewed")
    ).one()
    assert event.details["private_fields"] is False


def test_the_timeline_pages_by_keyset_without_gaps_or_repeats(world):
    person = world.people["ana"].id
    period = Period(world.day(-30), world.day(13))
    seen, cursor = [], None
    while True:
        page = reports.timeline(world.org, person, period, cursor, limit=4)
        seen += [e.id for e in page.events]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    everything = reports.timeline(world.org, person, period, None, limit=100).events
    assert seen == [e.id for e in everything] and len(seen) == 6
    times = [e.occurred_at for e in everything]
    assert times == sorted(times, reverse=True)


def test_a_forged_timeline_cursor_is_400(owner, world):
    assert owner.get(member_url(world, "ana", cursor="bm9wZQ")).status_code == 400


def test_the_timeline_pages_in_place_with_htmx(owner, world, monkeypatch):
    monkeypatch.setattr(reports, "TIMELINE_PAGE", 2)
    monkeypatch.setattr(reports.timeline, "__defaults__", (2,))
    first = owner.get(member_url(world, "ana")).get_data(as_text=True)
    older = re.search(r'href="([^"]*cursor=[^"]+)"[^>]*hx-target="#member-timeline"', first)
    assert older
    response = owner.get(html.unescape(older.group(1)), headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and fragment.startswith('<div id="member-timeline"')
    assert fragment.count("<time datetime=") == 2


# -- exports ---------------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def read_xlsx(response) -> list[list[Any]]:
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    shared = []
    if "xl/sharedStrings.xml" in archive.namelist():
        root = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
        shared = ["".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")) for si in root]
    sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    assert not list(sheet.iter(f"{{{ns['m']}}}f")), "no formulas"
    rows = []
    for row in sheet.iter(f"{{{ns['m']}}}row"):
        values = []
        for cell in row.findall("m:c", ns):
            kind = cell.get("t")
            if kind == "s":
                values.append(shared[int(cell.find("m:v", ns).text)])
            elif kind == "inlineStr":
                values.append("".join(t.text or "" for t in cell.iter(f"{{{ns['m']}}}t")))
            else:
                values.append(float(cell.find("m:v", ns).text))
        rows.append(values)
    return rows


def test_the_participant_export_has_the_lists_members_and_filters(owner, world):
    base = f"/orgs/{world.org.slug}/participants/export.csv"
    rows = read_csv(owner.get(base, buffered=True))
    assert rows[0] == [
        "id",
        "name",
        "email",
        "role",
        "status",
        "managed",
        "programs",
        "joined",
        "last_active",
    ]
    assert [r[1] for r in rows[1:]] == ["Ana Alba", "Bea Bravo", "Carl Cruz", "Dan Diaz", "Gus Gil"]
    bea = rows[2]
    assert bea[0] == str(world.people["bea"].id) and bea[2] == "bea@x.example"
    assert bea[6] == "A, B" and bea[7] == world.day(-10).isoformat()
    only_b = read_csv(owner.get(f"{base}?program={world.programs['B'].id}", buffered=True))
    assert [r[1] for r in only_b[1:]] == ["Bea Bravo", "Carl Cruz"]
    backwards = read_csv(owner.get(f"{base}?sort=-name", buffered=True))
    assert [r[1] for r in backwards[1:]] == [
        "Gus Gil",
        "Dan Diaz",
        "Carl Cruz",
        "Bea Bravo",
        "Ana Alba",
    ]


def test_the_activity_export_has_each_members_totals(owner, world):
    days = f"preset=custom&from={world.day(0)}&to={world.day(13)}"
    url = f"/orgs/{world.org.slug}/reports/activity.csv?{days}"
    rows = read_csv(owner.get(url, buffered=True))
    header = rows[0]
    assert header[:6] == ["id", "name", "email", "from", "to", "active_days"]
    ana = dict(zip(header, rows[1], strict=True))
    assert ana == {
        "id": str(world.people["ana"].id),
        "name": "Ana Alba",
        "email": "ana@x.example",
        "from": world.day(0).isoformat(),
        "to": world.day(13).isoformat(),
        "active_days": "5",
        "events": "6",
        "sign_ins": "1",
        "messages": "3",
        "requests_sent": "1",
        "requests_accepted": "0",
        "sessions": "1",
        "session_minutes": "60",
        "feedback_count": "1",
        "outcomes": "1",
        "jobs": "2",
        "surveys": "0",
        "average_rating": "5.0",
        "revenue": "1500.5",
        "last_active": ana["last_active"],
    }
    dan = dict(zip(header, rows[4], strict=True))
    assert (dan["name"], dan["active_days"], dan["events"]) == ("Dan Diaz", "2", "2")


def test_xlsx_exports_hold_the_same_rows_as_typed_cells(owner, world):
    response = owner.get(f"/orgs/{world.org.slug}/participants/export.xlsx", buffered=True)
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert 'filename="participants-exact-' in response.headers["Content-Disposition"]
    rows = read_xlsx(response)
    assert rows[0][:3] == ["id", "name", "email"]
    assert [r[1] for r in rows[1:]] == ["Ana Alba", "Bea Bravo", "Carl Cruz", "Dan Diaz", "Gus Gil"]
    days = f"preset=custom&from={world.day(0)}&to={world.day(13)}"
    url = f"/orgs/{world.org.slug}/reports/activity.xlsx?{days}"
    activity = read_xlsx(owner.get(url, buffered=True))
    header = activity[0]
    ana = dict(zip(header, activity[1], strict=False))
    assert ana["messages"] == 3 and ana["revenue"] == 1500.5 and ana["active_days"] == 5


def test_analysts_export_without_emails(world, client_for):
    analyst = client_for(factories.make_admin(world.org, "analyst"))
    rows = read_csv(analyst.get(f"/orgs/{world.org.slug}/participants/export.csv", buffered=True))
    assert "email" not in rows[0] and not any("@" in cell for row in rows for cell in row)


def test_exports_are_audited_with_their_filters(owner, world):
    owner.get(f"/orgs/{world.org.slug}/participants/export.csv?role=mentor", buffered=True)
    owner.get(f"/orgs/{world.org.slug}/reports/activity.xlsx?preset=year", buffered=True)
    found = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "report.exported").order_by(AuditEvent.seq)
    ).all()
    assert [(e.details["report"], e.details["format"]) for e in found] == [
        ("participants", "csv"),
        ("activity", "xlsx"),
    ]
    assert found[0].details["filters"] == {"role": "mentor", "private_fields": True}
    assert found[1].details["filters"]["preset"] == "year"


def test_cells_that_would_run_as_formulas_are_defused(owner, world):
    person = factories.make_participant(world.org, name="=HYPERLINK(1)", email="f@x.example")
    rows = read_csv(
        owner.get(f"/orgs/{world.org.slug}/participants/export.csv?q=f%40x.example", buffered=True)
    )
    assert rows[1][1] == "'=HYPERLINK(1)"
    cells = read_xlsx(
        owner.get(f"/orgs/{world.org.slug}/participants/export.xlsx?q=f%40x.example", buffered=True)
    )
    assert cells[1][1] == "=HYPERLINK(1)"  # a string cell: read_xlsx refuses formulas
    assert person.name == "=HYPERLINK(1)"


def test_csv_exports_stream_a_chunk_per_thousand_rows(world):
    rows = ([n, f"name {n}"] for n in range(2500))
    chunks = exports.csv_chunks(exports.Export("test", ["n", "name"], rows))
    first = next(chunks)
    assert first.startswith("\ufeffn,name\r\n0,name 0") and first.count("\r\n") == 1001
    assert len(list(chunks)) == 2


def test_downloads_say_when_they_began(owner, world):
    url = f"/orgs/{world.org.slug}/participants/export.csv"
    response = owner.get(f"{url}?download=abc123", buffered=True)
    assert "download=abc123" in response.headers["Set-Cookie"]
    assert "HttpOnly" not in response.headers["Set-Cookie"]
    plain = owner.get(f"{url}?download=%3Cx%3E", buffered=True)
    assert "download=" not in plain.headers.get("Set-Cookie", "")


# -- the impact report ---------------------------------------------------------------------------


def impact_world() -> tuple[Any, dict[str, Any]]:
    """2025 in a UTC org: P1 and P2 by quarter (the expected cells are in the test)."""
    org = factories.make_org("impact", "Impact Org", ("P1", "P2"))
    p1, p2 = org.programs
    day = lambda text, hour=12: datetime.fromisoformat(f"{text}T{hour:02d}:00:00+00:00")  # noqa: E731
    people = {}
    for name, program, joined, left in [
        *((f"m{n}", p1, "2025-01-15", None) for n in range(1, 7)),
        ("m7", p1, "2025-05-10", None),
        ("n1", p2, "2025-01-15", None),
        ("n2", p2, "2025-01-15", "2025-10-05"),
        ("n3", p2, "2025-08-01", None),
    ]:
        person = factories.make_participant(
            org, name=f"Person {name}", email=f"{name}@impact.example", program=program
        )
        report_world.backdate(org, person, day(joined), day(left) if left else None)
        people[name] = person
    events = []

    def add(name: str, kind: str, when: str, data: Any = None) -> None:
        found = {
            "id": f"{name}-{kind}-{when}",
            "type": kind,
            "participant_id": str(people[name].id),
            "occurred_at": day(when).isoformat(),
        }
        if data:
            found["data"] = data
        events.append(found)

    for n in range(1, 5):
        add(f"m{n}", "session_logged", "2025-02-10", {"minutes": 30})
    for n in range(1, 7):
        add(f"m{n}", "session_logged", "2025-05-20", {"minutes": 30})
    add("m1", "outcome_reported", "2025-06-01", {"jobs": 10, "revenue": 500, "currency": "USD"})
    add("n1", "session_logged", "2025-08-20", {"minutes": 30})
    add("n1", "outcome_reported", "2025-11-02", {"jobs": 1, "revenue": 5, "currency": "USD"})
    results = event_service.ingest(ACTOR, events)
    assert {r.status for r in results} == {"accepted"}
    return org, people


def visible(table: reports.ImpactTable) -> dict[tuple[str, str], int]:
    return {
        (name or "All", column): cell.value
        for name, cells in table.rows
        for column, cell in zip(table.columns, cells, strict=True)
        if not cell.suppressed
    }


def test_the_impact_report_counts_and_suppresses_by_hand(db):
    org, _people = impact_world()
    found = {table.metric: table for table in reports.impact(org, 2025).tables}
    assert found["members"].columns == ["Q1", "Q2", "Q3", "Q4", "2025"]
    values = {
        name or "All": [cell.value for cell in cells] for name, cells in found["members"].rows
    }
    assert values == {
        "P1": [6, 7, 7, 7, 7],
        "P2": [2, 2, 3, 2, 2],
        "All": [8, 9, 10, 9, 9],
    }
    # P2 is all under 5; each column then hides P1's cell too, so only the org's totals show.
    assert visible(found["members"]) == {
        ("All", "Q1"): 8,
        ("All", "Q2"): 9,
        ("All", "Q3"): 10,
        ("All", "Q4"): 9,
        ("All", "2025"): 9,
    }
    active = {
        name or "All": [c.value for c in cells] for name, cells in found["active_members"].rows
    }
    assert active == {"P1": [4, 6, 0, 0, 6], "P2": [0, 0, 1, 1, 1], "All": [4, 6, 1, 1, 7]}
    assert visible(found["active_members"]) == {("All", "Q2"): 6, ("All", "2025"): 7}
    new = {name or "All": [c.value for c in cells] for name, cells in found["new_members"].rows}
    assert new == {"P1": [6, 1, 0, 0, 7], "P2": [2, 0, 1, 0, 3], "All": [8, 1, 1, 0, 10]}
    assert visible(found["new_members"]) == {("All", "Q1"): 8, ("All", "2025"): 10}
    sessions = {name or "All": [c.value for c in cells] for name, cells in found["sessions"].rows}
    assert sessions == {"P1": [4, 6, 0, 0, 10], "P2": [0, 0, 1, 0, 1], "All": [4, 6, 1, 0, 11]}
    jobs = {name or "All": [c.value for c in cells] for name, cells in found["jobs"].rows}
    assert jobs == {"P1": [0, 10, 0, 0, 10], "P2": [0, 0, 0, 1, 1], "All": [0, 10, 0, 1, 11]}
    for table in found.values():
        hidden = [[c.suppressed for c in cells] for _, cells in table.rows]
        lines = hidden + [list(column) for column in zip(*hidden, strict=True)]
        assert all(sum(line) != 1 for line in lines), table.metric


def test_the_impact_report_and_its_csv_name_no_one(db, client_for):
    org, people = impact_world()
    owner = client_for(factories.make_admin(org, "owner", name="Olivia Owner"))
    page = owner.get(f"/orgs/{org.slug}/reports/impact?year=2025").get_data(as_text=True)
    response = owner.get(f"/orgs/{org.slug}/reports/impact.csv?year=2025", buffered=True)
    text = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["metric", "program", "Q1", "Q2", "Q3", "Q4", "2025"]
    assert rows[1] == ["Members at the end of the period", "P1"] + ["suppressed"] * 5
    assert rows[3] == ["Members at the end of the period", "All programs", "8", "9", "10", "9", "9"]
    report = page.split("<h1>", 1)[1]
    for output in (text, report):
        assert not UUID.search(output)
        for person in people.values():
            assert person.name not in output and person.email not in output
            assert str(person.id) not in output and person.id.hex not in output
        assert "@" not in output
    audit = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "report.exported")
    ).one()
    assert audit.details == {
        "report": "impact",
        "format": "csv",
        "filters": {"year": 2025, "threshold": 5},
    }


def test_owners_change_the_threshold_and_others_cannot(db, client_for, make_admin):
    org, _people = impact_world()
    owner = client_for(make_admin(org, "owner"))
    url = f"/orgs/{org.slug}/reports/impact/threshold"
    response = owner.post(
        url,
        data={
            "threshold": "3",
            "csrf_token": csrf_token(owner, f"/orgs/{org.slug}/reports/impact"),
        },
    )
    assert response.status_code == 303 and fresh(org).report_threshold == 3
    found = {t.metric: t for t in reports.impact(org, 2025).tables}
    assert visible(found["members"])[("P2", "Q3")] == 3
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "org.report_threshold_changed")
    ).one()
    assert event.details == {"threshold": {"before": 5, "after": 3}}
    for bad in ("2", "101", "x", ""):
        page = owner.post(
            url,
            data={
                "threshold": bad,
                "csrf_token": csrf_token(owner, f"/orgs/{org.slug}/reports/impact"),
            },
        )
        assert page.status_code == 200 and 'aria-invalid="true"' in page.get_data(as_text=True)
    assert fresh(org).report_threshold == 3
    admin = client_for(make_admin(org, "admin"))
    assert (
        admin.post(
            url,
            data={
                "threshold": "9",
                "csrf_token": csrf_token(admin, f"/orgs/{org.slug}/reports/impact"),
            },
        ).status_code
        == 403
    )
    assert "Suppression threshold" not in admin.get(f"/orgs/{org.slug}/reports/impact").get_data(
        as_text=True
    )


def test_a_year_without_data_is_400(db, client_for, make_admin):
    org, _people = impact_world()
    owner = client_for(make_admin(org, "owner"))
    assert owner.get(f"/orgs/{org.slug}/reports/impact?year=1990").status_code == 400
    assert owner.get(f"/orgs/{org.slug}/reports/impact?year=twenty").status_code == 400


def test_relationships_count_where_mentor_or_mentee_belonged_when_they_started(world):
    # A relationship between two people outside the org counts nowhere in it.
    outsider = factories.make_participant(None, name="Out Sider")
    relationship = MentoringRelationship(
        mentor_id=outsider.id,
        mentee_id=world.people["fay"].id,
        status="active",
        started_at=world.at(2),
    )
    db.session.add(relationship)
    db.session.flush()
    rollups.note_relationship(relationship)
    figures = reports.summary(world.org, ALL_PROGRAMS, Period(world.day(0), world.day(13)))
    assert figures.active_relationships == 2


def test_responses_match_the_openapi_document(app, api, world, client):
    from tests.test_api import conform
    from tests.test_api import response_schema

    spec = client.get("/api/v1/openapi.json").get_json()
    checks = [
        ("/reports/summary", "get", api.get("/api/v1/reports/summary")),
        (
            "/reports/summary",
            "get",
            api.get("/api/v1/reports/summary", query_string={"from": "nope"}),
        ),
    ]
    token, secret = tokens.create_token(ACTOR, None, ["events:write"])
    platform = ApiClient(app.test_client(), token, secret)
    batch = [
        world.events[0],
        {**world.events[0], "id": "new-one"},
        {"id": 5, "type": "signed_in"},
        "not an event",
    ]
    checks.append(("/events", "post", platform.post("/api/v1/events", json={"events": batch})))
    checks.append(("/events", "post", platform.post("/api/v1/events", json={"events": 1})))
    for path, method, response in checks:
        schema = response_schema(spec, path, method, response.status_code)
        conform(spec, schema, response.get_json(), f"{method} {path} {response.status_code}")


def test_pages_pin_the_vendored_chart_library_by_its_hash():
    import base64
    import hashlib
    from pathlib import Path

    from console.formatting import CHART_SRI

    vendor = Path(__file__).resolve().parent.parent / "static" / "vendor"
    data = (vendor / "chartjs" / "chart.umd.min.js").read_bytes()
    assert CHART_SRI == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
    assert b"Chart.js v4.6.1" in data[:200]


@pytest.mark.parametrize(
    "path",
    [
        "reports",
        "reports/quiet",
        "reports/activity.csv",
        "reports/activity.xlsx",
        "participants/",
        "participants/export.csv",
        "participants/export.xlsx",
    ],
)
def test_another_orgs_program_is_refused_on_every_report_page(owner, world, path):
    other = str(world.other.programs[0].id)
    response = owner.get(f"/orgs/{world.org.slug}/{path}", query_string={"program": other})
    assert response.status_code == 400
    assert f'value="{other}"' not in response.get_data(as_text=True)
    exported = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "report.exported")
    ).all()
    assert exported == []
