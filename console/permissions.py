"""Who may do what: permissions, the roles that grant them, and the view decorator."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any

from flask import abort
from flask import current_app
from flask import g
from flask_login import current_user


class Permission(StrEnum):
    VIEW_PARTICIPANTS = "view_participants"
    VIEW_PRIVATE = "view_private"
    VIEW_REPORTS = "view_reports"
    VIEW_AUDIT = "view_audit"
    RESET_PASSWORDS = "reset_passwords"
    MANAGE_PARTICIPANTS = "manage_participants"
    MANAGE_DOMAINS = "manage_domains"
    MANAGE_SSO = "manage_sso"
    MANAGE_TOKENS = "manage_tokens"
    MANAGE_ADMINS = "manage_admins"
    MANAGE_REPORTS = "manage_reports"
    ERASE_PARTICIPANTS = "erase_participants"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    SUPPORT = "support"
    ANALYST = "analyst"

    def can(self, *permissions: Permission) -> bool:
        """Return whether this role grants every one of ``permissions``."""
        return set(permissions) <= ROLE_PERMISSIONS[self]


_ADMIN = frozenset(
    {
        Permission.VIEW_PARTICIPANTS,
        Permission.VIEW_PRIVATE,
        Permission.VIEW_REPORTS,
        Permission.VIEW_AUDIT,
        Permission.RESET_PASSWORDS,
        Permission.MANAGE_PARTICIPANTS,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: _ADMIN,
    Role.SUPPORT: frozenset(
        {Permission.VIEW_PARTICIPANTS, Permission.VIEW_PRIVATE, Permission.RESET_PASSWORDS}
    ),
    # Analysts read reports and per-member activity, never private fields.
    Role.ANALYST: frozenset({Permission.VIEW_PARTICIPANTS, Permission.VIEW_REPORTS}),
}


def require(*permissions: Permission) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let the view run only for a signed-in administrator of its org with ``permissions``.

    The org comes from the ``org`` URL converter. An org the administrator has no
    role in answers 404, as if it did not exist; a missing permission answers 403.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or not getattr(current_user, "is_admin", False):
                return current_app.login_manager.unauthorized()
            org = kwargs.get("org")
            role = current_user.role_in(org) if org is not None else None
            if role is None:
                abort(404)
            if not role.can(*permissions):
                abort(403)
            g.org = org
            g.role = role
            return view(*args, **kwargs)

        return wrapped

    return decorator


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let the view run only for signed-in platform staff."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated or not getattr(current_user, "is_admin", False):
            return current_app.login_manager.unauthorized()
        if not current_user.is_staff:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def participant_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let the view run only for a signed-in participant (administrators sign in elsewhere)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated or getattr(current_user, "is_admin", True):
            return current_app.login_manager.unauthorized()
        return view(*args, **kwargs)

    return wrapped
