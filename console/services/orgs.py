"""Create partner orgs and their programs."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import available_timezones

import sqlalchemy as sa

from console.extensions import db
from console.models import Membership
from console.models import Org
from console.models import Participant
from console.models import Program
from console.services import audit
from console.services import control
from console.services import mail

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"new", "admin", "api", "static", "staff", "login"})


class OrgError(ValueError):
    """An org or program that cannot be created as asked; the message says why."""


def create_org(
    actor: Any, slug: str, name: str, programs: list[str] | None = None, time_zone: str = "UTC"
) -> Org:
    """Create an org with its programs."""
    slug = slug.strip().lower()
    name = name.strip()
    if not SLUG.match(slug) or slug in RESERVED_SLUGS:
        raise OrgError(
            f"'{slug}' is not a usable slug: use 1-63 lower-case letters, digits and hyphens."
        )
    if not name or len(name) > 200:
        raise OrgError("The name must have 1 to 200 characters.")
    if time_zone not in available_timezones():
        raise OrgError(f"'{time_zone}' is not a known time zone (use e.g. Europe/Madrid).")
    if db.session.scalar(sa.select(Org.id).where(Org.slug == slug)):
        raise OrgError(f"An org with the slug '{slug}' already exists.")
    org = Org(slug=slug, name=name, time_zone=time_zone)
    db.session.add(org)
    db.session.flush()
    audit.record(actor, "org.created", org=org, target=org, details={"slug": slug, "name": name})
    for program in programs or []:
        add_program(actor, org, program)
    return org


def add_program(actor: Any, org: Org, name: str) -> Program:
    """Add a program (cohort) to an org."""
    name = name.strip()
    if not name or len(name) > 200:
        raise OrgError("A program name must have 1 to 200 characters.")
    if db.session.scalar(
        sa.select(Program.id).where(Program.org_id == org.id, Program.name == name)
    ):
        raise OrgError(f"The program '{name}' already exists in {org.name}.")
    program = Program(org_id=org.id, name=name)
    db.session.add(program)
    db.session.flush()
    audit.record(actor, "program.created", org=org, target=program, details={"name": name})
    return program


def find_org(slug: str) -> Org | None:
    """Return the org with ``slug``, if any."""
    return db.session.scalar(sa.select(Org).where(Org.slug == slug.strip().lower()))


def find_program(org: Org, name_or_id: str) -> Program | None:
    """Return the org's program named (or with the id) ``name_or_id``."""
    return next((p for p in org.programs if p.name == name_or_id or str(p.id) == name_or_id), None)


def rename_program(actor: Any, org: Org, program: Program, name: str) -> Program:
    """Give a program a new name, unique in its org."""
    name = name.strip()
    if not name or len(name) > 200:
        raise OrgError("A program name must have 1 to 200 characters.")
    if name == program.name:
        return program
    if db.session.scalar(
        sa.select(Program.id).where(
            Program.org_id == org.id, Program.name == name, Program.id != program.id
        )
    ):
        raise OrgError(f"The program '{name}' already exists in {org.name}.")
    before, program.name = program.name, name
    db.session.flush()
    audit.record(
        actor,
        "program.renamed",
        org=org,
        target=program,
        details={"name": {"before": before, "after": name}},
    )
    return program


def delete_program(actor: Any, org: Org, program: Program) -> None:
    """Remove a program: each current member is told they left it, then it is gone.

    The program's memberships go with it (the database cascades them); a
    participant left in no program of an org that does not manage them stops
    being its member.
    """
    leaving = db.session.scalars(
        sa.select(Participant)
        .join(Membership, Membership.participant_id == Participant.id)
        .where(Membership.program_id == program.id, Membership.left_at.is_(None))
        .distinct()
    ).all()
    for participant in leaving:
        if participant.email:
            mail.queue(
                "removed_from_program",
                participant.email,
                org=org,
                participant=participant,
                program=program,
            )
        audit.record(
            actor,
            "participant.removed_from_program",
            org=org,
            target=participant,
            details={"program": str(program.id), "program_name": program.name},
        )
    audit.record(
        actor,
        "program.deleted",
        org=org,
        target=program,
        details={"name": program.name, "members": len(leaving)},
    )
    org.programs.remove(program)
    db.session.flush()
    for participant in leaving:
        control.end_membership_if_last(org, participant)
