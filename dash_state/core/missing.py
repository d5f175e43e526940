"""One way to say "missing, and why": what a lookup returns when it cannot serve a value.

A reference the manager cannot serve is never an exception (a callback reads ``None``, as from an
empty store): the lookup returns a :class:`Missing` with one of the :data:`REASONS`, which is counted
and logged once per request. ``Missing`` is falsy, so ``if not found:`` reads naturally; what a lookup
finds is a :class:`Found` (or an :class:`Owned` before any backend call).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from dash_state.core.codecs import Snapshot
    from dash_state.core.references import Reference

REASONS = {
    "malformed": "not a valid dash-state reference",
    "foreign": "signed for another user or another store",
    "expired": "expired or deleted",
    "unknown": "names a backend this app does not use",
    "tampered": "failed its integrity check",
    "refused": "written from the browser, which this store does not accept",
    "superseded": "not this store's latest value (latest_only)",
    "elsewhere": "written by another process (the memory backend keeps values per process)",
}


class Missing(NamedTuple):
    """Nothing to serve, and why (a key of :data:`REASONS`)."""

    reason: str

    def __bool__(self) -> bool:
        return False


class Owned(NamedTuple):
    """A reference signed for this user (or for everyone) and this store, and the namespace it lives in."""

    ref: Reference
    owner: str


class Found(NamedTuple):
    """The value a reference stands for, the reference, and the namespace it lives in."""

    snapshot: Snapshot
    ref: Reference
    owner: str
