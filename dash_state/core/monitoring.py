"""Counting and describing what the manager serves: misses (and why), sizes per store, ``stats()``."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dash_state.core.logs import MissLog, short_id
from dash_state.core.missing import REASONS as MISS_REASONS
from dash_state.metrics.audit import SECURITY_MISSES

if TYPE_CHECKING:
    from dash_state.core.manager import StateManager
    from dash_state.identity import Identity

log = logging.getLogger("dash_state")


class Monitoring:
    """Mixed into :class:`~dash_state.core.manager.StateManager`."""

    def miss(self: "StateManager", store_id: str, reason: str, misses: MissLog | None = None,
             who: "Identity | str | None" = None) -> None:
        self._counts[f"miss.{reason}"] += 1
        if reason == "elsewhere" and not self._told_elsewhere:  # one ERROR per process, naming the fix
            self._told_elsewhere = True
            log.error("dash-state: ServerStore %s received a reference that another process wrote (another worker, "
                      "or this app before a restart): the memory backend keeps values per process; with several "
                      'workers use STATE_BACKEND = "local" (one host), "redis" or "database"', short_id(store_id))
        backend = self.settings(store_id).backend
        self.metrics.count(store_id, backend, "reads")
        self.metrics.count(store_id, backend, f"miss.{reason}")
        if reason in SECURITY_MISSES and self.audit.enabled:  # aggregated per request, as the warning is
            ident = self._who(who)  # the reader: the request's user, a job's, or the Python API's `who`
            self.audit.miss(ident.namespace if ident else None, store_id, reason, misses)
        if misses is not None:
            misses.add(store_id, reason)
        else:
            self.throttle(logging.WARNING, f"miss.{reason}", "ServerStore %s: reference %s; treated as missing (None)",
                          short_id(store_id), MISS_REASONS.get(reason, reason))

    def describe(self: "StateManager", store_id: str, token: Any, who: "Identity | str | None" = None) -> dict:
        """Sizes for monitoring: what the server holds vs what the browser holds for one store."""
        found = self.locate(store_id, token, who)
        return {"backend": found.ref.backend if found else None,
                "server_bytes": found.snapshot.nbytes if found else 0,
                "browser_bytes": len(token.encode()) if isinstance(token, str) else 0}

    def stats(self: "StateManager") -> dict:
        counts = dict(self._counts)
        return {
            "reads": counts.get("reads", 0), "hits": counts.get("hits", 0), "writes": counts.get("writes", 0),
            "bytes_written": counts.get("bytes_written", 0), "released": counts.get("released", 0),
            "deleted": counts.get("deleted", 0), "refused_writes": counts.get("refused_writes", 0),
            "misses": {reason: counts.get(f"miss.{reason}", 0) for reason in MISS_REASONS},
            "backends": {name: backend.stats() for name, backend in self._backends.items()},
            "read_cache": self._cache.stats() if self._cache is not None else None,
            "stores": self.metrics.snapshot(),
            "live": self._live.stats() if self._live is not None else None,
        }
