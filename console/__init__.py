"""The Partner Console: where partner organizations administer their participants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask import g
from flask import has_request_context
from flask import request
from jinja2 import StrictUndefined
from werkzeug.middleware.proxy_fix import ProxyFix

from console import cli
from console import formatting
from console import http
from console.config import load_config
from console.extensions import babel
from console.extensions import csrf
from console.extensions import db
from console.extensions import htmx
from console.extensions import limiter
from console.extensions import login_manager
from console.extensions import migrate
from console.services.auth import load_user
from console.tenancy import OrgConverter
from console.tenancy import UUIDConverter
from console.views import account
from console.views import api
from console.views import audit
from console.views import auth
from console.views import control
from console.views import domains
from console.views import home
from console.views import orgs
from console.views import participants
from console.views import reports
from console.views import requests
from console.views import scim
from console.views import sso
from console.views import staff


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the console: settings, extensions, blueprints, errors, commands, templates."""
    app = Flask(
        __name__,
        template_folder="../templates",
        static_folder="../static",
        instance_relative_config=True,
    )
    load_config(app, overrides)
    register_extensions(app)
    register_blueprints(app)
    http.register_request_id(app)
    http.register_security_headers(app)
    http.register_error_handlers(app)
    cli.register(app)
    register_templates(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind every extension instance to the app."""
    if app.config["PROXY_COUNT"]:
        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]
    app.url_map.converters["org"] = OrgConverter
    app.url_map.converters["uuid"] = UUIDConverter
    db.init_app(app)
    with app.app_context():
        _tune_engine(db.engine)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.blueprint_login_views = {"account": "account.login"}
    login_manager.login_message = None
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)
    babel.init_app(app, locale_selector=_locale, timezone_selector=_timezone)
    htmx.init_app(app)
    limiter.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Mount every area of the console."""
    for module in (
        home,
        auth,
        orgs,
        participants,
        control,
        requests,
        audit,
        domains,
        staff,
        api,
        account,
        sso,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(scim.bp)
    app.register_blueprint(reports.bp)
    # The API and SCIM authenticate by bearer header only, never by cookie: no CSRF to forge.
    csrf.exempt(api.bp)
    csrf.exempt(scim.bp)


def register_templates(app: Flask) -> None:
    """Make templates strict and give them the helpers every page uses."""
    app.jinja_env.undefined = StrictUndefined
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.jinja_env.globals.update(formatting.template_globals())
    app.jinja_env.filters.update(formatting.template_filters())


def _locale() -> str:
    # Mail is also rendered outside requests (commands, delivery jobs).
    if not has_request_context():
        return "en"
    return request.accept_languages.best_match(["en"]) or "en"


def _timezone() -> str:
    org = g.get("org")
    return org.time_zone if org is not None else "UTC"


def _tune_engine(engine: sa.Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin,
        # so SAVEPOINTs work (SQLAlchemy's documented pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        # Ingest dirties thousands of pages per batch: a larger cache keeps the hot
        # index pages, and checkpointing every 64 MiB of WAL (not every 4 MiB)
        # pays the database file's fsync a few times less often.
        cursor.execute("PRAGMA cache_size = -32768")
        cursor.execute("PRAGMA wal_autocheckpoint = 16384")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")
