"""Version numbers of user- and app-scoped values, carried in their keys.

A scoped store's value is written under a *versioned key*: six base64url characters of the version
(36 bits, big-endian), twelve random ones, and four of a check over the first eighteen. The store's
pointer names the key, so reading the pointer gives the version: a conditional poll, a live update
and ``set_store(..., if_version=v)`` compare numbers without reading any value, and a compare-and-set
on the pointer (:meth:`Backend.set_many` with ``expect``) is a compare-and-set on the version.

The browser reads the version of a ``u``/``g`` reference from its key the same way (``versionOf`` in
``src_js/references.js``), so it never goes back to an older value. A key that fails the check (a
random key written while the store was page-scoped) is version 0.
"""
from __future__ import annotations

import hashlib
import secrets

from dash_state.core.tokens import b64

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
MAX_VERSION = (1 << 36) - 1


def versioned_key(version: int) -> str:
    """A fresh 22-character key for ``version`` of a value (1 .. MAX_VERSION)."""
    version = max(0, min(int(version), MAX_VERSION))
    head = "".join(_ALPHABET[(version >> shift) & 63] for shift in range(30, -1, -6))
    body = head + b64(secrets.token_bytes(9))  # 12 characters
    return body + _check(body)


def version_of(key: str | None) -> int:
    """The version a key carries; 0 for None or for a key that is not versioned."""
    if not isinstance(key, str) or len(key) != 22 or _check(key[:18]) != key[18:]:
        return 0
    value = 0
    for char in key[:6]:
        value = (value << 6) | _INDEX[char]
    return value


def _check(body: str) -> str:
    return b64(hashlib.blake2b(body.encode("ascii"), digest_size=3, person=b"dash-state-ver").digest())
