"""A circuit breaker for one backend server: one ERROR per outage, fail fast while it lasts.

Without it, every request during an outage waits for its own timeouts and retries and logs its own
error: a frozen Redis held every request for 10 s, and a restart logged ~300 tracebacks. With it, the
first failure logs one ERROR (with the URL masked) and opens the circuit; for ``cooldown`` seconds
every operation fails at once with :class:`~dash_state.errors.BackendUnavailable` and logs nothing;
then one operation is let through to probe the server. Success closes the circuit and logs one INFO
line with how long the outage lasted and how many operations failed.

Errors listed in ``answers`` are the server's own answers, not outages (a full Redis refusing a write
with :class:`~dash_state.errors.QuotaExceeded`): they pass through, never open the circuit, and close
it like a success, since the server evidently answered.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

from ..errors import BackendUnavailable

log = logging.getLogger("dash_state")
T = TypeVar("T")


class Breaker:
    def __init__(self, label: str, cooldown: float = 1.0, max_cooldown: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, answers: tuple[type[BaseException], ...] = ()):
        self.label = label  # e.g. "redis backend (redis://***@host:6379/0)"
        self.answers = answers
        self.cooldown, self.max_cooldown = cooldown, max_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._open_since: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self._failed = 0
        self._wait = cooldown
        self.outages = 0

    @property
    def is_open(self) -> bool:
        return self._open_since is not None

    def call(self, operation: Callable[[], T], what: str) -> T:
        """Run ``operation``; ``BackendUnavailable`` from it opens the circuit."""
        probe = self._admit(what)
        try:
            result = operation()
        except BackendUnavailable as exc:
            self._failure(exc)
            raise
        except self.answers:
            if self._open_since is not None:
                self._success()
            raise
        except BaseException:
            if probe:
                self._probing = False
            raise
        if self._open_since is not None:
            self._success()
        return result

    def _admit(self, what: str) -> bool:
        with self._lock:
            if self._open_since is None:
                return False
            now = self._clock()
            if now < self._retry_at or self._probing:
                self._failed += 1
                raise BackendUnavailable(f"dash-state {self.label} is unavailable (down for {now - self._open_since:.1f} s; "
                                         f"next attempt in {max(0.0, self._retry_at - now):.1f} s): cannot {what}")
            self._probing = True
            return True

    def _failure(self, exc: BaseException) -> None:
        with self._lock:
            now = self._clock()
            self._failed += 1
            if self._open_since is None:
                self._open_since, self._wait = now, self.cooldown
                self.outages += 1
                log.error("%s; failing fast for %.1f s, then retrying (one message per outage)", exc, self._wait)
            else:
                self._wait = min(self._wait * 2, self.max_cooldown)
            self._retry_at = now + self._wait
            self._probing = False

    def _success(self) -> None:
        with self._lock:
            if self._open_since is None:
                return
            down, failed = self._clock() - self._open_since, self._failed
            self._open_since, self._probing, self._failed = None, False, 0
        log.info("dash-state %s is reachable again after %.1f s; %d operations failed meanwhile", self.label, down, failed)
