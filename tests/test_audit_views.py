"""The audit trail pages: filters, keyset pages, privacy, the CSV export, staff's view."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import AuditEvent
from console.models import Member
from console.models import OrgRole
from console.services import audit
from console.services import control
from console.services import tokens
from console.services.audit import Actor
from console.views import audit as audit_views

# February: New York is on EST (UTC-5) all month, so local midnight is 05:00 UTC.
FEB = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
WINDOW = {"from": "2026-02-01", "to": "2026-02-28"}
NOBODY = "5f0c6a9e-8d4b-4c1a-9e2f-0a1b2c3d4e5f"
_EVENT_ID = re.compile(r'<tr id="event-([0-9a-f-]{36})"')


def record_at(monkeypatch, when, actor, action, **kwargs):
    """Append an event as if it happened at ``when``."""
    with monkeypatch.context() as patch:
        patch.setattr(audit, "utcnow", lambda: when)
        return audit.record(actor, action, **kwargs)


@pytest.fixture
def world(make_org, make_admin, make_participant, monkeypatch):
    org = make_org(name="Acme Chamber", time_zone="America/New_York")
    other = make_org(name="Other Org")
    owner = make_admin(org, "owner", name="Olivia Owner")
    admin = make_admin(org, "admin", name="Adrián Admin")
    token, _secret = tokens.create_token(owner, org, ["participants:write"], name="HR sync")
    ana = make_participant(org, name="Ana López", managed=True)
    bea = make_participant(org, name="Bea Ruiz")
    stranger = make_participant(other, name="Sam Stranger")
    t = [FEB + timedelta(hours=n) for n in range(6)]
    events = {
        "suspended": record_at(
            monkeypatch,
            t[0],
            owner,
            "participant.suspended",
            org=org,
            target=ana,
            details={"status": {"before": "active", "after": "suspended"}, "reason": "No-shows"},
        ),
        "viewed": record_at(
            monkeypatch,
            t[1],
            admin,
            "participant.viewed",
            org=org,
            target=bea,
            details={"private_fields": True},
        ),
        "restricted": record_at(
            monkeypatch,
            t[2],
            token,
            "participant.restricted",
            org=org,
            target=ana,
            details={"restricted": {"before": False, "after": True}},
        ),
        "self": record_at(
            monkeypatch,
            t[3],
            ana,
            "participant.release_requested",
            org=org,
            target=ana,
            details={"request": "r-1"},
        ),
        "program": record_at(
            monkeypatch,
            t[4],
            Actor("system", name="nightly job"),
            "program.created",
            org=org,
            details={"name": "Export"},
        ),
        "role": record_at(
            monkeypatch,
            t[5],
            owner,
            "admin.role_changed",
            org=org,
            target=admin,
            details={"role": {"before": "support", "after": "admin"}},
        ),
    }
    foreign = record_at(
        monkeypatch,
        t[2],
        Actor("system"),
        "participant.suspended",
        org=other,
        target=stranger,
        details={"reason": "FOREIGN-SECRET"},
    )
    return {
        "org": org,
        "other": other,
        "owner": owner,
        "admin": admin,
        "support": make_admin(org, "support"),
        "analyst": make_admin(org, "analyst"),
        "foreign_owner": make_admin(other, "owner"),
        "staff": make_admin(staff=True, name="Stella Staff"),
        "token": token,
        "ana": ana,
        "bea": bea,
        "stranger": stranger,
        "events": events,
        "foreign": foreign,
    }


def trail(client, where, **params):
    response = client.get(f"/orgs/{where.slug}/audit", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def ids_on(html: str) -> list[str]:
    return _EVENT_ID.findall(html)


def ids_of(world, *names) -> list[str]:
    return [str(world["events"][name].id) for name in names]


def events_named(action, org=None):
    stmt = sa.select(AuditEvent).where(AuditEvent.action == action)
    if org is not None:
        stmt = stmt.where(AuditEvent.org_id == org.id)
    return list(db.session.scalars(stmt.order_by(AuditEvent.seq)))


# -- the list ---------------------------------------------------------------------------


def test_lists_the_orgs_events_newest_first_in_its_time_zone(client_for, world):
    html = trail(client_for(world["owner"]), world["org"], **WINDOW)
    assert ids_on(html) == ids_of(
        world, "role", "program", "self", "restricted", "viewed", "suspended"
    )
    # 12:00 UTC is 7:00 in New York in February.
    assert "Feb 10, 2026, 7:00:00\u202fAM" in html or "Feb 10, 2026, 7:00:00 AM" in html
    assert "Times in America/New_York" in html


def test_rows_say_who_did_what_to_whom(client_for, world):
    html = trail(client_for(world["owner"]), world["org"], **WINDOW)
    ana_url = f"/orgs/{world['org'].slug}/participants/{world['ana'].id}"
    assert f'suspended <a href="{ana_url}">Ana López</a> — reason: No-shows' in html
    assert "Olivia Owner" in html and "Owner" in html
    assert "API token “HR sync”" in html
    assert "restricted profile editing for" in html
    assert "changed the role of Adrián Admin from Support to Admin" in html
    assert "nightly job" in html and "System" in html
    assert "<details>" in html
    # The before and after of a changed field are in the expandable details.
    assert re.search(r"<th scope=\"row\">Status</th><td>active</td><td>suspended</td>", html)


def test_another_orgs_events_never_appear(client_for, world):
    client = client_for(world["owner"])
    for params in (
        {},
        WINDOW,
        {"action": "participant.suspended"},
        {"target": str(world["stranger"].id)},
        {"actor": "system"},
    ):
        html = trail(client, world["org"], **params)
        assert str(world["foreign"].id) not in ids_on(html)
        assert "FOREIGN-SECRET" not in html and "Sam Stranger" not in html


def test_the_staff_scope_parameter_means_nothing_on_an_orgs_page(client_for, world):
    html = trail(client_for(world["owner"]), world["org"], org=world["other"].slug, **WINDOW)
    assert "FOREIGN-SECRET" not in html
    assert len(ids_on(html)) == 6


@pytest.mark.parametrize(
    "who,status",
    [("owner", 200), ("admin", 200), ("support", 403), ("analyst", 403), ("foreign_owner", 404)],
)
def test_only_owners_and_admins_of_the_org_read_its_trail(client_for, world, who, status):
    client = client_for(world[who])
    for url in ("/orgs/{}/audit", "/orgs/{}/audit/export.csv"):
        response = client.get(url.format(world["org"].slug), buffered=True)
        assert response.status_code == status


def test_a_foreign_or_unknown_org_slug_is_404(client_for, world):
    client = client_for(world["owner"])
    assert client.get(f"/orgs/{world['other'].slug}/audit").status_code == 404
    assert client.get("/orgs/no-such-org/audit").status_code == 404


# -- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"actor": "owner"}, ["role", "suspended"]),
        ({"actor": "admin"}, ["viewed"]),
        ({"actor": "token"}, ["restricted"]),
        ({"actor": "tokens"}, ["restricted"]),
        ({"actor": "participants"}, ["self"]),
        ({"actor": "system"}, ["program"]),
        ({"action": "participant.suspended"}, ["suspended"]),
        ({"action": "participant.*"}, ["self", "restricted", "viewed", "suspended"]),
        ({"action": "org.*"}, ["program"]),
        ({"action": "admin.*"}, ["role"]),
        ({"target": "ana"}, ["self", "restricted", "suspended"]),
        ({"target": "bea"}, ["viewed"]),
        ({"actor": "owner", "action": "participant.*"}, ["suspended"]),
        ({"target": "ana", "action": "participant.restricted"}, ["restricted"]),
        ({"target": "ana", "actor": "participants"}, ["self"]),
    ],
)
def test_each_filter_works_and_they_combine(client_for, world, params, expected):
    values = {
        "owner": f"admin:{world['owner'].id}",
        "admin": f"admin:{world['admin'].id}",
        "token": f"token:{world['token'].id}",
        "ana": str(world["ana"].id),
        "bea": str(world["bea"].id),
    }
    params = {key: values.get(value, value) for key, value in params.items()}
    html = trail(client_for(world["owner"]), world["org"], **WINDOW, **params)
    assert ids_on(html) == ids_of(world, *expected)


def test_dates_are_whole_days_in_the_orgs_time_zone(client_for, world, monkeypatch):
    org, owner = world["org"], world["owner"]
    # Feb 20 in New York runs from 05:00 UTC on the 20th to 05:00 UTC on the 21st.
    moments = {
        "before": datetime(2026, 2, 20, 4, 59, 59, tzinfo=UTC),
        "first": datetime(2026, 2, 20, 5, 0, 0, tzinfo=UTC),
        "last": datetime(2026, 2, 21, 4, 59, 59, 999999, tzinfo=UTC),
        "after": datetime(2026, 2, 21, 5, 0, 0, tzinfo=UTC),
    }
    made = {
        name: record_at(monkeypatch, when, owner, "test.dated", org=org)
        for name, when in moments.items()
    }
    client = client_for(owner)

    def listed(**params):
        return ids_on(trail(client, org, action="test.dated", **params))

    assert listed(**{"from": "2026-02-20", "to": "2026-02-20"}) == [
        str(made["last"].id),
        str(made["first"].id),
    ]
    assert listed(**{"from": "2026-02-21"}) == [str(made["after"].id)]
    assert listed(to="2026-02-19") == [str(made["before"].id)]
    assert len(listed()) == 4


def test_the_form_keeps_the_filters_and_names_the_participant(client_for, world):
    ana = world["ana"]
    html = trail(
        client_for(world["owner"]),
        world["org"],
        actor=f"admin:{world['owner'].id}",
        action="participant.*",
        target=str(ana.id),
        **WINDOW,
    )
    assert f'<option value="admin:{world["owner"].id}" selected>' in html
    assert '<option value="participant.*" selected>' in html
    assert f'value="{ana.id}"' in html
    assert 'value="2026-02-01"' in html and 'value="2026-02-28"' in html
    assert "Events about Ana López." in html


def test_actor_filter_offers_administrators_tokens_and_kinds(client_for, world):
    html = trail(client_for(world["owner"]), world["org"])
    assert f'<option value="admin:{world["admin"].id}" >Adrián Admin (Admin)</option>' in html
    assert f'<option value="token:{world["token"].id}" >HR sync</option>' in html
    for kind in ("tokens", "participants", "system", "staff"):
        assert f'<option value="{kind}" >' in html
    # Sign-ins belong to no org: an org's action filter does not offer them.
    assert "admin.signed_in" not in html


def test_a_former_administrators_actions_stay_findable(client_for, world):
    owner, admin = world["owner"], world["admin"]
    role = db.session.scalar(
        sa.select(OrgRole).where(OrgRole.admin_id == admin.id, OrgRole.org_id == world["org"].id)
    )
    db.session.delete(role)
    db.session.flush()
    html = trail(client_for(owner), world["org"], actor=f"admin:{admin.id}", **WINDOW)
    assert ids_on(html) == ids_of(world, "viewed")
    assert "Adrián Admin (former)" in html


@pytest.mark.parametrize(
    "params,message",
    [
        ({"from": "2026-13-01"}, "from: use a date like"),
        ({"to": "yesterday"}, "to: use a date like"),
        ({"from": "0001-01-01"}, "from: use a date like"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "the first day comes after the last day"),
        ({"actor": "nobody"}, "actor: choose someone from the list"),
        ({"actor": "admin:not-an-id"}, "is not an id the console made"),
        ({"actor": f"admin:{NOBODY}"}, "no such administrator in this organization"),
        ({"actor": f"token:{NOBODY}"}, "no such API token in this organization"),
        ({"action": "DROP TABLE"}, "action: choose an action from the list"),
        ({"action": "nothing.*"}, "there is no area"),
        ({"target": "ana"}, "target: a participant id"),
        ({"cursor": "garbage!"}, "cursor is not valid"),
    ],
)
def test_bad_filters_get_a_clear_400(client_for, world, params, message):
    client = client_for(world["owner"])
    before = len(events_named("audit.viewed"))
    for url in (f"/orgs/{world['org'].slug}/audit", f"/orgs/{world['org'].slug}/audit/export.csv"):
        if "cursor" in params and url.endswith(".csv"):
            continue
        response = client.get(url, query_string=params, buffered=True)
        html = response.get_data(as_text=True)
        assert response.status_code == 400, html[:500]
        assert "data-error-detail" in html and message in html
        assert "Traceback" not in html
    assert len(events_named("audit.viewed")) == before
    assert not events_named("audit.exported")


def test_another_orgs_administrator_or_token_is_unknown_here(client_for, world, make_admin):
    stranger = make_admin(world["other"], "admin")
    foreign_token, _ = tokens.create_token(world["foreign_owner"], world["other"], ["audit:read"])
    for actor in (f"admin:{stranger.id}", f"token:{foreign_token.id}"):
        response = client_for(world["owner"]).get(
            f"/orgs/{world['org'].slug}/audit", query_string={"actor": actor}
        )
        assert response.status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        {"s": "at", "v": "yesterday", "k": NOBODY, "b": False},
        {"s": "at", "v": {"t": "2026-02-10T12:00:00"}, "k": NOBODY, "b": False},
        {"s": "at", "v": None, "k": NOBODY, "b": False},
        {"s": "at", "v": {"t": "2026-02-10T12:00:00+00:00"}, "k": "not-a-uuid", "b": False},
    ],
    ids=["text", "naive-time", "null", "bad-id"],
)
def test_a_forged_cursor_is_refused(client_for, world, payload):
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/audit", query_string={"cursor": cursor}
    )
    assert response.status_code == 400
    assert "cursor is not valid" in response.get_data(as_text=True)


def test_a_cursor_from_another_list_is_refused(client_for, world):
    from console.pagination import encode_cursor
    from console.services.participants import sort_key

    cursor = encode_cursor(sort_key("-joined"), FEB, uuid.uuid4())
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/audit", query_string={"cursor": cursor}
    )
    assert response.status_code == 400


# -- pages -----------------------------------------------------------------------------


def _cursor(html: str, rel: str) -> str | None:
    match = re.search(rf'href="[^"]*cursor=([^"&]+)[^"]*" [^>]*rel="{rel}"', html)
    return match.group(1) if match else None


def test_keyset_pages_walk_forward_and_back_without_overlap_or_gap(
    app, client_for, world, monkeypatch
):
    org, owner = world["org"], world["owner"]
    # Three share one instant: the id breaks the tie, and no page may split them wrongly.
    moments = [FEB + timedelta(days=1, minutes=n) for n in range(5)] + [FEB + timedelta(days=2)] * 3
    made = [record_at(monkeypatch, when, owner, "test.paged", org=org) for when in moments]
    expected = [str(e.id) for e in sorted(made, key=lambda e: (e.at, e.id), reverse=True)]
    client = client_for(owner)
    app.config["PAGE_SIZE"] = 3
    try:
        pages, cursor = [], None
        while True:
            params = {"action": "test.paged"} | ({"cursor": cursor} if cursor else {})
            html = trail(client, org, **params)
            pages.append((ids_on(html), html))
            cursor = _cursor(html, "next")
            if cursor is None:
                break
        assert [len(ids) for ids, _ in pages] == [3, 3, 2]
        assert [i for ids, _ in pages for i in ids] == expected
        assert _cursor(pages[0][1], "prev") is None
        # Back from the last page: the same pages, in reverse.
        back = []
        html = pages[-1][1]
        while cursor := _cursor(html, "prev"):
            html = trail(client, org, action="test.paged", cursor=cursor)
            back.append(ids_on(html))
        assert back == [pages[1][0], pages[0][0]]
    finally:
        app.config["PAGE_SIZE"] = 50


def test_pages_keep_the_filters_in_their_links(app, client_for, world):
    app.config["PAGE_SIZE"] = 2
    try:
        html = trail(client_for(world["owner"]), world["org"], action="participant.*", **WINDOW)
    finally:
        app.config["PAGE_SIZE"] = 50
    next_link = re.search(r'href="([^"]+)" [^>]*rel="next"', html).group(1)
    assert "action=participant.%2A" in next_link or "action=participant.*" in next_link
    assert "from=2026-02-01" in next_link and "to=2026-02-28" in next_link


def test_the_orgs_pages_read_its_index_in_order(app, client_for, world):
    """Every page is a range of the (org_id, at) index read in order: no sort of the trail."""
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("the plan that matters is PostgreSQL's")
    filters = audit.TrailFilters.for_org({}, world["org"])
    first = audit.read_trail(filters, None, 2)
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM audit_events" in statement and "ORDER BY" in statement:
            statements.append((statement, parameters))

    engine = db.session.get_bind().engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        audit.read_trail(filters, first.next_cursor, 2)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = statements
    # A tiny table plans anything; take away the alternatives and see whether the
    # index alone can produce the order (a full Sort would stay, only costlier).
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    db.session.execute(sa.text("SET LOCAL enable_sort = off"))
    connection = db.session.connection()
    plan = "\n".join(
        row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters)
    )
    assert "Index Scan Backward using ix_audit_events_org_at" in plan, plan
    assert "Index Cond: ((org_id = " in plan and "(at <=" in plan, plan
    assert "Presorted Key: at" in plan, plan
    assert not re.search(r"(^|->)\s*Sort  \(cost", plan, re.M), plan


# -- privacy ---------------------------------------------------------------------------


@pytest.fixture
def edited(world):
    """A profile edit whose before and after are sealed with the participant's key."""
    ana = world["ana"]
    ana.profile.phone = "+1 555 0100"
    db.session.flush()
    control.update_profile(world["owner"], world["org"], ana, {"phone": "+1 555 0199"})
    db.session.flush()
    event = events_named("participant.profile_updated", world["org"])[-1]
    return event


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_sealed_values_show_to_owners_and_admins_while_the_key_exists(
    client_for, world, edited, who
):
    html = trail(client_for(world[who]), world["org"], action="participant.profile_updated")
    assert "+1 555 0100" in html and "+1 555 0199" in html
    assert edited.details["sealed"] not in html
    viewed = events_named("audit.viewed", world["org"])[-1]
    assert viewed.details["private_values"] == 1


def test_sealed_values_read_erased_once_the_key_is_shredded(client_for, world, edited):
    audit.shred(world["ana"])
    db.session.flush()
    html = trail(client_for(world["owner"]), world["org"], action="participant.profile_updated")
    assert "+1 555 0100" not in html and "+1 555 0199" not in html
    assert "Erased: the participant" in html
    assert edited.details["sealed"] not in html
    assert "private_values" not in events_named("audit.viewed", world["org"])[-1].details


def test_staff_never_see_sealed_values(client_for, world, edited):
    response = client_for(world["staff"]).get(
        "/staff/audit", query_string={"action": "participant.profile_updated"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "+1 555 0100" not in html and "+1 555 0199" not in html
    assert "visible to the organization's owners and admins only" in html


def test_secrets_never_show(client_for, world):
    audit.record(
        world["owner"], "test.secret", org=world["org"], details={"client_secret": "s3cr3t-value"}
    )
    html = trail(client_for(world["owner"]), world["org"], action="test.secret")
    assert "s3cr3t-value" not in html and "[redacted]" in html


# -- viewing is audited -------------------------------------------------------------------


def test_each_page_request_records_one_audit_viewed_event_with_its_filters(client_for, world):
    client = client_for(world["owner"])
    before = events_named("audit.viewed", world["org"])
    trail(client, world["org"], action="participant.*", **WINDOW)
    trail(client, world["org"], action="participant.*", **WINDOW)
    after = events_named("audit.viewed", world["org"])
    assert len(after) == len(before) + 2
    event = after[-1]
    assert event.actor_id == str(world["owner"].id)
    assert event.details["filters"] == {"action": "participant.*", **WINDOW}
    assert event.details["first_page"] is True
    # A page never lists its own view: it is recorded after the page was read.
    html = trail(client, world["org"], action="audit.viewed")
    assert str(events_named("audit.viewed", world["org"])[-1].id) not in ids_on(html)
    assert str(event.id) in ids_on(html)


# -- htmx --------------------------------------------------------------------------------


def test_htmx_gets_only_the_results_and_vary(client_for, world):
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/audit",
        query_string={"action": "participant.suspended", **WINDOW},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and 'role="search"' not in html
    assert html.lstrip().startswith('<section id="audit-results"')
    assert "HX-Request" in response.headers["Vary"]
    assert ids_on(html) == ids_of(world, "suspended")
    assert len(events_named("audit.viewed", world["org"])) == 1


def test_the_page_works_without_javascript(client_for, world):
    html = trail(client_for(world["owner"]), world["org"])
    form = re.search(
        r'<form class="filters card" role="search" action="([^"]+)" method="get"', html
    )
    assert form and form.group(1) == f"/orgs/{world['org'].slug}/audit"
    assert 'hx-target="#audit-results"' in html and 'hx-push-url="true"' in html
    assert "<noscript" not in html  # nothing hides behind script


# -- navigation ---------------------------------------------------------------------------


def test_nav_and_participant_history_link(client_for, world):
    org, ana = world["org"], world["ana"]
    audit_link = f'href="/orgs/{org.slug}/audit"'
    history = f"/orgs/{org.slug}/audit?target={ana.id}"
    owner_page = client_for(world["owner"]).get(f"/orgs/{org.slug}/participants/{ana.id}")
    assert audit_link in owner_page.get_data(as_text=True)
    assert history in owner_page.get_data(as_text=True)
    support_page = client_for(world["support"]).get(f"/orgs/{org.slug}/participants/{ana.id}")
    assert audit_link not in support_page.get_data(as_text=True)
    assert history not in support_page.get_data(as_text=True)
    html = trail(client_for(world["owner"]), org, target=str(ana.id), **WINDOW)
    assert ids_on(html) == ids_of(world, "self", "restricted", "suspended")


def test_a_target_who_left_the_org_is_named_but_not_linked(client_for, world, make_participant):
    org = world["org"]
    leaver = make_participant(org, name="Leo Leaver")
    audit.record(world["owner"], "participant.exported", org=org, target=leaver)
    db.session.execute(sa.delete(Member).where(Member.participant_id == leaver.id))
    html = trail(client_for(world["owner"]), org, action="participant.exported")
    assert "exported the data of Leo Leaver" in html
    assert f"/participants/{leaver.id}" not in html


# -- CSV export ----------------------------------------------------------------------------


def export(client, where, **params):
    url = f"/orgs/{where.slug}/audit/export.csv"
    response = client.get(url, query_string=params, buffered=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    return response


def rows_of(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_export_streams_every_matching_row_in_keyset_batches(client_for, world, monkeypatch):
    org, owner = world["org"], world["owner"]
    made = [
        record_at(monkeypatch, FEB + timedelta(days=3, minutes=n), owner, "test.bulk", org=org)
        for n in range(7)
    ]
    batches = []
    real = audit.read_trail
    monkeypatch.setattr(audit_views, "EXPORT_BATCH", 3)
    monkeypatch.setattr(audit, "read_trail", lambda *a, **k: batches.append(a[2]) or real(*a, **k))
    response = export(client_for(owner), org, action="test.bulk")
    rows = rows_of(response)
    assert [row["event_id"] for row in rows] == [str(e.id) for e in reversed(made)]
    assert batches == [3, 3, 3]
    assert response.mimetype == "text/csv"
    today = datetime.now(ZoneInfo(org.time_zone)).date().isoformat()
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="audit-{org.slug}-{today}.csv"'
    )


def test_the_export_is_a_generator_read_batch_by_batch(app, world, monkeypatch):
    from console.audit_format import csv_chunks

    for n in range(5):
        record_at(
            monkeypatch,
            FEB + timedelta(days=4, minutes=n),
            world["owner"],
            "test.lazy",
            org=world["org"],
        )
    filters = audit.TrailFilters.for_org({"action": "test.lazy"}, world["org"])
    with app.test_request_context():
        chunks = csv_chunks(audit.walk_trail(filters, 2), filters)
        header = next(chunks)
        assert header.startswith("\ufeffat,event_id")
        assert next(chunks).count("\r\n") == 2
        assert [chunk.count("\r\n") for chunk in chunks] == [2, 1]


def test_export_uses_the_same_filters_as_the_page(client_for, world):
    client = client_for(world["owner"])
    params = {"target": str(world["ana"].id), **WINDOW}
    page_ids = ids_on(trail(client, world["org"], **params))
    rows = rows_of(export(client, world["org"], **params))
    assert [row["event_id"] for row in rows] == page_ids
    row = rows[-1]
    assert row["action"] == "participant.suspended"
    assert row["description"] == "suspended Ana López — reason: No-shows"
    assert row["actor_name"] == "Olivia Owner" and row["actor_role"] == "owner"
    assert row["target_name"] == "Ana López"
    assert row["at"] == "2026-02-10T07:00:00-05:00"
    assert '"reason": "No-shows"' in row["details"]


def test_export_defuses_cells_that_look_like_formulas(client_for, world, monkeypatch):
    org = world["org"]
    for reason in ('=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "fine"):
        record_at(
            monkeypatch,
            FEB + timedelta(days=5),
            Actor("system", name="=cmd|' /C calc'!A0"),
            "test.formula",
            org=org,
            details={"reason": reason},
        )
    rows = rows_of(export(client_for(world["owner"]), org, action="test.formula"))
    assert len(rows) == 5
    for row in rows:
        assert row["actor_name"] == "'=cmd|' /C calc'!A0"
        assert not row["actor_name"].startswith(("=", "+", "-", "@"))
    response = export(client_for(world["owner"]), org, action="test.formula")
    raw = response.get_data().decode("utf-8-sig")
    # The csv module quotes what needs quoting: the JSON details survive a round trip.
    assert '"{""reason"": ""=HYPERLINK(\\""http://evil\\"")""}"' in raw


def test_export_keeps_sealed_values_sealed(client_for, world, edited):
    rows = rows_of(
        export(client_for(world["owner"]), world["org"], action="participant.profile_updated")
    )
    assert rows and '"sealed": "[sealed]"' in rows[-1]["details"]
    assert "+1 555 0199" not in str(rows)
    assert edited.details["sealed"] not in str(rows)


def test_export_is_audited_before_streaming_and_is_a_snapshot(client_for, world):
    client = client_for(world["owner"])
    response = export(client, world["org"], action="audit.exported")
    recorded = events_named("audit.exported", world["org"])
    assert len(recorded) == 1
    assert recorded[0].details["filters"] == {"action": "audit.exported"}
    # The export holds the trail up to its own record, not the record itself.
    assert rows_of(response) == []
    assert [
        row["event_id"] for row in rows_of(export(client, world["org"], action="audit.exported"))
    ] == [str(recorded[0].id)]


# -- staff -----------------------------------------------------------------------------------


def staff_trail(client, **params):
    response = client.get("/staff/audit", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_staff_see_every_org_and_the_platform(client_for, world):
    client = client_for(world["staff"])
    platform = audit.record(Actor("system"), "test.platform", details={"n": 1})
    html = staff_trail(client, **WINDOW)
    assert str(world["foreign"].id) in ids_on(html)
    assert set(ids_of(world, "suspended", "viewed")) <= set(ids_on(html))
    assert "Acme Chamber" in html and "Other Org" in html
    only_platform = staff_trail(client, org="platform", action="test.platform")
    assert ids_on(only_platform) == [str(platform.id)]
    one_org = staff_trail(client, org=world["other"].slug, **WINDOW)
    assert ids_on(one_org) == [str(world["foreign"].id)]


def test_staff_filters_work_and_bad_ones_are_400(client_for, world):
    client = client_for(world["staff"])
    html = staff_trail(client, actor=f"admin:{world['owner'].id}", **WINDOW)
    assert ids_on(html) == ids_of(world, "role", "suspended")
    html = staff_trail(client, target=str(world["stranger"].id))
    assert str(world["foreign"].id) in ids_on(html)
    for params in ({"org": "no-such-org"}, {"from": "soon"}, {"actor": f"admin:{NOBODY}"}):
        response = client.get("/staff/audit", query_string=params)
        assert response.status_code == 400
        assert "data-error-detail" in response.get_data(as_text=True)


def test_staff_viewing_is_audited_where_the_org_sees_it(client_for, world):
    client = client_for(world["staff"])
    staff_trail(client)
    platform_views = [e for e in events_named("audit.viewed") if e.org_id is None]
    assert len(platform_views) == 1 and platform_views[0].actor_type == "staff"
    staff_trail(client, org=world["org"].slug)
    org_views = events_named("audit.viewed", world["org"])
    assert len(org_views) == 1
    assert org_views[0].actor_type == "staff"
    assert org_views[0].details["filters"] == {"org": world["org"].slug}
    html = trail(client_for(world["owner"]), world["org"], action="audit.viewed")
    assert "Stella Staff" in html and "platform staff" in html


def test_staff_pages_get_fragments_for_htmx(client_for, world):
    response = client_for(world["staff"]).get(
        "/staff/audit", query_string=WINDOW, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="audit-results"')
    assert "HX-Request" in response.headers["Vary"]


def test_staff_nav_links_the_trail(client_for, world):
    html = client_for(world["staff"]).get("/staff/").get_data(as_text=True)
    assert 'href="/staff/audit"' in html


def test_staff_scoped_to_an_org_pick_among_its_administrators(client_for, world):
    html = staff_trail(client_for(world["staff"]), org=world["org"].slug)
    assert '<optgroup label="Administrators">' in html
    assert f'<option value="admin:{world["admin"].id}" >Adrián Admin (Admin)</option>' in html
    assert '<optgroup label="Platform staff">' in staff_trail(client_for(world["staff"]))


# -- in a browser ----------------------------------------------------------------------------

BROWSER_OWNER = "owner@trail.example"


def populate_live_database():
    from tests import factories

    org = factories.make_org(slug="trail", name="Trail Org", time_zone="Europe/Madrid")
    owner = factories.make_admin(org, "owner", email=BROWSER_OWNER, name="Olivia Owner")
    ana = factories.make_participant(org, name="Ana López", managed=True)
    for n in range(60):
        audit.record(owner, "participant.viewed", org=org, target=ana, details={"n": n})
    audit.record(
        owner, "participant.suspended", org=org, target=ana, details={"reason": "No-shows"}
    )


@pytest.mark.browser
def test_filters_swap_the_results_and_the_url_follows(page, live_server):
    from playwright.sync_api import expect

    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/login")
    page.fill("#email", BROWSER_OWNER)
    page.click("button[type=submit]")
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.click("nav a:has-text('Audit')")
    expect(page.locator("h1")).to_have_text("Audit trail")
    rows = page.locator("#audit-table > tbody > tr")
    expect(rows).to_have_count(50)
    page.evaluate("document.querySelector('#target').dataset.marker = 'kept'")
    page.select_option("#action", "participant.suspended")
    expect(page).to_have_url(re.compile(r"action=participant.suspended"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("suspended Ana López — reason: No-shows")
    # Only #audit-results was swapped: the form is the same element.
    assert page.evaluate("document.querySelector('#target').dataset.marker") == "kept"
    rows.first.locator("summary").click()
    expect(rows.first.locator("details dl.facts")).to_be_visible()
    page.click("text=Clear")
    page.click("a[rel=next]")
    expect(page).to_have_url(re.compile(r"cursor="))
    with page.expect_download() as download:
        page.click("text=Export CSV")
    assert re.fullmatch(r"audit-trail-\d{4}-\d{2}-\d{2}\.csv", download.value.suggested_filename)
    assert not [e for e in errors if "Content Security Policy" in e]
