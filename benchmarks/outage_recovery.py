"""How soon the redis and database backends answer again after their server comes back.

A throwaway ``redis-server`` and a throwaway PostgreSQL (``tests/redis_servers.py``,
``tests/pg_server.py``: own directories, free ports on 127.0.0.1, always removed) are taken away
under a backend that keeps reading, then brought back. Scenarios:

* ``redis restart``: SIGKILL, ``--down`` seconds, start again on the same port (empty: no persistence);
* ``redis freeze``: SIGSTOP for ``--down`` seconds (a paused VM, a long fork), then SIGCONT;
* ``postgres restart``: ``pg_ctl stop -m fast``, ``--down`` seconds, ``pg_ctl start -w``.

While the server is away a reader calls ``backend.alive`` every 10 ms (the circuit breaker fails
those fast). Round ``i`` keeps the server away ``--down + 0.45 i`` seconds (modulo 2 s more), so the
return falls at different points of the breaker's schedule. "Back" is the moment ``start()`` returned (the server answered its own PING or
``pg_ctl -w``) or SIGCONT was sent; the figure is the time from there to the reader's first success.
Each round is bounded (``WAIT`` seconds); the median and the worst of ``--rounds`` are printed.
Target: under 0.5 s.

    .venv/bin/python benchmarks/outage_recovery.py                 # about a minute
    .venv/bin/python benchmarks/outage_recovery.py --rounds 2 --down 1   # smoke run
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
WAIT = 30.0  # seconds a round may take to recover before it counts as a failure
POLL = 0.01


def make_backend(name: str, url: str) -> Any:
    from dash_state.backends import create_backend
    from dash_state.config import build_config
    from dash_state.core.keys import Keys
    from dash_state.core.seal import Seal

    settings = {"STATE_BACKEND": name, "STATE_RETRIES": 1, "STATE_BACKEND_TIMEOUT": 0.5,
                "STATE_REDIS_URL" if name == "redis" else "STATE_DATABASE_URL": url}
    return create_backend(name, build_config((settings, "benchmark")), Seal(Keys((b"outage benchmark",))))


def quietly(operation: Callable[[], Any]) -> bool:
    from dash_state.errors import BackendUnavailable

    try:
        operation()
        return True
    except BackendUnavailable:
        return False


def away(down: float, i: int) -> float:
    return down + (0.45 * i) % 2.0


def one_round(backend: Any, take_away: Callable[[], None], bring_back: Callable[[], None], down: float) -> float:
    """Seconds from the server's return to the first operation that succeeds."""
    assert quietly(lambda: backend.alive("u", "k")), "the server should answer before the round"
    take_away()
    deadline = time.monotonic() + down
    while time.monotonic() < deadline:  # an app under load keeps trying meanwhile
        quietly(lambda: backend.alive("u", "k"))
        time.sleep(POLL)
    bring_back()
    back = time.monotonic()
    while not quietly(lambda: backend.alive("u", "k")):
        if time.monotonic() - back > WAIT:
            raise TimeoutError(f"no recovery within {WAIT:.0f} s")
        time.sleep(POLL)
    return time.monotonic() - back


def redis_rounds(rounds: int, down: float, freeze: bool) -> list[float]:
    from redis_servers import RedisServer

    workdir = Path(tempfile.mkdtemp(prefix="dash-state-outage-"))
    server = RedisServer(workdir).start()
    backend = make_backend("redis", f"redis://127.0.0.1:{server.port}/0")
    try:
        if freeze:
            return [one_round(backend, lambda: os.kill(server.process.pid, signal.SIGSTOP),
                              lambda: os.kill(server.process.pid, signal.SIGCONT), away(down, i)) for i in range(rounds)]
        return [one_round(backend, server.kill, server.start, away(down, i)) for i in range(rounds)]
    finally:
        backend.close()
        if server.process is not None and server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def postgres_rounds(rounds: int, down: float) -> list[float]:
    from pg_server import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        backend = make_backend("database", server.url)
        try:
            return [one_round(backend, server.stop, server.start, away(down, i)) for i in range(rounds)]
        finally:
            backend.close()
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--down", type=float, default=3.0, help="seconds the server stays away (default 3)")
    parser.add_argument("--only", choices=("redis", "postgres"), default=None)
    args = parser.parse_args()
    import logging

    logging.getLogger("dash_state").setLevel(logging.CRITICAL)  # one ERROR/INFO per round otherwise
    scenarios = []
    if args.only in (None, "redis"):
        scenarios += [("redis restart", lambda: redis_rounds(args.rounds, args.down, False)),
                      ("redis freeze", lambda: redis_rounds(args.rounds, args.down, True))]
    if args.only in (None, "postgres"):
        scenarios.append(("postgres restart", lambda: postgres_rounds(args.rounds, args.down)))
    print(f"\nrecovery after the server is back ({args.rounds} rounds, {args.down:g} s away each; target < 0.5 s)")
    print(f"{'scenario':<18}{'median':>10}{'worst':>10}  all (s)")
    for name, run in scenarios:
        figures = run()
        print(f"{name:<18}{statistics.median(figures):>9.3f}s{max(figures):>9.3f}s  "
              + " ".join(f"{f:.3f}" for f in figures), flush=True)


if __name__ == "__main__":
    main()
