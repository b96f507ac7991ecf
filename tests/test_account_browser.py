"""The participant's side in headless Chromium: sign in and see who manages the account."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.browser
EMAIL = "maria@browser-bank.example"


def populate_live_database():
    org = factories.make_org(slug="browser-bank", name="Browser Bank", programs=("Accelerator",))
    factories.make_participant(org, managed=True, name="María García", email=EMAIL)


def test_participant_signs_in_and_sees_who_manages_the_account(page: Page, live_server):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/account/login")
    page.fill("#email", EMAIL)
    page.fill("#password", "not the password at all")
    page.click("main button[type=submit]")
    expect(page.locator(".notice-error")).to_contain_text("do not match an account")

    page.fill("#password", factories.PASSWORD)
    page.click("main button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/account")
    expect(page.locator("h1")).to_have_text("María García")
    expect(page.locator("#managed-by h2")).to_contain_text("Managed by Browser Bank since")
    expect(page.locator("#managed-by")).to_contain_text("require you to set a new password")

    page.click("text=Who has seen or changed my account >> nth=0")
    expect(page).to_have_url(f"{live_server.url}/account/activity")
    expect(page.locator("#account-trail")).to_contain_text("Signed in")

    page.click("header button:has-text('Sign out')")
    expect(page).to_have_url(f"{live_server.url}/account/login")
    page.goto(f"{live_server.url}/account")
    expect(page).to_have_url(f"{live_server.url}/account/login?next=%2Faccount")
    assert not [e for e in errors if "Content Security Policy" in e], errors
