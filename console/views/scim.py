"""SCIM 2.0 under ``/scim/v2`` (RFC 7643/7644): employer portals provision their people.

Requests authenticate with an org's API token that has the scope ``scim``,
sent as ``Authorization: Bearer pc_…``, never a cookie, so the blueprint is
exempt from CSRF. Users are the org's provisioned participants, groups its
programs. Errors are SCIM error messages (``application/scim+json``); the
discovery endpoints hold no data and need no token.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import request
from pydantic import ValidationError
from scim2_models import Context
from scim2_models import ForbiddenException
from scim2_models import InvalidPathException
from scim2_models import InvalidSyntaxException
from scim2_models import InvalidValueException
from scim2_models import ListResponse
from scim2_models import NotFoundException
from scim2_models import NotImplementedException
from scim2_models import PatchOp
from scim2_models import ResponseParameters
from scim2_models import SCIMException
from scim2_models import SearchRequest

from console import scim_schema
from console.extensions import db
from console.http import BadBody
from console.http import json_object
from console.http import require_bearer
from console.http import scim_error
from console.models import Scope
from console.services import control
from console.services import orgs
from console.services import participants
from console.services import scim as service

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")

SEARCH_PARAMETERS = ("filter", "startIndex", "count", "attributes", "excludedAttributes")
RESPONSE_PARAMETERS = ("attributes", "excludedAttributes")


# -- authentication and errors ---------------------------------------------------------


# Every SCIM view needs an org token with the scope ``scim`` (see ``require_bearer``).
require_token = require_bearer(Scope.SCIM, respond=scim_error, realm="scim")


@bp.errorhandler(SCIMException)
def handle_scim_exception(error: SCIMException) -> Response:
    db.session.rollback()
    return scim_error(error.status, error.detail, error.scim_type or None)


@bp.errorhandler(control.AccountError)
def handle_account_error(error: control.AccountError) -> Response:
    db.session.rollback()
    if isinstance(error, control.EmailInUse):
        return scim_error(409, error.message, "uniqueness")
    if error.status in (400, 422):
        return scim_error(400, error.message, "invalidValue")
    return scim_error(error.status, error.message)


@bp.errorhandler(participants.ParticipantError)
def handle_participant_error(error: participants.ParticipantError) -> Response:
    db.session.rollback()
    if isinstance(error, participants.EmailTaken):
        return scim_error(409, str(error), "uniqueness")
    return scim_error(400, str(error), "invalidValue")


@bp.errorhandler(orgs.OrgError)
def handle_org_error(error: orgs.OrgError) -> Response:
    db.session.rollback()
    return scim_error(400, str(error), "invalidValue")


# -- reading requests and writing responses --------------------------------------------


def body() -> Any:
    """Return the request's JSON value, refusing what is not JSON or cannot be stored."""
    try:
        return json_object()
    except BadBody as error:
        if error.syntax:
            raise InvalidSyntaxException(detail=str(error)) from None
        raise InvalidValueException(detail=str(error)) from None


def validated(model: Any, payload: Any, context: Context) -> Any:
    """Return ``payload`` read as ``model`` in a request ``context``, or raise its SCIM error."""
    try:
        with scim_schema.POLICY:
            return model.model_validate(payload, scim_ctx=context)
    except ValidationError as error:
        raise scim_schema.scim_exception(error) from None


def resource_body(kind: str, context: Context) -> Any:
    """Return the request's resource of ``kind``; a schema this service lacks is refused."""
    payload = body()
    declared = payload.get("schemas", [])
    if not isinstance(declared, list) or not all(isinstance(urn, str) for urn in declared):
        raise InvalidSyntaxException(detail="schemas must be a list of schema URIs.")
    unknown = [urn for urn in declared if urn.lower() not in scim_schema.KNOWN_SCHEMAS[kind]]
    if unknown:
        raise InvalidSyntaxException(detail=f"Unknown schema: {', '.join(unknown)}.")
    return validated(scim_schema.RESOURCE_MODELS[kind], payload, context)


def patch_body(kind: str) -> PatchOp[Any]:
    """Return the request's PATCH operations; each path must name a published attribute."""
    patch = validated(
        PatchOp[scim_schema.RESOURCE_MODELS[kind]], body(), Context.RESOURCE_PATCH_REQUEST
    )
    for operation in patch.operations or []:
        if operation.path is not None and operation.path.resolve() is None:
            raise InvalidPathException(detail=f"{operation.path} is not an attribute of a {kind}.")
    return patch


def response_parameters(kind: str) -> Any:
    """Return the ``attributes``/``excludedAttributes`` query parameters, checked."""
    args = {key: request.args[key] for key in RESPONSE_PARAMETERS if key in request.args}
    return validated(
        ResponseParameters[scim_schema.RESOURCE_MODELS[kind]], args, Context.SEARCH_REQUEST
    )


def scim_response(payload: Any, status: int = 200, location: str | None = None) -> Response:
    """Return ``payload`` as ``application/scim+json``, with its location when it has one."""
    response = current_app.json.response(payload)
    response.status_code = status
    response.mimetype = scim_schema.MEDIA_TYPE
    if location:
        response.headers["Content-Location"] = location
        if status == 201:
            response.headers["Location"] = location
    return response


def resource_response(resource: Any, context: Context, params: Any = None, status: int = 200):
    """Return one resource, dumped for ``context`` with the client's attribute selection."""
    payload = resource.model_dump(scim_ctx=context, response_parameters=params)
    return scim_response(payload, status, resource.meta.location)


def list_response(kinds: list[str], found: service.Found, start: int, search: Any) -> Response:
    """Return a ListResponse page of resources of ``kinds``, with the client's selection."""
    dumped = [
        resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=search)
        for resource in found.resources
    ]
    page = ListResponse[_model_of(kinds)](  # type: ignore[misc]
        total_results=found.total,
        start_index=start,
        items_per_page=len(dumped),
        resources=dumped,
    )
    return scim_response(page.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _model_of(kinds: list[str]) -> Any:
    """Return the model of one resource type, or the union of several (a search at the root)."""
    models = [scim_schema.RESOURCE_MODELS[kind] for kind in kinds]
    return functools.reduce(operator.or_, models)


def base_url() -> str:
    """Return the absolute URL of the SCIM root, on the configured base URL."""
    return current_app.config["BASE_URL"] + bp.url_prefix


def _no_filter() -> None:
    if "filter" in request.args:
        # RFC 7644 §4: discovery endpoints SHOULD answer a filter with 403.
        raise ForbiddenException(detail="Discovery endpoints cannot be filtered.")


# -- discovery -------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
def service_provider_config():
    """Describe what this SCIM service supports."""
    _no_filter()
    location = f"{base_url()}/ServiceProviderConfig"
    return scim_response(scim_schema.service_provider_config(location), location=location)


@bp.get("/ResourceTypes")
def resource_types():
    """List the resource types: users and groups."""
    _no_filter()
    documents = scim_schema.resource_types(f"{base_url()}/ResourceTypes")
    return scim_response(_discovery_list(documents))


@bp.get("/ResourceTypes/<id>")
def resource_type(id: str):
    """Describe one resource type."""
    _no_filter()
    documents = scim_schema.resource_types(f"{base_url()}/ResourceTypes")
    return _discovery_item(documents, id, "resource type")


@bp.get("/Schemas")
def schemas():
    """List the schemas: users', groups', and discovery's own."""
    _no_filter()
    return scim_response(_discovery_list(scim_schema.schemas(f"{base_url()}/Schemas")))


@bp.get("/Schemas/<id>")
def schema(id: str):
    """Describe one schema."""
    _no_filter()
    return _discovery_item(scim_schema.schemas(f"{base_url()}/Schemas"), id, "schema")


def _discovery_list(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(documents),
        "itemsPerPage": len(documents),
        "startIndex": 1,
        "Resources": documents,
    }


def _discovery_item(documents: list[dict[str, Any]], id: str, what: str) -> Response:
    found = next((d for d in documents if d["id"] == id), None)
    if found is None:
        raise NotFoundException(detail=f"There is no {what} {id}.")
    return scim_response(found, location=found["meta"]["location"])


# -- searching -------------------------------------------------------------------------


def search_request(kinds: list[str], payload: dict[str, Any]) -> tuple[Any, int, int]:
    """Return the checked search request, its first index and how many to answer with."""
    search = validated(SearchRequest[_model_of(kinds)], payload, Context.SEARCH_REQUEST)
    start = max(search.start_index or 1, 1)
    count = scim_schema.MAX_RESULTS if search.count is None else search.count
    return search, start, min(max(count, 0), scim_schema.MAX_RESULTS)


def run_search(kinds: list[str], payload: dict[str, Any]) -> Response:
    """Answer a search over ``kinds``: filtered, paged by index, attributes selected."""
    search, start, count = search_request(kinds, payload)
    node = search.filter.ast if search.filter is not None else None
    found = service.search(g.org, kinds, node, start, count, with_members=_wants_members(search))
    return list_response(kinds, found, start, search)


def _wants_members(params: Any) -> bool:
    def named(paths: Any) -> bool:
        return any(str(path).lower().split(":")[-1].startswith("members") for path in paths or [])

    if params.attributes:
        return named(params.attributes)
    return not named(params.excluded_attributes)


def _search_args() -> dict[str, Any]:
    return {key: request.args[key] for key in SEARCH_PARAMETERS if key in request.args}


@bp.post("/.search")
@require_token
def search():
    """Search users and groups at once (RFC 7644 §3.4.3)."""
    return run_search(["User", "Group"], body())


# -- users -----------------------------------------------------------------------------


def _user_or_404(id: str) -> Any:
    scim_user = service.find_user(g.org, id)
    if scim_user is None:
        raise NotFoundException(detail=f"There is no user {id} here.")
    return scim_user


@bp.get("/Users")
@require_token
def list_users():
    """List the org's provisioned users, filtered and paged by index."""
    return run_search(["User"], _search_args())


@bp.post("/Users/.search")
@require_token
def search_users():
    """Search the org's provisioned users with a request body."""
    return run_search(["User"], body())


@bp.post("/Users")
@require_token
def create_user():
    """Provision a new managed account, as a member of the org."""
    resource = resource_body("User", Context.RESOURCE_CREATION_REQUEST)
    scim_user = service.create_user(g.token, g.org, resource)
    db.session.commit()
    shown = service.show_user(g.org, scim_user)
    return resource_response(shown, Context.RESOURCE_CREATION_RESPONSE, status=201)


@bp.get("/Users/<id>")
@require_token
def show_user(id: str):
    """Return one provisioned user."""
    params = response_parameters("User")
    shown = service.show_user(g.org, _user_or_404(id))
    return resource_response(shown, Context.RESOURCE_QUERY_RESPONSE, params)


@bp.put("/Users/<id>")
@require_token
def replace_user(id: str):
    """Replace a user's attributes (PUT)."""
    scim_user = _user_or_404(id)
    params = response_parameters("User")
    resource = resource_body("User", Context.RESOURCE_REPLACEMENT_REQUEST)
    service.replace_user(g.token, g.org, scim_user, resource)
    db.session.commit()
    shown = service.show_user(g.org, scim_user)
    return resource_response(shown, Context.RESOURCE_REPLACEMENT_RESPONSE, params)


@bp.patch("/Users/<id>")
@require_token
def patch_user(id: str):
    """Add, replace or remove a user's attributes (RFC 7644 §3.5.2)."""
    scim_user = _user_or_404(id)
    params = response_parameters("User")
    service.patch_user(g.token, g.org, scim_user, patch_body("User"))
    db.session.commit()
    shown = service.show_user(g.org, scim_user)
    return resource_response(shown, Context.RESOURCE_PATCH_RESPONSE, params)


@bp.delete("/Users/<id>")
@require_token
def delete_user(id: str):
    """Stop provisioning the person: control is released, their memberships here end."""
    service.delete_user(g.token, g.org, _user_or_404(id))
    db.session.commit()
    return Response(status=204)


# -- groups ----------------------------------------------------------------------------


def _group_or_404(id: str) -> Any:
    program = service.find_group(g.org, id)
    if program is None:
        raise NotFoundException(detail=f"There is no group {id} here.")
    return program


@bp.get("/Groups")
@require_token
def list_groups():
    """List the org's programs as groups, filtered and paged by index."""
    return run_search(["Group"], _search_args())


@bp.post("/Groups/.search")
@require_token
def search_groups():
    """Search the org's programs with a request body."""
    return run_search(["Group"], body())


@bp.post("/Groups")
@require_token
def create_group():
    """Create a program, with the provisioned users it names as members."""
    resource = resource_body("Group", Context.RESOURCE_CREATION_REQUEST)
    program = service.create_group(g.token, g.org, resource)
    db.session.commit()
    shown = service.show_group(g.org, program)
    return resource_response(shown, Context.RESOURCE_CREATION_RESPONSE, status=201)


@bp.get("/Groups/<id>")
@require_token
def show_group(id: str):
    """Return one program as a group."""
    params = response_parameters("Group")
    shown = service.show_group(g.org, _group_or_404(id))
    return resource_response(shown, Context.RESOURCE_QUERY_RESPONSE, params)


@bp.put("/Groups/<id>")
@require_token
def replace_group(id: str):
    """Replace a program's name, externalId and provisioned members (PUT)."""
    program = _group_or_404(id)
    params = response_parameters("Group")
    resource = resource_body("Group", Context.RESOURCE_REPLACEMENT_REQUEST)
    service.replace_group(g.token, g.org, program, resource)
    db.session.commit()
    shown = service.show_group(g.org, program)
    return resource_response(shown, Context.RESOURCE_REPLACEMENT_RESPONSE, params)


@bp.patch("/Groups/<id>")
@require_token
def patch_group(id: str):
    """Rename a program or add and remove its provisioned members (RFC 7644 §3.5.2)."""
    program = _group_or_404(id)
    params = response_parameters("Group")
    service.patch_group(g.token, g.org, program, patch_body("Group"))
    db.session.commit()
    shown = service.show_group(g.org, program)
    return resource_response(shown, Context.RESOURCE_PATCH_RESPONSE, params)


@bp.delete("/Groups/<id>")
@require_token
def delete_group(id: str):
    """Delete a program: its members leave it, each told."""
    service.delete_group(g.token, g.org, _group_or_404(id))
    db.session.commit()
    return Response(status=204)


# -- what this service does not offer --------------------------------------------------


@bp.route("/Bulk", methods=["POST"])
@require_token
def bulk():
    """Refuse bulk requests: the service provider configuration says they are not supported."""
    raise NotImplementedException(detail="Bulk operations are not supported.")


@bp.route("/Me", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@require_token
def me():
    """Refuse /Me: an org's token stands for no user."""
    raise NotImplementedException(detail="/Me is not supported: the token is an organization's.")
