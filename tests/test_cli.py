"""Commands print what they made and fail clearly on bad input."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import Admin
from console.models import Member
from console.models import Org
from console.models import Participant
from console.services.auth import check_password


def test_org_create_prints_ids_and_programs(runner):
    result = runner.invoke(
        args=[
            "org",
            "create",
            "acme",
            "--name",
            "Acme Corp",
            "--program",
            "Cohort 1",
            "--program",
            "Cohort 2",
        ]
    )
    assert result.exit_code == 0, result.output
    org = db.session.scalar(sa.select(Org).where(Org.slug == "acme"))
    assert f"Created org acme (id {org.id})" in result.output
    assert {p.name for p in org.programs} == {"Cohort 1", "Cohort 2"}
    assert all(str(p.id) in result.output for p in org.programs)


@pytest.mark.parametrize(
    "args,message",
    [
        (["org", "create", "Bad Slug!", "--name", "X"], "not a usable slug"),
        (["org", "create", "taken", "--name", "X"], "already exists"),
        (
            ["org", "create", "tz", "--name", "X", "--time-zone", "Mars/Olympus"],
            "not a known time zone",
        ),
        (
            ["admin", "add", "a@b.example", "--org", "nowhere", "--role", "owner"],
            "No org with the slug",
        ),
        (
            ["admin", "add", "not-an-email", "--org", "taken", "--role", "owner"],
            "not a valid email",
        ),
        (
            [
                "admin",
                "add",
                "a@b.example",
                "--org",
                "taken",
                "--role",
                "owner",
                "--password",
                "short",
            ],
            "at least 12",
        ),
        (["staff", "create", "nope"], "not a valid email"),
        (
            ["participant", "create", "p@x.example", "--name", "P", "--program", "Cohort"],
            "need --org",
        ),
        (
            [
                "participant",
                "create",
                "p@x.example",
                "--name",
                "P",
                "--org",
                "taken",
                "--program",
                "Nope",
            ],
            "has no program",
        ),
        (["participant", "create", "p@x.example", "--name", "  "], "name must have"),
    ],
)
def test_bad_input_fails_with_a_message(runner, make_org, args, message):
    make_org(slug="taken")
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output


def test_admin_add_creates_an_administrator_who_can_sign_in(runner, make_org):
    org = make_org(slug="acme")
    result = runner.invoke(
        args=[
            "admin",
            "add",
            "Owner@Acme.example",
            "--org",
            "acme",
            "--role",
            "owner",
            "--password",
            "long enough password",
            "--name",
            "Olga",
        ]
    )
    assert result.exit_code == 0, result.output
    admin = db.session.scalar(sa.select(Admin).where(Admin.email == "owner@acme.example"))
    assert admin.name == "Olga" and admin.role_in(org).role == "owner"
    assert check_password(admin.password_hash, "long enough password")
    assert str(admin.id) in result.output
    again = runner.invoke(
        args=["admin", "add", "owner@acme.example", "--org", "acme", "--role", "owner"]
    )
    assert again.exit_code != 0 and "already owner" in again.output
    changed = runner.invoke(
        args=["admin", "add", "owner@acme.example", "--org", "acme", "--role", "analyst"]
    )
    assert changed.exit_code == 0
    db.session.expire_all()
    assert admin.role_in(org).role == "analyst"


def test_staff_create(runner):
    result = runner.invoke(
        args=[
            "staff",
            "create",
            "ops@platform.example",
            "--name",
            "Ops",
            "--password",
            "a staff password",
        ]
    )
    assert result.exit_code == 0, result.output
    staff = db.session.scalar(sa.select(Admin).where(Admin.email == "ops@platform.example"))
    assert staff.is_staff and str(staff.id) in result.output


@pytest.mark.parametrize(
    "extra,member,managed",
    [
        ([], False, False),
        (["--org", "acme"], True, False),
        (["--org", "acme", "--program", "Cohort B", "--managed"], True, True),
    ],
)
def test_participant_create(runner, make_org, extra, member, managed):
    org = make_org(slug="acme")
    result = runner.invoke(
        args=[
            "participant",
            "create",
            "Pat@Example.com",
            "--name",
            "Pat Doe",
            "--password",
            "participant password",
            *extra,
        ]
    )
    assert result.exit_code == 0, result.output
    participant = db.session.scalar(
        sa.select(Participant).where(Participant.email == "pat@example.com")
    )
    assert participant.email_verified
    assert str(participant.id) in result.output
    assert (db.session.get(Member, (org.id, participant.id)) is not None) is member
    assert (participant.managed_by_org_id == org.id) is managed
    duplicate = runner.invoke(args=["participant", "create", "pat@example.com", "--name", "Pat"])
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output


def test_commands_are_audited(runner):
    from console.models import AuditEvent

    runner.invoke(args=["org", "create", "audited", "--name", "Audited"])
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "org.created"))
    assert event.actor_type == "cli" and re.match(r"cli:", event.actor_name)
