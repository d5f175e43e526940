"""References: the only thing the browser holds for a server-side store.

A reference is ``dsr1.<backend>.<key>.<signature>``, about 70 bytes whatever the size of the data.
``key`` is 128 random bits (or a digest, for a layout's initial data); the signature is an HMAC over
the user, backend and key with a secret derived from the app's ``SECRET_KEY``. A reference copied to
another session fails the signature check, a forged or truncated one fails to parse, and neither
reaches a backend. Nothing server-internal (paths, hosts, user ids) is in it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import NamedTuple

PREFIX = "dsr1."
MAX_LENGTH = 256
_KEY_LENGTH = 22  # base64 of 16 bytes, unpadded
_SIG_BYTES = 16


class Reference(NamedTuple):
    backend: str
    key: str
    signature: str


def looks_like_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def new_key() -> str:
    return _b64(secrets.token_bytes(16))


def digest_key(*parts: bytes) -> str:
    """A deterministic key, so serving the same initial data again reuses one entry."""
    return _b64(hashlib.blake2b(b"\0".join(parts), digest_size=16).digest())


def derive_secret(app_secret: bytes) -> bytes:
    """Never use the app's secret directly: a reference signature must not help forge a session cookie."""
    return hmac.new(app_secret, b"dash-state reference signing v1", hashlib.sha256).digest()


def make(secret: bytes, user: str, backend: str, key: str) -> str:
    return f"{PREFIX}{backend}.{key}.{_sign(secret, user, backend, key)}"


def parse(token: object) -> Reference | None:
    """Split a token; None when it is not a well-formed reference (the caller logs why)."""
    if not isinstance(token, str) or len(token) > MAX_LENGTH or not token.startswith(PREFIX):
        return None
    parts = token[len(PREFIX):].split(".")
    if len(parts) != 3:
        return None
    backend, key, signature = parts
    if not backend.isalpha() or len(key) != _KEY_LENGTH or not signature:
        return None
    return Reference(backend, key, signature)


def verify(secret: bytes, user: str, ref: Reference) -> bool:
    return hmac.compare_digest(ref.signature, _sign(secret, user, ref.backend, ref.key))


def _sign(secret: bytes, user: str, backend: str, key: str) -> str:
    message = f"{user}\0{backend}\0{key}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:_SIG_BYTES])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
