"""What the SCIM 2.0 service offers: its resource models and discovery documents.

The models are scim2-models resources cut down to the attributes the console
keeps; ``/Schemas`` publishes exactly them, so a client (and scim2-tester)
builds the same models from discovery as the server validates with.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any

from pydantic import EmailStr
from pydantic import Field
from pydantic import ValidationError
from scim2_models import URI
from scim2_models import AuthenticationScheme
from scim2_models import Bulk
from scim2_models import CaseExact
from scim2_models import ChangePassword
from scim2_models import ComplexAttribute
from scim2_models import Error
from scim2_models import ETag
from scim2_models import ExtensibleStringEnum
from scim2_models import Filter
from scim2_models import Meta
from scim2_models import Mutability
from scim2_models import Patch
from scim2_models import Reference
from scim2_models import Required
from scim2_models import Resource
from scim2_models import ResourceType
from scim2_models import Schema
from scim2_models import SCIMException
from scim2_models import ScimPolicy
from scim2_models import ServiceProviderConfig
from scim2_models import Sort
from scim2_models import Uniqueness
from scim2_models.urn import URN

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MEDIA_TYPE = "application/scim+json"
# The most resources one list or search answers with (RFC 7644 §3.4.2.4).
MAX_RESULTS = 200

# Identity providers send attributes nobody asked for (Okta: locale, password):
# a body's unknown attribute is ignored, while a PATCH path must name a
# published one. Microsoft Entra's PATCH habits are accepted as they come.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


class Name(ComplexAttribute):
    formatted: str | None = Field(
        None, description="The full name; it becomes the participant's name."
    )
    family_name: str | None = None
    given_name: str | None = None


class Email(ComplexAttribute):
    class Type(ExtensibleStringEnum):
        work = "work"
        home = "home"
        other = "other"

    value: EmailStr | None = None
    display: str | None = None
    type: Type | None = None
    primary: bool | None = None


class Account(ComplexAttribute):
    """The platform account behind the user, as it stands; read-only."""

    email: Annotated[str | None, Mutability.read_only] = Field(
        None, description="The address the person signs in with; none means they cannot yet."
    )
    pending_email: Annotated[str | None, Mutability.read_only] = Field(
        None, description="A new address waiting to be confirmed by the link mailed to it."
    )
    status: Annotated[str | None, Mutability.read_only] = Field(
        None, description="active, suspended or deactivated."
    )
    managed: Annotated[bool | None, Mutability.read_only] = Field(
        None, description="Whether this organization still manages the account."
    )


class User(Resource[Any]):
    """User Account"""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Required.true, Uniqueness.server] = Field(
        None, description="Kept as given; unique in the organization, ignoring case."
    )
    name: Name | None = None
    display_name: str | None = None
    active: bool | None = Field(
        None, description="false deactivates the account: no sign-in, sessions end."
    )
    emails: list[Email] | None = Field(
        None, description="The primary value is the address the account signs in with."
    )
    account: Annotated[Account | None, Mutability.read_only] = Field(
        None,
        description="Not in RFC 7643: the account's own state, which SCIM writes do not "
        "change at once (a new email waits for confirmation).",
    )


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    ref: Annotated[Reference[User] | None, Mutability.immutable] = Field(
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])


class Group(Resource[Any]):
    """Group: a program of the organization"""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true, Uniqueness.server] = Field(
        None, description="The program's name, unique in the organization."
    )
    members: list[GroupMember] | None = Field(
        None, description="Users provisioned by this organization who are in the program."
    )


RESOURCE_MODELS = {"User": User, "Group": Group}
KNOWN_SCHEMAS = {
    "User": {USER_SCHEMA.lower()},
    "Group": {GROUP_SCHEMA.lower()},
}


def scim_exception(error: ValidationError) -> SCIMException:
    """Return the SCIM error (status and scimType) a model's validation failure stands for."""
    return SCIMException.from_error(Error.from_validation_errors(error)[0])


def service_provider_config(base_url: str) -> dict[str, Any]:
    """Return the ``/ServiceProviderConfig`` document (RFC 7643 §5)."""
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="API token",
                description="An organization's API token with the scope scim, "
                "sent as Authorization: Bearer pc_…",
                primary=True,
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=base_url),
    )
    return config.model_dump()


def resource_types(base_url: str) -> list[dict[str, Any]]:
    """Return the ``/ResourceTypes`` documents (RFC 7643 §6)."""
    users = ResourceType(
        id="User",
        name="User",
        description="A participant this organization provisions",
        endpoint=Reference[URI]("/Users"),
        schema_=Reference[URI](USER_SCHEMA),
        schema_extensions=[],
    )
    groups = ResourceType(
        id="Group",
        name="Group",
        description="A program of this organization",
        endpoint=Reference[URI]("/Groups"),
        schema_=Reference[URI](GROUP_SCHEMA),
        schema_extensions=[],
    )
    documents = []
    for resource_type in (users, groups):
        resource_type.meta = Meta(
            resource_type="ResourceType", location=f"{base_url}/{resource_type.id}"
        )
        documents.append(resource_type.model_dump())
    return documents


def schemas(base_url: str) -> list[dict[str, Any]]:
    """Return the ``/Schemas`` documents: the resources', then discovery's (RFC 7643 §7)."""
    documents = []
    for model in (User, Group, ServiceProviderConfig, ResourceType, Schema):
        schema = model.to_schema()
        if model is User:
            schema.name = "User"
        elif model is Group:
            schema.name = "Group"
        schema.meta = Meta(resource_type="Schema", location=f"{base_url}/{schema.id}")
        documents.append(schema.model_dump())
    return documents
