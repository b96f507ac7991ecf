"""Factories with unique defaults; tests override only what they are about."""

from __future__ import annotations

import itertools
from typing import Any

from console.extensions import db
from console.models import Admin
from console.models import Org
from console.models import Participant
from console.models import Program
from console.services import admins
from console.services import orgs
from console.services import participants
from console.services.audit import Actor

PASSWORD = "correct horse battery"
ACTOR = Actor(type="system", name="tests")
_sequence = itertools.count(1)


def make_org(
    slug: str | None = None,
    name: str | None = None,
    programs: tuple[str, ...] = ("Cohort A", "Cohort B"),
    **kwargs: Any,
) -> Org:
    n = next(_sequence)
    org = orgs.create_org(ACTOR, slug or f"org-{n}", name or f"Org {n}", list(programs), **kwargs)
    db.session.flush()
    return org


def make_admin(
    org: Org | None = None,
    role: str = "owner",
    email: str | None = None,
    *,
    password: str | None = PASSWORD,
    staff: bool = False,
    **kwargs: Any,
) -> Admin:
    n = next(_sequence)
    email = email or f"admin{n}@admins.example"
    if staff:
        admin = admins.create_staff(ACTOR, email, kwargs.get("name") or f"Staff {n}", password)
        if org is not None:
            admins.add_admin(ACTOR, org, email, role)
        return admin
    assert org is not None
    return admins.add_admin(ACTOR, org, email, role, kwargs.get("name") or f"Admin {n}", password)


def make_participant(
    org: Org | None = None,
    *,
    name: str | None = None,
    email: str | None = None,
    program: Program | str | None = None,
    managed: bool = False,
    password: str | None = PASSWORD,
    role: str = "entrepreneur",
    **fields: Any,
) -> Participant:
    n = next(_sequence)
    if isinstance(program, str) and org is not None:
        program = orgs.find_program(org, program)
    if program is None and org is not None and org.programs:
        program = org.programs[0]
    participant = participants.create_participant(
        ACTOR,
        email or f"person{n}@people.example",
        name or f"Person {n}",
        password=password,
        role=role,
        org=org,
        program=program,  # type: ignore[arg-type]
        managed=managed,
    )
    last_active = fields.pop("last_active_at", None)
    for key, value in fields.items():
        setattr(participant, key, value)
    if last_active is not None:
        participants.note_activity(participant, last_active)
    db.session.flush()
    return participant
