"""The database backend when PostgreSQL goes away and comes back, on a private instance we can stop:
one ERROR per outage (the circuit breaker), fast failures while it lasts, one INFO when it is back.

The system PostgreSQL is never touched: ``pg_server.PostgresServer`` runs its own in a temporary
directory (one per module, restarted on the same port and data directory, always removed).
"""
from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import make_url

from dash_state.backends import create_backend
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable
from dash_state.core.keys import Keys
from dash_state.core.seal import Seal
from dash_state.core.values import freeze

from apps import write_read_app
from dash_client import DashClient
from pg_server import PostgresServer

pytestmark = pytest.mark.service
SEAL = Seal(Keys((b"fault tests",)))
BOUND = 15  # seconds a failing operation may take with STATE_RETRIES=2


@pytest.fixture(scope="module")
def server():
    pg = PostgresServer()
    try:
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def pg(server):
    """The private server, running at the start of each test (a failed test may have left it stopped)."""
    if not server.running:
        server.start()
    return server


def backend_for(pg: PostgresServer, retries: int = 2):
    config = build_config(({"STATE_BACKEND": "database", "STATE_DATABASE_URL": pg.url, "STATE_RETRIES": retries},
                           "test"))
    return create_backend("database", config, SEAL)


def masked(pg: PostgresServer) -> str:
    return make_url(pg.url).render_as_string(hide_password=True)


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "dash_state"]


def infos(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name == "dash_state"]


def wait_until_it_answers(operation, limit: float = 20.0):
    """Retry ``operation`` until the circuit lets a probe through and it succeeds."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return operation()
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_server_down_at_startup(pg, caplog):
    caplog.set_level(logging.INFO, logger="dash_state")
    pg.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        backend_for(pg)
    assert 0.3 <= time.monotonic() - started < BOUND  # backoff 0.1 + 0.2 s between the three attempts
    message = str(info.value)
    assert masked(pg) in message and "***" in message
    assert pg.password not in message and pg.password not in caplog.text
    assert "(attempts: 3)" in message  # STATE_RETRIES=2: one attempt and two retries
    assert len(errors(caplog)) == 1 and masked(pg) in errors(caplog)[0]


def test_server_down_during_operation_then_back(pg, caplog):
    backend = backend_for(pg)
    try:
        backend.set("u", "before", freeze({"kept": [1, 2, 3]}), ttl=600)
        caplog.set_level(logging.INFO, logger="dash_state")
        pg.stop()
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="cannot reach") as info:
            backend.get("u", "before")
        assert time.monotonic() - started < BOUND
        assert masked(pg) in str(info.value) and pg.password not in str(info.value)
        assert len(errors(caplog)) == 1 and backend.breaker.is_open

        operations = [lambda: backend.get("u", "before"), lambda: backend.set("u", "during", freeze("lost"), ttl=600),
                      lambda: backend.touch("u", "before", 600), lambda: backend.delete("u", "before"),
                      lambda: backend.pointer("u", "latest.x"), lambda: backend.usage("u"),
                      lambda: backend.alive("u", "before"), lambda: backend.move_user("u", "v"),
                      lambda: backend.delete_user("u")]
        for n in range(30):  # while the circuit is open: at once, and without a log line each
            started = time.monotonic()
            with pytest.raises(BackendUnavailable, match="unavailable") as info:
                operations[n % len(operations)]()
            assert time.monotonic() - started < 0.05
            assert pg.password not in str(info.value)
        assert len(errors(caplog)) == 1 and infos(caplog) == [] and pg.password not in caplog.text

        pg.start()  # same port, same data directory
        restored = wait_until_it_answers(lambda: backend.get("u", "before"))
        assert restored.thaw() == {"kept": [1, 2, 3]}  # persisted; pool reconnected
        assert backend.get("u", "during") is None  # the failed write left nothing behind
        backend.set("u", "after", freeze("ok"), ttl=600)
        assert backend.get("u", "after").thaw() == "ok"
        assert len(errors(caplog)) == 1
        back = infos(caplog)
        assert len(back) == 1 and "reachable again" in back[0] and pg.password not in caplog.text
        assert backend.stats()["outages"] == 1 and not backend.stats()["down"]
    finally:
        backend.drop_table()
        backend.close()


def test_a_restart_between_two_operations_is_retried_without_an_outage(pg, caplog):
    """The pool still holds connections to the old server: pre-ping replaces them, nothing is logged."""
    backend = backend_for(pg)
    try:
        backend.set("u", "k", freeze("v"), ttl=600)
        caplog.set_level(logging.INFO, logger="dash_state")
        pg.stop()
        pg.start()
        assert backend.get("u", "k").thaw() == "v"
        assert errors(caplog) == [] and backend.stats()["outages"] == 0
    finally:
        backend.drop_table()
        backend.close()


def test_a_dash_app_answers_503_while_the_database_is_down(pg, caplog):
    app = write_read_app(STATE_BACKEND="database", STATE_DATABASE_URL=pg.url, STATE_RETRIES=2)
    client = DashClient(app)
    client.layout()

    def write(n):
        return client.raw_call(outputs=[("s", "data")], inputs=[("btn", "n_clicks", n)])

    def read(reference):
        return client.call(outputs=[("out", "children")], inputs=[("s", "data", reference)])["out"]["children"]

    first = write(1)
    assert first.status_code == 200
    assert read(first.get_json()["response"]["s"]["data"]) == repr({"clicks": 1, "rows": [0]})

    caplog.set_level(logging.ERROR)
    pg.stop()
    for n in (2, 3, 4):  # the first finds the outage, the others fail fast
        started = time.monotonic()
        failed = write(n)
        assert time.monotonic() - started < BOUND
        body = failed.get_data(as_text=True)
        assert failed.status_code == 503 and "unavailable" in body
        assert "Traceback" not in body and "BackendUnavailable" not in body and pg.password not in body
    assert len(errors(caplog)) == 1 and masked(pg) in errors(caplog)[0] and pg.password not in caplog.text

    pg.start()
    deadline = time.monotonic() + 20
    while (again := write(5)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert again.status_code == 200, again.get_data(as_text=True)[:500]
    assert read(again.get_json()["response"]["s"]["data"]) == repr({"clicks": 5, "rows": [0, 1, 2, 3, 4]})
    manager = app._dash_state.manager
    manager.backend("database").drop_table()
    manager.close()
