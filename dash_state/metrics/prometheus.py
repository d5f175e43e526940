"""Prometheus export of dash-state's metrics (``pip install 'dash-state[metrics]'``), off by default.

With ``STATE_PROMETHEUS = true`` the counters and histograms of :mod:`dash_state.metrics` are mirrored
into ``prometheus_client``'s default registry as they happen, and ``GET <prefix>_dash-state/metrics``
serves the text format. Labels are store (families for pattern-matching ids), backend and, for
misses, reason; never values, references or users.

Under gunicorn (several worker processes) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
before the workers start, as prometheus_client's multi-process mode requires; the route then
aggregates every worker's files (counters summed, histograms merged). Clear the directory at deploy.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from dash_state.errors import ConfigError
from dash_state.metrics import BUCKETS, Metrics

_lock = threading.Lock()
_families: dict[str, Any] | None = None
COUNTERS = {
    "reads": "ServerStore references resolved (hits and misses)",
    "hits": "ServerStore references that gave a value",
    "misses": "ServerStore references that could not be served, by reason",
    "writes": "ServerStore values stored",
    "bytes_stored": "Bytes of ServerStore values stored",
    "bytes_kept_from_browser": "Bytes a dcc.Store would have sent to the browser (the values as JSON)",
    "deletes": "ServerStore values deleted (clear_data, released references, the Python API)",
}


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError("STATE_PROMETHEUS = true needs prometheus-client: pip install 'dash-state[metrics]'") from None
    return prometheus_client


def _metric_families() -> dict[str, Any]:
    """The process's metric objects (prometheus_client refuses to register a name twice)."""
    global _families
    with _lock:
        if _families is None:
            client = _client()
            families: dict[str, Any] = {}
            for name, doc in COUNTERS.items():
                labels = ["store", "backend"] + (["reason"] if name == "misses" else [])
                families[name] = client.Counter(f"dash_state_{name}", doc, labels)
            for operation in ("read", "write"):
                families[f"latency.{operation}"] = client.Histogram(
                    f"dash_state_{operation}_seconds", f"Seconds to {operation} a ServerStore value",
                    ["store", "backend"], buckets=BUCKETS)
            _families = families
        return _families


def attach(metrics: Metrics) -> None:
    """Mirror ``metrics`` into Prometheus from now on."""
    families = _metric_families()

    def listener(store: str, backend: str, name: str, amount: float) -> None:
        if name.startswith("miss."):
            families["misses"].labels(store, backend, name[5:]).inc(amount)
        elif name.startswith("latency."):
            families[name].labels(store, backend).observe(amount)
        elif name in families:
            families[name].labels(store, backend).inc(amount)

    metrics.listeners.append(listener)


def exposition() -> tuple[bytes, str]:
    """The text format of every metric (all workers' in multi-process mode) and its content type."""
    client = _client()
    registry = client.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return client.generate_latest(registry), client.CONTENT_TYPE_LATEST
