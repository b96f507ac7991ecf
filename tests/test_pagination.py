"""Keyset pages must equal a plain sort of the whole list, in both directions, for every sort."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from werkzeug.datastructures import MultiDict

from console.models.base import utcnow
from console.services import participants as service


@pytest.fixture
def crowd(make_org, make_participant):
    org = make_org()
    rng = random.Random(7)
    now = utcnow()
    names = [
        "Ana",
        "Ana",
        "Bea",
        "Carla",
        "Dario",
        "Élodie",
        "Fran",
        "Gus",
        "Hugo",
        "Íñigo",
        "Ana María",
    ]
    for n in range(23):
        last_active = (
            None if rng.random() < 0.3 else now - timedelta(days=rng.choice([1, 1, 5, 40]))
        )
        make_participant(org, name=f"{rng.choice(names)} {n % 4}", last_active_at=last_active)
    return org


def walk(org, sort, limit):
    filters = service.ListFilters.from_args(MultiDict({"sort": sort}), org)
    pages, cursor = [], None
    while True:
        page = service.list_members(org, filters, cursor, limit)
        pages.append(page)
        if not page.next_cursor:
            return pages
        cursor = page.next_cursor


def ids(page):
    return [row.Participant.id for row in page.rows]


@pytest.mark.parametrize("sort", list(service.SORTS))
@pytest.mark.parametrize("limit", [1, 4, 23, 50])
def test_pages_forward_equal_the_full_sorted_list(crowd, sort, limit):
    full = walk(crowd, sort, 1000)[0]
    pages = walk(crowd, sort, limit)
    assert [pid for page in pages for pid in ids(page)] == ids(full)
    assert len(ids(full)) == 23
    key = service.sort_key(sort)
    values = [getattr(row.Member, key.column.key) for row in full.rows]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=key.descending)
    assert values[len(present) :] == [None] * (len(values) - len(present))  # NULLs last


@pytest.mark.parametrize("sort", list(service.SORTS))
def test_previous_pages_retrace_the_same_pages(crowd, sort):
    filters = service.ListFilters.from_args(MultiDict({"sort": sort}), crowd)
    forward = walk(crowd, sort, 4)
    for earlier, later in zip(forward, forward[1:], strict=False):
        back = service.list_members(crowd, filters, later.prev_cursor, 4)
        assert ids(back) == ids(earlier)
    assert forward[0].prev_cursor is None
