"""Find and read an org's participants: search, filters, sorting, counts, detail."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from console.extensions import db
from console.models import AccountStatus
from console.models import ActivityEvent
from console.models import JoinedVia
from console.models import Member
from console.models import Membership
from console.models import MentoringRelationship
from console.models import Org
from console.models import Participant
from console.models import ParticipantRole
from console.models import Profile
from console.models import Program
from console.models import SearchTerm
from console.models.base import utcnow
from console.pagination import Page
from console.pagination import SortKey
from console.pagination import paginate
from console.services import audit
from console.services import claims
from console.services import rollups
from console.services.auth import EmailError
from console.services.auth import checked_email
from console.services.auth import hash_password
from console.services.auth import password_problem
from console.tenancy import members_of

QUIET_AFTER = timedelta(days=30)
# Above this many platform-wide matches a search term is too common to drive the
# query; the org's own sort index drives it instead and probes the terms.
SEARCH_DRIVER_CAP = 5000
BROAD_COUNT_CAP = 200
_WORD = re.compile(r"[\w]+", re.UNICODE)

SORTS = {
    "name": ("name", False),
    "-name": ("name", True),
    "joined": ("joined", False),
    "-joined": ("joined", True),
    "last_active": ("last_active", False),
    "-last_active": ("last_active", True),
}
ROLE_FILTERS = {
    "mentor": (ParticipantRole.MENTOR, ParticipantRole.BOTH),
    "entrepreneur": (ParticipantRole.ENTREPRENEUR, ParticipantRole.BOTH),
    "both": (ParticipantRole.BOTH,),
}
STATUSES = tuple(s.value for s in AccountStatus)
ACTIVITIES = ("active", "quiet", "never")


class FilterError(ValueError):
    """A list parameter that cannot be applied; the message says which and why."""


def fold(text: str) -> str:
    """Return ``text`` without accents and case, as search and sorting compare it."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def sort_name_for(name: str) -> str:
    """Return the key a name sorts by."""
    return " ".join(_WORD.findall(fold(name)))[:200]


def search_terms_for(name: str, email: str | None) -> set[str]:
    """Return the terms a participant is found by: each word of the name, and the email."""
    terms = {word[:320] for word in _WORD.findall(fold(name))}
    if email:
        terms.add(fold(email)[:320])
    return terms


def index_participant(participant: Participant) -> None:
    """Bring the participant's search terms and member sort keys up to date."""
    db.session.execute(sa.delete(SearchTerm).where(SearchTerm.participant_id == participant.id))
    db.session.add_all(
        SearchTerm(term=term, participant_id=participant.id)
        for term in search_terms_for(participant.name, participant.email)
    )
    db.session.execute(
        sa.update(Member)
        .where(Member.participant_id == participant.id)
        .values(sort_name=sort_name_for(participant.name))
    )


@dataclass
class ListFilters:
    q: str = ""
    program: uuid.UUID | None = None
    role: str | None = None
    status: str | None = None
    managed: bool | None = None
    activity: str | None = None
    sort: str = "name"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Any, org: Org) -> ListFilters:
        """Read and check the list parameters of a page or API request."""
        # NUL cannot reach a PostgreSQL text parameter; it never matches a name anyway.
        filters = cls(q=(args.get("q") or "").replace("\x00", "").strip()[:200])
        if program := args.get("program"):
            try:
                filters.program = uuid.UUID(program)
            except ValueError:
                raise FilterError("program: not a program id.") from None
            if (
                db.session.scalar(
                    sa.select(Program.id).where(
                        Program.id == filters.program, Program.org_id == org.id
                    )
                )
                is None
            ):
                raise FilterError("program: no such program in this organization.")
        filters.role = _choice(args, "role", tuple(ROLE_FILTERS))
        filters.status = _choice(args, "status", STATUSES)
        filters.activity = _choice(args, "activity", ACTIVITIES)
        if managed := args.get("managed"):
            if managed not in ("true", "false"):
                raise FilterError("managed: use true or false.")
            filters.managed = managed == "true"
        filters.sort = _choice(args, "sort", tuple(SORTS)) or "name"
        return filters

    def as_args(self) -> dict[str, str]:
        """Return the filters as URL parameters, leaving out the defaults."""
        args = {
            "q": self.q,
            "program": str(self.program) if self.program else "",
            "role": self.role or "",
            "status": self.status or "",
            "managed": "" if self.managed is None else str(self.managed).lower(),
            "activity": self.activity or "",
            "sort": "" if self.sort == "name" else self.sort,
        }
        return {key: value for key, value in args.items() if value}

    @property
    def active(self) -> bool:
        return bool(set(self.as_args()) - {"sort"})


def _choice(args: Any, name: str, allowed: tuple[str, ...]) -> str | None:
    value = args.get(name) or None
    if value is not None and value not in allowed:
        raise FilterError(f"{name}: use one of {', '.join(allowed)}.")
    return value


def sort_key(sort: str) -> SortKey:
    """Return the keyset definition of a list sort (``name``, ``-joined``, ...)."""
    name, descending = SORTS[sort]
    column = {
        "name": Member.sort_name,
        "joined": Member.joined_at,
        "last_active": Member.last_active_at,
    }[name]
    return SortKey(
        sort, column, Member.participant_id, descending=descending, nullable=name == "last_active"
    )


def filtered_members(
    org: Org,
    filters: ListFilters,
    now: datetime | None = None,
    *,
    accounts: bool = True,
    counting: bool = False,
) -> sa.Select:
    """Return the select of the org's members that match ``filters`` (unordered).

    ``accounts=False`` leaves the participants table out when no filter needs
    it; ``counting=True`` is for a count, which has no order to keep.
    """
    now = now or utcnow()
    accounts = accounts or bool(
        filters.role or filters.status == AccountStatus.ACTIVE or filters.managed is not None
    )
    stmt = members_of(org, accounts=accounts)
    if filters.q:
        stmt = _search(stmt, filters)
    if filters.program:
        stmt = stmt.where(
            sa.exists().where(
                Membership.org_id == org.id,
                Membership.program_id == filters.program,
                Membership.participant_id == Member.participant_id,
                Membership.left_at.is_(None),
            )
        )
    if filters.role:
        stmt = stmt.where(Participant.role.in_(ROLE_FILTERS[filters.role]))
    if filters.status == AccountStatus.ACTIVE:
        stmt = stmt.where(_status_is(filters.status, now))
    elif filters.status:
        # Few accounts are suspended or deactivated: start from them (a partial
        # index each) rather than from every member.
        stmt = stmt.where(
            Member.participant_id.in_(
                sa.select(Participant.id).where(_status_is(filters.status, now))
            )
        )
    if filters.managed is True:
        stmt = stmt.where(Participant.managed_by_org_id == org.id)
    elif filters.managed is False:
        stmt = stmt.where(
            sa.or_(Participant.managed_by_org_id.is_(None), Participant.managed_by_org_id != org.id)
        )
    last_active = Member.last_active_at
    if not counting and not filters.sort.endswith("last_active"):
        # Most members match an activity filter, so reading the sort index and
        # checking each row beats collecting them all from the activity index
        # and sorting; COALESCE keeps the planner off that index.
        last_active = sa.func.coalesce(Member.last_active_at, Member.last_active_at)
    if filters.activity == "active":
        stmt = stmt.where(last_active >= now - QUIET_AFTER)
    elif filters.activity == "quiet":
        stmt = stmt.where(last_active < now - QUIET_AFTER)
    elif filters.activity == "never":
        stmt = stmt.where(last_active.is_(None))
    return stmt


def _status_is(status: str, now: datetime) -> sa.ColumnElement[bool]:
    lapsed = sa.and_(
        Participant.status == AccountStatus.SUSPENDED,
        Participant.suspended_until.is_not(None),
        Participant.suspended_until <= now,
    )
    if status == AccountStatus.ACTIVE:
        return sa.or_(Participant.status == AccountStatus.ACTIVE, lapsed)
    if status == AccountStatus.SUSPENDED:
        return sa.and_(Participant.status == AccountStatus.SUSPENDED, sa.not_(lapsed))
    return Participant.status == status


def search_words(q: str) -> list[str]:
    """Return the folded terms a search for ``q`` looks up: an email, or up to five words."""
    return _email_like(q) or sorted(set(_WORD.findall(fold(q))))[:5]


def prefix_range(word: str) -> sa.ColumnElement[bool]:
    """Return the condition that a search term starts with ``word`` (an index range)."""
    upper = word[:-1] + chr(min(ord(word[-1]) + 1, 0x10FFFF))
    return sa.and_(SearchTerm.term >= word, SearchTerm.term < upper)


def _search(stmt: sa.Select, filters: ListFilters) -> sa.Select:
    q = filters.q
    email = _email_like(q)
    words = search_words(q)
    if not words:
        return stmt
    # The list and its count share one request's filters: look the words up once.
    if "candidates" not in filters.extra:
        filters.extra["candidates"] = _candidates(words)
    driver, candidates = filters.extra["candidates"]
    if candidates is not None:
        stmt = stmt.where(Member.participant_id.in_(candidates))
    for word in words:
        if word in driver:
            continue  # every candidate matches it already
        if email:
            stmt = stmt.where(
                sa.exists().where(
                    SearchTerm.participant_id == Member.participant_id, prefix_range(word)
                )
            )
        else:
            # The member row carries the folded name (its sort key): checking a
            # word there costs no extra lookup, and the sort index even covers it.
            stmt = stmt.where(
                sa.literal(" ").concat(Member.sort_name).contains(" " + word, autoescape=True)
            )
    return stmt


def _matching(word: str) -> sa.Select:
    return sa.select(SearchTerm.participant_id).where(prefix_range(word))


def _candidates(words: list[str]) -> tuple[set[str], sa.Select | list[uuid.UUID] | None]:
    """Return the words already satisfied and the few participants that can match.

    The rarest word drives the query from the terms index. When every word is
    common, no candidates (None) are returned: the org's sort index drives the
    query and each row is checked, which finds a page quickly precisely because
    matches are common.
    """
    sizes = {
        word: db.session.scalar(
            sa.select(sa.func.count()).select_from(
                _matching(word).limit(SEARCH_DRIVER_CAP + 1).subquery()
            )
        )
        for word in words
    }
    rarest = min(words, key=lambda word: sizes[word])
    if sizes[rarest] <= SEARCH_DRIVER_CAP:
        return {rarest}, _matching(rarest)
    if len(words) > 1:
        both = sa.intersect(*(_matching(word) for word in words)).subquery()
        found = db.session.scalars(sa.select(both.c[0]).limit(SEARCH_DRIVER_CAP + 1)).all()
        if len(found) <= SEARCH_DRIVER_CAP:
            return set(words), list(found)
    return set(), None


def _email_like(q: str) -> list[str]:
    # "maria.garcia@ac" is one term (the email), not the words "maria", "garcia", "ac".
    q = fold(q.strip())
    return [q] if ("@" in q or "." in q) and " " not in q else []


def search_is_broad(filters: ListFilters) -> bool:
    """Return whether the search matched too many accounts to look them up one by one."""
    return bool(filters.q) and filters.extra.get("candidates", (None, []))[1] is None


@dataclass(frozen=True)
class MemberRow:
    Member: Member
    Participant: Participant


def list_members(org: Org, filters: ListFilters, cursor: str | None, limit: int) -> Page:
    """Return one page of the org's members matching ``filters``, in the filters' order.

    The page is found on the members table alone (the participants table joins
    only when a filter reads it), then the page's accounts load in one query.
    """
    stmt = filtered_members(org, filters, accounts=False).with_only_columns(Member)
    sort = sort_key(filters.sort)
    column = sort.column.key
    page = paginate(
        stmt,
        sort,
        cursor,
        limit,
        key_of=lambda row: (getattr(row.Member, column), row.Member.participant_id),
    )
    ids = [row.Member.participant_id for row in page.rows]
    accounts = {
        p.id: p for p in db.session.scalars(sa.select(Participant).where(Participant.id.in_(ids)))
    }
    rows = [MemberRow(row.Member, accounts[row.Member.participant_id]) for row in page.rows]
    return Page(rows, page.next_cursor, page.prev_cursor)


def count_members(org: Org, filters: ListFilters, cap: int) -> tuple[int, bool]:
    """Return how many members match, counting no further than ``cap``; and whether capped."""
    inner = filtered_members(org, filters, accounts=False, counting=True)
    if search_is_broad(filters):
        # A word as common as "jo": counting a thousand matches means checking
        # tens of thousands of rows; a smaller "more than" keeps typing fast.
        cap = min(cap, BROAD_COUNT_CAP)
    inner = inner.with_only_columns(Member.participant_id).limit(cap + 1)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(inner.subquery())) or 0
    return min(count, cap), count > cap


def programs_by_participant(
    org: Org, participant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Program]]:
    """Return each participant's current programs in this org."""
    result: dict[uuid.UUID, list[Program]] = {pid: [] for pid in participant_ids}
    if not participant_ids:
        return result
    rows = db.session.execute(
        sa.select(Membership.participant_id, Program)
        .join(Program, Program.id == Membership.program_id)
        .where(
            Membership.org_id == org.id,
            Membership.participant_id.in_(participant_ids),
            Membership.left_at.is_(None),
        )
        .order_by(Program.name)
    ).all()
    for participant_id, program in rows:
        result[participant_id].append(program)
    return result


def memberships_in(org: Org, participant: Participant) -> list[Membership]:
    """Return the participant's memberships in this org's programs, current first."""
    return list(
        db.session.scalars(
            sa.select(Membership)
            .where(Membership.org_id == org.id, Membership.participant_id == participant.id)
            .order_by(Membership.left_at.is_not(None), Membership.joined_at.desc())
        )
    )


def relationships_of(participant: Participant) -> list[MentoringRelationship]:
    """Return the participant's mentoring relationships, newest first."""
    return list(
        db.session.scalars(
            sa.select(MentoringRelationship)
            .where(
                sa.or_(
                    MentoringRelationship.mentor_id == participant.id,
                    MentoringRelationship.mentee_id == participant.id,
                )
            )
            .order_by(MentoringRelationship.requested_at.desc())
        )
    )


def recent_activity(participant: Participant, limit: int = 20) -> list[ActivityEvent]:
    """Return the participant's latest activity events."""
    return list(
        db.session.scalars(
            sa.select(ActivityEvent)
            .where(ActivityEvent.participant_id == participant.id)
            .order_by(ActivityEvent.occurred_at.desc())
            .limit(limit)
        )
    )


def names_of(participant_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Return the names of the given participants."""
    if not participant_ids:
        return {}
    rows = db.session.execute(
        sa.select(Participant.id, Participant.name).where(Participant.id.in_(participant_ids))
    )
    return {row.id: row.name for row in rows}


def member_ids(org: Org, participant_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Return which of ``participant_ids`` are members of the org."""
    if not participant_ids:
        return set()
    return set(
        db.session.scalars(
            sa.select(Member.participant_id).where(
                Member.org_id == org.id, Member.participant_id.in_(participant_ids)
            )
        )
    )


class ParticipantError(ValueError):
    """A participant that cannot be created or changed as asked; the message says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EmailTaken(ParticipantError):
    """The email already belongs to an account: provisioning never takes one over."""


def create_participant(
    actor: Any,
    email: str | None,
    name: str,
    *,
    password: str | None = None,
    role: str = ParticipantRole.ENTREPRENEUR,
    org: Org | None = None,
    program: Program | None = None,
    managed: bool = False,
    joined_via: str | None = None,
    email_verified: bool = True,
) -> Participant:
    """Create an account, optionally as a member (and managed account) of ``org``."""
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise ParticipantError("A name must have 1 to 200 characters.", "name")
    if role not in ParticipantRole.__members__.values():
        raise ParticipantError("role: use mentor, entrepreneur or both.", "role")
    if email is not None:
        try:
            email = checked_email(email)
        except EmailError as error:
            raise ParticipantError(str(error), "email") from None
        if db.session.scalar(sa.select(Participant.id).where(Participant.email == email)):
            raise EmailTaken(f"An account with the email {email} already exists.", "email")
    if password is not None and (problem := password_problem(password)):
        raise ParticipantError(problem, "password")
    if managed and org is None:
        raise ParticipantError("Only an org can manage an account: give the org.")
    now = utcnow()
    participant = Participant(
        email=email,
        email_verified=email_verified and email is not None,
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
        created_at=now,
    )
    participant.profile = Profile()
    if managed and org is not None:
        participant.managed_by_org_id = org.id
        participant.managed_since = now
    db.session.add(participant)
    db.session.flush()
    index_participant(participant)
    audit.record(
        actor,
        "participant.created",
        org=org,
        target=participant,
        details={"email": audit.mask_email(email), "managed": managed},
    )
    if org is not None:
        via = joined_via or (JoinedVia.PROVISIONED if managed else JoinedVia.SELF_IDENTIFIED)
        add_member(actor, org, participant, program=program, joined_via=via)
    return participant


def provision_participant(
    actor: Any,
    org: Org,
    email: str,
    name: str,
    *,
    password: str | None = None,
    role: str = ParticipantRole.ENTREPRENEUR,
    program: Program | None = None,
) -> Participant:
    """Create a new account that ``org`` manages, as the API (and SCIM) provision one.

    An email that already belongs to an account is a conflict (``EmailTaken``):
    provisioning never takes over an account. This is the one place that
    decides it, so the claim through a verified domain belongs here too: an
    unmanaged account with a confirmed address in one of the org's verified
    (not lapsed) domains is claimed instead, and returned as it is (its name and
    password stay its own; ``claims.open_claim`` says whether the claim waits
    for a notice period).
    """
    try:
        email = checked_email(email)
    except EmailError as error:
        raise ParticipantError(str(error), "email") from None
    existing = db.session.scalar(sa.select(Participant).where(Participant.email == email))
    if existing is not None:
        return _claim_instead(actor, org, existing)
    try:
        with db.session.begin_nested():
            return create_participant(
                actor,
                email,
                name,
                password=password,
                role=role,
                org=org,
                program=program,
                managed=True,
                joined_via=JoinedVia.PROVISIONED,
                email_verified=True,
            )
    except sa.exc.IntegrityError:
        # Another request took the email between the check and the insert.
        raise EmailTaken(f"An account with the email {email} already exists.", "email") from None


def _claim_instead(actor: Any, org: Org, existing: Participant) -> Participant:
    taken = EmailTaken(f"An account with the email {existing.email} already exists.", "email")
    if existing.managed_by_org_id is not None:
        raise taken
    result = claims.claim_existing_account(actor, org, existing)
    if result is None:
        raise taken
    if result.ok or (result.claim is not None and result.claim.org_id == org.id):
        return existing
    raise EmailTaken(
        f"An account with the email {existing.email} already exists and cannot be claimed: "
        f"{result.detail}",
        "email",
    )


def add_member(
    actor: Any,
    org: Org,
    participant: Participant,
    *,
    program: Program | None = None,
    joined_via: str = JoinedVia.SELF_IDENTIFIED,
    role: str | None = None,
) -> Membership:
    """Make ``participant`` a member of ``org``, in ``program`` when given."""
    now = utcnow()
    member = db.session.get(Member, (org.id, participant.id))
    if member is None:
        member = Member(
            org_id=org.id,
            participant_id=participant.id,
            joined_at=now,
            joined_via=joined_via,
            sort_name=sort_name_for(participant.name),
            last_active_at=participant.last_active_at,
        )
        db.session.add(member)
    membership = Membership(
        org_id=org.id,
        participant_id=participant.id,
        program_id=program.id if program else None,
        role=role or participant.role,
        joined_at=now,
        joined_via=joined_via,
    )
    db.session.add(membership)
    db.session.flush()
    rollups.sync_member(org, participant.id)
    audit.record(
        actor,
        "participant.joined",
        org=org,
        target=participant,
        details={"program": program.name if program else None, "via": joined_via},
    )
    return membership


def note_activity(participant: Participant, at: datetime) -> None:
    """Move the participant's last-active time forward to ``at`` (never backwards)."""
    if participant.last_active_at is not None and participant.last_active_at >= at:
        return
    participant.last_active_at = at
    db.session.execute(
        sa.update(Member).where(Member.participant_id == participant.id).values(last_active_at=at)
    )
