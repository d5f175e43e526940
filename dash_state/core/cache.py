"""An in-process read cache in front of the redis and database backends.

It is safe because the manager never changes a value in place: every write goes to a new random key
(or to a key derived from the value itself), so a cached value can only be *gone*, never stale. A
hit is therefore validated by a cheap existence check (Redis ``EXISTS``, one indexed ``SELECT``)
instead of moving and decrypting the whole value; a value deleted or expired by any worker is never
served. Frames are kept decoded, so a hit costs a shallow copy instead of an Arrow decode.

Dead entries must not hold memory: a value this process deletes or releases leaves the cache at
once, and an entry nobody read for ``max_idle`` seconds (a value superseded in another worker, a
closed tab) is dropped at the next write. The default size (64 MiB per process) suits 4+ workers.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

from dash_state.core.codecs import Snapshot

MAX_IDLE = 300.0  # seconds an unread entry may stay


class ReadCache:
    def __init__(self, max_bytes: int, max_idle: float = MAX_IDLE, clock: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self.max_idle = max_idle
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], tuple[Snapshot, float]] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def get(self, backend: str, user: str, key: str) -> Snapshot | None:
        with self._lock:
            entry = self._entries.get((backend, user, key))
            if entry is None:
                self.misses += 1
                return None
            self._entries[(backend, user, key)] = (entry[0], self._clock())
            self._entries.move_to_end((backend, user, key))
            self.hits += 1
            return entry[0]

    def put(self, backend: str, user: str, key: str, snapshot: Snapshot) -> None:
        if snapshot.nbytes > self.max_bytes // 4:  # one huge value must not flush everything else
            return
        now = self._clock()
        with self._lock:
            self._drop((backend, user, key))
            self._entries[(backend, user, key)] = (snapshot, now)
            self._bytes += snapshot.nbytes
            oldest = next(iter(self._entries.values()))
            while self._entries and (self._bytes > self.max_bytes or oldest[1] < now - self.max_idle):
                _, (old, _) = self._entries.popitem(last=False)
                self._bytes -= old.nbytes
                oldest = next(iter(self._entries.values()), (None, now))

    def drop(self, backend: str, user: str, key: str) -> None:
        with self._lock:
            self._drop((backend, user, key))

    def drop_user(self, user: str) -> None:
        with self._lock:
            for entry in [e for e in self._entries if e[1] == user]:
                self._drop(entry)

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "hits": self.hits, "misses": self.misses}

    def _drop(self, entry: tuple[str, str, str]) -> None:
        old = self._entries.pop(entry, None)
        if old is not None:
            self._bytes -= old[0].nbytes
