"""Which org's data a request may reach: the org URL converter and org-scoped loaders."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import abort
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError

from console.extensions import db
from console.models import Member
from console.models import Org
from console.models import Participant

SLUG_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


class OrgConverter(BaseConverter):
    """``<org:org>``: the org with that slug, or None so ``require`` can answer 404."""

    regex = SLUG_PATTERN

    def to_python(self, value: str) -> Org | None:
        return db.session.scalar(sa.select(Org).where(Org.slug == value))

    def to_url(self, value: Org | str) -> str:
        return value.slug if isinstance(value, Org) else str(value)


class UUIDConverter(BaseConverter):
    """``<uuid:id>`` that turns a malformed id into a 404 rather than a routing miss."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ValidationError() from None

    def to_url(self, value: Any) -> str:
        return str(value)


def members_of(org: Org, *, accounts: bool = True) -> sa.Select[Any]:
    """Return a select of the org's current members, with their accounts unless told not to."""
    if not accounts:
        return sa.select(Member).where(Member.org_id == org.id)
    return (
        sa.select(Member, Participant)
        .join(Participant, Participant.id == Member.participant_id)
        .where(Member.org_id == org.id)
    )


def get_member_or_404(org: Org, participant_id: uuid.UUID) -> tuple[Member, Participant]:
    """Load a participant through the org's membership; any other id answers 404."""
    row = db.session.execute(
        members_of(org).where(Member.participant_id == participant_id)
    ).one_or_none()
    if row is None:
        abort(404)
    return row.Member, row.Participant
