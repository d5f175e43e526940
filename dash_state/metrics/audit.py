"""The audit log: one JSON line per write, delete and security event; off by default.

``STATE_AUDIT_LOG = "logger"`` writes to the ``dash_state.audit`` logger (INFO), a path appends to that
file. A line says who (the user's namespace: pseudonymous, never a login name), which store, what
happened, how many bytes, on which backend, and when. Never the data, never a reference (a key's
first 6 characters identify a value across lines).

Events: ``write``, ``delete`` (clear_data, a released reference, the Python API), ``refused``
(a write over a limit), ``miss`` (a reference refused as foreign, tampered, malformed, refused or
superseded: the events a security reviewer looks for), ``login``, ``logout``.

``miss`` lines are aggregated: inside a request (and a background job's inputs) one line per (user,
store, reason) when it ends, with ``count`` and the first store ``id`` (cut at 80 characters), so
20,000 forged references make one line; outside a request (the Python API) one line per event, with
``count`` 1. ``store`` is the metric label (:mod:`dash_state.metrics`): the id, its family, or
``other`` for ids the app never declared.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

from dash_state.core.logs import MissLog, clip

SECURITY_MISSES = {"foreign", "tampered", "refused", "superseded", "malformed"}


class AuditLog:
    """Where audit lines go; ``labels`` names a store in them (the metrics' label, bounded)."""

    def __init__(self, target: str | None, labels: Callable[[str], str] = clip):
        self.enabled = bool(target) and target != "off"
        self.labels = labels
        self._logger = logging.getLogger("dash_state.audit") if target == "logger" else None
        self._path = target if self.enabled and self._logger is None else None
        self._lock = threading.Lock()

    def record(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, separators=(",", ":"),
                          default=str)
        if self._logger is not None:
            self._logger.info(line)
            return
        with self._lock, open(self._path, "a", encoding="utf-8") as out:  # type: ignore[arg-type]
            out.write(line + "\n")

    def miss(self, user: str | None, store_id: str, reason: str, misses: MissLog | None = None) -> None:
        """A refused reference: counted in the request's ``misses`` (one line per user, store and reason
        when the request ends), or, outside a request, one line now."""
        if not self.enabled:
            return
        if misses is not None:
            misses.add_audited(self, user, self.labels(store_id), reason, store_id)
        else:
            self.record("miss", user=user, store=self.labels(store_id), id=clip(store_id), reason=reason, count=1)
