"""HTTP glue: request ids, security headers, and error responses that leak nothing."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask
from flask import Response
from flask import g
from flask import jsonify
from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from console.extensions import db
from console.htmx import is_partial
from console.services import tokens

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

MESSAGES = {
    400: (
        _l("Bad request"),
        _l("The request could not be understood. Check what you entered and try again."),
    ),
    401: (_l("Sign-in required"), _l("Sign in to continue.")),
    403: (_l("Not allowed"), _l("Your role in this organization does not allow this.")),
    404: (_l("Not found"), _l("There is nothing here, or you do not have access to it.")),
    405: (_l("Method not allowed"), _l("This address does not accept that kind of request.")),
    409: (_l("Conflict"), _l("This conflicts with the current state. Reload and try again.")),
    413: (_l("Too large"), _l("The request is larger than this console accepts.")),
    422: (_l("Invalid"), _l("Some of what was sent is not valid.")),
    429: (_l("Too many requests"), _l("Too many attempts. Wait a minute and try again.")),
    500: (
        _l("Something went wrong"),
        _l("The error was logged. Try again; if it keeps happening, tell us."),
    ),
}


def register_request_id(app: Flask) -> None:
    """Give every request an id (the caller's ``X-Request-ID`` when well formed)."""

    @app.before_request
    def assign_request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response


def register_security_headers(app: Flask) -> None:
    """Send the same strict headers with every response."""
    production = app.config["ENV"] == "production"

    @app.after_request
    def add_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
        if production:
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if request.endpoint != "static":
            # Pages carry private data: keep them out of shared and back-forward caches.
            headers.setdefault("Cache-Control", "no-store")
        return response


def wants_scim_error() -> bool:
    """Return whether this request is to SCIM, which answers its own error messages."""
    return request.path.startswith("/scim/")


def scim_error(status: int, detail: str | None = None, scim_type: str | None = None) -> Response:
    """Return a SCIM error message (RFC 7644 §3.12): ``status`` as a string."""
    title = str(MESSAGES[status][0]) if status in MESSAGES else str(status)
    body: dict[str, object] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": detail or title,
    }
    if scim_type:
        body["scimType"] = scim_type
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/scim+json"
    return response


def wants_problem_json() -> bool:
    """Return whether this request is to the machine API, which answers RFC 9457 problems."""
    return request.path.startswith(("/api/", "/scim/"))


def problem(status: int, detail: str | None = None, **extra: object) -> Response:
    """Return an ``application/problem+json`` response."""
    title = str(MESSAGES[status][0]) if status in MESSAGES else str(status)
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer errors with a page, a fragment or a problem document; never a traceback."""

    @app.errorhandler(HTTPException)
    def handle_http(error: HTTPException) -> Response:
        status = error.code or 500
        if isinstance(error, CSRFError):
            detail = _(
                "This form expired or was sent from another site. Reload the page and try again."
            )
        else:
            detail = _explicit_description(error)
        if wants_scim_error():
            response = scim_error(status, detail)
        elif wants_problem_json():
            response = problem(status, detail)
        else:
            response = _error_page(status, detail)
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        retry = getattr(error, "retry_after", None)
        if status == 429 and retry:
            response.headers["Retry-After"] = str(retry)
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        db.session.rollback()
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        if wants_scim_error():
            return scim_error(500)
        if wants_problem_json():
            return problem(500)
        return _error_page(500, None)


def _explicit_description(error: HTTPException) -> str | None:
    # Werkzeug's stock descriptions are generic English; only keep ones a view set.
    default = type(error).description
    return error.description if error.description and error.description != default else None


def _error_page(status: int, detail: str | None) -> Response:
    title, default_detail = MESSAGES.get(status, MESSAGES[500 if status >= 500 else 400])
    template = "_error.html" if is_partial() else "error.html"
    html = render_template(
        template,
        status=status,
        title=str(title),
        detail=detail or str(default_detail),
        request_id=g.get("request_id"),
    )
    response = Response(html, status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


# -- JSON request bodies (API and SCIM) --------------------------------------------------


class BadBody(ValueError):
    """A request body that is not a JSON object (``syntax``) or holds text that cannot be stored."""

    def __init__(self, message: str, *, syntax: bool) -> None:
        super().__init__(message)
        self.syntax = syntax


def json_object(*, empty_is_object: bool = False) -> dict[str, Any]:
    """Return the request's body read as a JSON object, or raise ``BadBody`` saying why not.

    NaN and Infinity are not JSON; NUL and unpaired surrogates cannot be stored
    in PostgreSQL text; a body over MAX_CONTENT_LENGTH is a 413 from Werkzeug.
    """
    raw = request.get_data(cache=False)
    if empty_is_object and not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadBody("The body is not valid JSON.", syntax=True) from None
    if not isinstance(value, dict):
        raise BadBody("The body must be a JSON object.", syntax=True)
    if not _storable(value):
        raise BadBody("Text may not contain NUL or unpaired surrogates.", syntax=False)
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _storable(value: Any) -> bool:
    # Iterative: a deeply nested body must not exhaust the stack.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return False
            try:
                item.encode()
            except UnicodeEncodeError:
                return False
    return True


# -- bearer tokens (API and SCIM) ----------------------------------------------------------


def require_bearer(
    scope: str,
    *,
    respond: Callable[[int, str], Response],
    realm: str,
    platform: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let the view run only with a usable bearer token of an org that has ``scope``.

    Only the ``Authorization`` header counts: a browser's session cookie never
    authenticates a call. No usable token (missing, unknown, expired, revoked)
    answers 401 with ``WWW-Authenticate``; a missing scope answers 403; both in
    the caller's error format (``respond``). The view finds the token (its
    actor) in ``g.token`` and the org in ``g.org``. With ``platform``, only a
    platform token (of no org) will do.
    """

    def challenge(status: int, detail: str, error: str | None = None) -> Response:
        response = respond(status, detail)
        response.headers["WWW-Authenticate"] = f'Bearer realm="{realm}"' + (
            f', error="{error}"' if error else ""
        )
        return response

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return challenge(401, "Send an API token: Authorization: Bearer pc_…")
            token = tokens.find_token(secret.strip())
            if token is None:
                return challenge(401, "This token is unknown, expired or revoked.", "invalid_token")
            if tokens.note_use(token):
                db.session.commit()
            if (token.org is None) != platform or not token.allows(scope):
                return challenge(
                    403, f"This token does not have the scope {scope}.", "insufficient_scope"
                )
            g.token = token
            g.org = token.org
            return view(*args, **kwargs)

        return wrapped

    return decorator
