"""The memory backend: values live in this process, as private copies (no encoding at all).

Fast and dependency-free, but each process has its own: use it for development and for apps served
by a single process. A byte cap bounds memory; beyond it the least recently used values are evicted,
and evicting a value that had not expired logs a WARNING, since a user will miss it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..codecs import Snapshot
from ..errors import StoreValueError
from .base import Backend

if TYPE_CHECKING:
    from ..config import Config
    from ..wire import Wire

log = logging.getLogger("dash_state")


class MemoryBackend(Backend):
    name = "memory"
    keeps_objects = True

    def __init__(self, max_bytes: int = 1 << 30, clock=time.monotonic, sweep_interval: float = 60.0):
        self.max_bytes = max_bytes
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Snapshot, float]] = OrderedDict()
        self._bytes = 0
        self.evictions = 0

    def get(self, user: str, key: str) -> Snapshot | None:
        key = f"{user}/{key}"
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= self._clock():
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def set(self, user: str, key: str, value: Snapshot, ttl: float) -> None:
        key = f"{user}/{key}"
        if value.nbytes > self.max_bytes:
            raise StoreValueError(
                f"value of {value.nbytes} bytes exceeds STATE_MEMORY_MAX_BYTES ({self.max_bytes}) of the memory backend"
            )
        now = self._clock()
        with self._lock:
            self._remove(key)
            self._entries[key] = (value, now + ttl)
            self._bytes += value.nbytes
            if now >= self._next_sweep:
                self._sweep(now)
            while self._bytes > self.max_bytes:
                old_key, (old, expires) = next(iter(self._entries.items()))
                self._remove(old_key)
                if expires > now:
                    self.evictions += 1
                    log.warning(
                        "dash-state memory backend evicted a live value of %d bytes: STATE_MEMORY_MAX_BYTES=%d is full",
                        old.nbytes,
                        self.max_bytes,
                    )

    def delete(self, user: str, key: str) -> bool:
        with self._lock:
            return self._remove(f"{user}/{key}")

    def touch(self, user: str, key: str, ttl: float) -> bool:
        key = f"{user}/{key}"
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[1] <= now:
                return False
            self._entries[key] = (entry[0], now + ttl)
            self._entries.move_to_end(key)
            return True

    def delete_user(self, user: str) -> int:
        prefix = f"{user}/"
        with self._lock:
            doomed = [k for k in self._entries if k.startswith(prefix)]
            for key in doomed:
                self._remove(key)
            return len(doomed)

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "evictions": self.evictions}

    def _remove(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._bytes -= entry[0].nbytes
        return True

    def _sweep(self, now: float) -> None:
        """Drop expired values so they do not hold memory until LRU reaches them."""
        for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            self._remove(key)
        self._next_sweep = now + self._sweep_interval


def from_config(config: "Config", wire: "Wire") -> MemoryBackend:
    return MemoryBackend(max_bytes=config["STATE_MEMORY_MAX_BYTES"])
