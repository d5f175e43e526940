"""The identity cookie: who an anonymous browser is, and which logged-in user it was last linked to.

dash-state keeps its own small cookie instead of writing into the app's Flask session, so it never
changes the app's session (lifetime, size, re-signing on every request). The value is
``1.<anon>.<linked>.<aliases>.<issued>.<mac>``: a 128-bit random anonymous id, the namespace of the
logged-in user this browser was last linked to (``-`` if none), up to four earlier anonymous ids whose
state was carried over at login (``~``-separated), the issue time (base 36 seconds) and an HMAC.
The browser cannot choose or alter any of it.

Attributes: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS (or always, when configured), an
optional ``__Host-`` prefix that stops sibling subdomains and plain HTTP from planting a cookie. It is
only ever set on a response that minted or rotated an identity, never on static files.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from dash_state.core.tokens import b64, base36, random_id

_ID = r"[A-Za-z0-9_-]{22}"
_VALUE = re.compile(rf"1\.({_ID})\.(-|u\.{_ID})\.((?:{_ID}(?:~{_ID}){{0,3}})?)\.([0-9a-z]{{1,8}})\.({_ID})")
MAX_ALIASES = 4
_VERIFIED_MAX = 10_000
_verified: dict[tuple[str, tuple[bytes, ...]], "CookieState"] = {}  # cookies whose MAC was checked

@dataclass(frozen=True)
class CookieState:
    anon: str
    linked: str | None = None
    aliases: tuple[str, ...] = ()
    issued: int = 0

    @classmethod
    def fresh(cls, linked: str | None = None, aliases: tuple[str, ...] = ()) -> "CookieState":
        return cls(new_anonymous_id(), linked, aliases[-MAX_ALIASES:], int(time.time()))

    def refreshed(self) -> "CookieState":
        return replace(self, issued=int(time.time()))


def new_anonymous_id() -> str:
    return random_id()


def encode(state: CookieState, key: bytes) -> str:
    body = f"1.{state.anon}.{state.linked or '-'}.{'~'.join(state.aliases)}.{base36(state.issued)}"
    return f"{body}.{_mac(key, body)}"


def decode(raw: Any, keys: tuple[bytes, ...], max_age: float) -> CookieState | None:
    """The cookie's state, or None when it is absent, malformed, forged or older than ``max_age``."""
    if not isinstance(raw, str) or len(raw) > 256:
        return None
    state = _verified.get((raw, keys))  # a browser sends the same cookie with every request
    if state is None:
        state = _verify(raw, keys)
        if state is None:
            return None
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[(raw, keys)] = state
    return state if state.issued + max_age >= time.time() else None


def _verify(raw: str, keys: tuple[bytes, ...]) -> CookieState | None:
    match = _VALUE.fullmatch(raw)
    if match is None:
        return None
    anon, linked, aliases, issued, mac = match.groups()
    body = raw[: -len(mac) - 1]
    if not any(hmac.compare_digest(mac.encode(), _mac(key, body).encode()) for key in keys):
        return None
    return CookieState(anon, None if linked == "-" else linked, tuple(a for a in aliases.split("~") if a),
                       int(issued, 36))


def cookie_name(base: str, host_prefix: bool, secure: bool) -> str:
    return f"__Host-{base}" if host_prefix and secure else base


def _mac(key: bytes, body: str) -> str:
    return b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:16])
