"""The circuit breaker with a probe, on a fake clock: while open, at most one caller per interval runs
the short probe (everyone else fails at once); a failed probe fails that caller fast too; a successful
one closes the circuit and that caller's operation runs."""
from __future__ import annotations

import threading

import pytest

from dash_state.backends.breaker import PROBE_INTERVAL, Breaker
from dash_state.errors import BackendUnavailable


def down():
    raise BackendUnavailable("down")


def test_probes_at_a_steady_pace_and_closes_on_the_first_success():
    now, server_up, probes, ran = [0.0], [False], [], []

    def probe():
        probes.append(now[0])
        if not server_up[0]:
            raise ConnectionRefusedError("refused")

    breaker = Breaker("test backend", clock=lambda: now[0], probe=probe)
    with pytest.raises(BackendUnavailable, match="^down$"):
        breaker.call(down, "read")  # opens the circuit
    for step in range(40):  # 4 s of callers every 0.1 s while the server stays away: no backoff
        now[0] = 0.1 * (step + 1)
        with pytest.raises(BackendUnavailable, match="unavailable"):
            breaker.call(lambda: ran.append("never"), "read")
    assert ran == [] and breaker.is_open
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert len(probes) >= 15 and all(gap >= PROBE_INTERVAL - 1e-9 for gap in gaps) and max(gaps) < 0.25
    server_up[0] = True
    now[0] += PROBE_INTERVAL
    assert breaker.call(lambda: "read it", "read") == "read it"  # the probing caller's own operation
    assert not breaker.is_open and breaker.outages == 1


def test_while_one_caller_probes_the_others_fail_fast():
    now, entered, release = [0.0], threading.Event(), threading.Event()

    def slow_probe():
        entered.set()
        release.wait(5)

    breaker = Breaker("test backend", clock=lambda: now[0], probe=slow_probe)
    with pytest.raises(BackendUnavailable):
        breaker.call(down, "read")
    now[0] = 1.0
    results = []
    prober = threading.Thread(target=lambda: results.append(breaker.call(lambda: "ok", "read")))
    prober.start()
    assert entered.wait(5)
    for _ in range(5):
        with pytest.raises(BackendUnavailable, match="unavailable"):
            breaker.call(lambda: "not while probing", "read")
    release.set()
    prober.join(5)
    assert results == ["ok"] and not breaker.is_open


def test_an_interrupted_probe_lets_the_next_caller_probe():
    now, calls = [0.0], []

    def probe():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    breaker = Breaker("test backend", clock=lambda: now[0], probe=probe)
    with pytest.raises(BackendUnavailable):
        breaker.call(down, "read")
    now[0] = 1.0
    with pytest.raises(KeyboardInterrupt):
        breaker.call(lambda: "x", "read")
    assert breaker.call(lambda: "y", "read") == "y" and len(calls) == 2
