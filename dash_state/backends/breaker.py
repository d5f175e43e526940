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

**Probing** (``probe=``, what the redis and database backends use): waiting out a cooldown that
doubles kept a restarted Redis answering 503 for up to 3.8 s after it was back (PostgreSQL 3.6 s).
With a probe, while the circuit is open at most one caller every ``cooldown`` seconds (a constant,
``PROBE_INTERVAL`` = 0.15 s) runs ``probe()``: a short-timeout PING or ``SELECT 1`` on a connection
without retries. Success closes the circuit and that caller goes on with its operation; failure
makes it fail fast like everyone else. So the circuit closes within about ``cooldown`` plus one
probe of the server's return (``benchmarks/outage_recovery.py``), and no request ever waits more
than one probe's timeout. Without a probe, the operation itself is the probe, after a cooldown that
doubles up to ``max_cooldown``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

from dash_state.errors import BackendUnavailable

log = logging.getLogger("dash_state")
T = TypeVar("T")
PROBE_INTERVAL = 0.15  # seconds between probes of an unreachable server (one caller per process)


class Breaker:
    def __init__(self, label: str, cooldown: float = 1.0, max_cooldown: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, answers: tuple[type[BaseException], ...] = (),
                 probe: Callable[[], object] | None = None):
        self.label = label  # e.g. "redis backend (redis://***@host:6379/0)"
        self.answers = answers
        self.probe = probe
        if probe is not None:  # probe at a steady pace instead of backing off
            cooldown = max_cooldown = min(cooldown, PROBE_INTERVAL)
        self.cooldown, self.max_cooldown = cooldown, max_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._open_since: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self._failed = 0
        self._wait = cooldown
        self.outages = 0
        self.probes = 0

    @property
    def is_open(self) -> bool:
        return self._open_since is not None

    def call(self, operation: Callable[[], T], what: str) -> T:
        """Run ``operation``; ``BackendUnavailable`` from it opens the circuit."""
        probe = self._admit(what)
        if probe and self.probe is not None:
            self._run_probe(what)  # closes the circuit, or raises BackendUnavailable at once
            probe = False
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

    def _run_probe(self, what: str) -> None:
        """This caller was let through to check the server: a short probe, not its operation."""
        self.probes += 1
        try:
            self.probe()  # type: ignore[misc]
        except BaseException as exc:  # whatever the probe hit, the server is not back
            if not isinstance(exc, Exception):  # KeyboardInterrupt and the like: let the next caller probe
                self._probing = False
                raise
            with self._lock:
                now = self._clock()
                self._failed += 1
                self._retry_at, self._probing = now + self._wait, False
                down = now - (self._open_since or now)
            raise BackendUnavailable(f"dash-state {self.label} is unavailable (down for {down:.1f} s; a probe "
                                     f"just failed: {type(exc).__name__}): cannot {what}") from None
        self._success()

    def _failure(self, exc: BaseException) -> None:
        with self._lock:
            now = self._clock()
            self._failed += 1
            if self._open_since is None:
                self._open_since, self._wait = now, self.cooldown
                self.outages += 1
                if self.probe is not None:
                    log.error("%s; failing fast, probing the server every %.2f s (one message per outage)", exc,
                              self._wait)
                else:
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
