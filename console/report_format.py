"""How report figures read on a page: labels, changes against the previous period, chart data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from babel import dates as babel_dates
from flask_babel import format_decimal
from flask_babel import format_percent
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from console.services.reports import Dashboard
from console.services.reports import Figures

FIGURES = (
    ("members", _l("Members"), _l("Members at the end of the period.")),
    ("active_members", _l("Active members"), _l("Members with at least one activity.")),
    ("new_members", _l("New members"), _l("Joined during the period.")),
    ("mentor_requests", _l("Mentor requests"), _l("Requests for a mentor sent.")),
    ("acceptance_rate", _l("Acceptance rate"), _l("Requests accepted per request sent.")),
    (
        "active_relationships",
        _l("Active relationships"),
        _l("Started by the end of the period and not ended before it began."),
    ),
    ("sessions", _l("Sessions logged"), _l("Mentoring sessions logged.")),
    ("messages", _l("Messages sent"), _l("Counts only: message content never reaches us.")),
    ("average_rating", _l("Average rating"), _l("Feedback ratings, 1 to 5.")),
    ("jobs_reported", _l("Jobs reported"), _l("Jobs created, as businesses reported them.")),
    ("revenue_reported", _l("Revenue reported"), _l("Summed as reported.")),
)
FUNNEL_LABELS = {
    "registered": _l("Registered"),
    "profile": _l("Profile complete"),
    "request": _l("Requested a mentor"),
    "match": _l("Matched"),
    "meeting": _l("Met their mentor"),
}
IMPACT_LABELS = {
    "members": _l("Members at the end of the period"),
    "new_members": _l("New members"),
    "active_members": _l("Active members"),
    "sessions": _l("Mentoring sessions logged"),
    "jobs": _l("Jobs reported"),
}
PRESET_LABELS = {
    "30d": _l("Last 30 days"),
    "quarter": _l("This quarter"),
    "year": _l("This year"),
    "custom": _l("Custom"),
}


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    help: str
    value: str
    change: str
    trend: str  # "up", "down" or "flat"
    previous: str


def _value(key: str, figures: Figures) -> float | int | None:
    return getattr(figures, key)


def _show(key: str, value: float | int | None) -> str:
    if value is None:
        return "—"
    if key == "acceptance_rate":
        return format_percent(value, "#,##0%")
    if key == "average_rating":
        return format_decimal(value, "#,##0.0")
    if key == "revenue_reported":
        return format_decimal(value, "#,##0.##")
    return format_decimal(value)


def _change(key: str, now: float | int | None, before: float | int | None) -> tuple[str, str]:
    if now is None or before is None:
        return _("no comparison"), "flat"
    difference = now - before
    trend = "up" if difference > 0 else "down" if difference < 0 else "flat"
    if key == "acceptance_rate":
        points = round(difference * 100)
        return _("%(points)s pts", points=f"{points:+d}"), trend
    if key == "average_rating":
        return f"{difference:+.1f}", trend
    if not difference:
        return "±0", trend
    sign = "+" if difference > 0 else "−"
    amount = _show(key, abs(difference))
    if before:
        share = format_percent(abs(difference) / abs(before), "#,##0%")
        return f"{sign}{amount} ({sign}{share})", trend
    return f"{sign}{amount}", trend


def cards(dashboard: Dashboard) -> list[Card]:
    """Return the dashboard's figures, each with its change against the previous period."""
    result = []
    for key, label, help_text in FIGURES:
        now = _value(key, dashboard.current)
        before = _value(key, dashboard.previous)
        change, trend = _change(key, now, before)
        result.append(
            Card(
                key, str(label), str(help_text), _show(key, now), change, trend, _show(key, before)
            )
        )
    return result


def _day_label(day: date, pattern: str) -> str:
    return babel_dates.format_date(day, pattern, locale=str(get_locale()))


def chart_data(dashboard: Dashboard) -> dict[str, Any]:
    """Return what the charts draw, as JSON for their data attributes."""
    weekly = dashboard.weekly_active
    outcomes = dashboard.outcomes
    outcome_pattern = "MMM y" if dashboard.monthly else "d MMM"
    return {
        "active": {
            "kind": "bar",
            "labels": [_day_label(p.start, "d MMM") for p in weekly],
            "series": [
                {"label": _("Active members"), "data": [p.values["active"] for p in weekly]}
            ],
        },
        "funnel": {
            "kind": "funnel",
            "labels": [str(FUNNEL_LABELS[step]) for step, _count in dashboard.funnel],
            "series": [
                {"label": _("Members"), "data": [count for _step, count in dashboard.funnel]}
            ],
        },
        "outcomes": {
            "kind": "outcomes",
            "labels": [_day_label(p.start, outcome_pattern) for p in outcomes],
            "series": [
                {"label": _("Jobs reported"), "data": [p.values["jobs"] for p in outcomes]},
                {"label": _("Revenue reported"), "data": [p.values["revenue"] for p in outcomes]},
            ],
        },
    }


def funnel_rows(dashboard: Dashboard) -> list[tuple[str, str, str]]:
    """Return the funnel as (step, count, share of registered) for its table."""
    registered = dashboard.funnel[0][1] if dashboard.funnel else 0
    return [
        (
            str(FUNNEL_LABELS[step]),
            format_decimal(count),
            format_percent(count / registered, "#,##0%") if registered else "—",
        )
        for step, count in dashboard.funnel
    ]


def week_label(day: date) -> str:
    return _day_label(day, "d MMM y")


def period_label(start: date, end: date) -> str:
    """Return "1 Mar 2026 – 30 Mar 2026" in the current locale."""
    return f"{_day_label(start, 'medium')} – {_day_label(end, 'medium')}"
