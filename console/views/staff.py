"""Platform staff: the partner orgs."""

import sqlalchemy as sa
from flask import Blueprint
from flask import render_template

from console.extensions import db
from console.models import Member
from console.models import Org
from console.permissions import staff_required

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.get("/")
@staff_required
def index():
    """List every partner org with its size."""
    members = (
        sa.select(sa.func.count()).where(Member.org_id == Org.id).correlate(Org).scalar_subquery()
    )
    orgs = db.session.execute(sa.select(Org, members.label("members")).order_by(Org.name)).all()
    return render_template("staff/index.html", orgs=orgs)
