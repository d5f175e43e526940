"""The database backend when PostgreSQL goes away and comes back, on a private instance we can stop.

The system PostgreSQL is never touched: ``pg_server.PostgresServer`` runs its own in a temporary
directory (one per module, restarted on the same port and data directory, always removed).
"""
from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import make_url

from dash_state.backends import create_backend
from dash_state.codecs import freeze
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable
from dash_state.wire import Wire, derive_secret

from apps import write_read_app
from dash_client import DashClient
from pg_server import PostgresServer

pytestmark = pytest.mark.service
WIRE = Wire(derive_secret(b"fault tests"))
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
    return create_backend("database", config, WIRE)


def masked(pg: PostgresServer) -> str:
    return make_url(pg.url).render_as_string(hide_password=True)


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "dash_state"]


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
    assert errors(caplog) and masked(pg) in errors(caplog)[-1]


def test_server_down_during_operation_then_back(pg, caplog):
    backend = backend_for(pg)
    try:
        backend.set("u", "before", freeze({"kept": [1, 2, 3]}), ttl=600)
        caplog.set_level(logging.ERROR, logger="dash_state")
        pg.stop()
        for operation in (lambda: backend.get("u", "before"),
                          lambda: backend.set("u", "during", freeze("lost"), ttl=600),
                          lambda: backend.touch("u", "before", 600)):
            started = time.monotonic()
            with pytest.raises(BackendUnavailable) as info:
                operation()
            assert time.monotonic() - started < BOUND
            assert masked(pg) in str(info.value) and pg.password not in str(info.value)
        assert len(errors(caplog)) == 3 and pg.password not in caplog.text

        pg.start()  # same port, same data directory
        assert backend.get("u", "before").thaw() == {"kept": [1, 2, 3]}  # persisted; pool reconnected
        assert backend.get("u", "during") is None  # the failed write left nothing behind
        backend.set("u", "after", freeze("ok"), ttl=600)
        assert backend.get("u", "after").thaw() == "ok"
    finally:
        backend.drop_table()
        backend.close()


def test_a_dash_app_answers_500_while_the_database_is_down(pg, caplog):
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
    started = time.monotonic()
    failed = write(2)
    assert time.monotonic() - started < BOUND
    body = failed.get_data(as_text=True)
    assert failed.status_code == 500
    assert "Traceback" not in body and "BackendUnavailable" not in body and pg.password not in body
    assert any(masked(pg) in message for message in errors(caplog)) and pg.password not in caplog.text

    pg.start()
    again = write(3)
    assert again.status_code == 200, again.get_data(as_text=True)[:500]
    assert read(again.get_json()["response"]["s"]["data"]) == repr({"clicks": 3, "rows": [0, 1, 2]})
    manager = app._dash_state.manager
    manager.backend("database").drop_table()
    manager.close()
