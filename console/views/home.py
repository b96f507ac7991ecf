"""The root URL sends everyone where they belong."""

from flask import Blueprint
from flask import redirect
from flask import url_for
from flask_login import current_user

from console.views.auth import landing_url

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """Send administrators to their start page, participants to their account, others to sign in."""
    if current_user.is_authenticated:
        if current_user.is_admin:
            return redirect(landing_url(current_user))
        return redirect(url_for("account.index"))
    return redirect(url_for("auth.login"))
