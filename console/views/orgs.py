"""The orgs an administrator works in."""

from flask import Blueprint
from flask import abort
from flask import redirect
from flask import render_template
from flask import url_for
from flask_login import current_user
from flask_login import login_required

from console.models import Org
from console.permissions import require

bp = Blueprint("orgs", __name__, url_prefix="/orgs")


@bp.get("/")
@login_required
def index():
    """List the orgs the administrator has a role in."""
    if not getattr(current_user, "is_admin", False):
        abort(404)
    return render_template("orgs/index.html", roles=current_user.roles)


@bp.get("/<org:org>/")
@require()
def show(org: Org):
    """Open an org at the first area the administrator's role can see."""
    return redirect(url_for("participants.index", org=org))
