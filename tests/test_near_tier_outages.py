"""Outages of a throwaway redis-server and a throwaway PostgreSQL: the circuit breaker lets requests
through again soon after the server is back (it probes instead of waiting), and meanwhile the near tier
serves the unexpired values it holds (never one past its expiry) while writes still fail."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from dash_state.backends import create_backend
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable
from dash_state.core.keys import Keys
from dash_state.core.manager import StateManager
from dash_state.core.seal import Seal
from pg_server import PostgresServer
from redis_servers import RedisServer

pytestmark = pytest.mark.service
BOUND = 2.0  # seconds: a generous bound on recovery (benchmarks/outage_recovery.py measures ~0.05 s)


class Outage:
    """One private server and how to take it away and bring it back."""

    def __init__(self, settings: dict, take_away, bring_back):
        self.settings, self.take_away, self.bring_back = settings, take_away, bring_back


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=["redis", "postgres"])
def outage(request, tmp_path):
    common = {"STATE_RETRIES": 1, "STATE_BACKEND_TIMEOUT": 0.5, "STATE_NEAR_TIER_PATH": str(tmp_path / "near")}
    if request.param == "redis":
        workdir = Path(tempfile.mkdtemp(prefix="dsn-", dir="/tmp"))
        server = RedisServer(workdir).start()
        try:
            yield Outage({"STATE_BACKEND": "redis", "STATE_REDIS_URL": f"redis://127.0.0.1:{server.port}/0", **common},
                         server.kill, lambda: server.process is None and server.start())
        finally:
            server.kill()
            shutil.rmtree(workdir, ignore_errors=True)
        return
    pg = request.getfixturevalue("postgres")
    if not pg.running:
        pg.start()
    yield Outage({"STATE_BACKEND": "database", "STATE_DATABASE_URL": pg.url, **common}, pg.stop,
                 lambda: pg.running or pg.start())
    if not pg.running:
        pg.start()


def _quietly(operation) -> bool:
    try:
        operation()
        return True
    except BackendUnavailable:
        return False


def test_the_breaker_closes_soon_after_the_server_is_back(outage, capsys):
    config = build_config((outage.settings, "test"))
    backend = create_backend(config["STATE_BACKEND"], config, Seal(Keys((b"outage",))))
    try:
        assert _quietly(lambda: backend.alive("u", "k"))
        outage.take_away()
        away = time.monotonic() + 3.2  # the old breaker (cooldown 1, 2, 4 s) probed at 1 and 3 s: back at 7
        while time.monotonic() < away:
            assert not _quietly(lambda: backend.alive("u", "k"))
            time.sleep(0.01)
        assert backend.breaker.is_open
        outage.bring_back()
        back = time.monotonic()
        first_success = None
        while first_success is None and time.monotonic() < back + 15:  # bounded polling loop
            if _quietly(lambda: backend.alive("u", "k")):
                first_success = time.monotonic()
            else:
                time.sleep(0.01)
        assert first_success is not None, "no recovery within 15 s"
        with capsys.disabled():
            print(f"\n{config['STATE_BACKEND']}: first success {first_success - back:.3f} s after the server was back")
        assert first_success - back < BOUND
        assert not backend.breaker.is_open and backend.breaker.probes >= 1
    finally:
        backend.close()


@pytest.mark.parametrize("cache", [0, 1 << 20], ids=["near-only", "with-read-cache"])
def test_the_near_tier_serves_unexpired_values_while_the_server_is_away(outage, cache):
    settings = {**outage.settings, "STATE_READ_CACHE_BYTES": cache, "STATE_STORES": {"short": {"ttl": 1.0}}}
    m = StateManager(build_config((settings, "test")), Keys((b"outage",)))
    try:
        kept = m.save("long", {"v": "kept"}, who="alice")
        short = m.save("short", {"v": "short-lived"}, who="alice")
        assert m.load("long", kept, who="alice") == {"v": "kept"}
        assert m.load("short", short, who="alice") == {"v": "short-lived"}
        outage.take_away()
        written = time.time()
        for _ in range(3):  # the first finds the outage, the others meet the open breaker
            assert m.load("long", kept, who="alice") == {"v": "kept"}
        with pytest.raises(BackendUnavailable):  # writes still fail: 503
            m.save("long", {"v": "new"}, who="alice")
        with pytest.raises(BackendUnavailable):
            m.touch("long", kept, who="alice")
        time.sleep(max(0.0, written + 1.2 - time.time()))
        with pytest.raises(BackendUnavailable):  # past its expiry: not served, even from the near tier
            m.load("short", short, who="alice")
        assert m.load("long", kept, who="alice") == {"v": "kept"}
        near = m.stats()["backends"][settings["STATE_BACKEND"]]["near_tier"]
        assert near["outage_hits"] >= 4
    finally:
        outage.bring_back()
        if settings["STATE_BACKEND"] == "database":
            deadline = time.monotonic() + 15
            while not _quietly(lambda: m.backend("database").drop_table()):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        m.close()
