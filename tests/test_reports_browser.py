"""The reports in headless Chromium: change the range and program, see figures and charts follow."""

from __future__ import annotations

import re
from datetime import date
from datetime import timedelta

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories
from tests import report_world
from tests.browser import htmx_ready

pytestmark = pytest.mark.browser
OWNER = "owner@reports-browser.example"


def populate_live_database():
    world = report_world.build()
    report_world.ingest(world)
    factories.make_admin(world.org, "owner", email=OWNER, name="Olivia Owner")


@pytest.fixture
def signed_in(page: Page, live_server) -> Page:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/login")
    page.fill("#email", OWNER)
    page.click("button[type=submit]")
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/orgs/exact/participants/")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def figure(page: Page, key: str):
    return page.locator(f'[data-figure="{key}"] .figure-value')


def chart_data(page: Page, name: str) -> list[float]:
    return page.evaluate(
        f"Chart.getChart(document.querySelector('[data-chart-name={name}]')).data.datasets[0].data"
    )


def test_changing_range_and_program_updates_figures_and_charts(signed_in: Page, live_server):
    page = signed_in
    page.click("nav.nav >> text=Reports")
    expect(page.locator("h1")).to_have_text("Reports")
    htmx_ready(page)
    expect(figure(page, "members")).to_have_text("5")
    expect(figure(page, "active_members")).to_have_text("6")
    page.wait_for_function(
        "window.Chart && Chart.getChart(document.querySelector('[data-chart-name=funnel]'))"
    )
    assert chart_data(page, "funnel") == [5, 2, 1, 1, 1]
    page.evaluate("document.querySelector('#report-body').dataset.marker = 'old'")

    page.select_option("#program", label="B")
    expect(figure(page, "members")).to_have_text("2")
    expect(figure(page, "active_members")).to_have_text("3")
    expect(page).to_have_url(re.compile(r"program=[0-9a-f-]{36}"))
    # The region was swapped, and its charts drawn again from the new data.
    assert page.evaluate("document.querySelector('#report-body').dataset.marker") is None
    page.wait_for_function(
        "(c => c && c.data.datasets[0].data[0] === 2)"
        "(Chart.getChart(document.querySelector('[data-chart-name=funnel]')))"
    )
    assert chart_data(page, "funnel") == [2, 1, 0, 0, 0]

    # Editing a date makes the range custom: the last three days, when nothing happened in B.
    last = date.fromisoformat(page.input_value("#to"))
    page.fill("#from", (last - timedelta(days=2)).isoformat())
    expect(page).to_have_url(re.compile(r"preset=custom"))
    expect(page.locator("#preset")).to_have_value("custom")
    expect(figure(page, "sessions")).to_have_text("0")
    expect(figure(page, "active_members")).to_have_text("0")
    page.wait_for_function("Chart.getChart(document.querySelector('[data-chart-name=active]'))")
    assert chart_data(page, "active") == [0] * len(chart_data(page, "active"))

    page.select_option("#preset", "30d")
    expect(figure(page, "active_members")).to_have_text("3")
    page.go_back()
    expect(page).to_have_url(re.compile(r"preset=custom"))
    assert not [e for e in page.errors if "Content Security Policy" in e or "Refused" in e]  # type: ignore[attr-defined]


def test_a_download_shows_progress_until_it_begins(signed_in: Page, live_server):
    page = signed_in
    page.goto(f"{live_server.url}/orgs/exact/reports")
    status = page.locator("#activity-export-status")
    expect(status).to_be_hidden()
    with page.expect_download() as download:
        page.click("text=Activity summary (CSV)")
    assert download.value.suggested_filename.startswith("activity-exact-")
    expect(status).to_have_text("Your download has started.")
    with open(download.value.path(), encoding="utf-8-sig") as handle:
        assert "Ana Alba" in handle.read()


def test_the_member_report_is_a_tab_of_the_participant_page(signed_in: Page, live_server):
    page = signed_in
    page.click("text=Ana Alba")
    page.click("nav.tabs >> text=Activity report")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Activity report")
    expect(page.locator('[data-total="messages"]')).to_have_text("3")
    page.select_option("#preset", "30d")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"preset=30d"))
    expect(page.locator("table.timeline time")).to_have_count(6)
