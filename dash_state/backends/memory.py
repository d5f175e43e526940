"""The memory backend: values live in this process, as private copies (no encoding at all).

Fast and dependency-free, but each process has its own: use it for development, for apps served by a
single process, and for background callbacks (the web process resolves and stores for the job).

Memory is bounded twice: ``STATE_MAX_USER_BYTES`` per user and ``STATE_MEMORY_MAX_BYTES`` for the
process. When a write does not fit, expired values are dropped first; then room is made only from:

* initial layout data shared by everyone (``@app``), for other such data (stored again the next time
  the layout is served);
* values of *new* anonymous visitors (an identity cookie younger than ``STATE_NEW_VISITOR_SECONDS``)
  who hold at least as many bytes as the writer, least recently used first, never the writer's own:
  identities cost nothing to make, so a flood of them (curl without cookies, a crawler) must not lock
  everybody else out, and one client holding much cannot push out others who hold little. Such a value
  then reads as expired (None). Established browsers and logged-in users are never evicted.

Otherwise the write is *refused* (QuotaExceeded). Each store keeps at most ``STATE_VALUES_PER_STORE``
values per user: a write past it evicts that store's oldest ones first, under the same lock (see
:mod:`.history`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Callable

from dash_state.backends import history
from dash_state.backends.base import (
    POINTER_PREFIX,
    Backend,
    Entry,
    Item,
    Pointer,
    is_key,
)
from dash_state.backends.inventory import Tally, chunks, trim
from dash_state.core.codecs import Snapshot
from dash_state.core.references import APP_OWNER
from dash_state.core.tokens import b64, random_id
from dash_state.errors import PointerConflict, QuotaExceeded

if TYPE_CHECKING:
    from dash_state.config import Config
    from dash_state.core.seal import Seal

log = logging.getLogger("dash_state")


class _ProcessKeys:
    """Keys that name the process that made them: ``tag (4) + random (14) + check (4)``.

    Each process (each gunicorn worker) has its own memory backend, so a reference minted by another
    worker finds nothing here. With the tag, that miss is told apart from an expired value and logged
    with the fix, instead of "expired or deleted". The check keeps other 22-character keys (digests
    of layout data) from looking like another process's key (one chance in 16 million)."""

    def __init__(self) -> None:
        self._pid, self._tag = 0, ""

    def tag(self) -> str:
        if self._pid != os.getpid():  # a fork (gunicorn --preload) is another process
            self._pid, self._tag = os.getpid(), random_id()[:4]
        return self._tag

    def new(self) -> str:
        body = self.tag() + random_id()[:14]
        return body + self._check(body)

    def foreign(self, key: str) -> bool:
        return len(key) == 22 and key[:4] != self.tag() and self._check(key[:18]) == key[18:]

    @staticmethod
    def _check(body: str) -> str:
        return b64(hashlib.blake2b(body.encode(), digest_size=3, person=b"dash-state-key").digest())



class MemoryBackend(Backend):
    name = "memory"
    keeps_objects = True

    def __init__(self, max_bytes: int = 1 << 30, clock: Callable[[], float] = time.monotonic,
                 sweep_interval: float = 60.0, values_per_store: int = 16):
        self.max_bytes = max_bytes
        self.values_per_store = values_per_store
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[Snapshot, float]] = OrderedDict()
        self._pointers: dict[tuple[str, str], tuple[str, float]] = {}
        self._histories: dict[tuple[str, str], list[history.Entry]] = {}  # (user, pointer name): live as the pointer
        self._user_bytes: dict[str, int] = {}
        self._new: set[str] = set()  # users whose values may make room (see the module docstring)
        self._bytes = 0
        self.refused = 0
        self.evicted = 0
        self.evicted_per_store = 0
        self._quiet_until = 0.0
        self._keys = _ProcessKeys()

    def new_key(self) -> str:
        return self._keys.new()

    def minted_elsewhere(self, key: str) -> bool:
        return self._keys.foreign(key)

    def get(self, user: str, key: str) -> Snapshot | None:
        with self._lock:
            entry = self._entries.get((user, key))
            if entry is None:
                return None
            if entry[1] <= self._clock():
                self._remove((user, key))
                return None
            self._entries.move_to_end((user, key))
            return entry[0]

    def set_many(self, user: str, items: list[Item], pointers: list[Pointer] = (), quota: int | None = None,
                 expect: Mapping[str, str | None] | None = None) -> None:
        now = self._clock()
        with self._lock:
            for name, expected in (expect or {}).items():  # compare-and-set: under the lock of the write
                found = self._live_pointer(user, name, now)
                if found != expected:
                    raise PointerConflict(name, found)
            if now >= self._next_sweep:
                self._sweep(now)
            written = {item.key for item in items}
            plans = self._plan(user, pointers, now)
            evicting = {key for _, evicted in plans.values() for key in evicted} - written
            replaced = sum(self._entries[(user, k)][0].nbytes for k in written | evicting if (user, k) in self._entries)
            adding = sum(item.value.nbytes for item in items) - replaced
            if quota is not None and self._user_bytes.get(user, 0) + adding > quota:
                self._sweep(now)
                if self._user_bytes.get(user, 0) + adding > quota:
                    self.refused += 1
                    raise QuotaExceeded(f"this user's ServerStore values would take {self._user_bytes.get(user, 0) + adding:,} "
                                        f"bytes, more than STATE_MAX_USER_BYTES = {quota:,}")
            if self._bytes + adding > self.max_bytes:
                self._make_room(user, adding, now)
            for key in evicting:
                self.evicted_per_store += self._remove((user, key))
            for name, (entries, _) in plans.items():
                self._histories[(user, name)] = entries
            for key, value, ttl in items:
                self._remove((user, key))
                self._entries[(user, key)] = (value, now + ttl)
                self._user_bytes[user] = self._user_bytes.get(user, 0) + value.nbytes
                self._bytes += value.nbytes
            for name, target, ttl in pointers:
                self._pointers[(user, name)] = (target, now + ttl)

    def _plan(self, user: str, pointers: list[Pointer], now: float) -> dict[str, tuple[list, list[str]]]:
        """Per pointer name: the store's history after this write, and the keys it evicts."""
        targets: dict[str, list[str]] = {}
        for pointer in pointers:
            targets.setdefault(pointer.name, []).append(pointer.target)

        def alive(key: str) -> bool:
            entry = self._entries.get((user, key))
            return entry is not None and entry[1] > now

        return {name: history.plan(self._histories.get((user, name), []), keys, alive, self.values_per_store)
                for name, keys in targets.items()}

    def mark_new(self, user: str, new: bool) -> None:
        with self._lock:
            if new:
                self._new.add(user)
            else:
                self._new.discard(user)

    def _make_room(self, user: str, adding: int, now: float) -> None:
        """Drop expired values; then older shared layout data (for shared layout data), then new
        visitors' least recently used values; else refuse."""
        self._sweep(now)
        mine = self._user_bytes.get(user, 0)  # a new visitor never takes room from one holding less
        evictable = (lambda owner: owner == APP_OWNER) if user == APP_OWNER else \
            (lambda owner: owner in self._new and owner != user and self._user_bytes.get(owner, 0) >= mine)
        evicted = 0
        for entry_key in [k for k in self._entries if evictable(k[0])]:  # least recently used first
            if self._bytes + adding <= self.max_bytes:
                break
            evicted += self._remove(entry_key)
        if evicted and user != APP_OWNER:
            self.evicted += evicted
            if now >= self._quiet_until:  # a flood of new identities: one line a minute, not one per write
                self._quiet_until = now + 60
                log.warning("dash-state: the memory backend is full; idle values of new visitors make room "
                            "(they read as expired); %d evicted so far", self.evicted)
        if self._bytes + adding > self.max_bytes:
            self.refused += 1
            raise QuotaExceeded(f"the memory backend is full: {self._bytes:,} of STATE_MEMORY_MAX_BYTES = "
                                f"{self.max_bytes:,} bytes are in use and {adding:,} more were asked for")

    def pointer(self, user: str, name: str) -> str | None:
        with self._lock:
            return self._live_pointer(user, name, self._clock())

    def _live_pointer(self, user: str, name: str, now: float) -> str | None:
        entry = self._pointers.get((user, name))
        if entry is None or entry[1] <= now or not is_key(entry[0]):
            return None
        return entry[0]

    def delete(self, user: str, key: str) -> bool:
        with self._lock:
            if key.startswith(POINTER_PREFIX):
                self._histories.pop((user, key), None)
                return self._pointers.pop((user, key), None) is not None
            return self._remove((user, key))

    def release(self, user: str, pointer: str, key: str) -> bool:
        with self._lock:
            entry = self._pointers.get((user, pointer))
            if entry is not None and entry[1] > self._clock() and entry[0] == key:
                self._histories[(user, pointer)] = history.mark(self._histories.get((user, pointer), []), key)
                return False
            return self._remove((user, key))

    def touch(self, user: str, key: str, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            if key.startswith(POINTER_PREFIX):  # its history lives as long as the pointer does
                target = self._live_pointer(user, key, now)
                if target is not None:
                    self._pointers[(user, key)] = (target, now + ttl)
                return target is not None
            entry = self._entries.get((user, key))
            if entry is None or entry[1] <= now:
                return False
            self._entries[(user, key)] = (entry[0], now + ttl)
            self._entries.move_to_end((user, key))
            return True

    def delete_user(self, user: str) -> int:
        with self._lock:
            doomed = [k for k in self._entries if k[0] == user]
            for entry_key in doomed:
                self._remove(entry_key)
            for pointer in [k for k in self._pointers if k[0] == user]:
                del self._pointers[pointer]
            for name in [k for k in self._histories if k[0] == user]:
                del self._histories[name]
            self._new.discard(user)
            return len(doomed)

    def move_user(self, source: str, target: str) -> int:
        now = self._clock()
        moved = 0
        with self._lock:
            for (owner, key) in [k for k in self._entries if k[0] == source]:
                value, expires = self._entries[(owner, key)]
                self._remove((owner, key))
                kept = self._entries.get((target, key))
                if expires <= now or (kept is not None and kept[1] > now):  # an expired one is not the target's
                    continue
                self._remove((target, key))
                self._entries[(target, key)] = (value, expires)
                self._user_bytes[target] = self._user_bytes.get(target, 0) + value.nbytes
                self._bytes += value.nbytes
                moved += 1
            for (owner, name) in [k for k in self._pointers if k[0] == source]:
                pointer = self._pointers.pop((owner, name))
                kept = self._pointers.get((target, name))
                if pointer[1] > now and (kept is None or kept[1] <= now):
                    self._pointers[(target, name)] = pointer
            for (owner, name) in [k for k in self._histories if k[0] == source]:
                moving = self._histories.pop((owner, name))
                if (target, name) in self._pointers:
                    self._histories[(target, name)] = history.merge(self._histories.get((target, name), []), moving)
        return moved

    def usage(self, user: str) -> list[tuple[str, int, float]]:
        now, wall = self._clock(), time.time()
        with self._lock:
            return [(key, value.nbytes, wall + expires - now) for (owner, key), (value, expires)
                    in self._entries.items() if owner == user and expires > now]

    def inventory(self, user: str | None = None) -> Iterator[Entry]:
        """A copy taken under the lock (all of this process's entries are in its memory anyway)."""
        now, wall = self._clock(), time.time()
        found = []
        with self._lock:
            for (owner, key), (value, expires) in self._entries.items():
                if (user is None or owner == user) and expires > now:
                    found.append(Entry(owner, key, "value", value.nbytes, wall + expires - now, None))
            for (owner, name), (target, expires) in self._pointers.items():
                if (user is None or owner == user) and expires > now:
                    if is_key(target):
                        found.append(Entry(owner, name, "pointer", 0, wall + expires - now, target))
                    if (owner, name) in self._histories:  # a history lives as long as its pointer
                        found.append(Entry(owner, history.history_name(name), "history", 0, wall + expires - now, None))
        found.sort(key=lambda entry: (entry.user, entry.key))
        return iter(found)

    def users(self) -> Iterator[str]:
        now = self._clock()
        with self._lock:
            owners = {owner for (owner, _), (_, expires) in self._entries.items() if expires > now}
            owners |= {owner for (owner, _), (_, expires) in self._pointers.items() if expires > now}
        return iter(sorted(owners))

    def gc(self, dry_run: bool = False, batch: int = 1000, progress: Callable[[int], None] | None = None) -> dict:
        tally, now = Tally(progress), self._clock()
        with self._lock:
            doomed = [("value", k) for k, (_, expires) in self._entries.items() if expires <= now]
            doomed += [("pointer", k) for k, (_, expires) in self._pointers.items() if expires <= now]
        for chunk in chunks(doomed, max(batch, 1)):
            removed = 0
            with self._lock:
                for sort, (user, key) in chunk:
                    found = (self._entries if sort == "value" else self._pointers).get((user, key))
                    if found is None or found[1] > now:
                        continue
                    size = found[0].nbytes if sort == "value" else 0
                    gone = 1 + (sort == "pointer" and (user, key) in self._histories)  # and its history
                    if not dry_run:
                        if sort == "value":
                            self._remove((user, key))
                        else:
                            del self._pointers[(user, key)]
                            self._histories.pop((user, key), None)
                    tally.add(user, expired=gone, freed=size)
                    removed += gone
            tally.step(removed)
        with self._lock:
            stores = list(self._histories)
        for chunk in chunks(stores, max(batch, 1)):
            removed = 0
            with self._lock:
                for user, name in chunk:
                    entries, pointer = self._histories.get((user, name)), self._pointers.get((user, name))
                    if entries is None or pointer is None or pointer[1] <= now:  # expired: gone with its pointer
                        continue
                    target = self._live_pointer(user, name, now)

                    def alive(key: str, user: str = user) -> bool:
                        entry = self._entries.get((user, key))
                        return entry is not None and entry[1] > now

                    kept, evicted = trim(entries, target, alive, self.values_per_store)
                    tally.add(user, over_bound=len(evicted),
                              freed=sum(self._entries[(user, key)][0].nbytes for key in evicted))
                    removed += len(evicted)
                    if not dry_run:
                        for key in evicted:
                            self._remove((user, key))
                        self._histories[(user, name)] = kept
            tally.step(removed)
        return tally.result()

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "users": len(self._user_bytes), "refused": self.refused, "evicted_new_visitors": self.evicted,
                    "evicted_per_store": self.evicted_per_store}

    def _remove(self, entry_key: tuple[str, str]) -> bool:
        entry = self._entries.pop(entry_key, None)
        if entry is None:
            return False
        user, size = entry_key[0], entry[0].nbytes
        self._bytes -= size
        left = self._user_bytes.get(user, 0) - size
        if left > 0:
            self._user_bytes[user] = left
        else:
            self._user_bytes.pop(user, None)
            self._new.discard(user)
        return True

    def _sweep(self, now: float) -> None:
        """Drop expired values and pointers, so they do not hold memory or quota."""
        for entry_key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            self._remove(entry_key)
        for pointer in [k for k, (_, expires) in self._pointers.items() if expires <= now]:
            del self._pointers[pointer]
            self._histories.pop(pointer, None)
        self._next_sweep = now + self._sweep_interval


def from_config(config: "Config", seal: "Seal") -> MemoryBackend:
    return MemoryBackend(max_bytes=config["STATE_MEMORY_MAX_BYTES"], values_per_store=config["STATE_VALUES_PER_STORE"])
