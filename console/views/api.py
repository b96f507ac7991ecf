"""The JSON API under ``/api/v1``: org tokens act on participants and read the audit trail.

Requests authenticate with ``Authorization: Bearer pc_…`` only, never a cookie,
so the blueprint is exempt from CSRF. Errors are RFC 9457 problem documents.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from collections.abc import Collection
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint
from flask import Response
from flask import abort
from flask import g
from flask import jsonify
from flask import request
from flask import url_for

from console import api_spec
from console.extensions import db
from console.http import BadBody
from console.http import json_object
from console.http import problem
from console.http import require_bearer
from console.models import ApiToken
from console.models import AuditEvent
from console.models import DomainClaim
from console.models import Member
from console.models import Org
from console.models import OrgDomain
from console.models import Participant
from console.models import Program
from console.models import Scope
from console.models.base import utcnow
from console.models.participants import PROFILE_FIELDS
from console.pagination import CursorError
from console.services import audit
from console.services import claims
from console.services import control
from console.services import domains
from console.services import events
from console.services import participants as service
from console.services import reports
from console.tenancy import get_member_or_404

bp = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CREATE_FIELDS = ("email", "name", "program", "password", "role")
EDIT_FIELDS = ("email", "name", "role", *PROFILE_FIELDS)


# -- authentication ----------------------------------------------------------------


def require_scope(
    scope: str, *, platform: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let the view run only with a bearer token that has ``scope`` (see ``require_bearer``)."""
    return require_bearer(scope, respond=problem, realm="api", platform=platform)


# -- errors -------------------------------------------------------------------------


class Invalid(Exception):
    """Fields or parameters that cannot be used; answered 422 with one entry each."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def field_error(field: str | None, detail: str, *, query: bool = False) -> dict[str, Any]:
    """Return one entry of a 422's ``errors``: the field, what is wrong, where it is."""
    where = {"parameter": field} if query else {"pointer": f"#/{field}" if field else "#"}
    return {"field": field, "detail": detail, **where}


def _invalid(errors: list[dict[str, Any]]) -> Response:
    db.session.rollback()
    detail = "; ".join(
        f"{e['field']}: {e['detail']}" if e["field"] else e["detail"] for e in errors
    )
    return problem(422, detail, errors=errors)


@bp.errorhandler(Invalid)
def handle_invalid(error: Invalid) -> Response:
    return _invalid(error.errors)


@bp.errorhandler(control.AccountError)
def handle_account_error(error: control.AccountError) -> Response:
    if isinstance(error, control.InvalidInput) and error.status == 422:
        return _invalid([field_error(error.field, error.message)])
    db.session.rollback()
    return problem(error.status, error.message)


@bp.errorhandler(service.ParticipantError)
def handle_participant_error(error: service.ParticipantError) -> Response:
    if isinstance(error, service.EmailTaken):
        db.session.rollback()
        return problem(409, str(error))
    message = str(error).removeprefix(f"{error.field}: ")
    return _invalid([field_error(error.field, message)])


@bp.errorhandler(service.FilterError)
def handle_filter_error(error: service.FilterError) -> Response:
    field, _, message = str(error).partition(": ")
    return _invalid([field_error(field, message, query=True)])


@bp.errorhandler(audit.FilterError)
def handle_trail_filter_error(error: audit.FilterError) -> Response:
    field, _, message = str(error).partition(": ")
    return _invalid([field_error(field, message, query=True)])


@bp.errorhandler(domains.DomainError)
def handle_domain_error(error: domains.DomainError) -> Response:
    if error.status == 422:
        return _invalid([field_error("domain", error.message)])
    db.session.rollback()
    return problem(error.status, error.message)


@bp.errorhandler(claims.ClaimError)
def handle_claim_error(error: claims.ClaimError) -> Response:
    db.session.rollback()
    return problem(error.status, error.message)


@bp.errorhandler(events.BatchError)
def handle_batch_error(error: events.BatchError) -> Response:
    field, _, message = str(error).partition(": ")
    return _invalid([field_error(field, message)])


@bp.errorhandler(reports.FilterError)
def handle_report_filter_error(error: reports.FilterError) -> Response:
    field, _, message = str(error).partition(": ")
    return _invalid([field_error(field, message, query=True)])


@bp.errorhandler(CursorError)
def handle_cursor_error(error: CursorError) -> Response:
    return _invalid([field_error("cursor", str(error), query=True)])


# -- reading requests -----------------------------------------------------------------


def json_body(allowed: Collection[str], required: Collection[str] = ()) -> dict[str, Any]:
    """Return the request's JSON object, refusing bad JSON and unknown or missing members."""
    try:
        body = json_object(empty_is_object=True)
    except BadBody as error:
        raise Invalid([field_error(None, str(error))]) from None
    errors = [field_error(key, "Unknown field.") for key in body if key not in allowed]
    errors += [field_error(key, "This field is required.") for key in required if key not in body]
    if errors:
        raise Invalid(errors)
    return body


def text(body: dict[str, Any], field: str, *, required: bool = False) -> str | None:
    """Return ``body[field]`` if it is text (or absent or null when not required)."""
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Invalid([field_error(field, "This must be a string.")])
    return value


def limit_arg() -> int:
    """Return the ``limit`` parameter (1 to 200, default 50)."""
    value = request.args.get("limit", "")
    if not value:
        return DEFAULT_LIMIT
    if not value.isdecimal() or not 1 <= int(value) <= MAX_LIMIT:
        raise Invalid(
            [field_error("limit", f"Use a whole number from 1 to {MAX_LIMIT}.", query=True)]
        )
    return int(value)


def until_value(value: Any, org: Org) -> datetime | None:
    """Return a suspension's end from an ISO 8601 time with offset, or a date.

    A date ends the suspension as that day begins in the org's time zone.
    """
    if value is None:
        return None
    problem_text = "Use an ISO 8601 time with an offset (2026-03-01T09:00:00Z) or a date."
    if not isinstance(value, str):
        raise Invalid([field_error("until", problem_text)])
    try:
        if len(value) == 10:
            start = datetime.combine(date.fromisoformat(value), time.min, ZoneInfo(org.time_zone))
            return start.astimezone(UTC)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("no offset")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid([field_error("until", problem_text)]) from None


def program_of(org: Org, value: str | None) -> Program | None:
    """Return the org's program with this id; anything else is invalid."""
    if value is None:
        return None
    try:
        wanted = uuid.UUID(value)
    except ValueError:
        wanted = None
    found = next((p for p in org.programs if p.id == wanted), None)
    if found is None:
        raise Invalid([field_error("program", "Not the id of a program of this organization.")])
    return found


# -- shapes -------------------------------------------------------------------------


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def participants_json(
    org: Org, rows: list[tuple[Member | None, Participant]]
) -> list[dict[str, Any]]:
    """Return the API's participant objects for (member, participant) rows of ``org``.

    The member is None for an account that is not (yet) the org's member, as in
    the claimable list; its ``joined_at`` is then null.
    """
    ids = [participant.id for _, participant in rows]
    programs = service.programs_by_participant(org, ids)
    managers = {p.managed_by_org_id for _, p in rows if p.managed_by_org_id}
    slugs = (
        dict(db.session.execute(sa.select(Org.id, Org.slug).where(Org.id.in_(managers))).all())
        if managers
        else {}
    )
    now = utcnow()
    result = []
    for member, participant in rows:
        status = participant.effective_status(now)
        result.append(
            {
                "id": str(participant.id),
                "email": participant.email,
                "name": participant.name,
                "role": participant.role,
                "status": status,
                # A lapsed suspension is over: the account is active and has no end date.
                "suspended_until": _when(participant.suspended_until)
                if status == "suspended"
                else None,
                "restricted": participant.restricted,
                "must_reset_password": participant.must_reset_password,
                "managed": participant.managed_by_org_id == org.id,
                "managed_by": slugs.get(participant.managed_by_org_id),
                "programs": [program.to_api() for program in programs[participant.id]],
                "joined_at": _when(member.joined_at) if member is not None else None,
                "last_active_at": _when(participant.last_active_at),
            }
        )
    return result


def participant_json(org: Org, member: Member, participant: Participant) -> dict[str, Any]:
    """Return the API's object for one participant of ``org``."""
    return participants_json(org, [(member, participant)])[0]


def event_json(event: AuditEvent) -> dict[str, Any]:
    """Return the API's object for an audit event; details stay as stored (sealed stays sealed)."""
    return {
        "id": str(event.id),
        "at": _when(event.at),
        "actor": {"type": event.actor_type, "id": event.actor_id, "name": event.actor_name},
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id},
        "details": event.details,
        "ip": event.ip,
        "request_id": event.request_id,
    }


def _respond(member: Member | None, participant: Participant, status: int = 200, **extra: Any):
    return jsonify({**participant_json(g.org, member, participant), **extra}), status


# -- participants -----------------------------------------------------------------------


@bp.get("/participants")
@require_scope(Scope.PARTICIPANTS_READ)
def list_participants():
    """List the org's members with the list page's search, filters, sort and cursor."""
    filters = service.ListFilters.from_args(request.args, g.org)
    page = service.list_members(g.org, filters, request.args.get("cursor"), limit_arg())
    rows = [(row.Member, row.Participant) for row in page.rows]
    return jsonify(data=participants_json(g.org, rows), next_cursor=page.next_cursor)


@bp.get("/participants/<uuid:id>")
@require_scope(Scope.PARTICIPANTS_READ)
def show_participant(id: uuid.UUID):
    """Return one member; the view is audited, as the detail page's is."""
    member, participant = get_member_or_404(g.org, id)
    audit.record(
        g.token,
        "participant.viewed",
        org=g.org,
        target=participant,
        details={"private_fields": False},
    )
    db.session.commit()
    return _respond(member, participant)


@bp.post("/participants")
@require_scope(Scope.PARTICIPANTS_WRITE)
def create_participant():
    """Provision a new managed account, or claim an existing one in a verified domain."""
    body = json_body(CREATE_FIELDS, required=("email", "name"))
    email, name = text(body, "email", required=True), text(body, "name", required=True)
    password, role = text(body, "password"), text(body, "role")
    program = program_of(g.org, text(body, "program"))
    participant = service.provision_participant(
        g.token,
        g.org,
        email or "",
        name or "",
        password=password,
        role="entrepreneur" if role is None else role,
        program=program,
    )
    db.session.commit()
    member = db.session.get(Member, (g.org.id, participant.id))
    # An existing account in one of the org's verified domains was claimed, not created.
    claim = claims.open_claim(participant, g.org)
    if claim is not None:
        effective = claim.status == "effective"
        response, status = _respond(
            member, participant, 200 if effective else 202, claimed=True, claim=claim_json(claim)
        )
    else:
        response, status = _respond(member, participant, 201)
    if member is not None:
        response.headers["Location"] = url_for("api.show_participant", id=participant.id)
    return response, status


@bp.patch("/participants/<uuid:id>")
@require_scope(Scope.PARTICIPANTS_WRITE)
def edit_participant(id: uuid.UUID):
    """Change profile fields, name and role at once; an email change waits for confirmation."""
    member, participant = get_member_or_404(g.org, id)
    changes = json_body(EDIT_FIELDS)
    new_email = text(changes, "email", required=True) if "email" in changes else None
    changes.pop("email", None)
    if changes or new_email is None:
        control.update_profile(g.token, g.org, participant, changes)
    if new_email is None:
        db.session.commit()
        return _respond(member, participant)
    pending = control.start_email_change(g.token, g.org, participant, new_email)
    db.session.commit()
    return _respond(member, participant, 202, pending_email=pending)


@bp.post("/participants/<uuid:id>/suspend")
@require_scope(Scope.PARTICIPANTS_WRITE)
def suspend(id: uuid.UUID):
    """Suspend sign-in with a reason and an optional end."""
    member, participant = get_member_or_404(g.org, id)
    body = json_body(("reason", "until"), required=("reason",))
    reason = text(body, "reason", required=True) or ""
    control.suspend(g.token, g.org, participant, reason, until_value(body.get("until"), g.org))
    db.session.commit()
    return _respond(member, participant)


def _act(id: uuid.UUID, action: Callable[..., Participant]):
    member, participant = get_member_or_404(g.org, id)
    json_body(())
    action(g.token, g.org, participant)
    db.session.commit()
    return _respond(member, participant)


@bp.post("/participants/<uuid:id>/unsuspend")
@require_scope(Scope.PARTICIPANTS_WRITE)
def unsuspend(id: uuid.UUID):
    """Lift a suspension."""
    return _act(id, control.unsuspend)


@bp.post("/participants/<uuid:id>/restrict")
@require_scope(Scope.PARTICIPANTS_WRITE)
def restrict(id: uuid.UUID):
    """Stop the participant from changing or deleting profile data."""
    return _act(id, control.restrict)


@bp.post("/participants/<uuid:id>/unrestrict")
@require_scope(Scope.PARTICIPANTS_WRITE)
def unrestrict(id: uuid.UUID):
    """Let the participant edit their profile again."""
    return _act(id, control.unrestrict)


@bp.post("/participants/<uuid:id>/deactivate")
@require_scope(Scope.PARTICIPANTS_WRITE)
def deactivate(id: uuid.UUID):
    """Terminate access; the data is kept."""
    return _act(id, control.deactivate)


@bp.post("/participants/<uuid:id>/reactivate")
@require_scope(Scope.PARTICIPANTS_WRITE)
def reactivate(id: uuid.UUID):
    """Give a deactivated account its access back."""
    return _act(id, control.reactivate)


@bp.post("/participants/<uuid:id>/require-password-reset")
@require_scope(Scope.PARTICIPANTS_WRITE)
def require_password_reset(id: uuid.UUID):
    """End every session and force a new password at the next sign-in."""
    return _act(id, control.require_password_reset)


@bp.post("/participants/<uuid:id>/send-reset-link")
@require_scope(Scope.PARTICIPANTS_WRITE)
def send_reset_link(id: uuid.UUID):
    """Mail a single-use link to set a new password."""
    return _act(id, control.send_reset_link)


@bp.post("/participants/<uuid:id>/revoke-sessions")
@require_scope(Scope.PARTICIPANTS_WRITE)
def revoke_sessions(id: uuid.UUID):
    """Sign the participant out everywhere."""
    return _act(id, control.revoke_sessions)


@bp.get("/participants/<uuid:id>/export")
@require_scope(Scope.PARTICIPANTS_WRITE)
def export_participant(id: uuid.UUID):
    """Return everything the console holds about a managed account (a data-rights action)."""
    _, participant = get_member_or_404(g.org, id)
    data = control.export_data(g.token, g.org, participant)
    db.session.commit()
    return jsonify(data)


# -- domains and claims --------------------------------------------------------------------


def domain_json(domain: OrgDomain) -> dict[str, Any]:
    """Return the API's object for one of the org's domains."""
    return {
        "domain": domain.domain,
        "status": domain.status,
        "txt_name": domain.txt_name,
        "txt_value": domain.txt_value,
        "verified_at": _when(domain.verified_at),
        "include_subdomains": domain.include_subdomains,
    }


def claim_json(claim: DomainClaim) -> dict[str, Any]:
    """Return the API's account of a claim: its state and when it takes (or took) effect."""
    return {
        "status": claim.status,
        "domain": claim.domain,
        "effective_at": _when(claim.effective_at or claim.notice_until),
    }


def _org_domain(name: str) -> OrgDomain:
    found = domains.find_domain(g.org, name)
    if found is None:
        abort(404, "No such domain in this organization.")
    return found


@bp.get("/domains")
@require_scope(Scope.DOMAINS_WRITE)
def list_domains():
    """List the org's domains with the record each must publish."""
    return jsonify(data=[domain_json(d) for d in domains.list_domains(g.org)], next_cursor=None)


@bp.post("/domains")
@require_scope(Scope.DOMAINS_WRITE)
def add_domain():
    """Add a domain to verify; public mailbox providers and others' verified domains are refused."""
    body = json_body(("domain",), required=("domain",))
    domain = domains.add_domain(g.token, g.org, text(body, "domain", required=True) or "")
    db.session.commit()
    return jsonify(domain_json(domain)), 201


@bp.post("/domains/<domain>/verify")
@require_scope(Scope.DOMAINS_WRITE)
def verify_domain(domain: str):
    """Look the domain's TXT record up now and return the domain as the check left it."""
    found = _org_domain(domain)
    json_body(())
    check = domains.check_domain(g.token, g.org, found)
    db.session.commit()
    response = jsonify(domain_json(found))
    response.headers["Verification-Result"] = check.lookup.outcome
    return response


@bp.get("/domains/<domain>/claimable")
@require_scope(Scope.DOMAINS_WRITE)
def list_claimable(domain: str):
    """List the unmanaged, confirmed accounts the verified domain may claim, by email."""
    found = _org_domain(domain)
    claims.require_verified(found)
    q = (request.args.get("q") or "").strip()[:200]
    page = claims.claimable_page(found, q, request.args.get("cursor"), limit_arg())
    ids = [row.Participant.id for row in page.rows]
    members = {
        member.participant_id: member
        for member in db.session.scalars(
            sa.select(Member).where(Member.org_id == g.org.id, Member.participant_id.in_(ids))
        )
    }
    rows = [(members.get(row.Participant.id), row.Participant) for row in page.rows]
    return jsonify(data=participants_json(g.org, rows), next_cursor=page.next_cursor)


@bp.post("/domains/<domain>/claims")
@require_scope(Scope.DOMAINS_WRITE)
def claim_accounts(domain: str):
    """Claim accounts by email, or the next batch of all claimable ones; safe to repeat."""
    found = _org_domain(domain)
    body = json_body(("emails", "all"))
    emails, everything = body.get("emails"), body.get("all")
    if (emails is None) == (everything is None):
        raise Invalid([field_error(None, "Give either emails (a list) or all (true).")])
    if everything is not None:
        if everything is not True:
            raise Invalid([field_error("all", "Use true, or send emails instead.")])
        results, remaining = claims.claim_batch(g.token, g.org, found, via=claims.Via.API)
    else:
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            raise Invalid([field_error("emails", "This must be a list of email addresses.")])
        if not 1 <= len(emails) <= claims.MAX_EMAILS:
            raise Invalid(
                [field_error("emails", f"Give 1 to {claims.MAX_EMAILS} addresses at a time.")]
            )
        results = claims.claim_emails(g.token, g.org, found, emails, via=claims.Via.API)
        remaining = claims.count_claimable(found)[0]
    db.session.commit()
    return jsonify(results=[_claim_result_json(result) for result in results], remaining=remaining)


def _claim_result_json(result: claims.ClaimResult) -> dict[str, Any]:
    # An account that cannot be claimed stays anonymous: its id would say it exists.
    known = result.participant is not None and result.outcome != claims.Outcome.REFUSED
    claim = result.claim if known else None
    return {
        "email": result.email,
        "status": result.outcome,
        "participant_id": str(result.participant.id) if known and result.participant else None,
        "effective_at": _when(claim.effective_at or claim.notice_until) if claim else None,
        "detail": result.detail,
    }


# -- programs, audit, description --------------------------------------------------------


@bp.get("/programs")
@require_scope(Scope.PARTICIPANTS_READ)
def list_programs():
    """List the org's programs, whose ids the participant filters and create take."""
    return jsonify(data=[program.to_api() for program in g.org.programs], next_cursor=None)


@bp.get("/audit")
@require_scope(Scope.AUDIT_READ)
def list_audit():
    """List the org's audit events, newest first, with filters and a cursor."""
    args = request.args.to_dict()
    if actor := args.get("actor"):
        args["actor"] = _trail_actor(actor.strip())
    filters = audit.TrailFilters.for_org(args, g.org)
    page = audit.read_trail(filters, request.args.get("cursor"), limit_arg())
    return jsonify(data=[event_json(event) for event in page.events], next_cursor=page.next_cursor)


def _trail_actor(actor: str) -> str:
    """Accept a bare id for ``actor``: the org's token with that id, else an administrator."""
    try:
        actor_id = uuid.UUID(actor)
    except ValueError:
        return actor  # a kind ("tokens", "participants", "staff", "system") or admin:/token:
    token = db.session.scalar(
        sa.select(ApiToken.id).where(ApiToken.id == actor_id, ApiToken.org_id == g.org.id)
    )
    return f"{'token' if token else 'admin'}:{actor_id}"


# -- reports and events ---------------------------------------------------------------------


@bp.get("/reports/summary")
@require_scope(Scope.REPORTS_READ)
def report_summary():
    """Return the dashboard's figures for inclusive org-local days and, optionally, a program."""
    filters = reports.ReportFilters.from_args(
        {key: request.args.get(key) for key in ("from", "to", "program")}, g.org
    )
    return jsonify(reports.summary(g.org, filters.scope_id, filters.period).to_api())


@bp.post("/events")
@require_scope(Scope.EVENTS_WRITE, platform=True)
def ingest_events():
    """Store a batch of platform events, idempotent by id; answer one result per event."""
    body = json_body(("events",), required=("events",))
    for attempt in range(3):
        try:
            results = events.ingest(g.token, body["events"])
            db.session.commit()
            break
        except (sa.exc.IntegrityError, sa.exc.OperationalError):
            # Another batch stored some of the same ids (or held SQLite's write
            # lock) first: run again, and those ids come back as duplicates.
            db.session.rollback()
            if attempt == 2:
                raise
    return jsonify(results=[result.to_json() for result in results])


@bp.get("/openapi.json")
def openapi():
    """Describe this API (OpenAPI 3.1); it holds no data, so it needs no token."""
    return jsonify(api_spec.document())
