"""The root URL sends everyone where they belong."""

from flask import Blueprint
from flask import redirect
from flask import url_for
from flask_login import current_user

from console.views.auth import landing_url

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """Send administrators to their start page and everyone else to sign in."""
    if current_user.is_authenticated and getattr(current_user, "is_admin", False):
        return redirect(landing_url(current_user))
    return redirect(url_for("auth.login"))
