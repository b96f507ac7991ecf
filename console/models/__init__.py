"""Every model, imported so that metadata and Alembic see them all."""

from console.models.accounts import AccountLink
from console.models.accounts import EmailChangeRequest
from console.models.accounts import LinkPurpose
from console.models.accounts import ParticipantKey
from console.models.accounts import ReleaseRequest
from console.models.accounts import RequestStatus
from console.models.activity import ActivityEvent
from console.models.activity import EventType
from console.models.admins import Admin
from console.models.admins import AdminStatus
from console.models.admins import OrgRole
from console.models.audit import AuditEvent
from console.models.domains import ClaimStatus
from console.models.domains import DomainClaim
from console.models.domains import DomainStatus
from console.models.domains import OrgDomain
from console.models.mail import MailStatus
from console.models.mail import OutboxMessage
from console.models.orgs import Org
from console.models.orgs import Program
from console.models.participants import AccountStatus
from console.models.participants import JoinedVia
from console.models.participants import Member
from console.models.participants import Membership
from console.models.participants import MentoringRelationship
from console.models.participants import Participant
from console.models.participants import ParticipantRole
from console.models.participants import Profile
from console.models.participants import RelationshipStatus
from console.models.participants import SearchTerm
from console.models.reports import ALL_PROGRAMS
from console.models.reports import Journey
from console.models.reports import MemberDay
from console.models.reports import ReportDay
from console.models.reports import ReportSpan
from console.models.reports import ScopeDay
from console.models.scim import ScimGroup
from console.models.scim import ScimUser
from console.models.scim import ScimUserEmail
from console.models.sso import AdminIdentity
from console.models.sso import ParticipantIdentity
from console.models.sso import SsoBreakGlass
from console.models.sso import SsoConnection
from console.models.tokens import PLATFORM_SCOPES
from console.models.tokens import ApiToken
from console.models.tokens import Scope

__all__ = [
    "ALL_PROGRAMS",
    "PLATFORM_SCOPES",
    "AccountLink",
    "ApiToken",
    "EmailChangeRequest",
    "LinkPurpose",
    "MailStatus",
    "OutboxMessage",
    "ParticipantKey",
    "ReleaseRequest",
    "RequestStatus",
    "Scope",
    "AccountStatus",
    "ActivityEvent",
    "Admin",
    "AdminStatus",
    "AuditEvent",
    "ClaimStatus",
    "DomainClaim",
    "DomainStatus",
    "EventType",
    "JoinedVia",
    "Journey",
    "Member",
    "MemberDay",
    "Membership",
    "MentoringRelationship",
    "Org",
    "OrgDomain",
    "OrgRole",
    "Participant",
    "ParticipantRole",
    "Profile",
    "Program",
    "RelationshipStatus",
    "ReportDay",
    "ReportSpan",
    "ScopeDay",
    "ScimGroup",
    "ScimUser",
    "ScimUserEmail",
    "SearchTerm",
    "AdminIdentity",
    "ParticipantIdentity",
    "SsoBreakGlass",
    "SsoConnection",
]
