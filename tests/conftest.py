"""Fixtures: one migrated database per run, a rolled-back transaction per test."""

from __future__ import annotations

import contextvars
import email
import email.policy
import os
import re
import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login import FlaskLoginClient
from werkzeug.serving import make_server

from console import create_app
from console.extensions import db as _db
from console.extensions import limiter
from tests import factories
from tests.databases import postgres_reachable
from tests.databases import temporary_database

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-not-for-production",
    "BASE_URL": "http://console.test",
    "LOGIN_RATE_LIMIT": "1000 per minute",
    # Cheap Argon2id for speed; production keeps argon2-cffi's RFC 9106 defaults.
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_COST": 256,
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Run the suite against SQLite (default) or a fresh PostgreSQL database.",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {config.getoption('--database')}"


@pytest.fixture(scope="session")
def database_kind(request: pytest.FixtureRequest) -> str:
    kind = request.config.getoption("--database")
    if kind == "postgresql" and not postgres_reachable():
        pytest.exit("PostgreSQL was asked for but is not reachable at 127.0.0.1:5432", 2)
    return kind


@pytest.fixture(scope="session")
def database_url(database_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with temporary_database(database_kind, tmp_path_factory.mktemp("db")) as url:
        yield url


class IsolatedClient(FlaskLoginClient):
    """A test client whose every request gets its own app context, as in production.

    Flask reuses an app context that is already pushed (the test's own), which
    would share ``g`` (the signed-in user, cached CSRF tokens) and the session
    between requests and hide bugs. Each request here runs in an empty
    ``contextvars`` context instead; it still reaches the test's transaction.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)

    def session_transaction(self, *args: Any, **kwargs: Any) -> Any:
        return _isolated_session_transaction(super().session_transaction, *args, **kwargs)


@contextmanager
def _isolated_session_transaction(
    original: Callable[..., Any], *args: Any, **kwargs: Any
) -> Iterator[Any]:
    context = contextvars.Context()
    manager = context.run(original, *args, **kwargs)
    session = context.run(manager.__enter__)
    try:
        yield session
    except BaseException as error:
        if not context.run(manager.__exit__, type(error), error, error.__traceback__):
            raise
    else:
        context.run(manager.__exit__, None, None, None)


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url})
    app.test_client_class = IsolatedClient
    with app.app_context():
        flask_migrate.upgrade()
        # Every test session joins the test's outer transaction through a SAVEPOINT.
        _db.session.configure(join_transaction_mode="create_savepoint")
    yield app
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    """Run the test inside a transaction that is rolled back afterwards."""
    with app.app_context():
        engines = _db._app_engines[app]
        engine = engines[None]
        connection = engine.connect()
        transaction = connection.begin()
        engines[None] = connection
        _db.session.remove()
        try:
            yield _db
        finally:
            _db.session.remove()
            engines[None] = engine
            transaction.rollback()
            connection.close()
            limiter.reset()


@pytest.fixture
def client(app: Flask, db: Any) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def client_for(app: Flask, db: Any) -> Callable[..., FlaskClient]:
    """Return a test client signed in as the given administrator."""

    def make(user: Any) -> FlaskClient:
        return app.test_client(user=user)

    return make


@pytest.fixture
def runner(app: Flask, db: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def make_org(db: Any) -> Callable[..., Any]:
    return factories.make_org


@pytest.fixture
def make_admin(db: Any) -> Callable[..., Any]:
    return factories.make_admin


@pytest.fixture
def make_participant(db: Any) -> Callable[..., Any]:
    return factories.make_participant


_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_token(client: FlaskClient, url: str = "/login") -> str:
    """Return the CSRF token a page hands out, as a browser would read it."""
    response = client.get(url, follow_redirects=True)
    match = _CSRF.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


def fresh(obj: Any) -> Any:
    """Reload ``obj`` from the database: requests change rows through their own sessions."""
    _db.session.refresh(obj)
    return obj


# -- browser tests ----------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright; never a downloaded browser."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CONSOLE_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is required (CONSOLE_REQUIRE_BROWSER) but missing")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import expect
    from playwright.sync_api import sync_playwright

    # Generous waits: on a loaded two-core machine a page can take seconds.
    expect.set_options(timeout=20_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page for each test."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    context.close()


@dataclass
class LiveServer:
    url: str
    app: Flask


@pytest.fixture(scope="module")
def live_server(
    database_kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """Serve a console on its own database (committed data) on a free port."""
    populate = getattr(request.module, "populate_live_database", None)
    with temporary_database(database_kind, tmp_path_factory.mktemp("live")) as url:
        app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
        with app.app_context():
            flask_migrate.upgrade()
            if populate is not None:
                populate()
                _db.session.commit()
            _db.session.remove()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
        finally:
            server.shutdown()
            thread.join(timeout=5)
            with app.app_context():
                _db.engine.dispose()


# -- mail ----------------------------------------------------------------------


class MailSink:
    """What an in-thread SMTP server received; it answers ``refuse[address]`` to those RCPTs."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def free_port() -> int:
    """Return a TCP port nobody listens on right now (aiosmtpd cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    """A real SMTP server (aiosmtpd) in a thread, for the whole run."""
    from aiosmtpd.controller import Controller

    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@dataclass
class Mailbox:
    sink: MailSink
    url: str

    def deliver(self) -> list[EmailMessage]:
        """Run one delivery round and return the messages the server received from it."""
        from console.services import mail

        before = len(self.sink.messages)
        mail.deliver_due()
        return self.sink.messages[before:]

    def to(self, address: str) -> list[EmailMessage]:
        """Return what ``address`` received, oldest first."""
        return [m for m in self.sink.messages if m["To"] == address]

    def last(self, address: str) -> EmailMessage:
        received = self.to(address)
        assert received, f"no mail to {address}; got {[m['To'] for m in self.sink.messages]}"
        return received[-1]


@pytest.fixture
def mailbox(
    app: Flask, db: Any, smtp_server: tuple[MailSink, int], monkeypatch: pytest.MonkeyPatch
) -> Mailbox:
    """Point the console at the in-thread SMTP server, with an empty inbox."""
    sink, port = smtp_server
    with sink.lock:
        sink.messages.clear()
    sink.refuse.clear()
    url = f"smtp://127.0.0.1:{port}"
    monkeypatch.setitem(app.config, "MAIL_URL", url)
    return Mailbox(sink, url)


def text_of(message: EmailMessage) -> str:
    """Return the plain-text part of a received message."""
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def link_in(message: EmailMessage, path: str) -> str:
    """Return the path of the first link in ``message`` under ``path``, for the test client."""
    base = TEST_CONFIG["BASE_URL"]
    match = re.search(re.escape(base + path) + r"[^\s]*", text_of(message))
    assert match, f"no {base}{path} link in:\n{text_of(message)}"
    return match.group(0).removeprefix(base)


# -- DNS -----------------------------------------------------------------------


class Zone:
    """TXT records for an in-thread DNS server; a name it does not know is NXDOMAIN."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.names: set[str] = set()

    def txt(self, name: str, *values: str) -> None:
        """Publish TXT records at ``name`` (replacing any there)."""
        self.records[name.lower().rstrip(".")] = list(values)

    def exists(self, name: str) -> None:
        """Make ``name`` exist with no TXT record (an answer with no data, not NXDOMAIN)."""
        self.names.add(name.lower().rstrip("."))

    def remove(self, name: str) -> None:
        self.records.pop(name.lower().rstrip("."), None)
        self.names.discard(name.lower().rstrip("."))

    def clear(self) -> None:
        self.records.clear()
        self.names.clear()

    def resolve(self, request: Any, handler: Any) -> Any:
        from dnslib import QTYPE
        from dnslib import RCODE
        from dnslib import RR
        from dnslib import TXT

        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if name in self.records:
            if request.q.qtype == QTYPE.TXT:
                for value in self.records[name]:
                    data = value.encode()
                    # One TXT string holds 255 bytes at most: longer values are split.
                    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
                    reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=0))
        elif name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@dataclass
class DnsServer:
    zone: Zone
    port: int


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    """A real DNS server (dnslib) on a free UDP port of 127.0.0.1, for the whole run."""
    from dnslib.server import DNSLogger
    from dnslib.server import DNSServer

    zone = Zone()
    server = DNSServer(zone, address="127.0.0.1", port=0, logger=DNSLogger(logf=lambda _: None))
    server.start_thread()
    try:
        yield DnsServer(zone, server.server.server_address[1])
    finally:
        server.stop()
        server.server.server_close()


@pytest.fixture
def dns(app: Flask, dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch) -> Zone:
    """Point the console's resolver at the in-thread DNS server, which starts empty."""
    dns_server.zone.clear()
    monkeypatch.setitem(app.config, "DNS_NAMESERVERS", f"127.0.0.1:{dns_server.port}")
    monkeypatch.setitem(app.config, "DNS_TIMEOUT", 3.0)
    return dns_server.zone


@pytest.fixture
def silent_nameserver(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Point the resolver at a UDP port that takes queries and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        monkeypatch.setitem(app.config, "DNS_NAMESERVERS", f"127.0.0.1:{port}")
        monkeypatch.setitem(app.config, "DNS_TIMEOUT", 0.4)
        yield port


# -- identity providers (single sign-on) ----------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Any]:
    """oidc-provider-mock on 127.0.0.1 for the whole run; it requires a nonce, as real IdPs do."""
    import oidc_provider_mock

    from tests.identity_providers import MockProvider
    from tests.identity_providers import serve

    with serve(oidc_provider_mock.app(require_nonce=True)) as url:
        yield MockProvider(url)


@pytest.fixture(scope="session")
def node_oidc_provider() -> Iterator[Any]:
    """panva's oidc-provider (Node) for one client whose callback is the org ``panva``'s."""
    from tests.identity_providers import run_node_provider

    with run_node_provider([f"{TEST_CONFIG['BASE_URL']}/sso/panva/callback"]) as provider:
        yield provider


@pytest.fixture(scope="session")
def forging_provider() -> Iterator[Any]:
    """A provider whose ID tokens a test can make wrong on purpose."""
    from tests.identity_providers import ForgingProvider
    from tests.identity_providers import serve

    provider = ForgingProvider()
    with serve(provider.app) as url:
        provider.issuer = url
        yield provider
