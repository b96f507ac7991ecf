"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand in one place: the API is small, and a library would need the
same schemas spelled out again. A test checks it against every route.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from console.models import EventType
from console.models import Profile
from console.models.participants import PROFILE_FIELDS
from console.services.control import NUMBER_RANGES
from console.services.control import URL_FIELDS

PROBLEM_JSON = "application/problem+json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _list_of(item: str) -> dict[str, Any]:
    return _object(
        {
            "data": {"type": "array", "items": _ref(item)},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
        ["data", "next_cursor"],
    )


DATE_TIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}


def _profile_properties() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for field in PROFILE_FIELDS:
        if field in NUMBER_RANGES:
            low, high = NUMBER_RANGES[field]
            schema: dict[str, Any] = {"type": "integer", "minimum": low}
            if high is not None:
                schema["maximum"] = high
            else:
                schema["description"] = "A year, up to the current one."
        else:
            schema = {"type": "string"}
            length = getattr(Profile.__table__.c[field].type, "length", None)
            schema["maxLength"] = length or 5000
            if field in URL_FIELDS:
                schema["format"] = "uri"
            if field == "country":
                schema["pattern"] = "^[A-Za-z]{2}$"
                schema["description"] = "ISO 3166-1 alpha-2 code."
        properties[field] = _nullable(schema)
    return properties


def _schemas() -> dict[str, Any]:
    program = _object({"id": UUID, "name": {"type": "string"}}, ["id", "name"])
    participant_properties = {
        "id": UUID,
        "email": {"type": ["string", "null"], "format": "email"},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["mentor", "entrepreneur", "both"]},
        "status": {
            "type": "string",
            "enum": ["active", "suspended", "deactivated"],
            "description": "Effective status: a suspension whose end has passed is active.",
        },
        "suspended_until": {**DATE_TIME, "type": ["string", "null"]},
        "restricted": {"type": "boolean"},
        "must_reset_password": {"type": "boolean"},
        "managed": {"type": "boolean", "description": "Whether this org manages the account."},
        "managed_by": {
            "type": ["string", "null"],
            "description": "Slug of the org that manages the account, if any.",
        },
        "programs": {"type": "array", "items": _ref("Program")},
        "joined_at": {
            **DATE_TIME,
            "type": ["string", "null"],
            "description": "When the account joined the org; null for an account that is not "
            "a member (yet): the claimable list, a claim in its notice period.",
        },
        "last_active_at": {**DATE_TIME, "type": ["string", "null"]},
    }
    required = list(participant_properties)
    claim = _object(
        {
            "status": {"type": "string", "enum": ["pending", "effective"]},
            "domain": {"type": "string"},
            "effective_at": {
                **DATE_TIME,
                "description": "When the claim took effect, or takes effect after its notice.",
            },
        },
        ["status", "domain", "effective_at"],
    )
    return {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": {"type": "string", "format": "uri-reference"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": _ref("FieldError")},
            },
            "required": ["type", "title", "status"],
        },
        "FieldError": {
            "type": "object",
            "description": "One invalid field (a body member or a query parameter).",
            "properties": {
                "field": {"type": ["string", "null"]},
                "detail": {"type": "string"},
                "pointer": {"type": "string", "description": "JSON pointer into the body."},
                "parameter": {"type": "string", "description": "The query parameter."},
            },
            "required": ["field", "detail"],
        },
        "Program": program,
        "ProgramList": _list_of("Program"),
        "Participant": _object(participant_properties, required),
        "ParticipantWithPendingEmail": _object(
            {**participant_properties, "pending_email": {"type": "string", "format": "email"}},
            [*required, "pending_email"],
        ),
        "ParticipantList": _list_of("Participant"),
        "Claim": claim,
        "ParticipantClaimed": _object(
            {
                **participant_properties,
                "claimed": {"type": "boolean", "const": True},
                "claim": _ref("Claim"),
            },
            [*required, "claimed", "claim"],
        ),
        "Domain": _object(
            {
                "domain": {
                    "type": "string",
                    "description": "Lower case, IDNA (ASCII) form, no trailing dot.",
                },
                "status": {
                    "type": "string",
                    "enum": ["pending", "verified", "lapsed", "failed"],
                    "description": (
                        "pending: never checked; failed: the last check did not find the "
                        "record; verified: found (or verified by platform staff); lapsed: "
                        "the record went missing for the grace period, no new claims."
                    ),
                },
                "txt_name": {"type": "string", "examples": ["_partner-console.acme.example"]},
                "txt_value": {
                    "type": "string",
                    "examples": ["partner-console-verification=3q2-7wEx…"],
                },
                "verified_at": {**DATE_TIME, "type": ["string", "null"]},
                "include_subdomains": {"type": "boolean"},
            },
            ["domain", "status", "txt_name", "txt_value", "verified_at", "include_subdomains"],
        ),
        "DomainList": _list_of("Domain"),
        "DomainCreate": _object(
            {"domain": {"type": "string", "maxLength": 300, "examples": ["acme.example"]}},
            ["domain"],
        ),
        "ClaimRequest": _object(
            {
                "emails": {
                    "type": "array",
                    "items": {"type": "string", "format": "email"},
                    "minItems": 1,
                    "maxItems": 500,
                },
                "all": {
                    "type": "boolean",
                    "const": True,
                    "description": "Claim the next batch (200) of every claimable account.",
                },
            }
        ),
        "ClaimResult": _object(
            {
                "email": {"type": "string"},
                "status": {
                    "type": "string",
                    "enum": ["claimed", "pending", "already_claimed", "refused"],
                    "description": (
                        "claimed: managed now; pending: told, takes effect after the notice "
                        "period; already_claimed: nothing to do; refused: see detail."
                    ),
                },
                "participant_id": {**UUID, "type": ["string", "null"]},
                "effective_at": {**DATE_TIME, "type": ["string", "null"]},
                "detail": {"type": "string"},
            },
            ["email", "status", "participant_id", "effective_at", "detail"],
        ),
        "ClaimResults": _object(
            {
                "results": {"type": "array", "items": _ref("ClaimResult")},
                "remaining": {
                    "type": "integer",
                    "description": 'Accounts still claimable; repeat {"all": true} until 0.',
                },
            },
            ["results", "remaining"],
        ),
        "ParticipantCreate": _object(
            {
                "email": {"type": "string", "format": "email", "maxLength": 320},
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "program": {**UUID, "type": ["string", "null"]},
                "password": {
                    "type": ["string", "null"],
                    "minLength": 12,
                    "maxLength": 1024,
                    "writeOnly": True,
                },
                "role": {"type": "string", "enum": ["mentor", "entrepreneur", "both"]},
            },
            ["email", "name"],
        ),
        "ParticipantPatch": _object(
            {
                "email": {
                    "type": "string",
                    "format": "email",
                    "description": "Starts an email change that the new address must confirm.",
                },
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "role": {"type": "string", "enum": ["mentor", "entrepreneur", "both"]},
                **_profile_properties(),
            }
        ),
        "Suspension": _object(
            {
                "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                "until": {
                    "type": ["string", "null"],
                    "description": (
                        "ISO 8601 time with an offset, or a date (the suspension ends as "
                        "that day begins in the org's time zone). In the future."
                    ),
                },
            },
            ["reason"],
        ),
        "Empty": _object({}),
        "Export": {
            "type": "object",
            "description": "Everything the console holds about the participant for this org.",
            "properties": {
                "exported_at": DATE_TIME,
                "account": {"type": "object"},
                "profile": {"type": "object"},
                "memberships": {"type": "array", "items": {"type": "object"}},
                "relationships": {"type": "array", "items": {"type": "object"}},
                "activity": {"type": "array", "items": {"type": "object"}},
                "audit": {"type": "array", "items": {"type": "object"}},
            },
            "required": [
                "exported_at",
                "account",
                "profile",
                "memberships",
                "relationships",
                "activity",
                "audit",
            ],
        },
        "AuditEvent": _object(
            {
                "id": UUID,
                "at": DATE_TIME,
                "actor": _object(
                    {
                        "type": {
                            "type": "string",
                            "description": "admin, staff, participant, token, cli or system",
                        },
                        "id": {"type": ["string", "null"]},
                        "name": {"type": ["string", "null"]},
                    },
                    ["type", "id", "name"],
                ),
                "action": {"type": "string", "examples": ["participant.suspended"]},
                "target": _object(
                    {"type": {"type": ["string", "null"]}, "id": {"type": ["string", "null"]}},
                    ["type", "id"],
                ),
                "details": {
                    "type": "object",
                    "description": "As stored: secrets redacted, personal data masked or sealed.",
                },
                "ip": {"type": ["string", "null"]},
                "request_id": {"type": ["string", "null"]},
            },
            ["id", "at", "actor", "action", "target", "details", "ip", "request_id"],
        ),
        "AuditEventList": _list_of("AuditEvent"),
        **_report_schemas(),
    }


EVENT_DATA = (
    'Per type: message_sent `{"count": 1-100000, "relationship_id"?}`; session_logged '
    '`{"minutes": 1-1440, "relationship_id"?}`; feedback_given `{"rating": 1-5, '
    '"relationship_id"}`; outcome_reported `{"jobs": >= 0, "revenue": number >= 0, '
    '"currency": three letters}`; mentor_request_* `{"relationship_id"?}`; the others none. '
    "Unknown fields are refused, and so is any `text`, `body`, `content` or `message` field "
    "anywhere: message content never reaches the console."
)


def _report_schemas() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    ratio = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    return {
        "Event": _object(
            {
                "id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 100,
                    "description": "The platform's id; sending it again changes nothing.",
                },
                "type": {"type": "string", "enum": [t.value for t in EventType]},
                "participant_id": UUID,
                "occurred_at": {
                    **DATE_TIME,
                    "description": "ISO 8601 with an offset; at most 5 minutes in the future.",
                },
                "data": {"type": ["object", "null"], "description": EVENT_DATA},
            },
            ["id", "type", "participant_id", "occurred_at"],
        ),
        "EventBatch": _object(
            {"events": {"type": "array", "maxItems": 1000, "items": _ref("Event")}}, ["events"]
        ),
        "EventResult": _object(
            {
                "id": {
                    "type": ["string", "integer", "null"],
                    "description": "The event's id as sent (null when it had none).",
                },
                "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                "detail": {"type": "string", "description": "Why it was rejected."},
            },
            ["id", "status"],
        ),
        "EventResults": _object(
            {
                "results": {
                    "type": "array",
                    "items": _ref("EventResult"),
                    "description": "One per event, in the order sent.",
                }
            },
            ["results"],
        ),
        "ReportSummary": _object(
            {
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date"},
                "members": {**count, "description": "Members at the end of `to`."},
                "active_members": {
                    **count,
                    "description": "Members with at least one event in the range.",
                },
                "new_members": {**count, "description": "Members who joined in the range."},
                "mentor_requests": {**count, "description": "mentor_request_sent events."},
                "requests_accepted": {**count, "description": "mentor_request_accepted events."},
                "acceptance_rate": {
                    **ratio,
                    "description": "requests_accepted / mentor_requests (at most 1); "
                    "null when no request was sent.",
                },
                "active_relationships": {
                    **count,
                    "description": "Mentoring relationships whose mentor or mentee was in the "
                    "scope when it started, started by `to` and not ended before `from`.",
                },
                "sessions": {**count, "description": "session_logged events."},
                "messages": {**count, "description": "The sum of message_sent counts."},
                "average_rating": {
                    "type": ["number", "null"],
                    "minimum": 1,
                    "maximum": 5,
                    "description": "Mean feedback rating; null without feedback.",
                },
                "jobs_reported": {**count, "description": "The sum of outcome_reported jobs."},
                "revenue_reported": {
                    "type": "number",
                    "minimum": 0,
                    "description": "The sum of outcome_reported revenue, as reported.",
                },
            },
            [
                "from",
                "to",
                "members",
                "active_members",
                "new_members",
                "mentor_requests",
                "requests_accepted",
                "acceptance_rate",
                "active_relationships",
                "sessions",
                "messages",
                "average_rating",
                "jobs_reported",
                "revenue_reported",
            ],
        ),
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _parameters() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "id": {
            "name": "id",
            "in": "path",
            "required": True,
            "description": "The participant's id; only the org's members are found.",
            "schema": UUID,
        },
        "domain": {
            "name": "domain",
            "in": "path",
            "required": True,
            "description": "One of the org's domains (any case; Unicode or IDNA form).",
            "schema": text,
        },
        "claimable_q": _query(
            "q", "Search: the start of any word of the name, or of the email.", text
        ),
        "cursor": _query("cursor", "The `next_cursor` of the previous page.", text),
        "limit": _query(
            "limit",
            "Items per page.",
            {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        ),
        "q": _query("q", "Search: the start of any word of the name, or of the email.", text),
        "program": _query("program", "Members of this program (its id).", UUID),
        "role": _query(
            "role",
            "mentor and entrepreneur include both.",
            {"type": "string", "enum": ["mentor", "entrepreneur", "both"]},
        ),
        "status": _query(
            "status",
            "Effective status.",
            {"type": "string", "enum": ["active", "suspended", "deactivated"]},
        ),
        "managed": _query(
            "managed", "Managed by this org, or not.", {"type": "string", "enum": ["true", "false"]}
        ),
        "activity": _query(
            "activity",
            "active: seen in the last 30 days; quiet: not since; never: no activity.",
            {"type": "string", "enum": ["active", "quiet", "never"]},
        ),
        "sort": _query(
            "sort",
            "Order; a leading - reverses it.",
            {
                "type": "string",
                "enum": ["name", "-name", "joined", "-joined", "last_active", "-last_active"],
                "default": "name",
            },
        ),
        "action": _query(
            "action",
            "An action (participant.suspended) or a prefix ending in .* (participant.*).",
            text,
        ),
        "actor": _query("actor", "The actor's id (an administrator, token or participant).", text),
        "target": _query("target", "The target's id (e.g. a participant id).", text),
        "from": _query(
            "from", "From this date (in the org's time zone) or ISO 8601 time, inclusive.", text
        ),
        "to": _query(
            "to", "Up to this date (in the org's time zone) or ISO 8601 time, inclusive.", text
        ),
        "report_from": _query(
            "from",
            "First day (YYYY-MM-DD, in the org's time zone), inclusive; default 29 days "
            "before `to`.",
            {"type": "string", "format": "date"},
        ),
        "report_to": _query(
            "to",
            "Last day (YYYY-MM-DD, in the org's time zone), inclusive; default today. "
            "At most 3,660 days after `from`.",
            {"type": "string", "format": "date"},
        ),
        "report_program": _query(
            "program", "Only this program's members (its id); default the whole org.", UUID
        ),
    }


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}


def _responses() -> dict[str, Any]:
    unauthorized = _problem("No usable token: missing, unknown, expired or revoked.")
    unauthorized["headers"] = {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="api"'}
    }
    return {
        "Unauthorized": unauthorized,
        "Forbidden": _problem("The token lacks the scope this operation needs."),
        "NotFound": _problem("No such participant among this org's members."),
        "DomainNotFound": _problem("No such domain in this organization."),
        "DomainConflict": _problem(
            "Another org has verified the domain, the org already has it, or the domain is "
            "not verified (or has lapsed) and grants no claims."
        ),
        "Conflict": _problem(
            "The org does not manage the account, or its state or the email conflicts."
        ),
        "Invalid": _problem(
            "Invalid JSON, unknown or missing fields, or invalid values (`errors`)."
        ),
        "TooLarge": _problem("The body is larger than the console accepts."),
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _operation(
    operation_id: str,
    summary: str,
    scope: str,
    ok: dict[str, Any],
    *,
    parameters: tuple[str, ...] = (),
    body: str | None = None,
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    responses = {**ok, "401": {"$ref": "#/components/responses/Unauthorized"}}
    responses["403"] = {"$ref": "#/components/responses/Forbidden"}
    codes = {"404": "NotFound", "409": "Conflict", "413": "TooLarge", "422": "Invalid"}
    if body:
        errors = (*errors, "413", "422")
    for code in sorted(set(errors)):
        responses[code] = {"$ref": f"#/components/responses/{codes[code]}"}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"Scope: `{scope}`.",
        "security": [{"bearerAuth": [scope]}],
        "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in parameters],
        "responses": responses,
    }
    if body:
        operation["requestBody"] = {
            "required": body != "Empty",
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


def _domain_operation(
    operation_id: str, summary: str, ok: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    operation = _operation(operation_id, summary, "domains:write", ok, **kwargs)
    responses = operation["responses"]
    if "404" in responses:
        responses["404"] = {"$ref": "#/components/responses/DomainNotFound"}
    if "409" in responses:
        responses["409"] = {"$ref": "#/components/responses/DomainConflict"}
    return operation


ACTIONS = {
    "unsuspend": "Lift a suspension.",
    "restrict": "Stop the participant from changing or deleting profile data.",
    "unrestrict": "Let the participant edit their profile again.",
    "deactivate": "Terminate access (sessions end); the data is kept.",
    "reactivate": "Give a deactivated account its access back.",
    "require-password-reset": (
        "End every session, force a new password at the next sign-in, mail a reset link."
    ),
    "send-reset-link": "Mail a single-use, expiring link to set a new password.",
    "revoke-sessions": "Sign the participant out everywhere.",
}


def _paths() -> dict[str, Any]:
    read, write = "participants:read", "participants:write"
    participant = _json("Participant", "The participant.")
    filters = ("q", "program", "role", "status", "managed", "activity", "sort", "cursor", "limit")
    paths: dict[str, Any] = {
        "/participants": {
            "get": _operation(
                "list_participants",
                "List the org's members (search, filters, sort, cursor).",
                read,
                {"200": _json("ParticipantList", "One page of members.")},
                parameters=filters,
                errors=("422",),
            ),
            "post": _operation(
                "create_participant",
                "Provision a new managed account (member of the org, email confirmed).",
                write,
                {
                    "201": {
                        **participant,
                        "description": "Created.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "200": _json(
                        "ParticipantClaimed",
                        "An unmanaged account with this email exists, in one of the org's "
                        "verified domains: it was claimed and is managed now (its name and "
                        "password stay its own). Otherwise an existing email is a 409.",
                    ),
                    "202": _json(
                        "ParticipantClaimed",
                        "As 200, but the org has a notice period: the participant is told and "
                        "the claim takes effect at `claim.effective_at`.",
                    ),
                },
                body="ParticipantCreate",
                errors=("409",),
            ),
        },
        "/participants/{id}": {
            "get": _operation(
                "show_participant",
                "Read one member (the view is audited).",
                read,
                {"200": participant},
                parameters=("id",),
                errors=("404",),
            ),
            "patch": _operation(
                "edit_participant",
                "Change profile fields, name, role; an email change waits for confirmation (202).",
                write,
                {
                    "200": participant,
                    "202": _json(
                        "ParticipantWithPendingEmail",
                        "Other changes applied; the new email waits for its confirmation link.",
                    ),
                },
                parameters=("id",),
                body="ParticipantPatch",
                errors=("404", "409"),
            ),
        },
        "/participants/{id}/suspend": {
            "post": _operation(
                "suspend",
                "Suspend sign-in with a reason and an optional end; sessions end.",
                write,
                {"200": participant},
                parameters=("id",),
                body="Suspension",
                errors=("404", "409"),
            )
        },
        "/participants/{id}/export": {
            "get": _operation(
                "export_participant",
                "Export everything held about a managed account (data rights; audited).",
                write,
                {"200": _json("Export", "The participant's data.")},
                parameters=("id",),
                errors=("404", "409"),
            )
        },
        "/programs": {
            "get": _operation(
                "list_programs",
                "List the org's programs.",
                read,
                {"200": _json("ProgramList", "Every program (one page).")},
            )
        },
        "/audit": {
            "get": _operation(
                "list_audit",
                "List the org's audit events, newest first.",
                "audit:read",
                {"200": _json("AuditEventList", "One page of events.")},
                parameters=("action", "actor", "target", "from", "to", "cursor", "limit"),
                errors=("422",),
            )
        },
        "/domains": {
            "get": _domain_operation(
                "list_domains",
                "List the org's domains with the TXT record each must publish.",
                {"200": _json("DomainList", "Every domain (one page).")},
            ),
            "post": _domain_operation(
                "add_domain",
                "Add a domain to verify (refused: malformed, public mailbox providers, a domain "
                "another org verified).",
                {"201": _json("Domain", "Added, pending: publish the record, then verify.")},
                body="DomainCreate",
                errors=("409",),
            ),
        },
        "/domains/{domain}/verify": {
            "post": _domain_operation(
                "verify_domain",
                "Look the TXT record up now; the domain comes back as the check left it.",
                {
                    "200": {
                        **_json("Domain", "Checked (see `status`)."),
                        "headers": {
                            "Verification-Result": {
                                "schema": {
                                    "type": "string",
                                    "enum": [
                                        "found",
                                        "nxdomain",
                                        "no_record",
                                        "wrong_value",
                                        "timeout",
                                        "error",
                                    ],
                                },
                                "description": (
                                    "What the look-up found: a name that does not exist "
                                    "(nxdomain), no TXT record, another value, or no answer "
                                    "(timeout, error: nothing changes)."
                                ),
                            }
                        },
                    }
                },
                parameters=("domain",),
                body="Empty",
                errors=("404", "409"),
            )
        },
        "/domains/{domain}/claimable": {
            "get": _domain_operation(
                "list_claimable",
                "List the unmanaged accounts with a confirmed email in the verified domain "
                "(subdomains only when the domain includes them), by email.",
                {"200": _json("ParticipantList", "One page of claimable accounts.")},
                parameters=("domain", "claimable_q", "cursor", "limit"),
                errors=("404", "409", "422"),
            )
        },
        "/domains/{domain}/claims": {
            "post": _domain_operation(
                "claim_accounts",
                "Claim accounts by email, or the next batch of all; safe to repeat. Claims take "
                "effect at once unless the org set a notice period.",
                {"200": _json("ClaimResults", "What happened to each account.")},
                parameters=("domain",),
                body="ClaimRequest",
                errors=("404", "409"),
            )
        },
        "/reports/summary": {
            "get": _operation(
                "report_summary",
                "The dashboard's figures for a range of days (and a program).",
                "reports:read",
                {"200": _json("ReportSummary", "The figures.")},
                parameters=("report_from", "report_to", "report_program"),
                errors=("422",),
            )
        },
        "/events": {
            "post": {
                **_operation(
                    "ingest_events",
                    "Store a batch of up to 1,000 activity events from the platform.",
                    "events:write",
                    {"200": _json("EventResults", "One result per event.")},
                    body="EventBatch",
                ),
                "description": (
                    "Scope: `events:write`, on a platform token (`token create --platform`). "
                    "Idempotent by event id: an id already stored, or repeated in the batch, "
                    "is `duplicate` and changes nothing. Each event is checked on its own; a "
                    "rejected one does not stop the others. Events count in the reports of "
                    "the orgs and programs the participant belonged to when they happened."
                ),
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    for action, summary in ACTIONS.items():
        paths[f"/participants/{{id}}/{action}"] = {
            "post": _operation(
                action.replace("-", "_"),
                summary,
                write,
                {"200": participant},
                parameters=("id",),
                body="Empty",
                errors=("404", "409"),
            )
        }
    return paths


@cache
def document() -> dict[str, Any]:
    """Return the OpenAPI document (built once)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Partner Console API",
            "version": "1.0.0",
            "description": (
                "Act on your organization's participants, read its audit trail, verify its "
                "email domains and claim the accounts that use them. "
                "Authenticate with an org token: `Authorization: Bearer pc_…` "
                "(`flask --app console token create --org SLUG --scope …`). "
                "Errors are RFC 9457 problem documents (`application/problem+json`)."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "An org API token (pc_…); its scopes decide what it may do. Event "
                        "ingest takes a platform token instead."
                    ),
                }
            },
            "schemas": _schemas(),
            "parameters": _parameters(),
            "responses": _responses(),
        },
    }
