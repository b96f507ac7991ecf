"""The console in headless Chromium: sign in, search, page, open a participant, CSRF on htmx."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories
from tests.browser import htmx_ready

pytestmark = pytest.mark.browser
OWNER = "owner@browser.example"


def populate_live_database():
    org = factories.make_org(
        slug="browser", name="Browser Test Org", programs=("Accelerator", "Export")
    )
    factories.make_admin(org, "owner", email=OWNER, name="Olivia Owner")
    for n in range(104):
        factories.make_participant(
            org, name=f"Member {n:03d} Smith", email=f"member{n:03d}@people.example"
        )
    for name in ("María García", "Pedro Garcés", "Lucía Ortega"):
        factories.make_participant(org, name=name)
    factories.make_participant(org, name="Managed Marta", managed=True)
    for n in range(4):
        factories.make_participant(org, name=f"Bulk Person {n}", managed=True)


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
    # htmx is deferred: tests drive htmx behaviour only once it listens.
    htmx_ready(page)
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
    # htmx loads deferred: click only once it listens, so the swap (not a reload) is tested.
    htmx_ready(page)
    page.click("a[rel=next]")
    expect(page.locator("#participants-table td.name-cell a").first).not_to_have_text(first[0])
    second = row_names(page)
    assert second[0] > first[-1]
    expect(page).to_have_url(re.compile(r"cursor="))
    # No page lives in htmx's history cache (private data stays out of
    # localStorage): going back and forward reloads the page the URL names.
    page.go_back()
    expect(page.locator("#participants-table td.name-cell a").first).to_have_text(first[0])
    page.wait_for_load_state("load")
    page.go_forward()
    expect(page.locator("#participants-table td.name-cell a").first).to_have_text(second[0])
    htmx_ready(page)
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


def test_suspend_from_the_participant_page_changes_the_page(signed_in: Page, live_server):
    page = signed_in
    page.fill("#q", "Managed Marta")
    expect(page.locator("#participants-table td.name-cell a")).to_have_count(1)
    page.click("text=Managed Marta")
    expect(page.locator("h1")).to_have_text("Managed Marta")
    htmx_ready(page)
    page.click("[data-action=suspend]")
    page.fill("#reason", "Missed three sessions in a row")
    page.click("#action-form button[type=submit]")
    expect(page.locator(".manage-message")).to_contain_text("Managed Marta is suspended")
    expect(page.locator("#account-status")).to_contain_text("suspended")
    expect(page.locator("#account-status")).to_contain_text("Missed three sessions in a row")
    expect(page.locator("[data-action=unsuspend]")).to_be_visible()
    # The change was made, not just shown: a fresh load says the same.
    page.reload()
    expect(page.locator("#account-status")).to_contain_text("suspended")
    assert not [e for e in page.errors if "Content Security Policy" in e]  # type: ignore[attr-defined]


def test_bulk_require_reset_on_three_selected_participants(signed_in: Page, live_server):
    page = signed_in
    page.fill("#q", "bulk")
    expect(page.locator("#participants-table td.name-cell a")).to_have_count(4)
    boxes = page.locator("#participants-table td.select input[name=ids]")
    for n in range(3):
        boxes.nth(n).check()
    page.click("[data-bulk=require-password-reset]")
    expect(page.locator("h1")).to_contain_text("Require password reset: 3 accounts")
    expect(page.locator("#bulk-will li")).to_have_count(3)
    page.click("form.card button[type=submit]")
    expect(page.locator(".sub[role=status]")).to_have_text("3 of 3 done.")
    expect(page.locator("#bulk-results tbody tr")).to_have_count(3)
    page.goto(f"{live_server.url}/orgs/browser/participants/?q=bulk")
    expect(page.locator(".badge-reset")).to_have_count(3)
