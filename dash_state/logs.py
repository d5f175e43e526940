"""Logging that an operator can read: real levels and names, one line per request, no floods.

* :func:`install_default_handler` follows Flask's pattern: if the app configured no handler for the
  ``dash_state`` logger (or the root logger), one is added that prints ``[time] LEVEL dash_state:
  message``; otherwise nothing changes. Without it, warnings reached stderr through Python's
  last-resort handler, without level or logger name.
* :class:`MissLog` collects the references a request could not serve and logs them once, at the end of
  the request, aggregated by store and reason, with ids truncated: 20,000 forged references make one
  line, not 20,000.
* :class:`Throttle` lets a repeating message through once per interval, with the count of the ones it
  held back.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Callable

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


def short_id(store_id: object) -> str:
    text = str(store_id)
    return repr(text if len(text) <= MAX_ID_CHARS else text[:MAX_ID_CHARS] + f"...(+{len(text) - MAX_ID_CHARS})")


class MissLog:
    """References one request could not serve, logged once per request."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, store_id: object, reason: str) -> None:
        self.counts[(short_id(store_id), reason)] += 1

    def flush(self, describe: dict[str, str]) -> None:
        if not self.counts:
            return
        total = sum(self.counts.values())
        listed = [f"{store} x{n} ({describe.get(reason, reason)})" for (store, reason), n in self.counts.most_common(MAX_LISTED)]
        more = len(self.counts) - MAX_LISTED
        log.warning("ServerStore references treated as missing (None) in this request: %d: %s%s", total,
                    "; ".join(listed), f"; and {more} more" if more > 0 else "")
        self.counts.clear()


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
