"""Counters and latency histograms per store id and backend: what ``StateManager.stats()`` returns and
what the Prometheus exporter (:mod:`.prometheus`) and the dev-tools panel show.

Per (store, backend): reads, hits, misses by reason (expired, unknown, foreign, tampered, malformed,
refused, superseded), writes, bytes stored, bytes kept out of the browser (what a dcc.Store would
have sent: the value as JSON), and read/write latency. Pattern-matching ids are counted by family
(``{"index":"*","type":"cart"}``), so a thousand carts make one series, not a thousand.

Recording costs a dict update under a lock per operation (``STATE_METRICS = false`` turns it off).
"""
from __future__ import annotations

import bisect
import json
import threading
from collections import defaultdict
from typing import Any, Callable

#: Upper bounds (seconds) of the latency histogram buckets, as Prometheus' defaults plus sub-ms ones.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LABEL = 100


def store_label(store_id: str) -> str:
    """A bounded label for a store id: dict ids by family (numbers as ``*``), long ids truncated."""
    if store_id.startswith("{"):
        try:
            parsed = json.loads(store_id)
            store_id = json.dumps({k: "*" if isinstance(v, (int, float)) else v for k, v in parsed.items()},
                                  sort_keys=True, separators=(",", ":"))
        except (ValueError, AttributeError):
            pass
    return store_id if len(store_id) <= MAX_LABEL else store_id[:MAX_LABEL] + "..."


class Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def as_dict(self) -> dict:
        cumulative, running = {}, 0
        for bound, n in zip(BUCKETS + (float("inf"),), self.counts):
            running += n
            cumulative["+Inf" if bound == float("inf") else str(bound)] = running
        return {"count": self.count, "sum": self.total, "buckets": cumulative}


class Metrics:
    """Thread-safe counters; ``listeners`` (the Prometheus exporter) see every event as it happens."""

    COUNTERS = ("reads", "hits", "writes", "bytes_stored", "bytes_kept_from_browser", "deletes")

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._latency: dict[tuple[str, str, str], Histogram] = {}
        self.listeners: list[Callable[[str, str, str, float], None]] = []

    def count(self, store_id: str, backend: str, name: str, amount: float = 1) -> None:
        if not self.enabled:
            return
        label = store_label(store_id)
        with self._lock:
            self._counts[(label, backend)][name] += amount
        for listener in self.listeners:
            listener(label, backend, name, amount)

    def observe(self, store_id: str, backend: str, operation: str, seconds: float) -> None:
        if not self.enabled:
            return
        label = store_label(store_id)
        with self._lock:
            histogram = self._latency.get((label, backend, operation))
            if histogram is None:
                histogram = self._latency[(label, backend, operation)] = Histogram()
            histogram.observe(seconds)
        for listener in self.listeners:
            listener(label, backend, f"latency.{operation}", seconds)

    def snapshot(self) -> dict[str, Any]:
        """``{store: {backend: {counter: n, "misses": {...}, "latency": {"read": {...}, "write": {...}}}}}``."""
        out: dict[str, Any] = {}
        with self._lock:
            for (label, backend), counts in self._counts.items():
                entry = out.setdefault(label, {}).setdefault(backend, {"misses": {}, "latency": {}})
                for name, value in counts.items():
                    if name.startswith("miss."):
                        entry["misses"][name[5:]] = value
                    else:
                        entry[name] = value
            for (label, backend, operation), histogram in self._latency.items():
                entry = out.setdefault(label, {}).setdefault(backend, {"misses": {}, "latency": {}})
                entry["latency"][operation] = histogram.as_dict()
        return out

    def for_store(self, store_id: str) -> dict[str, Any]:
        return self.snapshot().get(store_label(store_id), {})
