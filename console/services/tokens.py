"""API tokens: created once, shown once, stored as a hash."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from console.extensions import db
from console.models import PLATFORM_SCOPES
from console.models import ApiToken
from console.models import Org
from console.models import Scope
from console.models.base import utcnow
from console.services import audit

PREFIX = "pc_"
# last_used_at moves at most this often, so a busy client costs no write per request.
USE_GRANULARITY = timedelta(minutes=1)


class TokenError(ValueError):
    """A token that cannot be created as asked; the message says why."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    actor: Any,
    org: Org | None,
    scopes: list[str],
    *,
    name: str | None = None,
    expires_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``org`` (or the platform, when None); return it and its secret."""
    if not scopes:
        raise TokenError("Give at least one --scope.")
    known = {scope.value for scope in Scope}
    unknown = sorted(set(scopes) - known)
    if unknown:
        raise TokenError(f"Unknown scope {', '.join(unknown)}; use {', '.join(sorted(known))}.")
    if org is None and not set(scopes) <= PLATFORM_SCOPES:
        raise TokenError(f"A platform token may only have {', '.join(sorted(PLATFORM_SCOPES))}.")
    if org is not None and set(scopes) & PLATFORM_SCOPES:
        raise TokenError(f"{', '.join(sorted(PLATFORM_SCOPES))} is for platform tokens only.")
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise TokenError("--expires-days must be between 1 and 3650.")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        org_id=org.id if org is not None else None,
        name=(name or f"token {utcnow():%Y-%m-%d %H:%M}").strip()[:100],
        prefix=secret[:10],
        token_hash=_digest(secret),
        scopes=sorted(set(scopes)),
        created_by=audit.describe_actor(actor, org).name,
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        actor,
        "token.created",
        org=org,
        target=token,
        details={
            "scopes": token.scopes,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
    )
    return token, secret


def find_token(secret: str) -> ApiToken | None:
    """Return the usable token for a bearer secret, or None."""
    if not secret.startswith(PREFIX):
        return None
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if token is None or not token.usable():
        return None
    return token


def note_use(token: ApiToken) -> bool:
    """Record that ``token`` was just used; return whether that needed a write."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < USE_GRANULARITY:
        return False
    token.last_used_at = now
    db.session.flush()
    return True


def get_token(token_id: str) -> ApiToken | None:
    """Return the token with this id (an org's or the platform's), if any."""
    try:
        return db.session.get(ApiToken, uuid.UUID(str(token_id)))
    except ValueError:
        return None


def list_tokens(org: Org | None) -> list[ApiToken]:
    """Return the org's tokens (the platform's when None), newest first."""
    owner = ApiToken.org_id.is_(None) if org is None else ApiToken.org_id == org.id
    return list(
        db.session.scalars(sa.select(ApiToken).where(owner).order_by(ApiToken.created_at.desc()))
    )


def revoke_token(actor: Any, org: Org | None, token: ApiToken) -> ApiToken:
    """Revoke a token at once."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(actor, "token.revoked", org=org, target=token)
    return token
