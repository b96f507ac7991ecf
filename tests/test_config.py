"""Settings come from CONSOLE_* variables; production refuses unsafe ones."""

from __future__ import annotations

import pytest

from console import create_app
from console.config import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "DATABASE_URL",
        "CONSOLE_DATABASE_URL",
        "CONSOLE_ENV",
        "CONSOLE_SECRET_KEY",
        "CONSOLE_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSOLE_DATABASE_URL", f"sqlite:///{tmp_path}/c.db")


def test_settings_come_from_prefixed_variables(monkeypatch):
    monkeypatch.setenv("CONSOLE_BASE_URL", "https://console.example.org/")
    monkeypatch.setenv("CONSOLE_MAX_CONTENT_LENGTH", "1024")
    monkeypatch.setenv("CONSOLE_DNS_NAMESERVERS", "127.0.0.1:5353")
    app = create_app()
    assert app.config["BASE_URL"] == "https://console.example.org"
    assert app.config["MAX_CONTENT_LENGTH"] == 1024
    assert app.config["DNS_NAMESERVERS"] == "127.0.0.1:5353"


def test_database_url_alias_and_postgres_scheme(monkeypatch):
    monkeypatch.delenv("CONSOLE_DATABASE_URL")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example/console")
    assert (
        create_app().config["SQLALCHEMY_DATABASE_URI"]
        == "postgresql+psycopg://u@db.example/console"
    )
    monkeypatch.setenv("CONSOLE_DATABASE_URL", "postgresql://u@other.example/console")
    assert (
        create_app().config["SQLALCHEMY_DATABASE_URI"]
        == "postgresql+psycopg://u@other.example/console"
    )


def test_default_database_is_sqlite_in_the_instance_folder(monkeypatch):
    monkeypatch.delenv("CONSOLE_DATABASE_URL")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{app.instance_path}/console.db"


@pytest.mark.parametrize(
    "env,message",
    [
        ({}, "CONSOLE_SECRET_KEY"),
        ({"CONSOLE_SECRET_KEY": "k" * 40}, "https"),
        (
            {"CONSOLE_SECRET_KEY": "k" * 40, "CONSOLE_BASE_URL": "http://console.example.org"},
            "https",
        ),
    ],
)
def test_production_refuses_to_start_unsafely(monkeypatch, env, message):
    monkeypatch.setenv("CONSOLE_ENV", "production")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        create_app()


def test_production_marks_cookies_secure_and_sends_hsts(monkeypatch):
    monkeypatch.setenv("CONSOLE_ENV", "production")
    monkeypatch.setenv("CONSOLE_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("CONSOLE_BASE_URL", "https://console.example.org")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    response = app.test_client().get("/static/css/console.css")
    response.close()
    assert "max-age" in response.headers["Strict-Transport-Security"]


def test_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv("CONSOLE_ENV", "staging")
    with pytest.raises(ConfigError, match="development"):
        create_app()


def test_overrides_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("CONSOLE_BASE_URL", "https://env.example")
    assert (
        create_app({"BASE_URL": "https://override.example"}).config["BASE_URL"]
        == "https://override.example"
    )
