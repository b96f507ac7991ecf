"""Requests from managed participants that wait for the org: new emails, release."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Blueprint
from flask import abort
from flask import flash
from flask import g
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user

from console.extensions import db
from console.forms.participants import DecisionForm
from console.htmx import redirect_to
from console.models import EmailChangeRequest
from console.models import Org
from console.models import ReleaseRequest
from console.models import RequestStatus
from console.permissions import Permission
from console.permissions import require
from console.services import control

bp = Blueprint("requests", __name__, url_prefix="/orgs/<org:org>/requests")


def pending_counts(org: Org) -> int:
    """Return how many requests wait for the org."""
    total = 0
    for model in (EmailChangeRequest, ReleaseRequest):
        total += (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(model)
                .where(model.org_id == org.id, model.status == RequestStatus.PENDING)
            )
            or 0
        )
    return total


@bp.get("/")
@require(Permission.MANAGE_PARTICIPANTS)
def index(org: Org):
    """List the requests waiting for a decision, oldest first, and the last decided ones."""

    def pending(model):  # type: ignore[no-untyped-def]
        return db.session.scalars(
            sa.select(model)
            .where(model.org_id == org.id, model.status == RequestStatus.PENDING)
            .order_by(model.created_at)
        ).all()

    def recent(model):  # type: ignore[no-untyped-def]
        return db.session.scalars(
            sa.select(model)
            .where(model.org_id == org.id, model.status != RequestStatus.PENDING)
            .order_by(model.decided_at.desc())
            .limit(20)
        ).all()

    return render_template(
        "requests/index.html",
        org=org,
        email_requests=pending(EmailChangeRequest),
        release_requests=pending(ReleaseRequest),
        decided_email=recent(EmailChangeRequest),
        decided_release=recent(ReleaseRequest),
        form=DecisionForm(),
        can_release=g.role.can(Permission.MANAGE_DOMAINS),
    )


def _request(model, org: Org, request_id: uuid.UUID):  # type: ignore[no-untyped-def]
    found = db.session.scalar(
        sa.select(model).where(model.id == request_id, model.org_id == org.id)
    )
    if found is None:
        abort(404)
    return found


def _decide(org: Org, request, approve: bool, decide) -> object:  # type: ignore[no-untyped-def]
    form = DecisionForm()
    if not form.validate_on_submit():
        abort(400, _("The note is too long, or the form expired."))
    try:
        decide(current_user, org, request, approve, form.note.data)
    except control.AccountError as error:
        abort(error.status, error.message)
    db.session.commit()
    flash(_("Decision recorded; %(name)s was told.", name=request.participant.name), "success")
    return redirect_to(url_for("requests.index", org=org))


@bp.post("/email/<uuid:request_id>/approve")
@require(Permission.MANAGE_PARTICIPANTS)
def approve_email(org: Org, request_id: uuid.UUID):
    """Approve a new email: the new address then confirms by link."""
    return _decide(
        org, _request(EmailChangeRequest, org, request_id), True, control.decide_email_change
    )


@bp.post("/email/<uuid:request_id>/deny")
@require(Permission.MANAGE_PARTICIPANTS)
def deny_email(org: Org, request_id: uuid.UUID):
    """Deny a new email; the participant is told, with the note."""
    return _decide(
        org, _request(EmailChangeRequest, org, request_id), False, control.decide_email_change
    )


@bp.post("/release/<uuid:request_id>/approve")
@require(Permission.MANAGE_DOMAINS)
def approve_release(org: Org, request_id: uuid.UUID):
    """Release control of the account, as the participant asked."""
    return _decide(org, _request(ReleaseRequest, org, request_id), True, control.decide_release)


@bp.post("/release/<uuid:request_id>/deny")
@require(Permission.MANAGE_DOMAINS)
def deny_release(org: Org, request_id: uuid.UUID):
    """Keep control and tell the participant why."""
    return _decide(org, _request(ReleaseRequest, org, request_id), False, control.decide_release)
