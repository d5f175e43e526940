"""NearBackend: a remote backend (redis, database) with the host's near tier in front of it.

It is a :class:`~dash_state.backends.base.Backend` that wraps the remote one, so the manager (its
read cache, references, quotas) sees one backend of the same name. What it adds:

* **Reads**: a value the near tier holds is served after one existence check on the remote backend
  (``expiry``: Redis ``PTTL``, one indexed ``SELECT``), never a transfer of the value. A key's value
  never changes once written, so only existence and expiry can differ: a value the remote backend no
  longer has is dropped from the near tier and reads as missing. A value it lacks is read from the
  remote backend (plus its expiry) and kept.
* **Writes** go to the remote backend first; then the values are kept, expiring ``ttl`` after the
  moment *before* the remote write (never later than the remote backend's own expiry). A write's
  ``expect`` (compare-and-set on pointers) is the remote backend's to check: a refused write
  (PointerConflict) keeps nothing here. Pointers are never kept here, nor touched here.
* **Deletes, releases, a user's delete, a login's move** drop the near copies *before* the remote
  backend is asked, so a value this host deletes is never served by it again, whatever the outcome.
  Deletes by other hosts (or expiry) are seen at the next read's existence check.
* **Touches** move the near expiry along (to ``ttl`` after the moment before the touch); a touch by
  another host is picked up from the remote expiry at the next read.
* **Outages**: when the remote backend is unreachable (``BackendUnavailable``, which its circuit
  breaker raises at once), a value the near tier holds and whose recorded expiry has not passed is
  served anyway, and ``alive`` says yes for it (the manager's read cache validates with it). Writes,
  touches, deletes and pointers (``latest_only`` stores) still fail with the outage (HTTP 503). What
  such a read cannot know: a delete made during the outage window by another host (or one this host
  has not read since), which is the price of answering at all.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dash_state.backends.base import POINTER_PREFIX, Backend, Entry, Item, Pointer
from dash_state.backends.near.store import NearStore
from dash_state.core.codecs import Snapshot
from dash_state.errors import BackendUnavailable

log = logging.getLogger("dash_state")
MARGIN = 0.05  # seconds the near expiry stays ahead of the remote one
RESYNC = 1.0  # a remote expiry this much later than the near one (another host's touch) is copied over


class NearBackend(Backend):
    remote = True

    def __init__(self, inner: Backend, store: NearStore):
        self.inner, self.store = inner, store
        self.name = inner.name  # type: ignore[misc]
        self.shared = inner.shared  # type: ignore[misc]
        self.hits = self.misses = self.stale = self.outage_hits = 0

    def __getattr__(self, name: str) -> Any:  # breaker, table, engine, drop_table ... of the remote backend
        if name in ("inner", "store"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- values ------------------------------------------------------------------------------------
    def get(self, user: str, key: str) -> Snapshot | None:
        held = self.store.fetch(user, key)
        if held is not None:
            snapshot, near_expires = held
            try:
                remote_expires = self.inner.expiry(user, key)  # type: ignore[attr-defined]
            except BackendUnavailable:
                self.outage_hits += 1  # unreachable: what the near tier holds, unexpired, is served
                return snapshot
            if remote_expires is None:
                self.stale += 1
                self.store.forget(user, key)
                return None
            self._sync(user, key, near_expires, remote_expires)
            self.hits += 1
            return snapshot
        self.misses += 1
        data = self.inner.read(user, key)  # type: ignore[attr-defined]
        if data is None:
            return None
        snapshot = self.inner.seal.load(key, data)  # type: ignore[attr-defined]  # CorruptValue: missing
        try:
            expires = self.inner.expiry(user, key)  # type: ignore[attr-defined]
        except BackendUnavailable:
            return snapshot  # read just before the outage: served, not kept (its expiry is unknown)
        if expires is not None:
            self.store.keep(user, key, data if self.store.sealed else snapshot, expires - MARGIN)
        return snapshot

    def alive(self, user: str, key: str) -> bool:
        try:
            remote_expires = self.inner.expiry(user, key)  # type: ignore[attr-defined]
        except BackendUnavailable:
            if self.store.expires(user, key) is not None:
                self.outage_hits += 1
                return True
            raise
        if remote_expires is None:
            self.store.forget(user, key)
            return False
        self._sync(user, key, None, remote_expires)
        return True

    def set_many(self, user: str, items: list[Item], pointers: list[Pointer] = (), quota: int | None = None,
                 expect: Mapping[str, str | None] | None = None) -> None:
        before = time.time()
        self.inner.set_many(user, items, pointers, quota, expect)  # raises before anything is kept here
        for item in items:
            self.store.keep(user, item.key, item.value, before + item.ttl - MARGIN)

    def delete(self, user: str, key: str) -> bool:
        self.store.forget(user, key)
        return self.inner.delete(user, key)

    def release(self, user: str, pointer: str, key: str) -> bool:
        self.store.forget(user, key)
        return self.inner.release(user, pointer, key)

    def touch(self, user: str, key: str, ttl: float) -> bool:
        if key.startswith(POINTER_PREFIX):  # pointers live on the remote backend only
            return self.inner.touch(user, key, ttl)
        before = time.time()
        done = self.inner.touch(user, key, ttl)
        if done:
            self.store.set_expiry(user, key, before + ttl - MARGIN)
        else:
            self.store.forget(user, key)
        return done

    def _sync(self, user: str, key: str, near_expires: float | None, remote_expires: float) -> None:
        """Keep the near expiry at or before the remote one: after a touch elsewhere, or a shorter TTL."""
        if near_expires is None:
            near_expires = self.store.expires(user, key)
            if near_expires is None:
                return
        target = remote_expires - MARGIN  # remote_expires is never later than the remote's own expiry
        if near_expires > remote_expires or target > near_expires + RESYNC:
            self.store.set_expiry(user, key, target)

    # -- users, pointers and the rest: the remote backend's ---------------------------------------
    def pointer(self, user: str, name: str) -> str | None:
        return self.inner.pointer(user, name)

    def delete_user(self, user: str) -> int:
        self.store.forget_user(user)
        return self.inner.delete_user(user)

    def move_user(self, source: str, target: str) -> int:
        self.store.forget_user(source)  # the values move to keys of ``target``, read afresh from there
        return self.inner.move_user(source, target)

    def usage(self, user: str) -> list[tuple[str, int, float]]:
        return self.inner.usage(user)

    def inventory(self, user: str | None = None) -> Iterator[Entry]:
        return self.inner.inventory(user)

    def users(self) -> Iterator[str]:
        return self.inner.users()

    def gc(self, dry_run: bool = False, batch: int = 1000, progress: Callable[[int], None] | None = None) -> dict:
        """The remote backend's; a near copy of a value it removes reads as missing at its next read's
        existence check."""
        return self.inner.gc(dry_run, batch, progress)

    def new_key(self) -> str:
        return self.inner.new_key()

    def minted_elsewhere(self, key: str) -> bool:
        return self.inner.minted_elsewhere(key)

    def mark_new(self, user: str, new: bool) -> None:
        self.inner.mark_new(user, new)

    def stats(self) -> dict:
        near = {"hits": self.hits, "misses": self.misses, "stale": self.stale, "outage_hits": self.outage_hits,
                **self.store.near_stats()}
        return {**self.inner.stats(), "near_tier": near}

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            self.inner.close()
