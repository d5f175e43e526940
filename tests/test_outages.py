"""What users and operators see when Redis goes away under an app: each callback gets a clear error
within a bounded time (HTTP 503, no traceback), the log gets one ERROR per outage (URL masked), a frozen
server does not hold requests for longer than STATE_BACKEND_TIMEOUT, and everything recovers by itself."""
from __future__ import annotations

import logging
import os
import signal
import time

import pytest
from dash import Input, Output, State, html

from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from redis_servers import RedisServer

pytestmark = pytest.mark.service


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path / "redis", password="pw").start()
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.kill()


def outage_app(server):
    app = new_app(STATE_BACKEND="redis", STATE_REDIS_URL=f"redis://:pw@127.0.0.1:{server.port}/0",
                  STATE_BACKEND_TIMEOUT=0.5, STATE_RETRIES=1)
    app.layout = html.Div([html.Button(id="w"), html.Button(id="r"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("w", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"n": n}

    @app.callback(Output("out", "children"), Input("r", "n_clicks"), State("s", "data"), prevent_initial_call=True)
    def read(n, data):
        return repr(data)

    return app


def write(client, n):
    return client.raw_call([("s", "data")], [("w", "n_clicks", n)])


def test_a_restart_is_one_error_and_clear_responses(private_redis, caplog):
    caplog.set_level(logging.INFO, logger="dash_state")
    app = outage_app(private_redis)
    client = DashClient(app)
    client.layout()
    assert write(client, 1).status_code == 200
    private_redis.kill()
    answers = []
    for n in range(20):  # twenty busy users' callbacks during the outage
        started = time.monotonic()
        response = write(client, n)
        answers.append((response.status_code, time.monotonic() - started, response.get_data(as_text=True)))
    assert {status for status, _, _ in answers} == {503}
    assert all("storage is unavailable" in body and "Traceback" not in body for _, _, body in answers)
    assert max(seconds for _, seconds, _ in answers[1:]) < 0.2  # after the first: failing fast
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and ":***@" in errors[0].getMessage() and "pw@" not in errors[0].getMessage()
    assert "Traceback" not in caplog.text
    private_redis.start()
    deadline = time.monotonic() + 15
    while write(client, 99).status_code != 200:
        assert time.monotonic() < deadline, "no recovery"
        time.sleep(0.2)
    assert "reachable again" in caplog.text


def test_a_frozen_server_costs_one_timeout_not_a_stall(private_redis):
    app = outage_app(private_redis)
    client = DashClient(app)
    client.layout()
    token = write(client, 1).get_json()["response"]["s"]["data"]
    os.kill(private_redis.process.pid, signal.SIGSTOP)  # like a 10 s pause of Redis
    try:
        timings = []
        for n in range(10):
            started = time.monotonic()
            status = client.raw_call([("out", "children")], [("r", "n_clicks", n)], [("s", "data", token)]).status_code
            timings.append((status, time.monotonic() - started))
        assert timings[0][1] < 1.5  # STATE_BACKEND_TIMEOUT = 0.5 s (+ a little), not Redis' pause
        assert sum(seconds for _, seconds in timings) < 3.0
        assert all(status in (200, 503) for status, _ in timings)
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while True:
        response = client.raw_call([("out", "children")], [("r", "n_clicks", 1)], [("s", "data", token)])
        if response.status_code == 200 and response.get_json()["response"]["out"]["children"] == "{'n': 1}":
            break
        assert time.monotonic() < deadline, "no recovery after SIGCONT"
        time.sleep(0.2)
