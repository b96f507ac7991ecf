"""Encrypt small secrets at rest with keys derived from the console's secret key."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

__all__ = ["InvalidToken", "decrypt", "encrypt"]


def _fernet(purpose: str) -> Fernet:
    # One key per purpose, so a value encrypted for one use never decrypts as another.
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"partner-console",
        info=purpose.encode(),
    ).derive(current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(purpose: str, plaintext: str) -> str:
    """Return ``plaintext`` encrypted and authenticated for ``purpose``."""
    return _fernet(purpose).encrypt(plaintext.encode()).decode()


def decrypt(purpose: str, ciphertext: str) -> str:
    """Return the plaintext of ``ciphertext``; raise ``InvalidToken`` if it was altered."""
    return _fernet(purpose).decrypt(ciphertext.encode()).decode()
