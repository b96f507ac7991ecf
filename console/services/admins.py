"""Create console users: platform staff and administrators of orgs."""

from __future__ import annotations

from typing import Any

from console.extensions import db
from console.models import Admin
from console.models import Org
from console.models import OrgRole
from console.permissions import Role
from console.services import audit
from console.services import auth
from console.services.auth import find_admin
from console.services.auth import hash_password
from console.services.auth import password_problem


class AdminError(ValueError):
    """An administrator that cannot be created as asked; the message says why."""


def checked_email(email: str) -> str:
    """Return ``email`` normalised, or raise ``AdminError`` if it is not an address."""
    try:
        return auth.checked_email(email)
    except auth.EmailError as error:
        raise AdminError(str(error)) from None


def checked_password(password: str) -> str:
    """Return ``password`` if it is acceptable as a password."""
    if problem := password_problem(password):
        raise AdminError(problem)
    return password


def create_staff(actor: Any, email: str, name: str | None, password: str | None) -> Admin:
    """Create a platform staff account (or make an existing administrator staff)."""
    email = checked_email(email)
    admin = find_admin(email)
    if admin is not None and admin.is_staff:
        raise AdminError(f"{email} is already staff.")
    if admin is None:
        admin = Admin(email=email, name=(name or email.split("@")[0]).strip()[:200])
        db.session.add(admin)
    admin.is_staff = True
    if password:
        admin.password_hash = hash_password(checked_password(password))
    db.session.flush()
    audit.record(actor, "staff.created", target=admin, details={"email": audit.mask_email(email)})
    return admin


def add_admin(
    actor: Any,
    org: Org,
    email: str,
    role: str,
    name: str | None = None,
    password: str | None = None,
) -> Admin:
    """Give ``email`` a role in ``org``, creating the administrator if needed."""
    email = checked_email(email)
    try:
        role = Role(role)
    except ValueError:
        raise AdminError(f"'{role}' is not a role: use owner, admin, support or analyst.") from None
    admin = find_admin(email)
    if admin is None:
        admin = Admin(email=email, name=(name or email.split("@")[0]).strip()[:200])
        db.session.add(admin)
    elif name:
        admin.name = name.strip()[:200]
    if password:
        admin.password_hash = hash_password(checked_password(password))
    existing = admin.role_in(org)
    if existing is not None:
        if existing.role == role:
            raise AdminError(f"{email} is already {role} of {org.slug}.")
        before = existing.role
        existing.role = role
        db.session.flush()
        audit.record(
            actor,
            "admin.role_changed",
            org=org,
            target=admin,
            details={"role": {"before": before, "after": role.value}},
        )
        return admin
    admin.roles.append(OrgRole(org_id=org.id, role=role, org=org))
    db.session.flush()
    audit.record(
        actor,
        "admin.added",
        org=org,
        target=admin,
        details={"email": audit.mask_email(email), "role": role.value},
    )
    return admin
