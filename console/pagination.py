"""Keyset (cursor) pagination over one sort key plus a unique tiebreaker.

Never OFFSET: every page is an index range scan from where the last one ended.
A nullable sort key keeps its NULLs last in both directions, read as a second
segment ordered by the tiebreaker alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from console.extensions import db
from console.models.base import UTCDateTime


class CursorError(ValueError):
    """A cursor that this console did not make, or made for another sort."""


@dataclass(frozen=True)
class SortKey:
    name: str
    column: sa.ColumnElement[Any]
    tiebreak: sa.ColumnElement[Any]
    descending: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_cursor: str | None
    prev_cursor: str | None


def encode_cursor(sort: SortKey, value: Any, tiebreak: Any, backward: bool = False) -> str:
    """Return an opaque cursor that points just past ``(value, tiebreak)``."""
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    payload = {"s": sort.name, "v": value, "k": str(tiebreak), "b": backward}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: SortKey, cursor: str) -> tuple[Any, uuid.UUID, bool]:
    """Return ``(value, tiebreak, backward)`` from a cursor made by ``encode_cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if payload["s"] != sort.name:
            raise CursorError("This cursor belongs to another sort order.")
        value = payload["v"]
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
        # A forged cursor must not reach the database with a value of the wrong kind.
        if value is None:
            valid = sort.nullable
        elif isinstance(sort.column.type, UTCDateTime):
            valid = isinstance(value, datetime) and value.tzinfo is not None
        else:
            valid = isinstance(value, str)
        if not valid:
            raise CursorError("The cursor is not valid; start again from the first page.")
        return value, uuid.UUID(payload["k"]), bool(payload["b"])
    except CursorError:
        raise
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CursorError("The cursor is not valid; start again from the first page.") from None


def paginate(
    stmt: sa.Select[Any],
    sort: SortKey,
    cursor: str | None,
    limit: int,
    key_of: Callable[[Any], tuple[Any, Any]],
) -> Page:
    """Run ``stmt`` for one page of ``limit`` rows after (or before) ``cursor``.

    ``key_of(row)`` returns the row's ``(sort value, tiebreak)``.
    """
    value, tiebreak, backward = (None, None, False)
    if cursor:
        value, tiebreak, backward = decode_cursor(sort, cursor)
    segments = [False, True] if sort.nullable else [False]
    start = 0
    if cursor and sort.nullable and value is None:
        start = 1
    order = list(range(start, len(segments))) if not backward else list(range(start, -1, -1))

    rows: list[Any] = []
    for position, null_segment in enumerate(segments[i] for i in order):
        want = limit + 1 - len(rows)
        if want <= 0:
            break
        after = (value, tiebreak) if (cursor and position == 0) else None
        rows.extend(_segment(stmt, sort, null_segment, after, backward, want))
    has_more = len(rows) > limit
    rows = rows[:limit]
    if backward:
        rows.reverse()
    if not rows:
        return Page([], None, None)
    first, last = key_of(rows[0]), key_of(rows[-1])
    more_after = has_more if not backward else True
    more_before = has_more if backward else bool(cursor)
    return Page(
        rows,
        encode_cursor(sort, *last) if more_after else None,
        encode_cursor(sort, *first, backward=True) if more_before else None,
    )


def _segment(
    stmt: sa.Select[Any],
    sort: SortKey,
    null_segment: bool,
    after: tuple[Any, Any] | None,
    backward: bool,
    limit: int,
) -> Sequence[Any]:
    descending = sort.descending != backward
    if null_segment:
        stmt = stmt.where(sort.column.is_(None))
        keys: list[sa.ColumnElement[Any]] = [sort.tiebreak]
        bound: list[Any] = [after[1]] if after else []
    else:
        if sort.nullable:
            stmt = stmt.where(sort.column.is_not(None))
        keys = [sort.column, sort.tiebreak]
        bound = list(after) if after else []
    if bound:
        typed = [sa.bindparam(None, v, type_=k.type) for k, v in zip(keys, bound, strict=True)]
        left = sa.tuple_(*keys) if len(keys) > 1 else keys[0]
        right = sa.tuple_(*typed) if len(typed) > 1 else typed[0]
        stmt = stmt.where(left < right if descending else left > right)
    stmt = stmt.order_by(*(key.desc() if descending else key.asc() for key in keys))
    return db.session.execute(stmt.limit(limit)).all()
