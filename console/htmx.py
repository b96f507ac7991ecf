"""One URL serves a page or its fragment: helpers for views that speak htmx."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request


def is_partial() -> bool:
    """Return whether htmx asked for a fragment (not a boosted page or a history restore)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def render(page: str, partial: str, /, **context: Any) -> Response:
    """Render the ``partial`` template for htmx fragment requests, the ``page`` otherwise."""
    response = make_response(render_template(partial if is_partial() else page, **context))
    response.vary.add("HX-Request")
    return response


def redirect_to(url: str) -> Response:
    """Navigate to ``url``: ``HX-Redirect`` for fragment requests, a 303 otherwise."""
    if is_partial():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)
