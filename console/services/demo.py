"""Build a deterministic, believable demo world, in bulk.

Every participant of the requested size is a member of the org ``demo`` (so
benchmarks know where to look); three more orgs are small. Twelve months of
activity end today: most members have gone quiet, a few are very active, the
week has a rhythm, ratings lean positive and some businesses report outcomes.
All email addresses end in ``.example`` (RFC 2606): demo mail can never reach
a real person, whatever mail server the console is pointed at.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from faker import Faker

from console.extensions import db
from console.models import AccountStatus
from console.models import ActivityEvent
from console.models import EventType
from console.models import JoinedVia
from console.models import Member
from console.models import Membership
from console.models import MentoringRelationship
from console.models import Org
from console.models import Participant
from console.models import Profile
from console.models import Program
from console.models import SearchTerm
from console.models.participants import email_domain_key
from console.services import admins
from console.services import audit
from console.services import control
from console.services import domains
from console.services import orgs
from console.services import rollups
from console.services.auth import hash_password
from console.services.bulk import insert_rows
from console.services.participants import search_terms_for
from console.services.participants import sort_name_for

DEMO_PASSWORD = "demo-password"
DEMO_SLUG = "demo"
STAFF_EMAIL = "staff@partner-console.example"
PERSONAL_DOMAINS = ("mail.example", "correo.example", "inbox.example", "post.example")
LOCALES = {"es_MX": 4, "en_US": 4, "es_ES": 2, "es_CO": 1, "pt_BR": 1, "en_GB": 1}


@dataclass(frozen=True)
class OrgPlan:
    slug: str
    name: str
    domain: str
    time_zone: str
    programs: tuple[str, ...]
    size: int = 0


OTHER_ORGS = (
    OrgPlan(
        "acme-bank",
        "Acme Community Bank",
        "acmebank.example",
        "America/Chicago",
        ("First Loan Cohort", "Small Business Banking Mentors"),
        size=80,
    ),
    OrgPlan(
        "mujeres-emprenden",
        "Mujeres Emprenden",
        "mujeresemprenden.example",
        "America/Mexico_City",
        ("Emprendedoras 2026", "Red de Mentoras"),
        size=60,
    ),
    OrgPlan(
        "riverside",
        "Riverside Employers Group",
        "riverside-employers.example",
        "Europe/London",
        ("Employee Volunteers",),
        size=40,
    ),
)
DEMO_ORG = OrgPlan(
    DEMO_SLUG,
    "Demo Chamber of Commerce",
    "demochamber.example",
    "America/New_York",
    ("Accelerator 2026", "Digital Skills Bootcamp", "Export Readiness", "Women in Business"),
)

CITIES = (
    ("Mexico City", "MX"),
    ("Guadalajara", "MX"),
    ("Monterrey", "MX"),
    ("Puebla", "MX"),
    ("Bogotá", "CO"),
    ("Medellín", "CO"),
    ("Lima", "PE"),
    ("Quito", "EC"),
    ("San José", "CR"),
    ("Madrid", "ES"),
    ("Barcelona", "ES"),
    ("Valencia", "ES"),
    ("Sevilla", "ES"),
    ("Buenos Aires", "AR"),
    ("Santiago", "CL"),
    ("São Paulo", "BR"),
    ("Los Angeles", "US"),
    ("Houston", "US"),
    ("Miami", "US"),
    ("San Antonio", "US"),
    ("Chicago", "US"),
    ("New York", "US"),
    ("Phoenix", "US"),
    ("Toronto", "CA"),
    ("London", "GB"),
    ("Manchester", "GB"),
)
INDUSTRIES = {
    "Food & beverage": ("Bakery", "Café", "Catering", "Taquería", "Foods"),
    "Retail": ("Boutique", "Market", "Shop", "Store"),
    "Beauty & personal care": ("Salon", "Beauty Studio", "Barbershop"),
    "Construction": ("Builders", "Remodeling", "Construcciones"),
    "Professional services": ("Consulting", "Accounting", "Legal Services"),
    "Technology": ("Labs", "Digital", "Software"),
    "Agriculture": ("Farms", "Organics", "Harvest Co."),
    "Health & wellness": ("Wellness", "Yoga Studio", "Physio"),
    "Education": ("Academy", "Tutoring", "Learning Center"),
    "Tourism & hospitality": ("Tours", "Guest House", "Travel"),
    "Transport & logistics": ("Logistics", "Courier", "Moving"),
    "Creative industries": ("Studio", "Design", "Photography"),
    "Cleaning services": ("Cleaning", "Home Services"),
}
EXPERTISE = (
    "Marketing",
    "Bookkeeping",
    "Cash flow",
    "Fundraising",
    "Sales",
    "Pricing",
    "Hiring",
    "Export",
    "E-commerce",
    "Legal basics",
    "Digital marketing",
    "Operations",
    "Branding",
    "Business planning",
    "Negotiation",
    "Customer service",
    "Supply chain",
    "Social media",
)
MENTOR_TITLES = (
    "Retired CFO",
    "Marketing director",
    "Bank branch manager",
    "Serial entrepreneur",
    "Operations consultant",
    "Software engineer",
    "HR business partner",
    "Export manager",
    "Accountant",
    "Lawyer",
    "Sales lead",
    "Product manager",
)
STAGES = ("idea", "startup", "growing", "established")
GENDERS = (("woman", 48), ("man", 46), ("non-binary", 2), ("prefers not to say", 4))
EDUCATION = ("secondary", "vocational", "bachelor", "master", "doctorate")
LANGUAGES = {
    "MX": "es",
    "CO": "es",
    "PE": "es",
    "EC": "es",
    "CR": "es",
    "ES": "es",
    "AR": "es",
    "CL": "es",
    "BR": "pt",
    "US": "en",
    "CA": "en",
    "GB": "en",
}

MENTOR_EVENTS = (
    (EventType.SIGNED_IN, 34),
    (EventType.MESSAGE_SENT, 26),
    (EventType.MENTOR_REQUEST_RECEIVED, 6),
    (EventType.MENTOR_REQUEST_ACCEPTED, 3),
    (EventType.MENTOR_REQUEST_DECLINED, 1),
    (EventType.SESSION_LOGGED, 14),
    (EventType.FEEDBACK_GIVEN, 6),
    (EventType.PROFILE_UPDATED, 5),
    (EventType.SURVEY_COMPLETED, 2),
)
ENTREPRENEUR_EVENTS = (
    (EventType.SIGNED_IN, 34),
    (EventType.MESSAGE_SENT, 26),
    (EventType.MENTOR_REQUEST_SENT, 7),
    (EventType.SESSION_LOGGED, 12),
    (EventType.FEEDBACK_GIVEN, 6),
    (EventType.OUTCOME_REPORTED, 3),
    (EventType.PROFILE_UPDATED, 5),
    (EventType.SURVEY_COMPLETED, 2),
)
NEEDS_RELATIONSHIP = {EventType.SESSION_LOGGED, EventType.FEEDBACK_GIVEN}
# Hours of the local working day, weighted towards late morning and mid-afternoon.
HOURS = tuple(range(24))
HOUR_WEIGHTS = (1, 0, 0, 0, 0, 1, 2, 4, 7, 9, 10, 10, 8, 8, 9, 9, 8, 7, 6, 6, 5, 4, 3, 2)


def _phone(rng: random.Random) -> str:
    parts = (
        rng.randint(1, 59),
        rng.randint(200, 999),
        rng.randint(100, 999),
        rng.randint(1000, 9999),
    )
    return "+{} {} {} {}".format(*parts)


class DemoError(RuntimeError):
    """The demo cannot be seeded here; the message says why."""


@dataclass
class SeedReport:
    orgs: list[str] = field(default_factory=list)
    participants: int = 0
    demo_members: int = 0
    memberships: int = 0
    relationships: int = 0
    events: int = 0
    report_days: int = 0
    seconds: float = 0.0
    sign_ins: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class _Person:
    id: uuid.UUID
    name: str
    email: str
    role: str
    created_at: datetime
    orgs: list[tuple[OrgPlan, str | None, bool]] = field(default_factory=list)
    managed_by: OrgPlan | None = None
    last_active_at: datetime | None = None
    relationships: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    joined_at: datetime | None = None


def demo_exists() -> bool:
    """Return whether any org exists already (the demo is only seeded on an empty console)."""
    return db.session.scalar(sa.select(Org.id).limit(1)) is not None


def sign_ins() -> list[tuple[str, str, str]]:
    """Return the demo's sign-ins as (who, email, password)."""
    domain = DEMO_ORG.domain
    return [
        ("staff (second factor set up at first sign-in)", STAFF_EMAIL, DEMO_PASSWORD),
        ("owner of demo", f"owner@{domain}", DEMO_PASSWORD),
        ("admin of demo", f"admin@{domain}", DEMO_PASSWORD),
        ("support of demo", f"support@{domain}", DEMO_PASSWORD),
        ("analyst of demo", f"analyst@{domain}", DEMO_PASSWORD),
        ("participant managed by demo (/account/login)", _sample_participant(), DEMO_PASSWORD),
    ]


def _sample_participant() -> str:
    # Any active member the demo org manages, first by name: one to try the
    # participant's side with.
    return (
        db.session.scalar(
            sa.select(Participant.email)
            .join(Member, Member.participant_id == Participant.id)
            .join(Org, Org.id == Member.org_id)
            .where(
                Org.slug == DEMO_SLUG,
                Participant.managed_by_org_id == Org.id,
                Participant.status == AccountStatus.ACTIVE,
                Participant.restricted.is_(False),
            )
            .order_by(Member.sort_name)
            .limit(1)
        )
        or ""
    )


def seed(
    participants: int = 1000,
    events_per_participant: int = 30,
    seed_value: int = 1,
    today: datetime | None = None,
) -> SeedReport:
    """Create the demo world in the current transaction and report what was made."""
    if participants < 1:
        raise DemoError("--participants must be at least 1.")
    if events_per_participant < 0:
        raise DemoError("--events-per-participant cannot be negative.")
    if db.session.scalar(sa.select(Org.id).where(Org.slug == DEMO_SLUG)):
        raise DemoError("The demo org already exists: seed an empty database.")
    started = time.perf_counter()
    today = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    world = _World(random.Random(seed_value), seed_value, today)
    report = world.build(participants, events_per_participant)
    report.seconds = time.perf_counter() - started
    return report


class _World:
    def __init__(self, rng: random.Random, seed_value: int, today: datetime) -> None:
        self.rng = rng
        self.today = today
        self.start = today - timedelta(days=365)
        self.faker = Faker(list(LOCALES), use_weighting=False)
        self.faker.seed_instance(seed_value)
        self.emails: set[str] = set()
        self.password_hash = hash_password(DEMO_PASSWORD)
        self.actor = audit.Actor(type="system", name="demo seed")
        self.programs: dict[str, list[Program]] = {}
        self.orgs: dict[str, Org] = {}
        self.admins: dict[str, Any] = {}

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # -- people ---------------------------------------------------------------

    def build(self, size: int, events_per_participant: int) -> SeedReport:
        report = SeedReport()
        for plan in (DEMO_ORG, *OTHER_ORGS):
            org = orgs.create_org(
                self.actor, plan.slug, plan.name, list(plan.programs), plan.time_zone
            )
            self.orgs[plan.slug] = org
            self.programs[plan.slug] = list(org.programs)
            report.orgs.append(plan.slug)
        self._admins()
        people = [self._person(DEMO_ORG) for _ in range(size)]
        for plan in OTHER_ORGS:
            people += [self._person(plan) for _ in range(plan.size)]
            # A few people belong to two orgs: isolation must hold for them too.
            for person in self.rng.sample(people[: min(size, 2000)], k=min(5, size)):
                if all(p.slug != plan.slug for p, _, _ in person.orgs):
                    person.orgs.append((plan, None, False))
        # Accounts outside every org, some at partner domains: candidates for claims.
        people += [self._person(None) for _ in range(max(20, size // 200))]
        people.sort(key=lambda p: p.id)
        relationships = self._relationships(people)
        events = self._events(people, size * events_per_participant)
        self._insert_people(people)
        report.memberships = self._insert_memberships(people)
        report.relationships = insert_rows(
            MentoringRelationship.__table__,
            (
                "id",
                "mentor_id",
                "mentee_id",
                "program_id",
                "status",
                "requested_at",
                "started_at",
                "ended_at",
            ),
            relationships,
        )
        report.events = insert_rows(
            ActivityEvent.__table__,
            (
                "id",
                "participant_id",
                "type",
                "occurred_at",
                "counterpart_id",
                "relationship_id",
                "data",
                "received_at",
            ),
            events,
        )
        self._story(people)
        report.participants = len(people)
        report.demo_members = size
        report.sign_ins = sign_ins()
        audit.record(
            self.actor,
            "demo.seeded",
            details={"participants": len(people), "events": report.events},
        )
        report.report_days = rollups.rebuild().days
        # Fresh planner statistics: the list and search plans depend on them.
        db.session.execute(sa.text("ANALYZE"))
        return report

    def _admins(self) -> None:
        admins.create_staff(self.actor, STAFF_EMAIL, "Sam Staff", DEMO_PASSWORD)
        demo = self.orgs[DEMO_SLUG]
        for role, name in (
            ("owner", "Olivia Owner"),
            ("admin", "Adrián Admin"),
            ("support", "Sofía Support"),
            ("analyst", "Ana Analyst"),
        ):
            admin = admins.add_admin(
                self.actor, demo, f"{role}@{DEMO_ORG.domain}", role, name, DEMO_PASSWORD
            )
            self.admins[role] = admin
        for plan in OTHER_ORGS:
            admins.add_admin(
                self.actor,
                self.orgs[plan.slug],
                f"owner@{plan.domain}",
                "owner",
                f"Owner of {plan.name}",
                DEMO_PASSWORD,
            )

    def _story(self, people: list[_Person]) -> None:
        """Let the demo owner have done what owners do, so every page has something to show."""
        demo = self.orgs[DEMO_SLUG]
        managed = [p for p in people if p.managed_by is DEMO_ORG and p.last_active_at is not None][
            :6
        ]
        if len(managed) < 6:
            return
        accounts = [db.session.get(Participant, p.id) for p in managed]
        owner, support = self.admins["owner"], self.admins["support"]
        for account in accounts[:3]:
            audit.record(
                owner,
                "participant.viewed",
                org=demo,
                target=account,
                details={"private_fields": True},
            )
        suspended, restricted, reset, asker, leaver, _spare = accounts
        if suspended.status == AccountStatus.ACTIVE:
            control.suspend(owner, demo, suspended, "Missed three mentoring sessions in a row")
        if not restricted.restricted:
            control.restrict(owner, demo, restricted)
        control.send_reset_link(support, demo, reset)
        control.request_email_change(asker, f"{asker.email.split('@')[0]}.personal@mail.example")
        control.ask_release(leaver, "I left the company and run my own business now.")
        # Its own domain, verified by hand (.example names cannot be published in
        # DNS): the claim preview lists the unmanaged accounts that use it.
        domain = domains.add_domain(owner, demo, DEMO_ORG.domain)
        domains.verify_by_hand(self.actor, domain, "Demo data: .example names have no DNS.")

    def _person(self, plan: OrgPlan | None) -> _Person:
        rng = self.rng
        first = self.faker.first_name()
        last = self.faker.last_name()
        if rng.random() < 0.25:
            last = f"{last} {self.faker.last_name()}"
        name = f"{first} {last}"
        at_partner = plan is not None and rng.random() < 0.4
        domain = plan.domain if at_partner and plan else rng.choice(PERSONAL_DOMAINS)
        if plan is None and rng.random() < 0.5:
            domain = rng.choice((DEMO_ORG, *OTHER_ORGS)).domain
        email = self._email(first, last, domain)
        role = rng.choices(("entrepreneur", "mentor", "both"), weights=(62, 28, 10))[0]
        created = (
            self.start - timedelta(days=rng.uniform(0, 400))
            if rng.random() < 0.4
            else (self.start + timedelta(days=rng.uniform(0, 364)))
        )
        person = _Person(self.uuid(), name, email, role, created)
        if plan is not None:
            # Activity starts once they have joined: reports count members' activity only.
            joined = max(created, self.start - timedelta(days=30))
            joined += timedelta(days=rng.uniform(0, 20))
            person.joined_at = min(joined, self.today - timedelta(hours=1))
            programs = self.programs[plan.slug]
            program = rng.choice(programs).name
            managed = at_partner and rng.random() < 0.75
            person.orgs.append((plan, program, managed))
            if rng.random() < 0.1 and len(programs) > 1:
                other = rng.choice([p.name for p in programs if p.name != program])
                person.orgs.append((plan, other, managed))
            if managed:
                person.managed_by = plan
        return person

    def _email(self, first: str, last: str, domain: str) -> str:
        local = ".".join(sort_name_for(part).replace(" ", "") for part in (first, last.split()[0]))
        local = "".join(c for c in local if c.isascii() and (c.isalnum() or c == ".")) or "user"
        email, n = f"{local}@{domain}", 1
        while email in self.emails:
            n += 1
            email = f"{local}{n}@{domain}"
        self.emails.add(email)
        return email

    # -- relationships and activity ------------------------------------------

    def _relationships(self, people: list[_Person]) -> list[tuple[Any, ...]]:
        rng = self.rng
        rows: list[tuple[Any, ...]] = []
        by_org: dict[str, tuple[list[_Person], list[_Person]]] = {}
        for person in people:
            for plan, _program, _managed in person.orgs[:1]:
                mentors, mentees = by_org.setdefault(plan.slug, ([], []))
                (mentors if person.role in ("mentor", "both") else mentees).append(person)
        for slug, (mentors, mentees) in by_org.items():
            if not mentors:
                continue
            programs = self.programs[slug]
            for mentee in mentees:
                if rng.random() > 0.55:
                    continue
                mentor = rng.choice(mentors)
                begins = mentee.joined_at or mentee.created_at
                requested = self._moment(max(begins, self.start), self.today)
                status = rng.choices(
                    ("active", "ended", "requested", "declined"), weights=(45, 30, 10, 15)
                )[0]
                started = (
                    requested + timedelta(days=rng.uniform(0.5, 7))
                    if status in ("active", "ended")
                    else None
                )
                ended = None
                if status == "ended" and started is not None:
                    ended = started + timedelta(days=rng.uniform(20, 180))
                    if ended >= self.today:
                        ended, status = None, "active"
                if started is not None and started >= self.today:
                    started, status = None, "requested"
                rel_id = self.uuid()
                rows.append(
                    (
                        rel_id,
                        mentor.id,
                        mentee.id,
                        rng.choice(programs).id,
                        status,
                        requested,
                        started,
                        ended,
                    )
                )
                if status in ("active", "ended"):
                    mentee.relationships.append((rel_id, mentor.id))
                    mentor.relationships.append((rel_id, mentee.id))
        return rows

    def _moment(self, start: datetime, end: datetime) -> datetime:
        rng = self.rng
        span = max((end - start).total_seconds(), 3600.0)
        when = start + timedelta(seconds=rng.random() * span)
        # The week has a rhythm: most weekend activity moves to a weekday.
        if when.weekday() >= 5 and rng.random() < 0.7:
            when -= timedelta(days=when.weekday() - 4)
        hour = rng.choices(HOURS, weights=HOUR_WEIGHTS)[0]
        when = when.replace(
            hour=hour, minute=rng.randrange(60), second=rng.randrange(60), microsecond=0
        )
        return min(max(when, start), end - timedelta(seconds=1))

    def _events(self, people: list[_Person], total: int) -> list[tuple[Any, ...]]:
        rng = self.rng
        in_demo = [bool(p.orgs) and p.orgs[0][0].slug == DEMO_SLUG for p in people]
        members = [p for p, demo in zip(people, in_demo, strict=True) if demo]
        others = [p for p, demo in zip(people, in_demo, strict=True) if not demo]
        # Heavy tail: a few members do most of the activity, some never do anything.
        weights = [0.0 if rng.random() < 0.08 else rng.lognormvariate(0, 1.1) for _ in members]
        scale = total / (sum(weights) or 1.0)
        counts = [int(w * scale) for w in weights]
        shortfall = total - sum(counts)
        for index in rng.sample(range(len(members)), k=min(shortfall, len(members))):
            counts[index] += 1
        counts[0] += total - sum(counts)
        plan = list(zip(members, counts, strict=True))
        plan += [(p, rng.randrange(0, 40)) for p in others]
        rows: list[tuple[Any, ...]] = []
        quiet_before = self.today - timedelta(days=31)
        sequence = 0
        for person, count in plan:
            if count <= 0:
                continue
            begin = max(person.joined_at or person.created_at, self.start)
            recent = rng.random() < min(0.85, 0.18 + 0.12 * math.log1p(count))
            if recent:
                end = self.today - timedelta(days=rng.expovariate(1 / 6))
                end = max(end, quiet_before + timedelta(days=1))
            else:
                end = begin + (quiet_before - begin) * rng.uniform(0.3, 1.0)
            if end <= begin:
                end = begin + timedelta(days=2)
            end = min(end, self.today)
            choices = MENTOR_EVENTS if person.role == "mentor" else ENTREPRENEUR_EVENTS
            types = [t for t, _ in choices]
            type_weights = [w for _, w in choices]
            last = None
            for kind in rng.choices(types, weights=type_weights, k=count):
                sequence += 1
                occurred = self._moment(begin, end)
                last = occurred if last is None or occurred > last else last
                rows.append(self._event(sequence, person, kind, occurred))
            person.last_active_at = last
        return rows

    def _event(self, sequence: int, person: _Person, kind: str, occurred: datetime) -> tuple:
        rng = self.rng
        relationship_id = counterpart = None
        data: dict[str, Any] | None = None
        if kind in NEEDS_RELATIONSHIP and not person.relationships:
            kind = EventType.MESSAGE_SENT
        if person.relationships and kind in (
            *NEEDS_RELATIONSHIP,
            EventType.MESSAGE_SENT,
            EventType.MENTOR_REQUEST_ACCEPTED,
        ):
            relationship_id, counterpart = rng.choice(person.relationships)
        if kind == EventType.MESSAGE_SENT:
            data = {"count": rng.choices((1, 2, 3, 5, 8), weights=(40, 25, 15, 12, 8))[0]}
        elif kind == EventType.SESSION_LOGGED:
            data = {
                "minutes": rng.choice((30, 45, 60, 60, 90)),
                "relationship_id": str(relationship_id),
            }
        elif kind == EventType.FEEDBACK_GIVEN:
            rating = rng.choices((5, 4, 3, 2, 1), weights=(45, 35, 12, 5, 3))[0]
            data = {"rating": rating, "relationship_id": str(relationship_id)}
        elif kind == EventType.OUTCOME_REPORTED:
            data = {
                "jobs": rng.choices((0, 1, 2, 3, 5), weights=(40, 30, 15, 10, 5))[0],
                "revenue": round(rng.lognormvariate(8.5, 1.0), -1),
                "currency": "USD",
            }
        return (
            f"demo-{sequence:010d}",
            person.id,
            str(kind),
            occurred,
            counterpart,
            relationship_id,
            data,
            occurred,
        )

    # -- loading ------------------------------------------------------------------

    def _insert_people(self, people: list[_Person]) -> None:
        rng = self.rng
        participant_rows = []
        profile_rows = []
        term_rows = []
        for person in people:
            status, reason, until, deactivated = AccountStatus.ACTIVE, None, None, None
            roll = rng.random()
            if roll < 0.01:
                status, reason = AccountStatus.SUSPENDED, "Repeated no-shows at mentoring sessions"
                if rng.random() < 0.5:
                    until = self.today + timedelta(days=rng.randrange(3, 60))
            elif roll < 0.015:
                status = AccountStatus.DEACTIVATED
                deactivated = self.today - timedelta(days=rng.randrange(1, 300))
            managed = person.managed_by
            participant_rows.append(
                (
                    person.id,
                    person.email,
                    email_domain_key(person.email),
                    True,
                    person.name,
                    person.role,
                    self.password_hash,
                    status,
                    reason,
                    until,
                    rng.random() < 0.005,
                    False,
                    1,
                    self.orgs[managed.slug].id if managed else None,
                    person.created_at if managed else None,
                    person.created_at,
                    person.last_active_at,
                    person.last_active_at,
                    deactivated,
                )
            )
            profile_rows.append(self._profile(person))
            term_rows.extend(
                (term, person.id) for term in search_terms_for(person.name, person.email)
            )
        insert_rows(
            Participant.__table__,
            (
                "id",
                "email",
                "email_domain_key",
                "email_verified",
                "name",
                "role",
                "password_hash",
                "status",
                "suspended_reason",
                "suspended_until",
                "restricted",
                "must_reset_password",
                "session_version",
                "managed_by_org_id",
                "managed_since",
                "created_at",
                "last_sign_in_at",
                "last_active_at",
                "deactivated_at",
            ),
            participant_rows,
        )
        insert_rows(
            Profile.__table__,
            (
                "participant_id",
                "headline",
                "bio",
                "city",
                "country",
                "languages",
                "website",
                "linkedin_url",
                "expertise",
                "mentor_industries",
                "years_experience",
                "mentee_capacity",
                "business_name",
                "business_stage",
                "business_industry",
                "founded_year",
                "employees",
                "business_website",
                "needs",
                "phone",
                "birth_year",
                "gender",
                "postal_code",
                "education_level",
                "updated_at",
            ),
            profile_rows,
        )
        insert_rows(SearchTerm.__table__, ("term", "participant_id"), term_rows)

    def _profile(self, person: _Person) -> tuple[Any, ...]:
        rng = self.rng
        city, country = rng.choice(CITIES)
        language = LANGUAGES[country]
        languages = ", ".join(sorted({language, "en"} if rng.random() < 0.5 else {language}))
        mentor = person.role in ("mentor", "both")
        founder = person.role in ("entrepreneur", "both")
        expertise = ", ".join(rng.sample(EXPERTISE, k=rng.randint(2, 4))) if mentor else None
        years = rng.randint(5, 35) if mentor else None
        industry = rng.choice(list(INDUSTRIES))
        surname = person.name.split()[-1]
        business = f"{surname} {rng.choice(INDUSTRIES[industry])}" if founder else None
        slug = sort_name_for(business or "").replace(" ", "") if business else None
        if mentor and not founder:
            headline = f"{rng.choice(MENTOR_TITLES)} · {years} years of experience"
        else:
            headline = f"Founder of {business}"
        bio = (
            f"Based in {city}. "
            + (f"Happy to help with {expertise.lower()}. " if expertise else "")
            + (f"Building {business}, in {industry.lower()}." if business else "")
        ).strip()
        born = rng.randint(1955, 2003)
        # Some never finish their profile: the funnel's second step is real.
        if rng.random() < 0.12:
            bio = None
        if rng.random() < 0.06:
            city = None  # type: ignore[assignment]
        return (
            person.id,
            headline,
            bio,
            city,
            country,
            languages,
            f"https://{slug}.example" if slug and rng.random() < 0.4 else None,
            None,
            expertise,
            ", ".join(rng.sample(list(INDUSTRIES), k=2)) if mentor else None,
            years,
            rng.randint(1, 4) if mentor else None,
            business,
            rng.choice(STAGES) if founder else None,
            industry if founder else None,
            rng.randint(2005, 2026) if founder else None,
            rng.choices((0, 1, 2, 5, 12, 40), weights=(30, 30, 15, 12, 9, 4))[0]
            if founder
            else None,
            f"https://{slug}.example" if slug and rng.random() < 0.3 else None,
            ", ".join(rng.sample(EXPERTISE, k=2)) if founder else None,
            _phone(rng),
            born,
            rng.choices([g for g, _ in GENDERS], weights=[w for _, w in GENDERS])[0],
            f"{rng.randint(10000, 99999)}",
            rng.choice(EDUCATION),
            person.created_at,
        )

    def _insert_memberships(self, people: list[_Person]) -> int:
        rng = self.rng
        member_rows: dict[tuple[uuid.UUID, uuid.UUID], tuple[Any, ...]] = {}
        membership_rows = []
        for person in people:
            for plan, program_name, managed in person.orgs:
                org = self.orgs[plan.slug]
                joined = max(person.created_at, self.start - timedelta(days=30)) + timedelta(
                    days=rng.uniform(0, 20)
                )
                joined = min(joined, self.today - timedelta(hours=1))
                if person.joined_at is not None and plan.slug == person.orgs[0][0].slug:
                    joined = person.joined_at
                via = (
                    rng.choice((JoinedVia.PROVISIONED, JoinedVia.CLAIMED, JoinedVia.INVITED))
                    if managed
                    else rng.choice((JoinedVia.SELF_IDENTIFIED, JoinedVia.INVITED))
                )
                key = (org.id, person.id)
                if key not in member_rows:
                    member_rows[key] = (
                        org.id,
                        person.id,
                        joined,
                        str(via),
                        sort_name_for(person.name),
                        person.last_active_at,
                    )
                program = next(
                    (p for p in self.programs[plan.slug] if p.name == program_name), None
                )
                membership_rows.append(
                    (
                        self.uuid(),
                        org.id,
                        person.id,
                        program.id if program else None,
                        "mentor"
                        if person.role == "mentor"
                        else "entrepreneur"
                        if person.role == "entrepreneur"
                        else rng.choice(("mentor", "entrepreneur")),
                        joined,
                        None,
                        str(via),
                    )
                )
        insert_rows(
            Member.__table__,
            ("org_id", "participant_id", "joined_at", "joined_via", "sort_name", "last_active_at"),
            member_rows.values(),
        )
        return insert_rows(
            Membership.__table__,
            (
                "id",
                "org_id",
                "participant_id",
                "program_id",
                "role",
                "joined_at",
                "left_at",
                "joined_via",
            ),
            membership_rows,
        )
