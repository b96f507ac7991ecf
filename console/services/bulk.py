"""Load many rows at once: executemany on SQLite, COPY on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from console.extensions import db


def _sqlite_value(value: Any) -> Any:
    # The same text forms SQLAlchemy writes for these types on SQLite, so rows
    # loaded here compare and sort exactly like rows written through the ORM.
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def insert_rows(table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (values in ``columns`` order) into ``table`` in the session's transaction."""
    connection = db.session.connection()
    raw = connection.connection.dbapi_connection
    assert raw is not None
    count = 0
    if connection.dialect.name == "postgresql":
        names = ", ".join(f'"{c}"' for c in columns)
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row([_copy_value(v) for v in row])
                count += 1
        return count
    placeholders = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({placeholders})'
    cursor = raw.cursor()
    batch: list[list[Any]] = []
    for row in rows:
        batch.append([_sqlite_value(v) for v in row])
        if len(batch) == 20_000:
            cursor.executemany(sql, batch)
            count += len(batch)
            batch.clear()
    if batch:
        cursor.executemany(sql, batch)
        count += len(batch)
    cursor.close()
    return count
