"""Domains in headless Chromium: add, check against the local DNS server, preview, claim."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories
from tests.browser import htmx_ready

pytestmark = pytest.mark.browser
OWNER = "owner@dombank.example"


def populate_live_database():
    org = factories.make_org(slug="dombank", name="Domain Bank", programs=("Accelerator",))
    factories.make_admin(org, "owner", email=OWNER, name="Olivia Owner")
    for name in ("Ana Ortega", "Bruno Vidal", "Carla Ruiz"):
        local = name.split()[0].lower()
        factories.make_participant(name=name, email=f"{local}@dombank.example")
    factories.make_participant(
        name="Gus Unconfirmed", email="gus@dombank.example"
    ).email_verified = False


def test_add_check_preview_and_claim(page: Page, live_server, dns_server, tmp_path):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    dns_server.zone.clear()
    live_server.app.config["DNS_NAMESERVERS"] = f"127.0.0.1:{dns_server.port}"
    base = live_server.url

    page.goto(f"{base}/login")
    page.fill("#email", OWNER)
    page.click("button[type=submit]")
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/orgs/dombank/participants/")

    page.click("nav >> text=Domains")
    expect(page.locator("h1")).to_have_text("Domains")
    page.fill("#domain", "DomBank.example")
    page.click("text=Add domain")
    expect(page).to_have_url(f"{base}/orgs/dombank/domains/dombank.example")
    expect(page.locator("#domain-status")).to_have_text("pending")
    name = page.locator("#txt-name").inner_text()
    value = page.locator("#txt-value").inner_text()
    assert name == "_partner-console.dombank.example"
    assert re.fullmatch(r"partner-console-verification=[\w-]{32,}", value)
    page.screenshot(path=str(tmp_path / "domain-pending.png"), full_page=True, caret="initial")

    page.click("#check-now")
    expect(page.locator(".flash")).to_contain_text("NXDOMAIN")
    expect(page.locator("#domain-status")).to_have_text("not found")

    dns_server.zone.txt(name, value)
    page.click("#check-now")
    expect(page.locator(".flash")).to_contain_text("dombank.example is verified")
    expect(page.locator("#domain-status")).to_have_text("verified")
    expect(page.locator("#claimable-count")).to_have_text("3")
    page.screenshot(path=str(tmp_path / "domain-verified.png"), full_page=True, caret="initial")

    page.click("#preview-claims")
    expect(page.locator("#claimable-summary")).to_contain_text("3 accounts can be claimed")
    htmx_ready(page)
    expect(page.locator("#claimable-table")).not_to_contain_text("gus@dombank.example")
    page.fill("#q", "bruno")
    expect(page.locator("#claimable-table tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=bruno"))
    page.fill("#q", "")
    expect(page.locator("#claimable-table tbody tr")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "claimable.png"), full_page=True, caret="initial")
    page.check("input[aria-label='Select Ana Ortega']")
    page.check("input[aria-label='Select Bruno Vidal']")
    page.click("#claim-selected")
    expect(page.locator("#results-summary")).to_contain_text("2 of 2 claimed")
    page.screenshot(path=str(tmp_path / "claimed.png"), full_page=True, caret="initial")

    page.goto(f"{base}/orgs/dombank/participants/?managed=true")
    rows = page.locator("#participants-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Ana Ortega")
    expect(rows.nth(0).locator(".badge-managed")).to_have_text("managed")
    expect(rows.nth(1)).to_contain_text("Bruno Vidal")
    expect(rows.nth(1).locator(".badge-managed")).to_have_text("managed")
    page.goto(f"{base}/orgs/dombank/domains/dombank.example/claims")
    expect(page.locator("#claims-table tbody tr")).to_have_count(2)
    page.screenshot(path=str(tmp_path / "claims.png"), full_page=True, caret="initial")

    # "Release all" asks first; declining changes nothing, accepting releases both.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#release-all")
    expect(page.locator("#claims-table tbody tr")).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#release-all")
    expect(page.locator("#results-summary")).to_contain_text("2 accounts released or dropped")
    page.goto(f"{base}/orgs/dombank/participants/?managed=true")
    expect(page.locator("#participants-table tbody tr")).to_have_count(1)
    expect(page.locator("#participants-table")).to_contain_text("No participant matches")
    assert not [e for e in errors if "Content Security Policy" in e], errors
