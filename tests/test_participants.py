"""The participant list and detail: search, filters, sort, keyset pages, privacy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import AuditEvent
from console.models.base import utcnow


def names_on(html: str) -> list[str]:
    return re.findall(r'<td class="name-cell">\s*<a href="[^"]+">([^<]+)</a>', html)


@pytest.fixture
def world(make_org, make_admin, make_participant):
    org = make_org(programs=("Accelerator", "Export"))
    other = make_org()
    now = utcnow()
    people = {
        "maria": make_participant(
            org,
            name="María García López",
            email="maria.g@acme.example",
            last_active_at=now - timedelta(days=2),
        ),
        "garcia": make_participant(
            org,
            name="Pedro Garcés",
            email="pg@mail.example",
            role="mentor",
            last_active_at=now - timedelta(days=45),
        ),
        "ana": make_participant(
            org, name="Ana Ortega", email="ana@acme.example", program="Export", managed=True
        ),
        "zoe": make_participant(
            org,
            name="Zoë Zamora",
            email="zz@mail.example",
            role="both",
            status="suspended",
            suspended_reason="No-shows",
            last_active_at=now - timedelta(days=1),
        ),
        "old": make_participant(
            org,
            name="Olga Vieja",
            email="olga@mail.example",
            status="suspended",
            suspended_until=now - timedelta(days=1),
        ),
        "gone": make_participant(
            org, name="Gustavo Ido", email="gus@mail.example", status="deactivated"
        ),
    }
    stranger = make_participant(other, name="María Garcíadeotra", email="maria@other.example")
    return {
        "org": org,
        "other": other,
        "people": people,
        "stranger": stranger,
        "owner": make_admin(org, "owner"),
        "analyst": make_admin(org, "analyst"),
        "support": make_admin(org, "support"),
        "foreign": make_admin(other, "owner"),
    }


def listing(client, org, **params):
    response = client.get(f"/orgs/{org.slug}/participants/", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_lists_only_the_orgs_members_sorted_by_name(client_for, world):
    html = listing(client_for(world["owner"]), world["org"])
    assert names_on(html) == [
        "Ana Ortega",
        "Gustavo Ido",
        "María García López",
        "Olga Vieja",
        "Pedro Garcés",
        "Zoë Zamora",
    ]
    assert "Garcíadeotra" not in html
    assert "6 participants" in html


@pytest.mark.parametrize(
    "q,expected",
    [
        ("garc", ["María García López", "Pedro Garcés"]),
        ("GARCÍA", ["María García López"]),
        ("lop", ["María García López"]),
        ("maria garc", ["María García López"]),
        ("maria.g@", ["María García López"]),
        ("ana@acme", ["Ana Ortega"]),
        ("zoe", ["Zoë Zamora"]),
        ("arcia", []),  # the start of a word, not the middle
        ("acme", []),  # the start of the email, not its domain
        ("nobody", []),
    ],
)
def test_search_matches_the_start_of_the_email_or_of_any_word_of_the_name(
    client_for, world, q, expected
):
    assert names_on(listing(client_for(world["owner"]), world["org"], q=q)) == expected


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"role": "mentor"}, ["Pedro Garcés", "Zoë Zamora"]),
        (
            {"role": "entrepreneur"},
            ["Ana Ortega", "Gustavo Ido", "María García López", "Olga Vieja", "Zoë Zamora"],
        ),
        ({"role": "both"}, ["Zoë Zamora"]),
        ({"status": "suspended"}, ["Zoë Zamora"]),
        ({"status": "active"}, ["Ana Ortega", "María García López", "Olga Vieja", "Pedro Garcés"]),
        ({"status": "deactivated"}, ["Gustavo Ido"]),
        ({"managed": "true"}, ["Ana Ortega"]),
        (
            {"managed": "false"},
            ["Gustavo Ido", "María García López", "Olga Vieja", "Pedro Garcés", "Zoë Zamora"],
        ),
        ({"activity": "active"}, ["María García López", "Zoë Zamora"]),
        ({"activity": "quiet"}, ["Pedro Garcés"]),
        ({"activity": "never"}, ["Ana Ortega", "Gustavo Ido", "Olga Vieja"]),
        ({"activity": "active", "sort": "-last_active"}, ["Zoë Zamora", "María García López"]),
        ({"q": "g", "status": "active"}, ["María García López", "Pedro Garcés"]),
    ],
)
def test_filters(client_for, world, params, expected):
    assert names_on(listing(client_for(world["owner"]), world["org"], **params)) == expected


def test_program_filter_takes_the_program_id(client_for, world):
    org = world["org"]
    export = next(p for p in org.programs if p.name == "Export")
    assert names_on(listing(client_for(world["owner"]), org, program=str(export.id))) == [
        "Ana Ortega"
    ]


def test_another_orgs_program_is_refused(client_for, world):
    foreign_program = world["other"].programs[0]
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/participants/",
        query_string={"program": str(foreign_program.id)},
    )
    assert response.status_code == 400
    assert "no such program" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "params",
    [
        {"status": "frozen"},
        {"role": "boss"},
        {"managed": "maybe"},
        {"activity": "sometimes"},
        {"sort": "email"},
        {"program": "not-a-uuid"},
        {"cursor": "garbage!"},
    ],
)
def test_bad_parameters_get_a_clear_400(client_for, world, params):
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/participants/", query_string=params
    )
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
    assert "data-error-detail" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "sort,expected",
    [
        (
            "name",
            [
                "Ana Ortega",
                "Gustavo Ido",
                "María García López",
                "Olga Vieja",
                "Pedro Garcés",
                "Zoë Zamora",
            ],
        ),
        (
            "-name",
            [
                "Zoë Zamora",
                "Pedro Garcés",
                "Olga Vieja",
                "María García López",
                "Gustavo Ido",
                "Ana Ortega",
            ],
        ),
        ("-last_active", ["Zoë Zamora", "María García López", "Pedro Garcés"]),
        ("last_active", ["Pedro Garcés", "María García López", "Zoë Zamora"]),
    ],
)
def test_sorts_keep_never_active_members_last(client_for, world, sort, expected):
    names = names_on(listing(client_for(world["owner"]), world["org"], sort=sort))
    assert names[: len(expected)] == expected
    assert len(names) == 6


def test_keyset_pages_walk_forward_and_back(
    app, client_for, make_org, make_admin, make_participant
):
    org = make_org()
    admin = make_admin(org)
    for n in range(7):
        make_participant(org, name=f"Person {n:02d}")
    client = client_for(admin)
    app.config["PAGE_SIZE"] = 3
    try:
        first = listing(client, org)
        assert names_on(first) == ["Person 00", "Person 01", "Person 02"]
        assert 'rel="prev"' not in first
        cursor = re.search(r'href="[^"]*cursor=([^"&]+)[^"]*" [^>]*rel="next"', first).group(1)
        second = listing(client, org, cursor=cursor)
        assert names_on(second) == ["Person 03", "Person 04", "Person 05"]
        back = re.search(r'href="[^"]*cursor=([^"&]+)[^"]*" [^>]*rel="prev"', second).group(1)
        assert names_on(listing(client, org, cursor=back)) == [
            "Person 00",
            "Person 01",
            "Person 02",
        ]
        cursor = re.search(r'href="[^"]*cursor=([^"&]+)[^"]*" [^>]*rel="next"', second).group(1)
        last = listing(client, org, cursor=cursor)
        assert names_on(last) == ["Person 06"]
        assert 'rel="next"' not in last
    finally:
        app.config["PAGE_SIZE"] = 50


def test_a_cursor_from_another_sort_is_refused(client_for, world):
    import uuid

    from console.pagination import encode_cursor
    from console.services.participants import sort_key

    cursor = encode_cursor(sort_key("-joined"), utcnow(), uuid.uuid4())
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/participants/", query_string={"cursor": cursor}
    )
    assert response.status_code == 400


def test_count_is_capped_rather_than_counting_everything(
    app, client_for, make_org, make_admin, make_participant
):
    org = make_org()
    admin = make_admin(org)
    for _ in range(4):
        make_participant(org)
    app.config["COUNT_CAP"] = 3
    try:
        assert "More than 3 participants" in listing(client_for(admin), org)
    finally:
        app.config["COUNT_CAP"] = 1000


def test_htmx_request_gets_only_the_results(client_for, world):
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/participants/?q=garc", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="participants-results"')
    assert "HX-Request" in response.headers["Vary"]
    assert names_on(html) == ["María García López", "Pedro Garcés"]


def test_boosted_and_history_restore_requests_get_the_whole_page(client_for, world):
    client = client_for(world["owner"])
    for headers in (
        {"HX-Request": "true", "HX-Boosted": "true"},
        {"HX-Request": "true", "HX-History-Restore-Request": "true"},
    ):
        html = client.get(
            f"/orgs/{world['org'].slug}/participants/?q=garc", headers=headers
        ).get_data(as_text=True)
        assert "<html" in html


def test_the_page_keeps_its_filters_in_the_form(client_for, world):
    html = listing(
        client_for(world["owner"]), world["org"], q="garc", role="mentor", sort="-joined"
    )
    assert 'value="garc"' in html
    assert '<option value="mentor" selected>' in html
    assert '<option value="-joined" selected>' in html


def test_analyst_sees_no_email_in_the_list(client_for, world):
    html = listing(client_for(world["analyst"]), world["org"])
    assert "maria.g@acme.example" not in html
    assert "María García López" in html
    assert "maria.g@acme.example" in listing(client_for(world["owner"]), world["org"])


def test_detail_shows_the_profile_and_writes_an_audit_event(client_for, world):
    maria = world["people"]["maria"]
    maria.profile.phone = "+34 600 000 000"
    maria.profile.city = "Sevilla"
    db.session.flush()
    response = client_for(world["support"]).get(
        f"/orgs/{world['org'].slug}/participants/{maria.id}"
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Sevilla" in html and "+34 600 000 000" in html and "maria.g@acme.example" in html
    event = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == "participant.viewed", AuditEvent.target_id == str(maria.id)
        )
    ).one()
    assert event.org_id == world["org"].id
    assert event.actor_id == str(world["support"].id) and event.actor_role == "support"
    assert event.details == {"private_fields": True}


def test_analyst_sees_no_private_field_on_the_detail(client_for, world):
    maria = world["people"]["maria"]
    maria.profile.phone = "+34 600 000 000"
    maria.profile.birth_year = 1984
    maria.profile.city = "Sevilla"
    db.session.flush()
    html = (
        client_for(world["analyst"])
        .get(f"/orgs/{world['org'].slug}/participants/{maria.id}")
        .get_data(as_text=True)
    )
    assert "Sevilla" in html
    for private in (
        "+34 600 000 000",
        "1984",
        "maria.g@acme.example",
        "Private details",
        "Last sign-in",
    ):
        assert private not in html


def test_another_orgs_participant_is_404_and_not_audited(client_for, world):
    stranger = world["stranger"]
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/participants/{stranger.id}"
    )
    assert response.status_code == 404
    assert "Garcíadeotra" not in response.get_data(as_text=True)
    assert not db.session.scalar(
        sa.select(AuditEvent.id).where(
            AuditEvent.action == "participant.viewed", AuditEvent.target_id == str(stranger.id)
        )
    )


def test_unknown_or_malformed_participant_ids_are_404(client_for, world):
    client = client_for(world["owner"])
    assert (
        client.get(
            f"/orgs/{world['org'].slug}/participants/00000000-0000-4000-8000-000000000000"
        ).status_code
        == 404
    )
    assert client.get(f"/orgs/{world['org'].slug}/participants/not-a-uuid").status_code == 404


def test_counterparts_outside_the_org_are_not_named(client_for, world):
    from console.models import MentoringRelationship

    maria, stranger = world["people"]["maria"], world["stranger"]
    pedro = world["people"]["garcia"]
    db.session.add_all(
        [
            MentoringRelationship(
                mentor_id=stranger.id, mentee_id=maria.id, status="active", requested_at=utcnow()
            ),
            MentoringRelationship(
                mentor_id=pedro.id, mentee_id=maria.id, status="ended", requested_at=utcnow()
            ),
        ]
    )
    db.session.flush()
    html = (
        client_for(world["owner"])
        .get(f"/orgs/{world['org'].slug}/participants/{maria.id}")
        .get_data(as_text=True)
    )
    assert "Garcíadeotra" not in html
    assert "someone outside" in html
    assert "Pedro Garcés" in html


@pytest.mark.parametrize("q", ["garc", "maria garc", "g", "zo", "ortega ana", "maria.g@"])
def test_common_and_rare_words_find_the_same_members(monkeypatch, world, q):
    """Whether the terms index or the sort index drives the search, the answer is the same."""
    from werkzeug.datastructures import MultiDict

    from console.services import participants as service

    org = world["org"]

    def names():
        filters = service.ListFilters.from_args(MultiDict({"q": q}), org)
        page = service.list_members(org, filters, None, 50)
        return [row.Participant.name for row in page.rows], service.search_is_broad(filters)

    rare, broad = names()
    assert not broad
    monkeypatch.setattr(service, "SEARCH_DRIVER_CAP", 0)
    common, broad = names()
    assert broad or "@" in q
    assert common == rare


@pytest.mark.parametrize(
    "sort,value",
    [
        ("-joined", "yesterday"),
        ("-joined", {"t": "2026-01-01T10:00:00"}),
        ("name", 7),
        ("name", None),
    ],
)
def test_forged_cursors_with_values_of_the_wrong_kind_are_400(client_for, world, sort, value):
    import base64
    import json
    import uuid

    payload = {"s": sort, "v": value, "k": str(uuid.uuid4()), "b": False}
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    response = client_for(world["owner"]).get(
        f"/orgs/{world['org'].slug}/participants/", query_string={"sort": sort, "cursor": cursor}
    )
    assert response.status_code == 400
