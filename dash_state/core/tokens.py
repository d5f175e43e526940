"""Text forms of random and derived bytes used in references and cookies (URL- and cookie-safe)."""
from __future__ import annotations

import base64
import secrets

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def b64(raw: bytes) -> str:
    """Unpadded base64url: 22 characters for 16 bytes."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def random_id() -> str:
    """128 random bits as 22 base64url characters."""
    return b64(secrets.token_bytes(16))


def base36(number: int) -> str:
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _DIGITS[rest] + out
        if not number:
            return out
