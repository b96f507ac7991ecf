"""A small world whose every report figure can be worked out by hand.

The org ``exact`` (America/New_York, programs A and B) is reported on for the
14 local days F..T, where T is today there. Members joined at F-10, except
dan (F+5), whose earlier activity counts all the same; eve left at F+8, and
what she did afterwards never reaches the org; fay belongs to another org
only, and gus to both.
Events happen at 15:00 UTC (10:00 or 11:00 in New York), except one of gus's
at 03:00 UTC, which is still the day before in New York.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from console.extensions import db
from console.models import Member
from console.models import Membership
from console.models import MentoringRelationship
from console.models import Org
from console.models import Participant
from console.services import account
from console.services import control
from console.services import participants
from console.services import rollups
from tests import factories

COMPLETE_ENTREPRENEUR = {
    "headline": "Founder",
    "bio": "Bakes bread.",
    "city": "Puebla",
    "country": "MX",
    "business_name": "Pan",
    "business_industry": "Food",
}
COMPLETE_MENTOR = {
    "headline": "Retired CFO",
    "bio": "Numbers.",
    "city": "Madrid",
    "country": "ES",
    "expertise": "Cash flow",
}


@dataclass
class World:
    org: Org
    other: Org
    first: date
    last: date
    people: dict[str, Participant]
    programs: dict[str, Any]
    relationships: dict[str, MentoringRelationship] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def day(self, offset: int) -> date:
        return self.first + timedelta(days=offset)

    def at(self, offset: int, hour: int = 15) -> datetime:
        return datetime.combine(self.day(offset), time(hour), UTC)


def backdate(org: Org, person: Participant, joined: datetime, left: datetime | None = None) -> None:
    """Pretend the person joined ``org`` at ``joined`` (and left at ``left``)."""
    db.session.execute(
        sa.update(Membership)
        .where(Membership.participant_id == person.id, Membership.org_id == org.id)
        .values(joined_at=joined, left_at=left)
    )
    member = sa.update(Member).values(joined_at=joined)
    if left is not None:
        # Leaving the last program ends an unmanaged membership of the org too.
        member = sa.delete(Member)
    db.session.execute(member.where(Member.participant_id == person.id, Member.org_id == org.id))
    db.session.flush()
    rollups.sync_member(org, person.id)


def _backdate(world: World, name: str, joined: datetime, left: datetime | None = None) -> None:
    backdate(world.org, world.people[name], joined, left)


def build() -> World:
    """Create the world's orgs, members, profiles and relationships (no events yet)."""
    org = factories.make_org("exact", "Exact Org", ("A", "B"), time_zone="America/New_York")
    other = factories.make_org("elsewhere", "Elsewhere", ("X",), time_zone="Asia/Tokyo")
    last = rollups.today_in(org)
    first = last - timedelta(days=13)
    a, b = org.programs
    people = {
        "ana": factories.make_participant(org, name="Ana Alba", email="ana@x.example", program=a),
        "bea": factories.make_participant(org, name="Bea Bravo", email="bea@x.example", program=a),
        "carl": factories.make_participant(
            org, name="Carl Cruz", email="carl@x.example", program=b, role="mentor"
        ),
        "dan": factories.make_participant(org, name="Dan Diaz", email="dan@x.example", program=a),
        "eve": factories.make_participant(
            org, name="Eve Estrada", email="eve@x.example", program=b
        ),
        "fay": factories.make_participant(other, name="Fay Fuentes", email="fay@x.example"),
        "gus": factories.make_participant(org, name="Gus Gil", email="gus@x.example", program=a),
    }
    world = World(org, other, first, last, people, {"A": a, "B": b})
    participants.add_member(factories.ACTOR, org, people["bea"], program=b)
    participants.add_member(factories.ACTOR, other, people["gus"])
    joined = world.at(-10, 12)
    for name in ("ana", "bea", "carl", "eve", "gus"):
        _backdate(world, name, joined)
    _backdate(world, "dan", world.at(5, 12))
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.participant_id == people["eve"].id)
    )
    account.leave_program(people["eve"], membership.id)
    _backdate(world, "eve", joined, world.at(8, 12))
    db.session.flush()
    for person in people.values():
        rollups.sync_participant(person.id)
    control.update_profile(people["ana"], None, people["ana"], COMPLETE_ENTREPRENEUR)
    control.update_profile(people["carl"], None, people["carl"], COMPLETE_MENTOR)
    for name, mentor, mentee, started, ended in (
        ("r1", "carl", "ana", 5, None),
        ("r2", "carl", "bea", -5, -1),
        ("r3", "carl", "gus", -3, None),
    ):
        relationship = MentoringRelationship(
            mentor_id=people[mentor].id,
            mentee_id=people[mentee].id,
            program_id=b.id,
            status="ended" if ended is not None else "active",
            requested_at=world.at(started - 1),
            started_at=world.at(started),
            ended_at=world.at(ended) if ended is not None else None,
        )
        db.session.add(relationship)
        db.session.flush()
        rollups.note_relationship(relationship)
        world.relationships[name] = relationship
    world.events = events_of(world)
    return world


def events_of(world: World) -> list[dict[str, Any]]:
    """Return the world's events as the platform would send them."""
    r1 = str(world.relationships["r1"].id)

    def event(name: str, kind: str, offset: int, data: Any = None, hour: int = 15) -> dict:
        found = {
            "id": f"{name}-{kind}-{offset}-{hour}",
            "type": kind,
            "participant_id": str(world.people[name].id),
            "occurred_at": world.at(offset, hour).isoformat(),
        }
        if data is not None:
            found["data"] = data
        return found

    return [
        event("ana", "signed_in", 0),
        event("ana", "message_sent", 1, {"count": 3}),
        event("ana", "mentor_request_sent", 2),
        event("ana", "session_logged", 9, {"minutes": 60, "relationship_id": r1}),
        event("ana", "feedback_given", 9, {"rating": 5, "relationship_id": r1}),
        event("ana", "outcome_reported", 12, {"jobs": 2, "revenue": 1500.5, "currency": "usd"}),
        event("bea", "signed_in", -3),
        event("bea", "mentor_request_sent", 3),
        event("carl", "mentor_request_received", 3),
        event("carl", "mentor_request_accepted", 4),
        event("carl", "message_sent", 4, {"count": 2}),
        event("carl", "session_logged", 9, {"minutes": 30, "relationship_id": r1}),
        event("carl", "feedback_given", 10, {"rating": 4, "relationship_id": r1}),
        event("dan", "signed_in", 2),  # before he joined: counts, he is a member now
        event("dan", "signed_in", 6),
        event("eve", "signed_in", 7),
        event("eve", "signed_in", 11),  # after leaving: not counted
        event("fay", "signed_in", 1),  # another org's member only
        event("fay", "session_logged", 2, {"minutes": 45}),
        event("gus", "signed_in", 1, hour=3),  # 03:00 UTC is still day 0 in New York
    ]


def ingest(world: World, events: list[dict[str, Any]] | None = None) -> None:
    """Send the world's events through the ingest service, as the API does."""
    from console.services import events as service

    results = service.ingest(factories.ACTOR, world.events if events is None else events)
    assert all(r.status == "accepted" for r in results), results
