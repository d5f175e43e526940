"""Keys derived from the app's ``SECRET_KEY``, one per purpose, plus those of ``SECRET_KEY_FALLBACKS``.

The app's secret is never used directly: a reference signature or a stored ciphertext must not help
anyone forge a Flask session cookie, and one purpose's key must not verify another's data. Rotation
follows Flask 3.1: put the old key in ``SECRET_KEY_FALLBACKS``; dash-state then still accepts
references, identity cookies and values made with it, and makes new ones with the current key.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field


def derive(secret: bytes, purpose: str) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt and the purpose as info: 32 bytes."""
    prk = hmac.new(b"\0" * 32, secret, hashlib.sha256).digest()
    return hmac.new(prk, purpose.encode() + b"\x01", hashlib.sha256).digest()


@dataclass(frozen=True)
class Keys:
    """Every derived key, current first. ``generated`` is True for a random per-process secret."""

    secrets: tuple[bytes, ...]
    generated: bool = False
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def all(self, purpose: str) -> tuple[bytes, ...]:
        keys = self._cache.get(purpose)
        if keys is None:
            keys = self._cache[purpose] = tuple(derive(s, "dash-state " + purpose) for s in self.secrets)
        return keys

    def current(self, purpose: str) -> bytes:
        return self.all(purpose)[0]


def as_bytes(secret: object) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)  # type: ignore[arg-type]
