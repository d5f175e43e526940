"""An in-process read cache in front of the redis and database backends.

It is safe because the manager never changes a value in place: every write goes to a new random key
(or to a key derived from the value itself), so a cached value can only be *gone*, never stale. A
hit is therefore validated by a cheap existence check (Redis ``EXISTS``, one indexed ``SELECT``)
instead of moving and verifying the whole value; a value deleted or expired by any worker is never
served. Frames are kept decoded, so a hit costs a shallow copy instead of an Arrow decode.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from .codecs import Snapshot


class ReadCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], Snapshot] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def get(self, backend: str, user: str, key: str) -> Snapshot | None:
        with self._lock:
            snapshot = self._entries.get((backend, user, key))
            if snapshot is None:
                self.misses += 1
                return None
            self._entries.move_to_end((backend, user, key))
            self.hits += 1
            return snapshot

    def put(self, backend: str, user: str, key: str, snapshot: Snapshot) -> None:
        if snapshot.nbytes > self.max_bytes // 4:  # one huge value must not flush everything else
            return
        with self._lock:
            self._drop((backend, user, key))
            self._entries[(backend, user, key)] = snapshot
            self._bytes += snapshot.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.nbytes

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
            self._bytes -= old.nbytes
