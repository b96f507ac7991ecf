"""Single sign-on in headless Chromium: set up, test, then sign in through the provider's page.

The console is served by ``live_server`` and the provider (oidc-provider-mock) by its
own thread. The sign-in starts with the email form, a POST: Chromium applies the
page's ``form-action 'self'`` to every redirect that follows a form submission, so
the console must reach the provider by a fresh navigation; this test proves it does.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories
from tests.test_access import verified_domain

pytestmark = pytest.mark.browser
OWNER = "owner@ssobank.example"


def populate_live_database():
    org = factories.make_org(slug="ssobank", name="SSO Bank", programs=("Accelerator",))
    verified_domain(org, "ssobank.example")
    factories.make_admin(org, "owner", email=OWNER, name="Olivia Owner")
    factories.make_participant(org, name="Ana Ortega", email="ana@ssobank.example")


def test_set_up_test_and_sign_in_through_the_identity_provider(
    page: Page, live_server, oidc_provider, tmp_path
):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    base = live_server.url
    live_server.app.config["BASE_URL"] = base  # the redirect URI must come back here
    tester, sam = f"tester-{uuid.uuid4().hex[:8]}", f"sam-{uuid.uuid4().hex[:8]}"
    oidc_provider.set_user(
        tester, email="tess@ssobank.example", email_verified=True, groups=["console-admins"]
    )
    oidc_provider.set_user(
        sam,
        email="sam@ssobank.example",
        email_verified=True,
        groups=["console-admins"],
        name="Sam Lee",
    )

    # The owner signs in with a password (no SSO yet) and sets up the connection.
    page.goto(f"{base}/login")
    page.fill("#email", OWNER)
    page.click("button[type=submit]")
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.click("nav >> text=Single sign-on")
    expect(page.locator("h1")).to_have_text("Single sign-on")
    expect(page.locator("#redirect-uri")).to_have_text(f"{base}/sso/ssobank/callback")
    page.fill("#issuer", oidc_provider.issuer)
    page.fill("#client_id", "ssobank-console")
    page.fill("#client_secret", "ssobank-secret")
    page.fill("#role_mapping", "console-owners = owner\nconsole-admins = admin")
    page.click("#save-connection")
    expect(page.locator(".flash")).to_contain_text("Single sign-on is set up")
    expect(page.locator("#discovered-issuer")).to_have_text(oidc_provider.issuer)
    expect(page.locator("#client_secret")).to_have_value("")
    page.screenshot(path=str(tmp_path / "sso-settings.png"), full_page=True)

    # Test connection: a round trip through the provider's page, nobody signed in.
    page.click("#test-connection")
    expect(page.locator("input[name=sub]")).to_be_visible()
    page.fill("input[name=sub]", tester)
    page.click("button:has-text('Authorize')")
    expect(page.locator("h1")).to_have_text("Connection test")
    expect(page.locator("#test-email")).to_have_text("tess@ssobank.example")
    expect(page.locator("#test-role")).to_have_text("Admin")
    expect(page.locator("#test-ok")).to_contain_text("as a new administrator")
    page.screenshot(path=str(tmp_path / "sso-test.png"), full_page=True)
    expect(page.locator(".who")).to_contain_text("Olivia Owner")
    page.click("text=Sign out")

    # Email first: the domain sends Sam to the provider, and back signed in.
    page.goto(f"{base}/login")
    page.fill("#email", "sam@ssobank.example")
    page.click("button[type=submit]")
    expect(page.locator("input[name=sub]")).to_be_visible()
    assert page.url.startswith(oidc_provider.issuer + "/oauth2/authorize?")
    page.screenshot(path=str(tmp_path / "idp-page.png"), full_page=True)
    page.fill("input[name=sub]", sam)
    page.click("button:has-text('Authorize')")
    expect(page).to_have_url(f"{base}/orgs/ssobank/participants/")
    expect(page.locator(".who")).to_contain_text("Sam Lee")
    expect(page.locator(".who")).to_contain_text("Admin")
    page.screenshot(path=str(tmp_path / "signed-in.png"), full_page=True)
    page.click("text=Sign out")

    # A person whose email the provider has not verified is turned away with the reason.
    eve = f"eve-{uuid.uuid4().hex[:8]}"
    oidc_provider.set_user(eve, email="eve@ssobank.example", email_verified=False)
    page.goto(f"{base}/sso/ssobank/login")
    page.fill("input[name=sub]", eve)
    page.click("button:has-text('Authorize')")
    expect(page.locator("#sso-problem")).to_contain_text("has not verified eve@ssobank.example")
    page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)

    # (The provider's page loads styles from the internet, which this machine cannot reach.)
    assert not [p for p in problems if "Content Security Policy" in p or "form-action" in p]
