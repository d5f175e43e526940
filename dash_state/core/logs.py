"""Logging that an operator can read: real levels and names, one line per request, no floods.

* :func:`install_default_handler` follows Flask's pattern: if the app configured no handler for the
  ``dash_state`` logger (or the root logger), one is added that prints ``[time] LEVEL dash_state:
  message``; otherwise nothing changes. Without it, warnings reached stderr through Python's
  last-resort handler, without level or logger name.
* :class:`MissLog` collects the references a request could not serve and logs them once, at the end of
  the request, aggregated by store and reason, with ids truncated: 20,000 forged references make one
  line, not 20,000. It also holds the request's audit lines about them (:meth:`AuditLog.miss
  <dash_state.metrics.audit.AuditLog.miss>`): one per user, store family and reason, with a count.
* :class:`Throttle` lets a repeating message through once per interval, with the count of the ones it
  held back.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any, Callable

log = logging.getLogger("dash_state")
MAX_ID_CHARS = 80
MAX_LISTED = 5


def install_default_handler() -> None:
    """Give ``dash_state`` a handler with level and logger name, unless the app configured logging."""
    if _has_handler(log):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    handler.set_name("dash_state_default")
    log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


def _has_handler(logger: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if current.handlers:
            return True
        if not current.propagate:
            return False
        current = current.parent  # type: ignore[assignment]
    return False


def clip(store_id: object) -> str:
    """A store id for a log line: at most ``MAX_ID_CHARS`` characters and how many were cut."""
    text = str(store_id)
    return text if len(text) <= MAX_ID_CHARS else text[:MAX_ID_CHARS] + f"...(+{len(text) - MAX_ID_CHARS})"


def short_id(store_id: object) -> str:
    return repr(clip(store_id))


class MissLog:
    """References one request could not serve, logged once per request, and their audit lines."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.audited: Counter[tuple[Any, str, str]] = Counter()  # (user, store label, reason) -> count
        self._first_ids: dict[tuple[Any, str, str], str] = {}
        self._audit_log: Any = None

    def add(self, store_id: object, reason: str) -> None:
        self.counts[(short_id(store_id), reason)] += 1

    def add_audited(self, audit_log: Any, user: str | None, store: str, reason: str, store_id: object) -> None:
        """Count one audit event, written by :meth:`flush` as one line per (user, store, reason)."""
        key = (user, store, reason)
        self._audit_log = audit_log
        self.audited[key] += 1
        if key not in self._first_ids:
            self._first_ids[key] = clip(store_id)

    def flush(self, describe: dict[str, str]) -> None:
        self._flush_audited()
        if not self.counts:
            return
        total = sum(self.counts.values())
        listed = [f"{store} x{n} ({describe.get(reason, reason)})" for (store, reason), n in self.counts.most_common(MAX_LISTED)]
        more = len(self.counts) - MAX_LISTED
        log.warning("ServerStore references treated as missing (None) in this request: %d: %s%s", total,
                    "; ".join(listed), f"; and {more} more" if more > 0 else "")
        self.counts.clear()

    def _flush_audited(self) -> None:
        for (user, store, reason), count in self.audited.items():
            self._audit_log.record("miss", user=user, store=store, id=self._first_ids[(user, store, reason)],
                                   reason=reason, count=count)
        self.audited.clear()
        self._first_ids.clear()


class Throttle:
    """Let a message through at most once per ``interval`` seconds, counting the others."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def __call__(self, level: int, key: str, message: str, *args: object) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next.get(key, 0.0):
                self._held[key] += 1
                return
            self._next[key] = now + self.interval
            held = self._held.pop(key, 0)
        suffix = f" ({held} more like this in the last {self.interval:.0f} s)" if held else ""
        log.log(level, message + suffix, *args)
