"""Settings: defaults here, then ``CONSOLE_*`` environment variables, then overrides."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "BASE_URL": "http://127.0.0.1:5000",
    "REDIS_URL": None,
    "MAIL_URL": None,
    "MAIL_FROM": "Partner Console <no-reply@partner-console.example>",
    "DNS_NAMESERVERS": None,
    "DNS_TIMEOUT": 5.0,
    "DOMAIN_LAPSE_GRACE_DAYS": 7,
    "DOMAIN_RELEASE_GRACE_DAYS": 30,
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    "PROXY_COUNT": 0,
    "PAGE_SIZE": 50,
    "COUNT_CAP": 1000,
    "RESET_TOKEN_TTL": 3600,
    "LOGIN_RATE_LIMIT": "10 per minute",
    "RETENTION_MAIL_DAYS": 30,
    "RETENTION_LINK_DAYS": 7,
    "RETENTION_REQUEST_DAYS": 365,
    "RETENTION_DEACTIVATED_DAYS": 730,
    "ARGON2_TIME_COST": None,
    "ARGON2_MEMORY_COST": None,
    "BABEL_DEFAULT_LOCALE": "en",
    "BABEL_DEFAULT_TIMEZONE": "UTC",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    "WTF_CSRF_TIME_LIMIT": None,
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
}


class ConfigError(RuntimeError):
    """The settings cannot run the console safely."""


def load_config(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``overrides``, then check it."""
    app.config.from_mapping(DEFAULTS)
    if os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    app.config.from_prefixed_env("CONSOLE")
    if overrides:
        app.config.from_mapping(overrides)
    _finish(app)


def database_uri(url: str | None, instance_path: str) -> str:
    """Return an SQLAlchemy URL, defaulting to SQLite under the instance folder."""
    if not url:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(instance_path) / 'console.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_nameservers(value: Any) -> list[tuple[str, int]]:
    """Return ``[(ip, port), …]`` from ``"ip:port,…"`` (``[v6]:port`` for IPv6; 53 by default)."""
    if not value:
        return []
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    servers = []
    for item in (str(item).strip() for item in items):
        if not item:
            continue
        host, port = item, "53"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            ipaddress.ip_address(host)
            number = int(port)
            if not 0 < number < 65536:
                raise ValueError(port)
        except ValueError:
            raise ConfigError(
                f"CONSOLE_DNS_NAMESERVERS must be IP:port,… (such as 127.0.0.1:53 or [::1]:53), "
                f"not {item!r}."
            ) from None
        servers.append((host, number))
    return servers


def _finish(app: Flask) -> None:
    config = app.config
    production = config["ENV"] == "production"
    if config["ENV"] not in ("development", "production"):
        raise ConfigError("CONSOLE_ENV must be 'development' or 'production'.")
    if production:
        if not config["SECRET_KEY"]:
            raise ConfigError("CONSOLE_SECRET_KEY must be set in production.")
        if urlsplit(str(config["BASE_URL"])).scheme != "https":
            raise ConfigError("CONSOLE_BASE_URL must be an https:// URL in production.")
    elif not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _development_secret(app.instance_path)
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")
    parse_nameservers(config["DNS_NAMESERVERS"])
    config["SQLALCHEMY_DATABASE_URI"] = database_uri(config["DATABASE_URL"], app.instance_path)
    config["SESSION_COOKIE_SECURE"] = production
    config["REMEMBER_COOKIE_SECURE"] = production
    config["PREFERRED_URL_SCHEME"] = "https" if production else "http"
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("connect_args", {"timeout": 30})
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "memory://"
    config["RATELIMIT_HEADERS_ENABLED"] = True


def _development_secret(instance_path: str) -> str:
    # A stable key outside production, so restarts keep sessions and encrypted
    # secrets readable; production must configure its own.
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
