"""The console in headless Chromium: sign in, search, page, open a participant, CSRF on htmx."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.browser
OWNER = "owner@browser.example"


def populate_live_database():
    org = factories.make_org(
        slug="browser", name="Browser Test Org", programs=("Accelerator", "Export")
    )
    factories.make_admin(org, "owner", email=OWNER, name="Olivia Owner")
    for n in range(110):
        factories.make_participant(
            org, name=f"Member {n:03d} Smith", email=f"member{n:03d}@people.example"
        )
    for name in ("María García", "Pedro Garcés", "Lucía Ortega"):
        factories.make_participant(org, name=name)


@pytest.fixture
def signed_in(page: Page, live_server) -> Page:
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.goto(f"{live_server.url}/login")
    page.fill("#email", OWNER)
    page.click("button[type=submit]")
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/orgs/browser/participants/")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def row_names(page: Page) -> list[str]:
    return page.locator("#participants-table td.name-cell a").all_inner_texts()


def test_sign_in_search_and_open_a_participant(signed_in: Page, live_server):
    page = signed_in
    expect(page.locator("h1")).to_have_text("Participants")
    page.fill("#q", "garc")
    expect(page.locator("#participants-table td.name-cell a")).to_have_count(2)
    assert row_names(page) == ["María García", "Pedro Garcés"]
    expect(page).to_have_url(re.compile(r"q=garc"))
    page.click("text=María García")
    expect(page.locator("h1")).to_have_text("María García")
    expect(page.locator("#private-profile")).to_be_visible()
    assert not [e for e in page.errors if "Content Security Policy" in e]  # type: ignore[attr-defined]


def test_filters_swap_only_the_results(signed_in: Page):
    page = signed_in
    page.evaluate("document.querySelector('#q').dataset.marker = 'kept'")
    page.select_option("#sort", "-name")
    expect(page.locator("#participants-table td.name-cell a").first).to_have_text("Pedro Garcés")
    # The form was not re-rendered: only #participants-results was swapped.
    assert page.evaluate("document.querySelector('#q').dataset.marker") == "kept"
    expect(page).to_have_url(re.compile(r"sort=-name"))


def test_page_forward_and_back(signed_in: Page, live_server):
    page = signed_in
    first = row_names(page)
    assert len(first) == 50
    page.click("a[rel=next]")
    expect(page.locator("#participants-table td.name-cell a").first).not_to_have_text(first[0])
    second = row_names(page)
    assert second[0] > first[-1]
    expect(page).to_have_url(re.compile(r"cursor="))
    page.go_back()
    expect(page.locator("#participants-table td.name-cell a").first).to_have_text(first[0])
    page.go_forward()
    expect(page.locator("#participants-table td.name-cell a").first).to_have_text(second[0])
    page.click("a[rel=prev]")
    expect(page.locator("#participants-table td.name-cell a").first).to_have_text(first[0])


def test_csrf_token_travels_with_htmx_requests(signed_in: Page, live_server):
    page = signed_in
    # A bare fetch without the token is refused...
    status = page.evaluate("fetch('/logout', {method: 'POST'}).then(r => r.status)")
    assert status == 400
    # ...while htmx sends the token from <body hx-headers> with every non-GET request.
    status = page.evaluate(
        "new Promise(done => {"
        " document.body.addEventListener('htmx:afterRequest',"
        " e => done(e.detail.xhr.status), {once: true});"
        " htmx.ajax('POST', '/logout', {source: '#main', swap: 'none'}); })"
    )
    assert status == 200
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{live_server.url}/orgs/browser/participants/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_pages_look_right(signed_in: Page, live_server, tmp_path):
    page = signed_in
    page.set_viewport_size({"width": 1366, "height": 900})
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor")
        == "rgb(21, 35, 58)"
    )
    box = page.locator(".filters").bounding_box()
    assert box and box["width"] < 1366
    page.screenshot(path=str(tmp_path / "participants.png"), full_page=True)
