"""Take the README's screenshots of a running demo console.

    make run &                       # or any console with the demo data
    .venv/bin/python docs/screenshots.py [http://127.0.0.1:5000]

Drives Debian's Chromium (/usr/bin/chromium) through Playwright and writes
docs/*.png. The participant it opens is the demo's managed participant that
`demo seed` prints.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import Page
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).parent
OWNER = "owner@demochamber.example"
PASSWORD = "demo-password"


def shot(page: Page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=False, caret="initial")
    print(f"docs/{name}.png")


def main(base: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1366, "height": 860})
        page.goto(f"{base}/login")
        page.fill("#email", OWNER)
        page.click("button[type=submit]")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/orgs/demo/participants/$"))
        shot(page, "participants")

        page.goto(f"{base}/orgs/demo/participants/?q=garc&managed=true")
        page.locator("#participants-table td.name-cell a").first.click()
        expect(page.locator("#participant-manage")).to_be_visible()
        shot(page, "participant")
        member_url = page.url
        page.click("[data-action=suspend]")
        expect(page.locator("#reason")).to_be_visible()
        shot(page, "suspend")

        page.goto(f"{member_url}/report")
        shot(page, "member-report")
        page.goto(f"{base}/orgs/demo/reports?preset=year")
        page.wait_for_function(
            "window.Chart && Chart.getChart(document.querySelector('[data-chart-name=active]'))"
        )
        page.wait_for_timeout(800)  # the charts' entry animation
        shot(page, "reports")
        page.goto(f"{base}/orgs/demo/reports/impact")
        shot(page, "impact")
        page.goto(f"{base}/orgs/demo/audit")
        shot(page, "audit")
        page.goto(f"{base}/orgs/demo/domains/")
        shot(page, "domains")
        page.goto(f"{base}/orgs/demo/sso")
        shot(page, "sso")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000")
