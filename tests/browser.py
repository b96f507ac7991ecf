"""What the browser tests share."""

from __future__ import annotations

from playwright.sync_api import Page


def htmx_ready(page: Page) -> None:
    """Wait until htmx listens on the page just loaded.

    htmx loads deferred and processes the page on DOMContentLoaded, so a test
    that types or clicks right after a click-started navigation can race it:
    the input event fires before htmx has bound its triggers and nothing is
    requested. The load event comes after every DOMContentLoaded handler.
    """
    page.wait_for_load_state("load")
    page.wait_for_function("window.htmx !== undefined")
