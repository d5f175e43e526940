"""The audit log: one JSON line per write, delete and security event; off by default.

``STATE_AUDIT_LOG = "logger"`` writes to the ``dash_state.audit`` logger (INFO), a path appends to that
file. A line says who (the user's namespace: pseudonymous, never a login name), which store, what
happened, how many bytes, on which backend, and when. Never the data, never a reference (a key's
first 6 characters identify a value across lines).

Events: ``write``, ``delete`` (clear_data, a released reference, the Python API), ``refused``
(a write over a limit), ``miss`` (a reference refused as foreign, tampered, refused or superseded: the
events a security reviewer looks for), ``login``, ``logout``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

SECURITY_MISSES = {"foreign", "tampered", "refused", "superseded", "malformed"}


class AuditLog:
    def __init__(self, target: str | None):
        self.enabled = bool(target) and target != "off"
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
