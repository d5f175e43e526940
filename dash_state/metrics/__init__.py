"""Counters and latency histograms per store id and backend: what ``StateManager.stats()`` returns and
what the Prometheus exporter (:mod:`.prometheus`) and the dev-tools panel show.

Per (store, backend): reads, hits, misses by reason (expired, unknown, foreign, tampered, malformed,
refused, superseded), writes, bytes stored, bytes kept out of the browser (what a dcc.Store would
have sent: the value as JSON), and read/write latency.

Only store ids the app declares get a label of their own (:class:`StoreLabels`): a string id as it is
(cut at 100 characters), a pattern-matching id by family, its numbers and unknown values as ``"*"``
(``{"index":"*","type":"cart"}``: a thousand carts make one series, not a thousand). Every other id a
request names, made up or not, counts under ``other``, so callers cannot add series; and at most
``MAX_STORE_LABELS`` labels are kept per process, later ones count under ``other`` too.

Recording costs a dict update under a lock per operation (``STATE_METRICS = false`` turns it off).
"""
from __future__ import annotations

import bisect
import json
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from dash_state.glue.layout import StoreIds

#: Upper bounds (seconds) of the latency histogram buckets, as Prometheus' defaults plus sub-ms ones.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LABEL = 100
MAX_ID = 1024  # longer ids are never the app's (as references.MAX_STORE_ID): not even parsed
MAX_STORE_LABELS = 200  # store labels per process; Prometheus keeps every series it ever saw
OTHER = "other"


def store_label(store_id: str) -> str:
    """The label's form, whether declared or not: dict ids by family (numbers as ``*``), long ids cut."""
    parsed = _parse(store_id)
    if parsed is not None:
        store_id = _family_label({k: "*" if isinstance(v, (int, float)) else v for k, v in parsed.items()})
    return _cut(store_id)


class StoreLabels:
    """The label a store id counts under: its own for the ids (and families) in ``declared``, the ids
    the app's layouts and callbacks showed; ``other`` for every id that only a request named."""

    def __init__(self, declared: "StoreIds", scan: Callable[[], None] = lambda: None):
        self.declared = declared
        self._scan = scan  # learns the layouts' ids when no callback has run yet (the Python API)

    def __call__(self, store_id: str) -> str:
        label = self._declared(store_id)
        if label is None:
            self._scan()
            label = self._declared(store_id)
        return OTHER if label is None else label

    def _declared(self, store_id: str) -> str | None:
        if len(store_id) > MAX_ID:
            return None
        parsed = _parse(store_id)
        if parsed is not None:
            family = self.declared.family(parsed)
            return None if family is None else _cut(_family_label(family))
        return _cut(store_id) if store_id in self.declared else None


def _parse(store_id: str) -> dict | None:
    """A stringified pattern-matching id as its dict, or None."""
    if not store_id.startswith("{") or len(store_id) > MAX_ID:
        return None
    try:
        parsed = json.loads(store_id)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _family_label(family: dict) -> str:
    return json.dumps(family, sort_keys=True, separators=(",", ":"), default=str)


def _cut(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL] + "..."


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
    """Thread-safe counters; ``listeners`` (the Prometheus exporter) see every event as it happens.

    ``labels`` turns a store id into its label (:class:`StoreLabels` in an app); at most ``max_stores``
    different labels are kept, later ones count under ``other``."""

    COUNTERS = ("reads", "hits", "writes", "bytes_stored", "bytes_kept_from_browser", "deletes")

    def __init__(self, enabled: bool = True, labels: Callable[[str], str] = store_label,
                 max_stores: int = MAX_STORE_LABELS) -> None:
        self.enabled = enabled
        self.labels = labels
        self.max_stores = max_stores
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._latency: dict[tuple[str, str, str], Histogram] = {}
        self.listeners: list[Callable[[str, str, str, float], None]] = []

    def label(self, store_id: str) -> str:
        """The label ``store_id`` counts under (without taking a new place among ``max_stores``)."""
        label = self.labels(store_id)
        return label if label in self._seen or len(self._seen) < self.max_stores else OTHER

    def _admit(self, store_id: str) -> str:
        label = self.labels(store_id)
        if label == OTHER or label in self._seen:
            return label
        with self._lock:
            if len(self._seen) >= self.max_stores:
                return OTHER
            self._seen.add(label)
        return label

    def count(self, store_id: str, backend: str, name: str, amount: float = 1) -> None:
        if not self.enabled:
            return
        label = self._admit(store_id)
        with self._lock:
            self._counts[(label, backend)][name] += amount
        for listener in self.listeners:
            listener(label, backend, name, amount)

    def observe(self, store_id: str, backend: str, operation: str, seconds: float) -> None:
        if not self.enabled:
            return
        label = self._admit(store_id)
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
        return self.snapshot().get(self.label(store_id), {})
