"""Passwords, second factors and administrator sign-in."""

from __future__ import annotations

import hmac
import time
import uuid
from datetime import UTC
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from email_validator import EmailNotValidError
from email_validator import validate_email
from flask import current_app
from markupsafe import Markup

from console import encryption
from console.extensions import db
from console.models import Admin
from console.models import Participant
from console.models.base import utcnow
from console.services import audit

# argon2-cffi's defaults are Argon2id with RFC 9106's low-memory profile; the
# ARGON2_* settings exist so the test suite can hash cheaply.
_default_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs what a hit costs.
_DUMMY_HASH = _default_hasher.hash("partner-console-timing-equaliser")


def _hasher() -> PasswordHasher:
    config = current_app.config
    if not config.get("ARGON2_TIME_COST"):
        return _default_hasher
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"],
        memory_cost=config["ARGON2_MEMORY_COST"],
        parallelism=1,
    )


TOTP_PURPOSE = "totp"
TOTP_ISSUER = "Partner Console"


MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def password_problem(password: str) -> str | None:
    """Return why ``password`` cannot be used, or None when it can."""
    if len(password) < MIN_PASSWORD:
        return f"A password needs at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"A password may have at most {MAX_PASSWORD} characters."
    if not password.strip():
        return "A password cannot be only spaces."
    return None


def hash_password(password: str) -> str:
    """Return an Argon2id hash of ``password``."""
    return _hasher().hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches ``password_hash``; a missing hash never matches."""
    try:
        return _hasher().verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


class EmailError(ValueError):
    """Not an email address; the message says why."""


def checked_email(email: str) -> str:
    """Return ``email`` normalised, or raise ``EmailError`` if it is not an address."""
    email = email.strip()
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        raise EmailError(f"'{email}' is not a valid email address: {error}") from None
    return normalize_email(email)


def normalize_email(email: str) -> str:
    """Return ``email`` trimmed and lower-cased, the form every lookup uses."""
    return email.strip().lower()


def load_user(user_id: str) -> Admin | Participant | None:
    """Return the user a session names, unless its session version was revoked.

    An administrator or participant who may no longer sign in (disabled,
    suspended, deactivated, erased) is signed out on their next request.
    """
    kind, _, rest = user_id.partition(":")
    ident, _, version = rest.partition(":")
    model = {"admin": Admin, "participant": Participant}.get(kind)
    if model is None:
        return None
    try:
        user = db.session.get(model, uuid.UUID(ident))
    except ValueError:
        return None
    if user is None or not user.is_active or str(user.session_version) != version:
        return None
    return user


def find_admin(email: str) -> Admin | None:
    """Return the administrator with ``email``, if any."""
    return db.session.scalar(sa.select(Admin).where(Admin.email == normalize_email(email)))


def authenticate_admin(email: str, password: str) -> Admin | None:
    """Return the active administrator whose email and password match, or None.

    A failure against a known account is audited; the caller shows one generic
    message whatever the reason.
    """
    admin = find_admin(email)
    if admin is None:
        check_password(None, password)
        return None
    if not check_password(admin.password_hash, password):
        audit.record(admin, "admin.sign_in_failed", target=admin, details={"reason": "password"})
        return None
    if not admin.is_active:
        audit.record(admin, "admin.sign_in_failed", target=admin, details={"reason": "disabled"})
        return None
    return admin


def record_sign_in(admin: Admin, method: str = "password") -> None:
    """Stamp and audit a completed sign-in."""
    admin.last_sign_in_at = utcnow()
    audit.record(admin, "admin.signed_in", target=admin, details={"method": method})


def record_sign_out(admin: Admin) -> None:
    """Audit a sign-out."""
    audit.record(admin, "admin.signed_out", target=admin)


def new_totp_secret() -> str:
    """Return a fresh base32 TOTP secret."""
    return pyotp.random_base32()


def totp_uri(admin: Admin, secret: str) -> str:
    """Return the otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=admin.email, issuer_name=TOTP_ISSUER)


def check_totp(admin: Admin, secret: str, code: str, at: float | None = None) -> bool:
    """Return whether ``code`` is valid now for ``secret`` and was not used before.

    One step of clock drift is allowed either way; a code's time step is remembered
    so the same code cannot be replayed.
    """
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    now = at if at is not None else time.time()
    for drift in (-1, 0, 1):
        step = totp.timecode(datetime.fromtimestamp(now, UTC)) + drift
        if step <= (admin.totp_last_step or 0):
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            admin.totp_last_step = step
            return True
    return False


def enable_totp(admin: Admin, secret: str) -> None:
    """Store ``secret`` (encrypted) as the administrator's second factor."""
    admin.totp_secret = encryption.encrypt(TOTP_PURPOSE, secret)
    audit.record(admin, "admin.totp_enabled", target=admin)


def admin_totp_secret(admin: Admin) -> str | None:
    """Return the administrator's decrypted TOTP secret, if one is set."""
    if admin.totp_secret is None:
        return None
    return encryption.decrypt(TOTP_PURPOSE, admin.totp_secret)


def qr_svg(data: str) -> Markup:
    """Return ``data`` as an inline SVG QR code (no script, no style attribute)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage)
    return Markup(image.to_string(encoding="unicode"))
