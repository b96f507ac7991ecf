"""Load many rows at once: executemany on SQLite, COPY on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import UTC
from datetime import date
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from console.extensions import db


def _sqlite_value(value: Any) -> Any:
    # The same text forms SQLAlchemy writes for these types on SQLite, so rows
    # loaded here compare and sort exactly like rows written through the ORM.
    convert = _SQLITE_FORMS.get(type(value))
    return convert(value) if convert is not None else value


@lru_cache(maxsize=8192)
def _sqlite_moment(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # "YYYY-MM-DD HH:MM:SS.ffffff" without the "+00:00".
    return value.isoformat(" ", "microseconds")[:26]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# By exact type: a dictionary lookup per value, since loads convert millions of them.
_SQLITE_FORMS: dict[type, Any] = {
    uuid.UUID: lambda value: value.hex,
    datetime: _sqlite_moment,
    date: date.isoformat,
    dict: _json,
    list: _json,
}


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


def execute_rows(sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run ``sql`` once per row, as one executemany, in the session's transaction.

    ``sql`` marks parameters with ``?``; values are converted as ``insert_rows``
    converts them, so the same statement serves SQLite and PostgreSQL.
    """
    connection = db.session.connection()
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if connection.dialect.name == "postgresql":
            cursor.executemany(sql.replace("?", "%s"), [list(row) for row in rows])
        else:
            cursor.executemany(sql, [[_sqlite_value(v) for v in row] for row in rows])
    finally:
        cursor.close()
