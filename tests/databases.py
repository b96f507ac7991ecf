"""Disposable databases for the suite: a SQLite file, or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

PG_SERVER = os.environ.get("CONSOLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def postgres_reachable() -> bool:
    """Return whether the PostgreSQL server the suite uses answers."""
    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def temporary_database(kind: str, folder: Path) -> Iterator[str]:
    """Yield the URL of an empty database of ``kind``, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'console-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"console_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        # A throwaway database needs no wait for the WAL flush on each commit;
        # crash safety is unchanged (only the last commits could be lost).
        connection.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
