"""Single sign-on through each org's own OpenID Connect provider.

An org's connection names its IdP (found by discovery), the console's client
id and secret there (the secret encrypted at rest), how the IdP's groups map
to roles, and whether administrators (all but named break-glass owners) and
the participants the org manages must sign in through it.

The console trusts what an IdP says about a person only when the ID token's
signature checks against the IdP's published keys and its issuer, audience
and expiry are right; it then trusts the email only when ``email_verified`` is
true and the address is in one of the org's verified domains. People are found
by (issuer, subject), never by email alone.

The functions at the top are pure (claims in, decisions out); the rest read
and write the database, the IdP, the trail and the outbox.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from authlib.integrations.base_client import MismatchingStateError
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskIntegration
from authlib.integrations.flask_client import FlaskOAuth2App
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from joserfc.errors import JoseError

from console import encryption
from console.extensions import db
from console.models import Admin
from console.models import AdminIdentity
from console.models import Org
from console.models import OrgDomain
from console.models import OrgRole
from console.models import Participant
from console.models import ParticipantIdentity
from console.models import SsoBreakGlass
from console.models import SsoConnection
from console.models.base import utcnow
from console.models.participants import AccountStatus
from console.models.sso import DEFAULT_GROUPS_CLAIM
from console.models.sso import DEFAULT_SCOPES
from console.permissions import Role
from console.services import audit
from console.services import mail
from console.services.auth import find_admin
from console.services.auth import normalize_email
from console.services.claims import verified_domains_for
from console.services.domains import owners_of

SECRET_PURPOSE = "sso-client-secret"
DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT = 10
# Seconds of clock difference tolerated on the ID token's exp, iat and nbf.
LEEWAY = 60
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
# The most privileged role wins when several of a person's groups are mapped.
ROLE_ORDER = (Role.OWNER, Role.ADMIN, Role.SUPPORT, Role.ANALYST)
SSO = audit.Actor(type="system", name="single sign-on")
VISITOR = audit.Actor(type="anonymous", name="not signed in")


class Purpose:
    ADMIN = "admin"
    PARTICIPANT = "participant"
    TEST = "test"


# -- errors ----------------------------------------------------------------------------


class SettingsError(ValueError):
    """Connection settings that cannot be saved; ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class DiscoveryError(SettingsError):
    """The issuer's discovery document could not be fetched or used; the message says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, "issuer")
        self.kind = kind


class MappingError(SettingsError):
    """A group → role mapping that cannot be read; the message names the line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "role_mapping")


class SignInFailure(Exception):
    """A sign-in through an IdP that cannot complete; ``reason`` says why (see FAILURE_TEXT)."""

    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params

    @property
    def status(self) -> int:
        return FAILURE_STATUS.get(self.reason, 403)


FAILURE_STATUS = {
    "state": 400,
    "idp_error": 400,
    "unreachable": 502,
    "discovery": 502,
    "issuer_mismatch": 502,
    "token": 502,
    "id_token": 502,
    "secret": 502,
    "not_configured": 404,
    "not_enforced": 404,
}


# -- pure functions: issuers, discovery, claims and roles --------------------------------


def discovery_url(issuer: str) -> str:
    """Return where ``issuer`` publishes its OpenID Connect discovery document."""
    return issuer.rstrip("/") + DISCOVERY_PATH


def check_issuer_url(issuer: str, production: bool) -> str:
    """Return ``issuer`` trimmed, or raise ``SettingsError`` if it cannot be an issuer."""
    issuer = (issuer or "").strip()
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(
            _("The issuer must be a URL such as https://login.example.com/realms/acme."), "issuer"
        )
    if parts.query or parts.fragment:
        raise SettingsError(_("The issuer URL has no query (?…) or fragment (#…)."), "issuer")
    if production and parts.scheme != "https":
        raise SettingsError(_("The issuer must use https."), "issuer")
    return issuer


def check_discovery(issuer: str, document: Any, production: bool = False) -> str:
    """Return the issuer the document names, or raise ``DiscoveryError`` saying what is wrong.

    The issuer must match the one configured exactly; a difference of only a
    trailing slash is forgiven (the document's spelling is the one ID tokens use).
    """
    if not isinstance(document, dict):
        raise DiscoveryError("not_json", _("The discovery document is not a JSON object."))
    missing = [name for name in REQUIRED_METADATA if not document.get(name)]
    if missing:
        raise DiscoveryError(
            "missing_fields",
            _(
                "The discovery document lacks %(fields)s, which the console needs.",
                fields=", ".join(missing),
            ),
        )
    named = str(document["issuer"])
    if named.rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryError(
            "issuer_mismatch",
            _(
                "The discovery document names the issuer %(named)s, not %(issuer)s. "
                "Enter the issuer exactly as your identity provider names it.",
                named=named,
                issuer=issuer,
            ),
        )
    types = document.get("response_types_supported")
    if isinstance(types, list) and "code" not in types:
        raise DiscoveryError(
            "no_code_flow",
            _("The identity provider does not offer the authorization code flow."),
        )
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise DiscoveryError(
            "no_pkce",
            _("The identity provider does not offer PKCE with S256, which the console requires."),
        )
    if production:
        plain = [
            name
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if urlsplit(str(document[name])).scheme != "https"
        ]
        if plain:
            raise DiscoveryError(
                "not_https",
                _("These endpoints do not use https: %(names)s.", names=", ".join(plain)),
            )
    return named


def parse_scopes(text: str | None) -> str:
    """Return the scopes as one space-separated string; ``openid`` is required."""
    scopes = list(dict.fromkeys((text or DEFAULT_SCOPES).split()))
    if "openid" not in scopes:
        raise SettingsError(_("The scopes must include openid."), "scopes")
    if any(not scope.isprintable() or '"' in scope or "\\" in scope for scope in scopes):
        raise SettingsError(_("A scope is a word without quotes or backslashes."), "scopes")
    return " ".join(scopes)


def parse_role_mapping(text: str | None) -> list[list[str]]:
    """Read ``group = role`` lines into ``[[group, role], …]``.

    The last ``=`` on a line separates the role, so group names may contain
    ``=`` (LDAP distinguished names do). Blank lines and lines starting with
    ``#`` are skipped.
    """
    pairs: list[list[str]] = []
    seen: set[str] = set()
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        group, sep, role = line.rpartition("=")
        group, role = group.strip(), role.strip().lower()
        if not sep or not group:
            raise MappingError(
                _("Line %(number)s: write a group, then = and a role.", number=number)
            )
        if role not in {r.value for r in Role}:
            raise MappingError(
                _(
                    "Line %(number)s: '%(role)s' is not a role: use owner, admin, support or "
                    "analyst.",
                    number=number,
                    role=role,
                )
            )
        if group in seen:
            raise MappingError(
                _("Line %(number)s: %(group)s is mapped twice.", number=number, group=group)
            )
        seen.add(group)
        pairs.append([group, role])
    return pairs


def format_role_mapping(pairs: Iterable[Iterable[str]]) -> str:
    """Write a mapping back as the ``group = role`` lines ``parse_role_mapping`` reads."""
    return "\n".join(f"{group} = {role}" for group, role in pairs)


def claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """Return the strings at ``path`` (a claim name, or a dotted path into nested claims).

    A claim that is one string counts as one value. Only when no claim has the
    whole path as its name are the dots followed.
    """
    if path in claims:
        value: Any = claims[path]
    else:
        value = claims
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return []
            value = value[part]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value if isinstance(item, str | int) and str(item)]
    return []


def email_is_verified(value: Any) -> bool:
    """Return whether an ``email_verified`` claim says yes (some IdPs send the string "true")."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def merge_claims(id_token: Mapping[str, Any], userinfo: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ID token's claims completed by the UserInfo response.

    The signed ID token wins where both have a claim. UserInfo for another
    subject is refused (OpenID Connect Core 5.3.2).
    """
    if userinfo and str(userinfo.get("sub")) != str(id_token.get("sub")):
        raise SignInFailure("id_token", detail=_("UserInfo is about another subject."))
    return {**dict(userinfo), **dict(id_token)}


@dataclass(frozen=True)
class IdpClaims:
    """What the console reads from an IdP's claims."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    groups: tuple[str, ...]

    @property
    def masked_email(self) -> str | None:
        return audit.mask_email(self.email)


def read_claims(issuer: str, claims: Mapping[str, Any], groups_claim: str) -> IdpClaims:
    """Return the subject, email, whether it is verified, the name and the groups."""
    email = claims.get("email")
    email = normalize_email(email) if isinstance(email, str) and "@" in email else None
    name = claims.get("name")
    return IdpClaims(
        issuer=issuer,
        subject=str(claims.get("sub") or ""),
        email=email,
        email_verified=email_is_verified(claims.get("email_verified")),
        name=" ".join(name.split())[:200] if isinstance(name, str) and name.strip() else None,
        groups=tuple(claim_values(claims, groups_claim or DEFAULT_GROUPS_CLAIM)),
    )


def role_for(
    groups: Iterable[str], mapping: Iterable[Iterable[str]], default_role: str | None
) -> Role | None:
    """Return the role the groups give (the highest mapped one), else ``default_role``."""
    mapped = {group: role for group, role in mapping}
    roles = {Role(mapped[group]) for group in groups if group in mapped}
    for role in ROLE_ORDER:
        if role in roles:
            return role
    return Role(default_role) if default_role else None


def token_auth_method(document: Mapping[str, Any] | None) -> str | None:
    """Return how to authenticate at the token endpoint: HTTP Basic unless only POST is offered."""
    methods = (document or {}).get("token_endpoint_auth_methods_supported")
    if isinstance(methods, list) and "client_secret_basic" not in methods:
        if "client_secret_post" in methods:
            return "client_secret_post"
    return None


# -- discovery --------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    issuer: str
    document: dict[str, Any]


def discover(issuer: str) -> Discovery:
    """Fetch and check ``issuer``'s discovery document; raise ``DiscoveryError`` saying why not."""
    production = current_app.config["ENV"] == "production"
    issuer = check_issuer_url(issuer, production)
    url = discovery_url(issuer)
    try:
        response = requests.get(
            url, timeout=TIMEOUT, headers={"Accept": "application/json"}, allow_redirects=False
        )
    except requests.RequestException as error:
        raise DiscoveryError(
            "unreachable",
            _("Could not reach %(url)s: %(reason)s.", url=url, reason=_request_problem(error)),
        ) from None
    if response.status_code != 200:
        raise DiscoveryError(
            "http_status",
            _(
                "%(url)s answered HTTP %(status)s instead of the discovery document.",
                url=url,
                status=response.status_code,
            ),
        )
    try:
        document = response.json()
    except ValueError:
        raise DiscoveryError(
            "not_json",
            _(
                "%(url)s did not answer JSON (it sent %(type)s): is this the issuer URL?",
                url=url,
                type=response.headers.get("Content-Type") or _("no content type"),
            ),
        ) from None
    named = check_discovery(issuer, document, production)
    return Discovery(issuer=named, document=document)


def _request_problem(error: requests.RequestException) -> str:
    if isinstance(error, requests.Timeout):
        return _("no answer within %(seconds)s seconds", seconds=TIMEOUT)
    if isinstance(error, requests.ConnectionError):
        return _("the connection failed (is the address right, and the server up?)")
    return type(error).__name__


# -- connections ------------------------------------------------------------------------


def get_connection(org: Org) -> SsoConnection | None:
    """Return the org's connection, if it has one."""
    return db.session.scalar(sa.select(SsoConnection).where(SsoConnection.org_id == org.id))


def client_secret(connection: SsoConnection) -> str:
    """Return the connection's client secret in plain text."""
    return encryption.decrypt(SECRET_PURPOSE, connection.client_secret)


def redirect_uri(org: Org) -> str:
    """Return the callback URL the org registers at its IdP (on the configured base URL)."""
    return mail.external_url("sso.callback", slug=org.slug)


def break_glass_ids(org: Org) -> set[uuid.UUID]:
    """Return the ids of the org's break-glass owners (as stored; see ``is_break_glass``)."""
    return set(
        db.session.scalars(sa.select(SsoBreakGlass.admin_id).where(SsoBreakGlass.org_id == org.id))
    )


def break_glass_owners(org: Org) -> list[Admin]:
    """Return the org's active owners who are named break-glass."""
    named = break_glass_ids(org)
    return [owner for owner in owners_of(org) if owner.id in named]


def is_break_glass(org: Org, admin: Admin) -> bool:
    """Return whether ``admin`` is a named break-glass owner of ``org`` and still its owner."""
    role = admin.role_in(org)
    return role is not None and role.role == Role.OWNER and admin.id in break_glass_ids(org)


@dataclass
class ConnectionSettings:
    """What an owner sets; None keeps the stored value (or the default, for a new connection)."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    scopes: str | None = None
    groups_claim: str | None = None
    role_mapping: list[list[str]] | None = None
    default_role: str | None = None
    keep_default_role: bool = False
    enforce_admins: bool | None = None
    enforce_participants: bool | None = None
    break_glass: list[uuid.UUID] | None = None


def save_connection(actor: Any, org: Org, settings: ConnectionSettings) -> SsoConnection:
    """Create or replace the org's connection after discovering its issuer.

    The client secret is stored encrypted and never returned; a new
    connection needs one, an existing one keeps its own unless given another.
    """
    connection = get_connection(org)
    client_id = (settings.client_id or "").strip()
    if not client_id or len(client_id) > 255:
        raise SettingsError(_("Enter the client id your identity provider gave you."), "client_id")
    secret = settings.client_secret or None
    if connection is None and not secret:
        raise SettingsError(
            _("Enter the client secret your identity provider gave you."), "client_secret"
        )
    scopes = parse_scopes(
        settings.scopes if settings.scopes is not None else _kept(connection, "scopes")
    )
    groups_claim = (settings.groups_claim or "").strip() or _kept(connection, "groups_claim")
    groups_claim = groups_claim or DEFAULT_GROUPS_CLAIM
    if len(groups_claim) > 200:
        raise SettingsError(_("The groups claim name is too long."), "groups_claim")
    default_role = (
        _kept(connection, "default_role") if settings.keep_default_role else settings.default_role
    )
    if default_role is not None and default_role not in {role.value for role in Role}:
        raise SettingsError(
            _("'%(role)s' is not a role: use owner, admin, support or analyst.", role=default_role),
            "default_role",
        )
    if settings.break_glass is not None:
        strangers = set(settings.break_glass) - {owner.id for owner in owners_of(org)}
        if strangers:
            raise SettingsError(
                _("Only the org's active owners can be break-glass."), "break_glass"
            )
    found = discover(settings.issuer)
    now = utcnow()
    created = connection is None
    if connection is None:
        connection = SsoConnection(org_id=org.id, org=org, created_at=now, role_mapping=[])
        db.session.add(connection)
    before = _snapshot(connection) if not created else {}
    connection.issuer = found.issuer
    connection.client_id = client_id
    if secret:
        connection.client_secret = encryption.encrypt(SECRET_PURPOSE, secret)
    connection.scopes = scopes
    connection.groups_claim = groups_claim
    if settings.role_mapping is not None:
        connection.role_mapping = settings.role_mapping
    connection.default_role = default_role
    if settings.enforce_admins is not None:
        connection.enforce_admins = settings.enforce_admins
    if settings.enforce_participants is not None:
        connection.enforce_participants = settings.enforce_participants
    connection.discovery = found.document
    connection.discovered_at = now
    connection.updated_at = now
    db.session.flush()
    if settings.break_glass is not None:
        _set_break_glass(org, settings.break_glass)
    after = _snapshot(connection)
    changes = {
        key: {"before": before.get(key), "after": value}
        for key, value in after.items()
        if before.get(key) != value
    }
    if secret:
        changes["client_secret"] = "replaced"
    audit.record(
        actor,
        "sso.connection_created" if created else "sso.connection_changed",
        org=org,
        target=org,
        details=changes,
    )
    return connection


def _kept(connection: SsoConnection | None, name: str) -> Any:
    return getattr(connection, name) if connection is not None else None


def _snapshot(connection: SsoConnection) -> dict[str, Any]:
    return {
        "issuer": connection.issuer,
        "client_id": connection.client_id,
        "scopes": connection.scopes,
        "groups_claim": connection.groups_claim,
        "role_mapping": format_role_mapping(connection.role_mapping or []),
        "default_role": connection.default_role,
        "enforce_admins": connection.enforce_admins,
        "enforce_participants": connection.enforce_participants,
        "break_glass": sorted(
            audit.mask_email(owner.email) or "" for owner in break_glass_owners(connection.org)
        ),
    }


def _set_break_glass(org: Org, admin_ids: Iterable[uuid.UUID]) -> None:
    wanted = set(admin_ids)
    current = break_glass_ids(org)
    for admin_id in current - wanted:
        db.session.execute(
            sa.delete(SsoBreakGlass).where(
                SsoBreakGlass.org_id == org.id, SsoBreakGlass.admin_id == admin_id
            )
        )
    for admin_id in wanted - current:
        db.session.add(SsoBreakGlass(org_id=org.id, admin_id=admin_id))
    db.session.flush()


def refresh_discovery(actor: Any, org: Org, connection: SsoConnection) -> SsoConnection:
    """Fetch the issuer's discovery document again and keep it; raise ``DiscoveryError``."""
    try:
        found = discover(connection.issuer)
    except DiscoveryError as error:
        audit.record(
            actor,
            "sso.discovery_checked",
            org=org,
            target=org,
            details={"result": error.kind, "issuer": connection.issuer},
        )
        raise
    connection.discovery = found.document
    connection.discovered_at = utcnow()
    audit.record(
        actor,
        "sso.discovery_checked",
        org=org,
        target=org,
        details={"result": "ok", "issuer": connection.issuer},
    )
    return connection


def remove_connection(actor: Any, org: Org, connection: SsoConnection) -> None:
    """Remove the org's connection and its break-glass list; its people sign in by password."""
    issuer = connection.issuer
    db.session.execute(sa.delete(SsoBreakGlass).where(SsoBreakGlass.org_id == org.id))
    db.session.delete(connection)
    db.session.flush()
    audit.record(actor, "sso.connection_removed", org=org, target=org, details={"issuer": issuer})


# -- where sign-in goes -----------------------------------------------------------------


def connection_for_email(email: str | None) -> SsoConnection | None:
    """Return the connection of the org that verified ``email``'s domain, if it has one."""
    domains: list[OrgDomain] = verified_domains_for(email)
    for domain in domains:
        connection = db.session.scalar(
            sa.select(SsoConnection).where(SsoConnection.org_id == domain.org_id)
        )
        if connection is not None:
            return connection
    return None


def password_refused_by(admin: Admin) -> Org | None:
    """Return an org whose enforced SSO refuses ``admin`` a password sign-in, if any.

    Staff always use their password and second factor; a break-glass owner
    keeps the password while SSO is enforced.
    """
    if admin.is_staff:
        return None
    for role in admin.roles:
        connection = get_connection(role.org)
        if connection is None or not connection.enforce_admins:
            continue
        if not is_break_glass(role.org, admin):
            return role.org
    return None


@dataclass(frozen=True)
class Route:
    """Where the email step sends an administrator: ``idp`` (go there) or ``required`` (refuse)."""

    kind: str
    connection: SsoConnection

    @property
    def org(self) -> Org:
        return self.connection.org


def route_for_email(email: str) -> Route | None:
    """Return where an administrator with ``email`` signs in, or None for the password."""
    admin = find_admin(email)
    if admin is not None and admin.is_staff:
        return None
    connection = connection_for_email(email)
    if connection is not None:
        return Route("idp", connection)
    if admin is not None:
        org = password_refused_by(admin)
        if org is not None:
            found = get_connection(org)
            assert found is not None
            return Route("required", found)
    return None


def participant_connection(email: str) -> SsoConnection | None:
    """Return the connection participants at ``email``'s domain must sign in through, if any."""
    connection = connection_for_email(email)
    if connection is None or not connection.enforce_participants:
        return None
    return connection


def participant_must_use_sso(participant: Participant) -> Org | None:
    """Return the managing org whose enforced SSO refuses this participant a password."""
    if participant.managed_by_org_id is None:
        return None
    connection = db.session.scalar(
        sa.select(SsoConnection).where(SsoConnection.org_id == participant.managed_by_org_id)
    )
    if connection is None or not connection.enforce_participants:
        return None
    return connection.org


def refuse_password(admin: Admin, org: Org) -> None:
    """Audit a password sign-in refused because ``org`` enforces SSO."""
    audit.record(
        admin,
        "admin.sign_in_failed",
        target=admin,
        details={"reason": "sso_required", "org": org.slug},
    )


def use_break_glass(admin: Admin, ip: str | None) -> list[Org]:
    """Record a break-glass password sign-in: audited, and every owner of the org is told."""
    orgs: list[Org] = []
    if admin.is_staff:
        return orgs
    for role in admin.roles:
        connection = get_connection(role.org)
        if connection is None or not connection.enforce_admins:
            continue
        if not is_break_glass(role.org, admin):
            continue
        org = role.org
        orgs.append(org)
        at = utcnow()
        audit.record(admin, "sso.break_glass_used", org=org, target=admin, details={"ip": ip})
        for owner in owners_of(org):
            mail.queue(
                "sso_break_glass_used",
                owner.email,
                org=org,
                admin=owner,
                who=admin,
                at=at,
                ip=ip,
                sso_link=mail.external_url("sso.show", org=org.slug),
            )
    return orgs


# -- the round trip with the IdP (Authlib) ------------------------------------------------


def oauth_client(connection: SsoConnection) -> FlaskOAuth2App:
    """Build Authlib's Flask client from the connection as stored now.

    Built per request, never cached: a changed secret or issuer takes effect on
    the next sign-in, in every process. Raises ``SignInFailure("secret")`` when
    the stored secret no longer decrypts (the console's secret key changed).
    """
    name = f"sso-{connection.org_id.hex}"
    try:
        secret = client_secret(connection)
    except encryption.InvalidToken:
        raise SignInFailure("secret") from None
    client_kwargs: dict[str, Any] = {
        "scope": connection.scopes,
        "code_challenge_method": "S256",
        "default_timeout": TIMEOUT,
    }
    method = token_auth_method(connection.discovery)
    if method:
        client_kwargs["token_endpoint_auth_method"] = method
    return FlaskOAuth2App(
        FlaskIntegration(name),
        name,
        client_id=connection.client_id,
        client_secret=secret,
        server_metadata_url=discovery_url(connection.issuer),
        client_kwargs=client_kwargs,
    )


def _metadata(client: FlaskOAuth2App, connection: SsoConnection) -> dict[str, Any]:
    try:
        metadata = client.load_server_metadata()
    except requests.RequestException as error:
        raise SignInFailure("unreachable", detail=_request_problem(error)) from None
    except ValueError:
        raise SignInFailure("discovery", detail=_("the discovery document is not JSON")) from None
    try:
        named = check_discovery(connection.issuer, metadata)
    except DiscoveryError as error:
        reason = "issuer_mismatch" if error.kind == "issuer_mismatch" else "discovery"
        raise SignInFailure(reason, detail=error.message) from None
    if named != connection.issuer:
        raise SignInFailure("issuer_mismatch", detail=named)
    return metadata


def begin(connection: SsoConnection, login_hint: str | None = None) -> tuple[str, str]:
    """Start the authorization code flow (PKCE S256, state, nonce); return (IdP URL, state).

    What the callback needs (the state, the nonce, the code verifier) stays in
    the session until then. Raises ``SignInFailure`` when the IdP cannot be reached.
    """
    client = oauth_client(connection)
    _metadata(client, connection)
    extra = {"login_hint": login_hint} if login_hint else {}
    created = client.create_authorization_url(redirect_uri(connection.org), **extra)
    client.save_authorize_data(
        redirect_uri=redirect_uri(connection.org),
        **{key: value for key, value in created.items() if key != "url"},
    )
    return created["url"], created["state"]


def id_token_rules(connection: SsoConnection) -> dict[str, dict[str, Any]]:
    """Return the ID token claims Authlib must check: issuer, audience, subject, times."""
    return {
        "iss": {"essential": True, "value": connection.issuer},
        "aud": {"essential": True, "value": connection.client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }


def finish(connection: SsoConnection, args: Mapping[str, str]) -> dict[str, Any]:
    """Complete the flow from the callback's query; return the verified claims.

    Exchanges the code (with the PKCE verifier), checks the ID token's
    signature against the IdP's JWKS and its issuer, audience, expiry and nonce,
    then completes the claims from UserInfo. Raises ``SignInFailure``.
    """
    if args.get("error"):
        raise SignInFailure(
            "idp_error",
            error=str(args["error"])[:100],
            description=str(args.get("error_description") or "")[:300],
        )
    if args.get("iss") and args["iss"] != connection.issuer:
        # RFC 9207: the answer comes from another IdP than the one asked (mix-up).
        raise SignInFailure("issuer_mismatch", detail=str(args["iss"])[:200])
    client = oauth_client(connection)
    _metadata(client, connection)
    try:
        token = client.authorize_access_token(
            claims_options=id_token_rules(connection), leeway=LEEWAY
        )
    except MismatchingStateError:
        raise SignInFailure("state") from None
    except OAuthError as error:
        detail = error.error + (f": {error.description}" if error.description else "")
        raise SignInFailure("token", detail=detail[:300]) from None
    except requests.RequestException as error:
        raise SignInFailure("unreachable", detail=_request_problem(error)) from None
    except JoseError as error:
        raise SignInFailure("id_token", detail=_jose_problem(error)) from None
    except (ValueError, KeyError, TypeError) as error:
        raise SignInFailure("token", detail=type(error).__name__) from None
    id_claims = token.get("userinfo")
    if not id_claims:
        raise SignInFailure("id_token", detail=_("the identity provider sent no ID token"))
    userinfo: dict[str, Any] = {}
    if client.server_metadata.get("userinfo_endpoint"):
        try:
            userinfo = dict(client.userinfo(token=token))
        except requests.RequestException as error:
            raise SignInFailure("unreachable", detail=_request_problem(error)) from None
        except ValueError:
            raise SignInFailure("token", detail=_("UserInfo did not answer JSON")) from None
    return merge_claims(id_claims, userinfo)


def _jose_problem(error: JoseError) -> str:
    names = {
        "bad_signature": _("its signature does not match the identity provider's keys"),
        "expired_token": _("it has expired"),
        "invalid_claim": _("its %(claim)s claim is wrong", claim=getattr(error, "claim", "")),
        "missing_claim": _("it lacks the %(claim)s claim", claim=getattr(error, "claim", "")),
        "invalid_key_id": _("it is signed with a key the identity provider does not publish"),
    }
    return str(names.get(error.error, error.error))


# -- deciding who signs in -----------------------------------------------------------------


@dataclass
class AdminDecision:
    """What an administrator's sign-in through ``connection`` does (or why it is refused)."""

    idp: IdpClaims
    role: Role | None
    admin: Admin | None = None
    identity: AdminIdentity | None = None
    # "existing" (known identity), "link" (an administrator with that email), "create" (JIT).
    action: str | None = None
    refusal: SignInFailure | None = None


def _trusted_email(org: Org, idp: IdpClaims) -> None:
    if not idp.subject:
        raise SignInFailure("id_token", detail=_("it names no subject"))
    if not idp.email:
        raise SignInFailure("email_missing")
    if not idp.email_verified:
        raise SignInFailure("email_unverified", email=idp.email)
    if not verified_domains_for(idp.email, org):
        raise SignInFailure("foreign_domain", email=idp.email)


def decide_admin(connection: SsoConnection, claims: Mapping[str, Any]) -> AdminDecision:
    """Decide, without changing anything, what an administrator's sign-in does."""
    org = connection.org
    idp = read_claims(connection.issuer, claims, connection.groups_claim)
    decision = AdminDecision(
        idp=idp, role=role_for(idp.groups, connection.role_mapping or [], connection.default_role)
    )
    try:
        _trusted_email(org, idp)
        assert idp.email is not None
        identity = db.session.scalar(
            sa.select(AdminIdentity).where(
                AdminIdentity.issuer == connection.issuer, AdminIdentity.subject == idp.subject
            )
        )
        holder = find_admin(idp.email)
        if identity is not None:
            decision.identity, decision.admin, decision.action = (
                identity,
                identity.admin,
                "existing",
            )
        elif holder is not None:
            decision.admin, decision.action = holder, "link"
        else:
            decision.action = "create"
        admin = decision.admin
        if admin is not None and admin.is_staff:
            raise SignInFailure("staff")
        if identity is not None and holder is not None and holder.id != identity.admin_id:
            raise SignInFailure("email_taken", email=idp.email)
        if decision.action == "link" and admin is not None:
            if any(i.issuer == connection.issuer for i in _identities(admin)):
                raise SignInFailure("email_taken", email=idp.email)
            if admin.roles and admin.role_in(org) is None:
                raise SignInFailure("other_org", email=idp.email)
        if admin is not None and not admin.is_active:
            raise SignInFailure("disabled")
        if decision.role is None:
            had = admin is not None and admin.role_in(org) is not None
            raise SignInFailure("no_role", removed=had)
    except SignInFailure as failure:
        decision.refusal = failure
    return decision


def _identities(admin: Admin) -> list[AdminIdentity]:
    return list(
        db.session.scalars(sa.select(AdminIdentity).where(AdminIdentity.admin_id == admin.id))
    )


def sign_in_admin(connection: SsoConnection, claims: Mapping[str, Any]) -> Admin:
    """Return the administrator the IdP vouched for, their role in the org set from the mapping.

    Creates the administrator just in time when the mapping (or the default
    role) gives one, links an existing administrator by email the first time,
    and takes the role away from someone the mapping no longer gives one.
    Raises ``SignInFailure``; the caller records it with ``record_failure``.
    """
    return _settled(_sign_in_admin, connection, claims)


def _settled(sign_in: Any, connection: SsoConnection, claims: Mapping[str, Any]) -> Any:
    """Run a first-time-capable sign-in, deciding again if a concurrent one won.

    Two first sign-ins of one person can run at once (a double click, two
    tabs): both decide to create or link, and the second to write meets the
    unique email or (issuer, subject) of the first. That one decides again and
    finds what the first made, so both sign in as the same person.
    """
    savepoint = db.session.begin_nested()
    try:
        signed_in = sign_in(connection, claims)
    except sa.exc.IntegrityError:
        savepoint.rollback()
        return sign_in(connection, claims)
    except SignInFailure:
        savepoint.commit()  # a refusal keeps what it did (a role taken away)
        raise
    savepoint.commit()
    return signed_in


def _sign_in_admin(connection: SsoConnection, claims: Mapping[str, Any]) -> Admin:
    org = connection.org
    decision = decide_admin(connection, claims)
    idp = decision.idp
    if decision.refusal is not None:
        if decision.refusal.reason == "no_role" and decision.admin is not None:
            _remove_role(org, decision.admin)
        raise decision.refusal
    assert decision.role is not None and idp.email is not None
    admin = decision.admin
    if admin is None:
        admin = Admin(email=idp.email, name=idp.name or idp.email.split("@")[0], password_hash=None)
        db.session.add(admin)
        db.session.flush()
    _set_role(org, admin, decision.role)
    now = utcnow()
    identity = decision.identity
    if identity is None:
        identity = AdminIdentity(
            admin_id=admin.id, org_id=org.id, issuer=connection.issuer, subject=idp.subject
        )
        db.session.add(identity)
        audit.record(
            SSO,
            "sso.identity_linked",
            org=org,
            target=admin,
            details={
                "email": idp.masked_email,
                "subject": idp.subject,
                "created": decision.action == "create",
            },
        )
    elif admin.email != idp.email:
        audit.record(
            SSO,
            "sso.email_updated",
            org=org,
            target=admin,
            details={"email": {"before": audit.mask_email(admin.email), "after": idp.masked_email}},
        )
        admin.email = idp.email
    identity.email = idp.email
    identity.last_sign_in_at = now
    db.session.flush()
    audit.record(
        admin,
        "sso.signed_in",
        org=org,
        target=admin,
        details={"role": decision.role.value, "groups": list(idp.groups)[:50]},
    )
    return admin


def _set_role(org: Org, admin: Admin, role: Role) -> None:
    current = admin.role_in(org)
    if current is None:
        admin.roles.append(OrgRole(org_id=org.id, role=role.value, org=org))
        db.session.flush()
        audit.record(
            SSO,
            "admin.added",
            org=org,
            target=admin,
            details={"email": audit.mask_email(admin.email), "role": role.value, "via": "sso"},
        )
    elif current.role != role:
        before = current.role
        current.role = role.value
        db.session.flush()
        audit.record(
            SSO,
            "admin.role_changed",
            org=org,
            target=admin,
            details={"role": {"before": before, "after": role.value}, "via": "sso"},
        )


def _remove_role(org: Org, admin: Admin) -> None:
    current = admin.role_in(org)
    if current is None:
        return
    before = current.role
    admin.roles.remove(current)
    db.session.execute(
        sa.delete(SsoBreakGlass).where(
            SsoBreakGlass.org_id == org.id, SsoBreakGlass.admin_id == admin.id
        )
    )
    db.session.flush()
    audit.record(
        SSO,
        "admin.role_removed",
        org=org,
        target=admin,
        details={"role": before, "via": "sso"},
    )


@dataclass
class ParticipantDecision:
    idp: IdpClaims
    participant: Participant | None = None
    identity: ParticipantIdentity | None = None
    refusal: SignInFailure | None = None


def decide_participant(connection: SsoConnection, claims: Mapping[str, Any]) -> ParticipantDecision:
    """Decide, without changing anything, whether a managed participant may sign in."""
    org = connection.org
    idp = read_claims(connection.issuer, claims, connection.groups_claim)
    decision = ParticipantDecision(idp=idp)
    try:
        _trusted_email(org, idp)
        identity = db.session.scalar(
            sa.select(ParticipantIdentity).where(
                ParticipantIdentity.issuer == connection.issuer,
                ParticipantIdentity.subject == idp.subject,
            )
        )
        if identity is not None:
            decision.identity, decision.participant = identity, identity.participant
        else:
            participant = db.session.scalar(
                sa.select(Participant).where(Participant.email == idp.email)
            )
            if participant is None or participant.erased_at is not None:
                raise SignInFailure("no_account", email=idp.email)
            decision.participant = participant
            linked = db.session.scalar(
                sa.select(ParticipantIdentity.id).where(
                    ParticipantIdentity.participant_id == participant.id,
                    ParticipantIdentity.issuer == connection.issuer,
                )
            )
            if linked is not None:
                raise SignInFailure("email_taken", email=idp.email)
        participant = decision.participant
        assert participant is not None
        if participant.erased_at is not None:
            raise SignInFailure("no_account", email=idp.email)
        if not participant.is_managed_by(org):
            raise SignInFailure("not_managed")
        status = participant.effective_status()
        if status == AccountStatus.DEACTIVATED:
            raise SignInFailure("deactivated")
        if status == AccountStatus.SUSPENDED:
            raise SignInFailure("suspended")
    except SignInFailure as failure:
        decision.refusal = failure
    return decision


def sign_in_participant(connection: SsoConnection, claims: Mapping[str, Any]) -> Participant:
    """Return the managed participant the IdP vouched for, linked on first sign-in by email."""
    return _settled(_sign_in_participant, connection, claims)


def _sign_in_participant(connection: SsoConnection, claims: Mapping[str, Any]) -> Participant:
    org = connection.org
    decision = decide_participant(connection, claims)
    if decision.refusal is not None:
        raise decision.refusal
    participant = decision.participant
    assert participant is not None
    identity = decision.identity
    if identity is None:
        identity = ParticipantIdentity(
            participant_id=participant.id,
            org_id=org.id,
            issuer=connection.issuer,
            subject=decision.idp.subject,
        )
        db.session.add(identity)
        audit.record(
            SSO,
            "sso.identity_linked",
            org=org,
            target=participant,
            details={"subject": decision.idp.subject},
        )
    now = utcnow()
    identity.last_sign_in_at = now
    participant.last_sign_in_at = now
    db.session.flush()
    audit.record(
        participant, "participant.signed_in", target=participant, details={"method": "sso"}
    )
    return participant


def record_failure(
    org: Org,
    purpose: str,
    failure: SignInFailure,
    claims: Mapping[str, Any] | None = None,
    connection: SsoConnection | None = None,
) -> None:
    """Audit a sign-in through the org's IdP that did not complete."""
    details: dict[str, Any] = {"reason": failure.reason, "purpose": purpose}
    if claims is not None and connection is not None:
        idp = read_claims(connection.issuer, claims, connection.groups_claim)
        details["email"] = idp.masked_email
        details["subject"] = idp.subject
    detail = failure.params.get("detail") or failure.params.get("error")
    if detail:
        details["detail"] = str(detail)[:300]
    audit.record(VISITOR, "sso.sign_in_failed", org=org, target=org, details=details)


def record_test(
    actor: Any, connection: SsoConnection, outcome: str, claims: Mapping[str, Any] | None
) -> None:
    """Audit a test of the connection (nobody was signed in) and remember when it ran."""
    connection.tested_at = utcnow()
    details: dict[str, Any] = {"result": outcome}
    if claims is not None:
        idp = read_claims(connection.issuer, claims, connection.groups_claim)
        details["email"] = idp.masked_email
    audit.record(actor, "sso.tested", org=connection.org, target=connection.org, details=details)


# What went wrong and what to do, per reason; %(org)s, %(email)s, %(detail)s are filled in.
FAILURE_TEXT = {
    "state": (
        _l(
            "This sign-in could not be matched to one started in this browser: it expired, was "
            "started in another browser, or its address was altered."
        ),
        _l("Start again from the sign-in page."),
    ),
    "idp_error": (
        _l("%(org)s's identity provider did not sign you in: %(detail)s."),
        _l("Try again. If it keeps happening, tell your IT team what it said."),
    ),
    "unreachable": (
        _l("The console could not reach %(org)s's identity provider: %(detail)s."),
        _l(
            "Try again in a few minutes. Owners named break-glass can sign in with their "
            "password meanwhile."
        ),
    ),
    "discovery": (
        _l("%(org)s's identity provider did not answer as it was set up to: %(detail)s"),
        _l("Try again later. An owner should check the connection on the single sign-on page."),
    ),
    "issuer_mismatch": (
        _l("The identity provider that answered is not the one %(org)s set up: %(detail)s"),
        _l("Start again. If it happens again, an owner should check the connection."),
    ),
    "token": (
        _l("The identity provider refused to complete the sign-in: %(detail)s."),
        _l(
            "Start again from the sign-in page. If it keeps happening, an owner should check the "
            "client id and secret."
        ),
    ),
    "id_token": (
        _l("The identity provider's answer could not be trusted: %(detail)s."),
        _l(
            "Start again. If it keeps happening, an owner should check the connection: the "
            "console accepts only ID tokens signed with the provider's published keys, issued "
            "for this console, and not expired."
        ),
    ),
    "secret": (
        _l(
            "The console cannot read the client secret stored for %(org)s: its own secret key "
            "has changed since the secret was saved."
        ),
        _l("An owner should enter the client secret again on the single sign-on page."),
    ),
    "email_missing": (
        _l("Your identity provider did not say what your email address is."),
        _l("Ask your IT team to release the email claim (the email scope) to the console."),
    ),
    "email_unverified": (
        _l("Your identity provider has not verified %(email)s, so the console cannot trust it."),
        _l("Ask your IT team to mark the address as verified, then sign in again."),
    ),
    "foreign_domain": (
        _l("%(email)s is not at a domain that %(org)s has verified."),
        _l(
            "Sign in with your address at a domain %(org)s has verified (%(domains)s), or ask an "
            "owner of %(org)s to verify your domain."
        ),
    ),
    "no_role": (
        _l(
            "Your account at the identity provider is in no group that gives a role in %(org)s, "
            "and %(org)s does not let people in without one."
        ),
        _l("Ask an owner of %(org)s to add you to a mapped group, or to set a default role."),
    ),
    "email_taken": (
        _l(
            "%(email)s belongs to someone who signs in with a different account at this identity "
            "provider."
        ),
        _l("Sign in with that account, or ask an owner of %(org)s."),
    ),
    "other_org": (
        _l("%(email)s belongs to an administrator of another organization on the console."),
        _l("Ask platform staff to give that administrator a role in %(org)s, then sign in again."),
    ),
    "staff": (
        _l(
            "Platform staff sign in with their password and second factor, never through an "
            "organization's single sign-on."
        ),
        _l("Sign in with your password."),
    ),
    "disabled": (
        _l("This administrator account is disabled."),
        _l("Ask an owner of %(org)s or platform staff."),
    ),
    "no_account": (
        _l("%(org)s manages no account with the address %(email)s."),
        _l("Sign in with your email and password, or ask %(org)s."),
    ),
    "not_managed": (
        _l(
            "Your account is not managed by %(org)s, so it does not sign in through its identity "
            "provider."
        ),
        _l("Sign in with your email and password."),
    ),
    "suspended": (
        _l("This account is suspended, so it cannot sign in."),
        _l("Contact %(org)s if you think this is a mistake."),
    ),
    "deactivated": (
        _l("This account is deactivated, so it cannot sign in."),
        _l("Contact %(org)s if you think this is a mistake."),
    ),
    "not_enforced": (
        _l("%(org)s does not sign participants in through single sign-on."),
        _l("Sign in with your email and password."),
    ),
    "not_configured": (
        _l("%(org)s does not use single sign-on."),
        _l("Sign in with your email and password."),
    ),
}


def describe(failure: SignInFailure, org: Org | None) -> tuple[str, str]:
    """Return what went wrong and what to do about it, in words for the person signing in."""
    params = failure.params
    detail = params.get("detail") or ""
    if failure.reason == "idp_error":
        detail = params.get("error", "")
        if params.get("description"):
            detail += f" ({params['description']})"
    values = {
        "org": org.name if org is not None else _("your organization"),
        "email": params.get("email") or "",
        "detail": detail,
        "domains": _verified_domain_names(org) or "—",
    }
    problem, remedy = FAILURE_TEXT.get(failure.reason, FAILURE_TEXT["not_configured"])
    problem_text = str(problem) % values
    if failure.reason == "no_role" and params.get("removed"):
        problem_text += " " + _("Your role in %(org)s was removed.", org=values["org"])
    return problem_text, str(remedy) % values


def _verified_domain_names(org: Org | None) -> str:
    if org is None:
        return ""
    names = db.session.scalars(
        sa.select(OrgDomain.domain)
        .where(OrgDomain.org_id == org.id, OrgDomain.status == "verified")
        .order_by(OrgDomain.domain)
    )
    return ", ".join(names)


def claims_json(claims: Mapping[str, Any]) -> str:
    """Return claims as indented JSON for the test page."""
    return json.dumps(dict(claims), indent=2, sort_keys=True, default=str, ensure_ascii=False)
