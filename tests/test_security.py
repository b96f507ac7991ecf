"""Headers on every response, templates the CSP can serve, errors that leak nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_every_response_carries_the_security_headers(client):
    for url in ("/login", "/does-not-exist", "/static/css/console.css"):
        response = client.get(url)
        response.close()
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in headers  # development mode


def test_pages_are_not_cached(client):
    assert client.get("/login").headers["Cache-Control"] == "no-store"


def test_request_id_is_echoed_or_made(client):
    assert (
        client.get("/login", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    made = client.get("/login", headers={"X-Request-ID": "<script>"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_session_cookie_is_http_only_and_lax(client):
    from tests.conftest import csrf_token

    csrf_token(client)
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html"))
)
def test_templates_need_no_inline_script_or_style(path):
    source = (TEMPLATES / path).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), "inline <script>"
    assert "<style" not in source, "inline <style>"
    assert not re.search(r"\sstyle=", source), "style attribute"
    assert not re.search(r"\son[a-z]+=", source), "inline event handler"
    assert "hx-on" not in source


@pytest.mark.parametrize(
    "method,url,status",
    [
        ("GET", "/nowhere", 404),
        ("DELETE", "/login", 405),
        ("PUT", "/logout", 405),
    ],
)
def test_error_pages_explain_without_leaking(client, method, url, status):
    response = client.open(url, method=method)
    html = response.get_data(as_text=True)
    assert response.status_code == status
    assert (
        "data-error-detail" in html and "Traceback" not in html and "werkzeug" not in html.lower()
    )


def test_oversized_bodies_get_413(client, app):
    response = client.post("/login", data={"email": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)})
    assert response.status_code == 413
    assert "larger than this console accepts" in response.get_data(as_text=True)


def test_unexpected_errors_are_500_pages_without_details(client, app, monkeypatch):
    from console.views import auth

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(auth, "render_template", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        response = client.get("/login")
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in html and "Traceback" not in html
    assert "Reference:" in html


def test_htmx_errors_come_back_as_a_fragment(client):
    response = client.get("/nowhere", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<html" not in html and "data-error-detail" in html
