"""The demo world: deterministic, shaped like real activity, and honest about its size."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import ActivityEvent
from console.models import Member
from console.models import MentoringRelationship
from console.models import Org
from console.models import Participant
from console.models.base import utcnow
from console.services import demo

pytestmark = pytest.mark.usefixtures("db")


def snapshot():
    return db.session.execute(
        sa.select(Participant.id, Participant.email, Participant.name).order_by(Participant.id)
    ).all()


def test_the_same_seed_builds_the_same_world():
    first = db.session.begin_nested()
    demo.seed(participants=40, events_per_participant=5, seed_value=3)
    before = snapshot()
    first.rollback()
    second = db.session.begin_nested()
    demo.seed(participants=40, events_per_participant=5, seed_value=3)
    assert snapshot() == before
    second.rollback()
    demo.seed(participants=40, events_per_participant=5, seed_value=4)
    assert snapshot() != before


@pytest.fixture
def seeded():
    report = demo.seed(participants=300, events_per_participant=20, seed_value=1)
    db.session.flush()
    return report


def test_every_participant_asked_for_is_a_member_of_demo(seeded):
    demo_org = db.session.scalar(sa.select(Org).where(Org.slug == "demo"))
    members = db.session.scalar(
        sa.select(sa.func.count()).select_from(Member).where(Member.org_id == demo_org.id)
    )
    assert members == 300 == seeded.demo_members
    sizes = db.session.execute(
        sa.select(Org.slug, sa.func.count())
        .join(Member, Member.org_id == Org.id)
        .group_by(Org.slug)
    ).all()
    assert all(count < 100 for slug, count in sizes if slug != "demo")
    assert len(sizes) == 4


def test_activity_has_the_requested_volume_and_a_real_shape(seeded):
    demo_org = db.session.scalar(sa.select(Org).where(Org.slug == "demo"))
    per_member = dict(
        db.session.execute(
            sa.select(ActivityEvent.participant_id, sa.func.count())
            .join(
                Member,
                sa.and_(
                    Member.participant_id == ActivityEvent.participant_id,
                    Member.org_id == demo_org.id,
                ),
            )
            .group_by(ActivityEvent.participant_id)
        ).all()
    )
    assert sum(per_member.values()) == 300 * 20
    counts = sorted(per_member.values(), reverse=True)
    assert counts[0] > 5 * 20  # a few are very active
    assert len(per_member) < 300  # some never did anything

    now = utcnow()
    last_active = [
        row
        for (row,) in db.session.execute(
            sa.select(Member.last_active_at).where(Member.org_id == demo_org.id)
        )
    ]
    quiet = sum(1 for t in last_active if t is not None and t < now - timedelta(days=30))
    recent = sum(1 for t in last_active if t is not None and t >= now - timedelta(days=30))
    assert quiet > recent > 0  # most members have gone quiet

    times = db.session.scalars(sa.select(ActivityEvent.occurred_at)).all()
    assert min(times) >= now - timedelta(days=366) and max(times) <= now
    weekdays = Counter(t.weekday() < 5 for t in times)
    assert weekdays[True] > 5 * weekdays[False]

    ratings = Counter(
        e.data["rating"]
        for e in db.session.scalars(
            sa.select(ActivityEvent).where(ActivityEvent.type == "feedback_given")
        )
    )
    assert ratings and ratings[5] + ratings[4] > ratings[1] + ratings[2] + ratings[3]
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(ActivityEvent.type == "outcome_reported")
        )
        > 0
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MentoringRelationship)) > 0


def test_demo_mail_can_reach_nobody(seeded):
    emails = db.session.scalars(sa.select(Participant.email)).all()
    assert emails and all(email.endswith(".example") for email in emails)


def test_seeded_members_are_searchable_and_sorted(seeded):
    from werkzeug.datastructures import MultiDict

    from console.services import participants

    demo_org = db.session.scalar(sa.select(Org).where(Org.slug == "demo"))
    someone = db.session.scalars(
        sa.select(Participant)
        .join(Member, Member.participant_id == Participant.id)
        .where(Member.org_id == demo_org.id)
    ).first()
    word = participants.fold(someone.name.split()[-1])[:4]
    filters = participants.ListFilters.from_args(MultiDict({"q": word}), demo_org)
    found = participants.list_members(demo_org, filters, None, 500)
    assert someone.id in {row.Participant.id for row in found.rows}


def test_seed_cli_reports_what_it_made_and_refuses_to_run_twice(runner):
    result = runner.invoke(
        args=["demo", "seed", "--participants", "30", "--events-per-participant", "3"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "30 members of demo" in result.output
        and "90 activity events" not in result.output.split("(")[0]
    )
    assert "owner@demochamber.example" in result.output and "demo-password" in result.output
    again = runner.invoke(args=["demo", "seed", "--participants", "30"])
    assert again.exit_code != 0 and "already exists" in again.output
    quiet = runner.invoke(args=["demo", "seed", "--if-empty"])
    assert (
        quiet.exit_code == 0
        and "nothing seeded" in quiet.output
        and "staff@partner-console.example" in quiet.output
    )


def test_seed_cli_rejects_bad_sizes(runner):
    result = runner.invoke(args=["demo", "seed", "--participants", "0"])
    assert result.exit_code != 0 and "0" in result.output
