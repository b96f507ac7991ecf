"""Real OpenID Connect providers on 127.0.0.1 for the SSO tests, and how a person uses them.

- ``MockProvider``: oidc-provider-mock in a thread; tests choose each subject's claims.
- ``NodeProvider``: panva's oidc-provider (Node), which enforces PKCE and puts email and
  groups in UserInfo only; people sign in through its development forms.
- ``ForgingProvider``: a small provider whose ID tokens can be made wrong on purpose
  (another key, another audience or issuer, expired, another nonce).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask import jsonify
from flask import redirect
from flask import request
from werkzeug.serving import make_server

NODE_PROVIDER = Path(__file__).resolve().parent / "oidc_provider"


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free port of 127.0.0.1; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


class MockProvider:
    """oidc-provider-mock: any client id and secret; its page posts ``sub`` to sign in."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def set_user(self, sub: str, **claims: Any) -> None:
        """Give ``sub`` exactly these claims from now on."""
        response = requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=5)
        assert response.status_code == 204, response.text

    def sign_in(self, authorize_url: str, sub: str) -> str:
        """Sign ``sub`` in at the provider's page; return where it sends the browser back."""
        response = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text[:500]
        return response.headers["Location"]

    def deny(self, authorize_url: str) -> str:
        """Press the page's Deny button; return where it sends the browser back."""
        response = requests.post(
            authorize_url, data={"action": "deny"}, allow_redirects=False, timeout=5
        )
        assert response.status_code == 302, response.text[:500]
        return response.headers["Location"]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.actions.append(dict(attrs).get("action") or "")


class NodeProvider:
    """panva's oidc-provider, run with ``node tests/oidc_provider/server.mjs``."""

    def __init__(self, issuer: str, client_id: str, client_secret: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret

    def set_user(self, sub: str, **claims: Any) -> None:
        response = requests.put(f"{self.issuer}/test/users/{sub}", json=claims, timeout=5)
        assert response.status_code == 204, response.text

    def sign_in(self, authorize_url: str, sub: str, back_to: str) -> str:
        """Log in as ``sub`` and consent through the development forms; return the callback URL."""
        browser = requests.Session()
        url = authorize_url
        for _ in range(12):
            response = browser.get(url, allow_redirects=False, timeout=5)
            while response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                if url.startswith(back_to):
                    return url
                response = browser.get(url, allow_redirects=False, timeout=5)
            assert response.status_code == 200, response.text[:500]
            forms = _Forms()
            forms.feed(response.text)
            action = urljoin(url, forms.actions[0])
            if 'name="login"' in response.text:
                data = {"prompt": "login", "login": sub, "password": "any"}
            else:
                data = {"prompt": "consent"}
            response = browser.post(action, data=data, allow_redirects=False, timeout=5)
            assert response.is_redirect, response.text[:500]
            url = urljoin(action, response.headers["Location"])
            if url.startswith(back_to):
                return url
        raise AssertionError("the provider never sent the browser back")


def node_available() -> str | None:
    """Return why the Node provider cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_PROVIDER / "node_modules" / "oidc-provider").is_dir():
        return "run `npm ci --prefix tests/oidc_provider` (make test does)"
    return None


@contextmanager
def run_node_provider(redirect_uris: list[str]) -> Iterator[NodeProvider]:
    """Start the Node provider for one client; stop it afterwards."""
    reason = node_available()
    if reason is not None:
        if os.environ.get("CONSOLE_REQUIRE_OIDC_PROVIDER"):
            pytest.fail(
                f"the Node OpenID provider is required (CONSOLE_REQUIRE_OIDC_PROVIDER): {reason}"
            )
        pytest.skip(f"the Node OpenID provider cannot run: {reason}")
    client_id, client_secret = "partner-console", secrets.token_urlsafe(24)
    process = subprocess.Popen(
        ["node", str(NODE_PROVIDER / "server.mjs"), client_id, client_secret, *redirect_uris],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        issuer = None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.match(r"listening (\S+)", line)
            if match:
                issuer = match.group(1)
                break
        assert issuer, "the Node provider did not start"
        yield NodeProvider(issuer, client_id, client_secret)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


class ForgingProvider:
    """A provider that signs in anyone at once and can forge its ID tokens on request.

    ``defect`` is None (a correct token) or one of ``other_key``, ``audience``,
    ``issuer``, ``expired``, ``nonce``, ``none_alg``.
    """

    def __init__(self) -> None:
        from joserfc.jwk import RSAKey

        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.impostor = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.issuer = ""
        self.defect: str | None = None
        self.claims: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.app = self._app()

    def _app(self) -> Flask:
        app = Flask("forging_provider")

        @app.get("/.well-known/openid-configuration")
        def configuration():  # type: ignore[no-untyped-def]
            return jsonify(
                issuer=self.issuer,
                authorization_endpoint=f"{self.issuer}/authorize",
                token_endpoint=f"{self.issuer}/token",
                userinfo_endpoint=f"{self.issuer}/userinfo",
                jwks_uri=f"{self.issuer}/jwks",
                response_types_supported=["code"],
                code_challenge_methods_supported=["S256"],
                id_token_signing_alg_values_supported=["RS256"],
                subject_types_supported=["public"],
            )

        @app.get("/jwks")
        def jwks():  # type: ignore[no-untyped-def]
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize():  # type: ignore[no-untyped-def]
            code = secrets.token_urlsafe(16)
            self.codes[code] = dict(request.args)
            back = request.args["redirect_uri"]
            return redirect(f"{back}?{urlencode({'code': code, 'state': request.args['state']})}")

        @app.post("/token")
        def token():  # type: ignore[no-untyped-def]
            asked = self.codes.pop(request.form["code"])
            return jsonify(
                access_token="access-" + secrets.token_urlsafe(8),
                token_type="Bearer",
                expires_in=300,
                id_token=self._id_token(asked),
            )

        @app.get("/userinfo")
        def userinfo():  # type: ignore[no-untyped-def]
            return jsonify(sub=self.claims["sub"])

        return app

    def _id_token(self, asked: dict[str, Any]) -> str:
        from joserfc import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": asked["client_id"],
            "iat": now,
            "exp": now + 300,
            "nonce": asked.get("nonce"),
            **self.claims,
        }
        key = self.key
        if self.defect == "other_key":
            key = self.impostor
        elif self.defect == "audience":
            claims["aud"] = "someone-else"
        elif self.defect == "issuer":
            claims["iss"] = "http://127.0.0.1:1/elsewhere"
        elif self.defect == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.defect == "nonce":
            claims["nonce"] = "replayed"
        elif self.defect == "none_alg":
            header = _b64(json.dumps({"alg": "none", "typ": "JWT"}))
            return f"{header}.{_b64(json.dumps(claims))}."
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    def follow(self, authorize_url: str) -> str:
        """Return where the provider sends the browser back (it asks nothing)."""
        response = requests.get(authorize_url, allow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text[:300]
        return response.headers["Location"]


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    """Return the query of ``url`` as single values."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
