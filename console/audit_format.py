"""How the audit trail reads: a sentence per event, its changes, the filter choices, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from markupsafe import escape

from console.formatting import FIELD_LABELS
from console.formatting import JOINED_LABELS
from console.formatting import ROLE_LABELS
from console.formatting import day
from console.formatting import when
from console.models import AuditEvent
from console.services.audit import ACTIONS
from console.services.audit import PLATFORM_ONLY
from console.services.audit import TrailFilters
from console.services.audit import TrailPage

AREA_LABELS = {
    "participant": (_l("Participants"), _l("Any participant action")),
    "admin": (_l("Administrators"), _l("Any administrator action")),
    "org": (_l("Organization and programs"), _l("Any organization or program action")),
    "domain": (_l("Domains"), _l("Any domain action")),
    "sso": (_l("Single sign-on"), _l("Any single sign-on action")),
    "token": (_l("API tokens"), _l("Any API token action")),
    "scim": (_l("Provisioning (SCIM)"), _l("Any provisioning action")),
    "audit": (_l("Audit trail"), _l("Any audit trail action")),
    "platform": (_l("Platform"), _l("Any platform action")),
}
ACTION_LABELS = {
    "participant.viewed": _l("Profile viewed"),
    "participant.created": _l("Account created"),
    "participant.joined": _l("Joined a program"),
    "participant.profile_updated": _l("Profile edited"),
    "participant.suspended": _l("Suspended"),
    "participant.unsuspended": _l("Suspension lifted"),
    "participant.restricted": _l("Editing restricted"),
    "participant.unrestricted": _l("Editing allowed again"),
    "participant.deactivated": _l("Deactivated"),
    "participant.reactivated": _l("Reactivated"),
    "participant.removed_from_program": _l("Removed from a program"),
    "participant.password_reset_required": _l("Password reset required"),
    "participant.reset_link_sent": _l("Reset link sent"),
    "participant.sessions_revoked": _l("Signed out everywhere"),
    "participant.email_change_started": _l("Email change started"),
    "participant.email_change_cancelled": _l("Email change cancelled"),
    "participant.email_changed": _l("Email changed"),
    "participant.email_change_requested": _l("Email change requested"),
    "participant.email_change_approved": _l("Email change approved"),
    "participant.email_change_denied": _l("Email change denied"),
    "participant.release_requested": _l("Release requested"),
    "participant.released": _l("Released"),
    "participant.release_declined": _l("Release declined"),
    "participant.exported": _l("Data exported"),
    "participant.erased": _l("Erased"),
    "participant.claim_announced": _l("Claim announced"),
    "participant.claimed": _l("Claimed through a domain"),
    "participant.claim_dropped": _l("Claim dropped"),
    "org.claim_notice_changed": _l("Claim notice period changed"),
    "domain.added": _l("Domain added"),
    "domain.checked": _l("Domain checked"),
    "domain.verified": _l("Domain verified"),
    "domain.verified_by_hand": _l("Domain verified by hand"),
    "domain.updated": _l("Domain options changed"),
    "domain.lapsed": _l("Domain lapsed"),
    "domain.restored": _l("Domain restored"),
    "domain.accounts_released": _l("Accounts released (domain lapsed)"),
    "domain.removed": _l("Domain removed"),
    "admin.added": _l("Administrator added"),
    "admin.role_changed": _l("Role changed"),
    "admin.signed_in": _l("Signed in"),
    "admin.signed_out": _l("Signed out"),
    "admin.sign_in_failed": _l("Sign-in failed"),
    "admin.totp_enabled": _l("Second factor set up"),
    "admin.role_removed": _l("Role removed"),
    "sso.connection_created": _l("Single sign-on set up"),
    "sso.connection_changed": _l("Single sign-on changed"),
    "sso.connection_removed": _l("Single sign-on removed"),
    "sso.discovery_checked": _l("Identity provider discovery fetched"),
    "sso.tested": _l("Single sign-on tested"),
    "sso.signed_in": _l("Signed in through single sign-on"),
    "sso.sign_in_failed": _l("Single sign-on refused"),
    "sso.identity_linked": _l("Identity provider account linked"),
    "sso.email_updated": _l("Email updated by the identity provider"),
    "sso.break_glass_used": _l("Break-glass password sign-in"),
    "org.created": _l("Organization created"),
    "program.created": _l("Program created"),
    "program.renamed": _l("Program renamed"),
    "program.deleted": _l("Program deleted"),
    "scim.user_created": _l("Provisioned"),
    "scim.user_updated": _l("Provisioned attributes changed"),
    "scim.user_deleted": _l("No longer provisioned"),
    "scim.group_updated": _l("Group attributes changed"),
    "token.created": _l("Token created"),
    "token.revoked": _l("Token revoked"),
    "audit.viewed": _l("Trail viewed"),
    "audit.exported": _l("Trail exported"),
    "staff.created": _l("Staff account created"),
    "demo.seeded": _l("Demo data seeded"),
}
# What the actor did, with the target and the event's details in their places.
SENTENCES = {
    "participant.viewed": _l("viewed the profile of %(target)s"),
    "participant.viewed/private": _l("viewed the profile of %(target)s, private details included"),
    "participant.created": _l("created the account of %(target)s"),
    "participant.joined": _l("added %(target)s to %(program)s (%(via)s)"),
    "participant.joined/none": _l("added %(target)s as a member (%(via)s)"),
    "participant.profile_updated": _l("edited the profile of %(target)s: %(fields)s"),
    "participant.suspended": _l("suspended %(target)s — reason: %(reason)s"),
    "participant.suspended/until": _l("suspended %(target)s until %(until)s — reason: %(reason)s"),
    "participant.unsuspended": _l("lifted the suspension of %(target)s"),
    "participant.restricted": _l("restricted profile editing for %(target)s"),
    "participant.unrestricted": _l("let %(target)s edit their profile again"),
    "participant.deactivated": _l("deactivated %(target)s"),
    "participant.reactivated": _l("reactivated %(target)s"),
    "participant.removed_from_program": _l("removed %(target)s from %(program)s"),
    "participant.password_reset_required": _l("required %(target)s to reset their password"),
    "participant.reset_link_sent": _l("sent %(target)s a password reset link"),
    "participant.sessions_revoked": _l("signed %(target)s out everywhere"),
    "participant.email_change_started": _l(
        "started changing the email of %(target)s from %(before)s to %(after)s"
    ),
    "participant.email_changed": _l("changed the email of %(target)s from %(before)s to %(after)s"),
    "participant.email_change_cancelled": _l("cancelled the pending email change of %(target)s"),
    "participant.email_change_requested": _l(
        "asked to change the email of %(target)s to %(email)s"
    ),
    "participant.email_change_approved": _l("approved the email change %(target)s asked for"),
    "participant.email_change_denied": _l("denied the email change %(target)s asked for"),
    "participant.release_requested": _l(
        "asked the organization to stop managing the account of %(target)s"
    ),
    "participant.released": _l("stopped managing the account of %(target)s (%(reason)s)"),
    "participant.release_declined": _l("declined to stop managing the account of %(target)s"),
    "participant.exported": _l("exported the data of %(target)s"),
    "participant.erased": _l("erased the account of %(target)s"),
    "participant.claim_announced": _l(
        "told %(target)s that the claim through %(domain)s takes effect on %(until)s"
    ),
    "participant.claimed": _l("took over the account of %(target)s through %(domain)s"),
    "participant.claim_dropped": _l(
        "dropped the claim on the account of %(target)s through %(domain)s (%(reason)s)"
    ),
    "org.claim_notice_changed": _l(
        "changed the claim notice period from %(before)s to %(after)s days"
    ),
    "domain.added": _l("added the domain %(domain)s"),
    "domain.checked": _l("checked the DNS record of %(domain)s: %(result)s"),
    "domain.verified": _l("verified %(domain)s by its DNS record"),
    "domain.verified_by_hand": _l("verified %(domain)s by hand — reason: %(reason)s"),
    "domain.updated": _l("changed the options of %(domain)s"),
    "domain.lapsed": _l("marked %(domain)s as lapsed: its DNS record went missing"),
    "domain.restored": _l("restored %(domain)s: its DNS record is back"),
    "domain.accounts_released": _l(
        "released %(released)s accounts claimed through %(domain)s (%(reason)s)"
    ),
    "domain.removed": _l("removed the domain %(domain)s"),
    "admin.added": _l("gave %(target)s the role %(role)s"),
    "admin.role_changed": _l("changed the role of %(target)s from %(before)s to %(after)s"),
    "admin.signed_in": _l("signed in (%(method)s)"),
    "admin.signed_out": _l("signed out"),
    "admin.sign_in_failed": _l("failed to sign in (%(reason)s)"),
    "admin.totp_enabled": _l("set up a second factor"),
    "admin.role_removed": _l("removed the role %(role)s from %(target)s"),
    "sso.connection_created": _l("set up single sign-on through %(issuer)s"),
    "sso.connection_changed": _l("changed the single sign-on connection"),
    "sso.connection_removed": _l("removed single sign-on through %(issuer)s"),
    "sso.discovery_checked": _l("fetched the discovery document of %(issuer)s: %(result)s"),
    "sso.tested": _l("tested single sign-on: %(result)s"),
    "sso.signed_in": _l("signed in through single sign-on as %(role)s"),
    "sso.sign_in_failed": _l("refused a sign-in through single sign-on (%(reason)s)"),
    "sso.identity_linked": _l("linked %(target)s to an account at the identity provider"),
    "sso.email_updated": _l("changed the email of %(target)s from %(before)s to %(after)s"),
    "sso.break_glass_used": _l("signed in with a password while single sign-on is enforced"),
    "org.created": _l("created the organization %(name)s"),
    "program.created": _l("created the program %(name)s"),
    "program.renamed": _l("renamed the program %(before)s to %(after)s"),
    "program.deleted": _l("deleted the program %(name)s, which %(members)s members left"),
    "scim.user_created": _l("provisioned %(target)s"),
    "scim.user_updated": _l("changed what it provisions about %(target)s: %(fields)s"),
    "scim.user_deleted": _l("stopped provisioning %(target)s"),
    "scim.group_updated": _l("changed the group %(target)s: %(fields)s"),
    "token.created": _l("created the API token %(target)s (%(scopes)s)"),
    "token.revoked": _l("revoked the API token %(target)s"),
    "audit.viewed": _l("viewed the audit trail"),
    "audit.viewed/filtered": _l("viewed the audit trail, filtered by %(filters)s"),
    "audit.exported": _l("exported the audit trail as CSV"),
    "audit.exported/filtered": _l("exported the audit trail as CSV, filtered by %(filters)s"),
    "staff.created": _l("made %(target)s platform staff"),
    "demo.seeded": _l("seeded demo data (%(participants)s participants)"),
    "*": _l("%(action)s %(target)s"),
}
DETAIL_LABELS = {
    "reason": _l("Reason"),
    "until": _l("Until"),
    "status": _l("Status"),
    "restricted": _l("Editing restricted"),
    "fields": _l("Fields"),
    "private_fields": _l("Private fields"),
    "email": _l("Email"),
    "program": _l("Program"),
    "program_name": _l("Program"),
    "via": _l("How"),
    "managed": _l("Managed"),
    "request": _l("Request"),
    "role": _l("Role"),
    "method": _l("Method"),
    "scopes": _l("Scopes"),
    "expires_at": _l("Expires"),
    "filters": _l("Filters"),
    "first_page": _l("First page"),
    "private_values": _l("Private values shown"),
    "scim_id": _l("SCIM id"),
    "external_id": _l("External id"),
    "members": _l("Members"),
}
ACTOR_KIND_LABELS = {
    "tokens": _l("Any API token"),
    "participants": _l("Participants themselves"),
    "staff": _l("Platform staff"),
    "system": _l("System and command line"),
}
TARGET_LABELS = {
    "participant": _l("participant"),
    "admin": _l("administrator"),
    "api_token": _l("API token"),
    "program": _l("program"),
    "org": _l("organization"),
    "domain": _l("domain"),
}
CSV_HEADER = (
    "at",
    "event_id",
    "seq",
    "actor_type",
    "actor_id",
    "actor_name",
    "actor_role",
    "action",
    "description",
    "target_type",
    "target_id",
    "target_name",
    "ip",
    "request_id",
    "details",
)
# A spreadsheet runs a cell that starts like a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class AuditRow:
    """One event of the trail, formatted once in Python rather than in Jinja."""

    id: str
    when: str
    when_iso: str
    org_name: str | None
    who: str
    who_role: str
    who_url: str | None
    what: Markup
    ip: str
    request_id: str
    changes: list[Change]
    facts: list[tuple[str, str]]
    # None (nothing sealed), "shown", "erased" (key destroyed) or "hidden" (role may not see)
    sealed: str | None
    sealed_changes: list[Change]
    target_url: str | None


def audit_rows(
    page: TrailPage,
    *,
    show_private: bool,
    list_url: Callable[..., str],
    member_url: Callable[[str], str] | None = None,
    org_names: dict[Any, str] | None = None,
) -> list[AuditRow]:
    """Return the page's events ready to print.

    ``list_url(**filters)`` links to the trail filtered to an actor or a target;
    ``member_url(participant_id)`` links a target who is a member of the org.
    """
    rows = []
    sentences = translated_sentences()
    for event in page.events:
        target_id = event.target_id or ""
        link = None
        if member_url is not None and event.target_type == "participant":
            link = member_url(target_id) if target_id in page.members else None
        sealed, sealed_changes = _sealed(event, page, show_private)
        changes, facts = detail_lines(event.details)
        who, role = actor_label(event)
        rows.append(
            AuditRow(
                id=str(event.id),
                when=when(event.at),
                when_iso=event.at.isoformat(),
                org_name=org_names.get(event.org_id) if org_names is not None else None,
                who=who,
                who_role=role,
                who_url=_actor_url(event, list_url),
                what=describe(event, _target_name(event, page), link, sentences=sentences),
                ip=event.ip or "",
                request_id=event.request_id or "",
                changes=changes,
                facts=facts,
                sealed=sealed,
                sealed_changes=sealed_changes,
                target_url=list_url(target=target_id)
                if event.target_type == "participant" and target_id
                else None,
            )
        )
    return rows


def actor_label(event: AuditEvent) -> tuple[str, str]:
    """Return who acted and in what capacity: ("Ana Ruiz", "Owner")."""
    name = event.actor_name or ""
    if event.actor_type == "token":
        return _("API token “%(name)s”", name=name), _("API token")
    if event.actor_type == "staff":
        return name, _("platform staff")
    if event.actor_type == "participant":
        return name, _("participant")
    if event.actor_type == "system":
        return _("System"), name
    if event.actor_type == "cli":
        return _("Command line"), name
    if not event.actor_role:
        return name, _("administrator")
    return name, str(ROLE_LABELS.get(event.actor_role, event.actor_role))


def _actor_url(event: AuditEvent, list_url: Callable[..., str]) -> str | None:
    if event.actor_type == "admin" and event.actor_id:
        return list_url(actor=f"admin:{event.actor_id}")
    if event.actor_type == "token" and event.actor_id:
        return list_url(actor=f"token:{event.actor_id}")
    kind = {"staff": "staff", "participant": "participants", "system": "system", "cli": "system"}
    return list_url(actor=kind[event.actor_type]) if event.actor_type in kind else None


def _target_name(event: AuditEvent, page: TrailPage) -> str:
    if not event.target_type:
        return ""
    name = page.names.get((event.target_type, event.target_id or ""))
    if name:
        return name
    kind = str(TARGET_LABELS.get(event.target_type, event.target_type))
    return f"{kind} {(event.target_id or '')[:8]}"


def translated_sentences() -> dict[str, str]:
    """Return the sentence templates in the request's language (once per list, not per row)."""
    return {key: str(template) for key, template in SENTENCES.items()}


def describe(
    event: AuditEvent,
    target: str,
    link: str | None = None,
    html: bool = True,
    sentences: dict[str, str] | None = None,
) -> Any:
    """Return what the actor did, as a sentence: Markup (target linked) or plain text."""
    sentences = sentences or translated_sentences()
    details = event.details if isinstance(event.details, dict) else {}
    key, params = _sentence(event.action, details)
    template: Any = sentences.get(key) or sentences["*"]
    params.setdefault("action", event.action)
    shown: Any = target
    if html:
        shown = Markup('<a href="{}">{}</a>').format(link, target) if link else escape(target)
        template = Markup(escape(template))
    try:
        return template % {"target": shown, **params}
    except (KeyError, TypeError, ValueError):
        # A translation that names a placeholder this event lacks: say it plainly.
        fallback = Markup(escape(sentences["*"])) if html else sentences["*"]
        return fallback % {"target": shown, "action": event.action}


def _sentence(action: str, details: dict[str, Any]) -> tuple[str, dict[str, str]]:
    def get(name: str) -> str:
        return show(details.get(name))

    def change(name: str) -> dict[str, str]:
        value = details.get(name)
        value = value if isinstance(value, dict) else {}
        return {"before": show(value.get("before")), "after": show(value.get("after"))}

    if action == "participant.viewed":
        return (action + "/private" if details.get("private_fields") else action), {}
    if action == "participant.joined":
        via = str(JOINED_LABELS.get(details.get("via") or "", get("via")))
        if details.get("program"):
            return action, {"program": get("program"), "via": via}
        return action + "/none", {"via": via}
    if action == "participant.profile_updated":
        fields = details.get("fields") or []
        return action, {"fields": ", ".join(field_label(f) for f in fields) or "—"}
    if action == "participant.suspended":
        params = {"reason": get("reason")}
        if details.get("until"):
            params["until"] = _day_of(details["until"])
            return action + "/until", params
        return action, params
    if action == "participant.removed_from_program":
        return action, {"program": get("program_name")}
    if action in ("participant.email_change_started", "participant.email_changed"):
        return action, change("email")
    if action == "participant.email_change_requested":
        return action, {"email": get("email")}
    if action == "participant.released":
        return action, {"reason": get("reason")}
    if action.startswith("domain.") or action.startswith("participant.claim"):
        return action, {name: get(name) for name in ("domain", "result", "reason", "released")} | {
            "until": _day_of(details["until"]) if details.get("until") else "—"
        }
    if action == "org.claim_notice_changed":
        return action, change("claim_notice_days")
    if action == "admin.added":
        return action, {"role": role_label(details.get("role"))}
    if action == "admin.role_changed":
        value = details.get("role") if isinstance(details.get("role"), dict) else {}
        return action, {
            "before": role_label(value.get("before")),
            "after": role_label(value.get("after")),
        }
    if action in ("admin.signed_in", "admin.sign_in_failed"):
        return action, {"method": get("method"), "reason": get("reason")}
    if action == "admin.role_removed":
        return action, {"role": role_label(details.get("role"))}
    if action.startswith("sso."):
        issuer = details.get("issuer")
        if isinstance(issuer, dict):
            issuer = issuer.get("after")
        params = {"issuer": show(issuer), "result": get("result"), "reason": get("reason")}
        return action, params | {"role": role_label(details.get("role"))} | change("email")
    if action in ("org.created", "program.created"):
        return action, {"name": get("name")}
    if action == "program.renamed":
        return action, change("name")
    if action == "program.deleted":
        return action, {"name": get("name"), "members": get("members")}
    if action in ("scim.user_updated", "scim.group_updated"):
        return action, {"fields": ", ".join(str(f) for f in details.get("fields") or []) or "—"}
    if action == "token.created":
        return action, {"scopes": get("scopes")}
    if action in ("audit.viewed", "audit.exported"):
        filters = details.get("filters")
        if isinstance(filters, dict) and filters:
            return action + "/filtered", {"filters": show(filters)}
        return action, {}
    if action == "demo.seeded":
        return action, {"participants": get("participants")}
    return action, {}


def _sealed(
    event: AuditEvent, page: TrailPage, show_private: bool
) -> tuple[str | None, list[Change]]:
    if not isinstance(event.details, dict) or "sealed" not in event.details:
        return None, []
    if not show_private:
        return "hidden", []
    data = page.unsealed.get(event.id)
    if data is None:
        return "erased", []
    changes, facts = detail_lines(data)
    return "shown", changes + [Change(label, value, "") for label, value in facts]


def detail_lines(details: Any) -> tuple[list[Change], list[tuple[str, str]]]:
    """Split event details into changed fields (before → after) and plain facts."""
    changes: list[Change] = []
    facts: list[tuple[str, str]] = []
    if not isinstance(details, dict):
        return changes, facts
    for key, value in details.items():
        if key == "sealed":
            continue
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            changes.append(Change(detail_label(key), show(value["before"]), show(value["after"])))
        elif key in ("fields", "private_fields") and isinstance(value, list):
            facts.append((detail_label(key), ", ".join(field_label(f) for f in value) or "—"))
        else:
            facts.append((detail_label(key), show(value)))
    return changes, facts


def show(value: Any) -> str:
    """Return a detail value as words."""
    if value is None or value == "":
        return "—"
    if value is True:
        return _("yes")
    if value is False:
        return _("no")
    if isinstance(value, list):
        return ", ".join(show(item) for item in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {show(item)}" for key, item in value.items()) or "—"
    return str(value)


def detail_label(key: str) -> str:
    """Return the label of a detail key."""
    label = DETAIL_LABELS.get(key) or FIELD_LABELS.get(key)
    return str(label) if label else key.replace("_", " ").capitalize()


def field_label(name: Any) -> str:
    """Return the label of a profile field."""
    return str(FIELD_LABELS.get(str(name), name))


def role_label(role: Any) -> str:
    """Return the label of an administrator role."""
    return str(ROLE_LABELS.get(str(role), role)) if role else "—"


def _day_of(value: Any) -> str:
    try:
        return day(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


# -- filter choices ------------------------------------------------------------------------


def action_options(platform: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the action filter's groups: per area, "all of the area" then each action.

    An org's trail never holds platform events, so they are offered to staff only.
    """
    groups = []
    for area, actions in ACTIONS.items():
        shown = [a for a in actions if platform or a not in PLATFORM_ONLY]
        if not shown:
            continue
        label, any_label = AREA_LABELS[area]
        options = [(f"{area}.*", str(any_label))]
        options += [(action, str(ACTION_LABELS.get(action, action))) for action in shown]
        groups.append((str(label), options))
    return groups


def actor_kind_options() -> list[tuple[str, str]]:
    """Return the actor filter's kinds (tokens, participants, staff, system)."""
    return [(value, str(label)) for value, label in ACTOR_KIND_LABELS.items()]


# -- CSV ----------------------------------------------------------------------------------


def csv_safe(value: Any) -> Any:
    """Defuse a cell a spreadsheet would run as a formula, by prefixing a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_chunks(pages: Iterator[TrailPage], filters: TrailFilters) -> Iterator[str]:
    """Yield the CSV export: a header, then one chunk of rows per page of events."""
    zone = ZoneInfo(filters.time_zone)
    sentences = translated_sentences()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    # The byte order mark lets spreadsheets read the accents in names as UTF-8.
    buffer.write("\ufeff")
    writer.writerow(CSV_HEADER)
    yield drain(buffer)
    for page in pages:
        for event in page.events:
            writer.writerow(csv_safe(cell) for cell in _csv_row(event, page, zone, sentences))
        yield drain(buffer)


def _csv_row(
    event: AuditEvent, page: TrailPage, zone: ZoneInfo, sentences: dict[str, str]
) -> list[Any]:
    target = _target_name(event, page)
    details = dict(event.details) if isinstance(event.details, dict) else {}
    if "sealed" in details:
        # Exports leave the trail: sealed personal data stays sealed, so erasure still works.
        details["sealed"] = "[sealed]"
    return [
        event.at.astimezone(zone).isoformat(timespec="seconds"),
        str(event.id),
        event.seq,
        event.actor_type,
        event.actor_id or "",
        event.actor_name or "",
        event.actor_role or "",
        event.action,
        describe(event, target, html=False, sentences=sentences),
        event.target_type or "",
        event.target_id or "",
        target if event.target_type else "",
        event.ip or "",
        event.request_id or "",
        json.dumps(details, ensure_ascii=False, sort_keys=True, default=str),
    ]


def drain(buffer: io.StringIO) -> str:
    """Return what was written to ``buffer`` and empty it (for streamed CSV)."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text
