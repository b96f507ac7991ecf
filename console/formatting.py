"""How dates, numbers and statuses read on a page: locale-aware, in the org's time zone."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from typing import Any

from babel import dates as babel_dates
from flask_babel import format_datetime
from flask_babel import format_decimal
from flask_babel import get_locale
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from markupsafe import Markup
from markupsafe import escape

from console.models import ActivityEvent
from console.models.base import utcnow
from console.models.participants import ENTREPRENEUR_FIELDS
from console.models.participants import MENTOR_FIELDS
from console.models.participants import PRIVATE_FIELDS
from console.models.participants import PUBLIC_FIELDS
from console.permissions import Permission
from console.services.mail import external_url

HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
CHART_SRI = "sha384-Emf5ZVIUiarAdhkgtqK+5/Z5qIvM6QoVrS+qAVtfyZVuD5lIHrac0me485+Antp0"

FIELD_LABELS = {
    "headline": _l("Headline"),
    "bio": _l("About"),
    "city": _l("City"),
    "country": _l("Country"),
    "languages": _l("Languages"),
    "website": _l("Website"),
    "linkedin_url": _l("LinkedIn"),
    "expertise": _l("Expertise"),
    "mentor_industries": _l("Industries"),
    "years_experience": _l("Years of experience"),
    "mentee_capacity": _l("Mentees at a time"),
    "business_name": _l("Business name"),
    "business_stage": _l("Stage"),
    "business_industry": _l("Industry"),
    "founded_year": _l("Founded"),
    "employees": _l("Employees"),
    "business_website": _l("Business website"),
    "needs": _l("Looking for help with"),
    "phone": _l("Phone"),
    "birth_year": _l("Year of birth"),
    "gender": _l("Gender"),
    "postal_code": _l("Postal code"),
    "education_level": _l("Education"),
}
ROLE_LABELS = {
    "mentor": _l("Mentor"),
    "entrepreneur": _l("Entrepreneur"),
    "both": _l("Mentor and entrepreneur"),
    "owner": _l("Owner"),
    "admin": _l("Admin"),
    "support": _l("Support"),
    "analyst": _l("Analyst"),
}
STATUS_LABELS = {
    "active": _l("active"),
    "suspended": _l("suspended"),
    "deactivated": _l("deactivated"),
}
JOINED_LABELS = {
    "invited": _l("invited"),
    "self_identified": _l("joined themselves"),
    "claimed": _l("claimed through a verified domain"),
    "provisioned": _l("provisioned by the org"),
}
DOMAIN_STATUS_LABELS = {
    "pending": _l("pending"),
    "verified": _l("verified"),
    "lapsed": _l("lapsed"),
    "failed": _l("not found"),
}
CLAIM_STATUS_LABELS = {
    "pending": _l("notice period"),
    "effective": _l("managed"),
    "dropped": _l("dropped"),
    "released": _l("released"),
}
# What administrators of the org that manages an account may do (the privacy
# policy's list): the account page and the claim mails say the same.
CONTROL_POWERS = (
    _l(
        "require you to set a new password: you are signed out everywhere and choose a new one "
        "at your next sign-in;"
    ),
    _l("send you a link to set a new password (they never see or choose your password);"),
    _l("suspend your access, with a reason and perhaps an end date, and lift the suspension;"),
    _l("restrict your ability to change or delete your profile information, and lift it;"),
    _l(
        "deactivate your account, or remove you from their programs (your data is kept as the "
        "retention rules say);"
    ),
    _l("see the information in and about your account;"),
    _l("change the email address of your account (both addresses are told);"),
    _l("change your profile information;"),
    _l("export your data, or erase your account for good."),
)
RELATIONSHIP_LABELS = {
    "requested": _l("requested"),
    "active": _l("active"),
    "ended": _l("ended"),
    "declined": _l("declined"),
}
EVENT_LABELS = {
    "signed_in": _l("Signed in"),
    "profile_updated": _l("Updated their profile"),
    "mentor_request_sent": _l("Asked for a mentor"),
    "mentor_request_received": _l("Received a mentoring request"),
    "mentor_request_accepted": _l("Accepted a mentoring request"),
    "mentor_request_declined": _l("Declined a mentoring request"),
    "message_sent": _l("Sent messages"),
    "session_logged": _l("Logged a mentoring session"),
    "feedback_given": _l("Gave feedback"),
    "outcome_reported": _l("Reported a business outcome"),
    "survey_completed": _l("Completed a survey"),
}


def when(value: datetime | None, style: str = "medium") -> str:
    """Return a date and time in the org's time zone, or an em dash."""
    return format_datetime(value, style) if value else "—"


def day(value: datetime | None) -> str:
    """Return a date in the org's time zone, or an em dash."""
    if value is None:
        return "—"
    return _day(value.astimezone(get_timezone()).date(), str(get_locale()))


def ago(value: datetime | None) -> str:
    """Return how long ago ``value`` was ("3 days ago"), or "never"."""
    if value is None:
        return _("never")
    seconds = (value - utcnow()).total_seconds()
    # Babel rounds to the largest unit that fits, so beyond an hour the minutes
    # cannot change the words: cache on a coarser bucket.
    bucket = int(seconds // 60) if abs(seconds) < 3600 else int(seconds // 3600) * 60
    return _ago(bucket, str(get_locale()))


# Lists format hundreds of dates a page; Babel takes tens of microseconds a call.
@lru_cache(maxsize=4096)
def _day(value: date, locale: str) -> str:
    return babel_dates.format_date(value, "medium", locale=locale)


@lru_cache(maxsize=4096)
def _ago(minutes: int, locale: str) -> str:
    return babel_dates.format_timedelta(
        timedelta(minutes=minutes), add_direction=True, granularity="minute", locale=locale
    )


def country_name(code: str | None) -> str:
    """Return the country an ISO 3166 code names, in the current locale."""
    if not code:
        return ""
    return get_locale().territories.get(code.upper(), code)


def number(value: int | float | None) -> str:
    """Return a number grouped the locale's way."""
    return "—" if value is None else format_decimal(value)


def _label(labels: dict[str, Any]) -> Callable[[str | None], str]:
    def label(value: str | None) -> str:
        return str(labels.get(value or "", value or ""))

    return label


def event_summary(event: ActivityEvent) -> str:
    """Return the facts an activity event carries, in words."""
    data = event.data or {}
    if event.type == "message_sent" and "count" in data:
        return ngettext("%(num)s message", "%(num)s messages", int(data["count"]))
    if event.type == "session_logged" and "minutes" in data:
        return _("%(minutes)s minutes", minutes=data["minutes"])
    if event.type == "feedback_given" and "rating" in data:
        return _("rated %(rating)s of 5", rating=data["rating"])
    if event.type == "outcome_reported":
        return _(
            "%(jobs)s jobs, revenue %(revenue)s %(currency)s",
            jobs=data.get("jobs", 0),
            revenue=format_decimal(data.get("revenue") or 0),
            currency=data.get("currency", ""),
        )
    return ""


@dataclass(frozen=True)
class ParticipantRow:
    """One line of the participant list, formatted once in Python rather than in Jinja."""

    id: str
    url: str
    name: str
    email: str | None
    role: str
    programs: str
    badges: list[tuple[str, str]]
    joined: str
    last_active: str
    last_active_iso: str


def participant_rows(
    rows: list[Any], programs: dict[Any, list[Any]], org: Any, base_url: str, show_private: bool
) -> list[ParticipantRow]:
    """Return the list's rows ready to print: labels translated once, dates cached."""
    roles = {key: str(label) for key, label in ROLE_LABELS.items()}
    statuses = {key: str(label) for key, label in STATUS_LABELS.items()}
    restricted, must_reset = _("restricted"), _("must reset password")
    managed, elsewhere = _("managed"), _("managed elsewhere")
    now = utcnow()
    result = []
    for row in rows:
        p, member = row.Participant, row.Member
        badges = []
        status = p.effective_status(now)
        if status != "active":
            badges.append((f"badge-{status}", statuses[status]))
        if p.restricted:
            badges.append(("badge-restricted", restricted))
        if p.must_reset_password:
            badges.append(("badge-reset", must_reset))
        if p.managed_by_org_id == org.id:
            badges.append(("badge-managed", managed))
        elif p.managed_by_org_id:
            badges.append(("", elsewhere))
        result.append(
            ParticipantRow(
                id=str(p.id),
                url=f"{base_url}{p.id}",
                name=p.name,
                email=p.email if show_private else None,
                role=roles.get(p.role, p.role),
                programs=", ".join(program.name for program in programs.get(p.id, [])),
                badges=badges,
                joined=day(member.joined_at),
                last_active=ago(member.last_active_at),
                last_active_iso=member.last_active_at.isoformat() if member.last_active_at else "",
            )
        )
    return result


def duration(seconds: int | float) -> str:
    """Return a length of time in words ("1 hour", "30 minutes")."""
    return babel_dates.format_timedelta(
        timedelta(seconds=seconds), threshold=1, locale=str(get_locale())
    )


_URL = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str | None) -> Markup:
    """Return plain text, escaped, with its http(s) addresses made into links."""
    text = text or ""
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        parts.append(escape(text[position : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


# What an audit event about a participant means, told to that participant.
TRAIL_ACTIONS = {
    "participant.created": _l("Created the account"),
    "participant.joined": _l("Added the account to a program"),
    "participant.viewed": _l("Viewed your profile"),
    "participant.report_viewed": _l("Viewed your activity report"),
    "participant.exported": _l("Exported your data"),
    "participant.profile_updated": _l("Changed your profile"),
    "participant.password_reset_required": _l("Required you to set a new password"),
    "participant.reset_link_sent": _l("Sent you a link to set a new password"),
    "participant.reset_link_requested": _l("Asked for a link to set a new password"),
    "participant.password_reset": _l("Set a new password with a mailed link"),
    "participant.password_changed": _l("Changed the password"),
    "participant.sessions_revoked": _l("Signed you out everywhere"),
    "participant.suspended": _l("Suspended your account"),
    "participant.unsuspended": _l("Lifted the suspension of your account"),
    "participant.restricted": _l("Restricted editing of your profile"),
    "participant.unrestricted": _l("Let you edit your profile again"),
    "participant.deactivated": _l("Deactivated your account"),
    "participant.reactivated": _l("Reactivated your account"),
    "participant.removed_from_program": _l("Removed you from a program"),
    "participant.left_program": _l("Left a program"),
    "participant.email_change_started": _l("Started a change of your email"),
    "participant.email_change_cancelled": _l("Cancelled a change of your email"),
    "participant.email_changed": _l("Changed your email"),
    "participant.email_change_requested": _l("Asked to change the email"),
    "participant.email_change_approved": _l("Approved your request to change your email"),
    "participant.email_change_denied": _l("Denied your request to change your email"),
    "participant.email_confirmed": _l("Confirmed the email address"),
    "participant.release_requested": _l("Asked to be released"),
    "participant.released": _l("Gave up control of your account"),
    "participant.release_declined": _l("Declined your request to be released"),
    "participant.erased": _l("Erased your account"),
    "participant.claim_announced": _l(
        "Announced that it will manage your account (its verified email domain)"
    ),
    "participant.claimed": _l("Took over management of your account (its verified email domain)"),
    "participant.claim_dropped": _l("Dropped its claim on your account"),
    "participant.signed_in": _l("Signed in"),
    "participant.signed_out": _l("Signed out"),
    "participant.sign_in_failed": _l("Tried to sign in, and was refused"),
    "participant.registration_repeated": _l("Tried to sign up again with your address"),
    "outbox.message_read": _l("Read a message the console sent you"),
}
TRAIL_ACTORS = {
    "staff": _l("Platform staff"),
    "token": _l("An integration (API token)"),
    "system": _l("The console, automatically"),
    "cli": _l("A platform operator"),
    "anonymous": _l("Someone not signed in"),
}
_EMAIL_ACTIONS = {
    "participant.email_change_started",
    "participant.email_changed",
    "participant.email_change_requested",
}
SIGN_IN_REFUSALS = {
    "password": _l("wrong password"),
    "unconfirmed": _l("email not confirmed yet"),
    "suspended": _l("account suspended"),
    "deactivated": _l("account deactivated"),
}


@dataclass(frozen=True)
class TrailRow:
    """One line of "who has seen or changed my account"."""

    at: datetime
    org: str | None
    who: str
    what: str


def trail_rows(rows: list[Any], participant_id: Any) -> list[TrailRow]:
    """Return audit events about a participant as that participant reads them.

    The actor is named by role only: the participant learns which org and which
    kind of administrator, never the administrator's name.
    """
    return [
        TrailRow(
            at=row.AuditEvent.at,
            org=row.org_name,
            who=_trail_who(row.AuditEvent, str(participant_id)),
            what=_trail_what(row.AuditEvent),
        )
        for row in rows
    ]


def _trail_who(event: Any, participant_id: str) -> str:
    if event.actor_type == "participant":
        return _("You") if event.actor_id == participant_id else _("Another participant")
    if event.actor_type == "admin":
        role = ROLE_LABELS.get(event.actor_role or "")
        return _("Administrator (%(role)s)", role=role) if role else _("Administrator")
    return str(TRAIL_ACTORS.get(event.actor_type, event.actor_type))


def _trail_what(event: Any) -> str:
    details = event.details or {}
    action = event.action
    label = TRAIL_ACTIONS.get(action)
    what = str(label) if label else action.partition(".")[2].replace("_", " ").capitalize()
    if action == "participant.viewed" and details.get("private_fields"):
        return _("Viewed your profile, including private details")
    if action == "participant.profile_updated" and details.get("fields"):
        names = [
            str(FIELD_LABELS.get(f) or {"name": _("name"), "role": _("role")}.get(f, f))
            for f in details["fields"]
        ]
        return _("%(what)s: %(fields)s", what=what, fields=", ".join(names))
    program = details.get("program_name") or (
        details.get("program") if action == "participant.joined" else None
    )
    if program:
        return _("%(what)s: %(program)s", what=what, program=program)
    email = details.get("email")
    if isinstance(email, dict):
        email = email.get("after")
    if email and action in _EMAIL_ACTIONS:
        return _("%(what)s to %(email)s", what=what, email=email)
    if action == "participant.sign_in_failed" and details.get("reason") in SIGN_IN_REFUSALS:
        return _("%(what)s (%(reason)s)", what=what, reason=SIGN_IN_REFUSALS[details["reason"]])
    return what


def org_nav() -> list[tuple[str, str, Permission]]:
    """Return the org areas as (endpoint, label, permission needed)."""
    return [
        ("participants.index", _("Participants"), Permission.VIEW_PARTICIPANTS),
        ("reports.index", _("Reports"), Permission.VIEW_REPORTS),
        ("requests.index", _("Requests"), Permission.MANAGE_PARTICIPANTS),
        ("audit.index", _("Audit"), Permission.VIEW_AUDIT),
        ("domains.index", _("Domains"), Permission.MANAGE_DOMAINS),
        ("sso.show", _("Single sign-on"), Permission.MANAGE_SSO),
    ]


def template_filters() -> dict[str, Callable[..., Any]]:
    """Return the filters every template may use."""
    return {
        "when": when,
        "day": day,
        "ago": ago,
        "number": number,
        "duration": duration,
        "linkify": linkify,
        "country": country_name,
    }


def template_globals() -> dict[str, Any]:
    """Return the globals every template may use."""
    return {
        "Permission": Permission,
        "HTMX_SRI": HTMX_SRI,
        "CHART_SRI": CHART_SRI,
        "get_locale": get_locale,
        "org_nav": org_nav,
        "field_label": _label(FIELD_LABELS),
        "role_label": _label(ROLE_LABELS),
        "status_label": _label(STATUS_LABELS),
        "joined_label": _label(JOINED_LABELS),
        "relationship_label": _label(RELATIONSHIP_LABELS),
        "domain_status_label": _label(DOMAIN_STATUS_LABELS),
        "claim_status_label": _label(CLAIM_STATUS_LABELS),
        "control_powers": lambda: [str(power) for power in CONTROL_POWERS],
        "event_label": _label(EVENT_LABELS),
        "event_summary": event_summary,
        "external_url": external_url,
        "PUBLIC_FIELDS": PUBLIC_FIELDS,
        "MENTOR_FIELDS": MENTOR_FIELDS,
        "ENTREPRENEUR_FIELDS": ENTREPRENEUR_FIELDS,
        "PRIVATE_FIELDS": PRIVATE_FIELDS,
    }
