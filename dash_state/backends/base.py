"""The backend interface: one small class per place where ServerStore data can live.

A backend maps ``(user, key)`` to a :class:`~dash_state.core.codecs.Snapshot` with a time to live. The
manager chooses both: ``user`` is a namespace (``a.<random>`` for an anonymous browser, ``u.<digest>``
for a logged-in user, ``@app`` for initial layout data shared by everyone), ``key`` is random (or a
digest of the value), so a key's value never changes once written. Besides values, a backend keeps
small *pointers* (``latest.<store digest>`` -> the key this user last wrote to that store).

Contract every backend keeps (``tests/test_backend_contract.py`` checks it for each one):

* ``get`` never returns an expired value, and returns ``None`` for unknown keys;
* ``set_many`` stores all of a callback's values and pointers or none of them, and refuses (raising
  :class:`~dash_state.errors.QuotaExceeded`) a write that would take the user past ``quota`` bytes
  of live values, checked atomically with the write, so concurrent writers cannot overshoot;
* ``set_many(..., expect={pointer name: target or None})`` writes only if each named pointer's live
  target is the one expected (None: no live pointer), checked atomically with the write; otherwise it
  raises :class:`~dash_state.errors.PointerConflict` and writes nothing (compare-and-set, used by user-
  and app-scoped stores, see :mod:`dash_state.core.shared`);
* ``set_many`` keeps at most ``values_per_store`` values per user and store (the keys its pointers
  named, see :mod:`.history`), evicting the oldest, never the newest, atomically with the write; the
  evicted bytes are free for the same write's quota check;
* ``release`` deletes a value the browser let go of, unless the store's pointer names it: then it is
  marked, and the next write to that store evicts it;
* ``touch`` extends the life of a live value without transferring it; given a pointer name, it
  extends the pointer (and its history) instead;
* ``delete_user`` removes everything of one user in one call; ``move_user`` re-homes a namespace;
* ``inventory``, ``users`` and ``gc`` (the ``dash-state`` command line) stream what the backend holds
  in batches, never all of it at once, and never see another app's data;
* a write never evicts another user's values (the memory backend's one exception: when it is full,
  the least recently used values of *new* anonymous visitors, see :meth:`Backend.mark_new`);
* methods are safe to call from many threads at once; a server that cannot be reached raises
  :class:`~dash_state.errors.BackendUnavailable` after bounded retries, never half-writes.

Backends that keep bytes (redis, database) derive from :class:`BytesBackend`, which seals values
(:mod:`dash_state.core.seal`).
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, NamedTuple

from dash_state.core.codecs import Snapshot
from dash_state.core.references import digest_key
from dash_state.core.seal import Seal
from dash_state.core.tokens import random_id

#: Names of pointers start with this; every other key names a value.
POINTER_PREFIX = "latest."


def pointer_name(store_id: str) -> str:
    """The name of the pointer to a user's latest value of a store (in that user's namespace)."""
    return POINTER_PREFIX + digest_key(store_id.encode("utf-8", "surrogatepass"))
_KEY = re.compile(r"[A-Za-z0-9_-]{22}")


def is_key(target: object) -> bool:
    """Whether a pointer's target looks like a value key (22 base64url characters); anything else
    read from a pointer is treated as no pointer at all."""
    return isinstance(target, str) and _KEY.fullmatch(target) is not None


class Item(NamedTuple):
    key: str
    value: Snapshot
    ttl: float


class Pointer(NamedTuple):
    name: str
    target: str
    ttl: float


class Entry(NamedTuple):
    """One live thing a backend holds, as :meth:`Backend.inventory` lists it."""
    user: str
    key: str
    #: "value", "pointer" (``latest.X``) or "history" (``latest.X.history``, see :mod:`.history`)
    kind: str
    #: a value's stored size, what quotas count (as in ``usage``); 0 for pointers and histories
    bytes: int
    #: when it expires, epoch seconds
    expires_at: float | None
    #: the key a pointer names (always a key: a pointer naming anything else reads as none and is not
    #: listed); None for values and histories
    target: str | None


class Backend(ABC):
    #: name used in configuration (``STATE_BACKEND``, ``[STATE_STORES.<id>] backend``).
    name: ClassVar[str]
    #: False only for the client backend: the data itself travels to the browser, as with dcc.Store.
    server_side: ClassVar[bool] = True
    #: True when other processes (gunicorn workers, other hosts) see the same data.
    shared: ClassVar[bool] = False
    #: True when the backend keeps snapshots as objects (memory); others keep sealed bytes.
    keeps_objects: ClassVar[bool] = False
    #: True when values come over a connection (redis, database): each process then keeps recently
    #: used values in its read cache (``STATE_READ_CACHE_BYTES``). Memory and local reads need none.
    remote: ClassVar[bool] = False
    #: Most values one user keeps per store (``STATE_VALUES_PER_STORE``), see :mod:`.history`.
    values_per_store: int = 16

    @abstractmethod
    def get(self, user: str, key: str) -> Snapshot | None:
        """The live value, or None if it is unknown or expired."""

    @abstractmethod
    def set_many(self, user: str, items: list[Item], pointers: list[Pointer] = (), quota: int | None = None,
                 expect: Mapping[str, str | None] | None = None) -> None:
        """Store a callback's values and pointers of one user, all or nothing, within ``quota`` bytes;
        with ``expect``, only if each named pointer still names the expected key (else PointerConflict)."""

    def set(self, user: str, key: str, value: Snapshot, ttl: float) -> None:
        self.set_many(user, [Item(key, value, ttl)])

    @abstractmethod
    def pointer(self, user: str, name: str) -> str | None:
        """The key a live pointer names; None if it is unknown, expired or not a key."""

    @abstractmethod
    def delete(self, user: str, key: str) -> bool:
        """Remove one value; True if it was there."""

    def release(self, user: str, pointer: str, key: str) -> bool:
        """A page let go of ``key``: delete it (True if it was there), unless ``pointer`` names it; then
        it stays, marked, until the next write to that store evicts it (False). Backends override this
        to do it atomically; this fallback only checks first."""
        if self.pointer(user, pointer) == key:
            return False
        return self.delete(user, key)

    @abstractmethod
    def touch(self, user: str, key: str, ttl: float) -> bool:
        """Restart the TTL of a live value (or of a live pointer and its history, given a pointer's
        name); False if there is none."""

    def alive(self, user: str, key: str) -> bool:
        """Whether a live value exists, without transferring it (validates the read cache)."""
        return self.get(user, key) is not None

    @abstractmethod
    def delete_user(self, user: str) -> int:
        """Remove every value of ``user``; returns how many."""

    @abstractmethod
    def move_user(self, source: str, target: str) -> int:
        """Move every value of ``source`` into ``target`` (a login carrying anonymous state over).
        Keys that ``target`` already has keep ``target``'s value. Returns how many moved."""

    @abstractmethod
    def usage(self, user: str) -> list[tuple[str, int, float]]:
        """``(key, bytes, expires_at epoch seconds)`` of each live value of ``user``."""

    # -- what the backend holds (the ``dash-state`` command line) ---------------------------------------
    def inventory(self, user: str | None = None) -> Iterator[Entry]:
        """Every live entry of ``user`` (of every user when None): values, pointers and histories, one
        :class:`Entry` each; expired ones are left out. Streams in batches (Redis ``SCAN``, SQL keyset
        pages, LMDB a read transaction per chunk), so a backend of any size can be listed. Each user's
        entries come together; which user comes first is the backend's business."""
        if not self.server_side:
            return iter(())
        raise NotImplementedError(f"the {self.name} backend cannot list what it holds")

    def users(self) -> Iterator[str]:
        """Each namespace with at least one live entry, streamed as ``inventory`` is."""
        last = None
        for entry in self.inventory():
            if entry.user != last:
                last = entry.user
                yield last

    def gc(self, dry_run: bool = False, batch: int = 1000,
           progress: Callable[[int], None] | None = None) -> dict:
        """Remove, in batches of about ``batch``, the expired entries (values, pointers, histories) and
        the values past each store's bound: per store history, the live values past its newest
        ``values_per_store`` and those marked released, but never the value the store's live pointer
        names (as a write would, see :mod:`.history`). ``progress(n)`` is called after each batch with
        the entries it removed. Returns ``{"expired": n, "over_bound": n, "bytes_freed": n, "users": n}``:
        entries removed of each sort, the bytes of the values among them (what quotas counted) and the
        namespaces they were removed from. ``dry_run`` counts the same and deletes nothing. Every step
        is atomic with the writes (quotas stay exact); only this app's data is ever looked at."""
        if not self.server_side:
            return {"expired": 0, "over_bound": 0, "bytes_freed": 0, "users": 0}
        raise NotImplementedError(f"the {self.name} backend cannot clean what it holds")

    def new_key(self) -> str:
        """A fresh random key for a value (22 base64url characters)."""
        return random_id()

    def minted_elsewhere(self, key: str) -> bool:
        """Whether a key this backend cannot find was made by another process that keeps its own
        values (only the memory backend can tell; shared backends see every process's keys)."""
        return False

    def mark_new(self, user: str, new: bool) -> None:
        """Whether ``user`` is a browser the server met only recently (``STATE_NEW_VISITOR_SECONDS``).
        Only the memory backend uses it: when full, it evicts new visitors' idle values before refusing."""

    def stats(self) -> dict:
        """Backend-specific figures for ``StateManager.stats()``."""
        return {}

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""


class BytesBackend(Backend):
    """A backend that stores sealed bytes (see :mod:`dash_state.core.seal`)."""

    def __init__(self, seal: Seal):
        self.seal = seal

    @abstractmethod
    def read(self, user: str, key: str) -> Any:
        """The stored bytes of a live value, or None."""

    @abstractmethod
    def write_many(self, user: str, items: list[tuple[str, Any, float]], pointers: list[Pointer],
                   quota: int | None, expect: Mapping[str, str | None] | None = None) -> None:
        """Store sealed ``(key, bytes, ttl)`` items and pointers atomically, within ``quota``, if the
        pointers named in ``expect`` name what it says (else PointerConflict, nothing written)."""

    def get(self, user: str, key: str) -> Snapshot | None:
        data = self.read(user, key)
        return None if data is None else self.seal.load(key, data)

    def set_many(self, user: str, items: list[Item], pointers: list[Pointer] = (), quota: int | None = None,
                 expect: Mapping[str, str | None] | None = None) -> None:
        sealed = [(item.key, self.seal.dump(item.key, item.value), item.ttl) for item in items]
        self.write_many(user, sealed, list(pointers), quota, expect)
