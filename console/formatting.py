"""How dates, numbers and statuses read on a page: locale-aware, in the org's time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask_babel import format_date
from flask_babel import format_datetime
from flask_babel import format_decimal
from flask_babel import format_timedelta
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from console.models import ActivityEvent
from console.models.base import utcnow
from console.models.participants import ENTREPRENEUR_FIELDS
from console.models.participants import MENTOR_FIELDS
from console.models.participants import PRIVATE_FIELDS
from console.models.participants import PUBLIC_FIELDS
from console.permissions import Permission

HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"

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
    return format_date(value, "medium") if value else "—"


def ago(value: datetime | None) -> str:
    """Return how long ago ``value`` was ("3 days ago"), or "never"."""
    if value is None:
        return _("never")
    return format_timedelta(value - utcnow(), add_direction=True, granularity="minute")


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


def org_nav() -> list[tuple[str, str, Permission]]:
    """Return the org areas as (endpoint, label, permission needed)."""
    return [("participants.index", _("Participants"), Permission.VIEW_PARTICIPANTS)]


def template_filters() -> dict[str, Callable[..., Any]]:
    """Return the filters every template may use."""
    return {"when": when, "day": day, "ago": ago, "number": number}


def template_globals() -> dict[str, Any]:
    """Return the globals every template may use."""
    return {
        "Permission": Permission,
        "HTMX_SRI": HTMX_SRI,
        "get_locale": get_locale,
        "org_nav": org_nav,
        "field_label": _label(FIELD_LABELS),
        "role_label": _label(ROLE_LABELS),
        "status_label": _label(STATUS_LABELS),
        "joined_label": _label(JOINED_LABELS),
        "relationship_label": _label(RELATIONSHIP_LABELS),
        "event_label": _label(EVENT_LABELS),
        "event_summary": event_summary,
        "PUBLIC_FIELDS": PUBLIC_FIELDS,
        "MENTOR_FIELDS": MENTOR_FIELDS,
        "ENTREPRENEUR_FIELDS": ENTREPRENEUR_FIELDS,
        "PRIVATE_FIELDS": PRIVATE_FIELDS,
    }
