"""The redis backend when the server is down or dies: clear errors with the password masked, bounded
time, nothing half-written, and recovery without a restart. Each test kills only a redis-server it
started itself, never the shared one."""
from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
from redis.connection import AbstractConnection

from apps import write_read_app
from dash_client import DashClient
from dash_state.backends import create_backend
from dash_state.backends import redis as redis_backend
from dash_state.codecs import freeze
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable
from dash_state.wire import Wire, derive_secret
from redis_servers import RedisServer, free_port

pytestmark = pytest.mark.service
PASSWORD = "hunter2"


def make(url: str, **settings):
    config = build_config(({"STATE_BACKEND": "redis", "STATE_REDIS_URL": url,
                            "STATE_KEY_PREFIX": f"dash-state-test-{uuid.uuid4().hex[:8]}:", **settings}, "test"))
    return create_backend("redis", config, Wire(derive_secret(b"fault tests")))


@pytest.fixture
def server():
    workdir = Path(tempfile.mkdtemp(prefix="dsr-", dir="/tmp"))
    started = RedisServer(workdir, password=PASSWORD).start()
    yield started
    started.kill()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def errors_log(caplog):
    caplog.set_level(logging.ERROR)
    return caplog


def url_of(server: RedisServer) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def assert_masked(text: str, port: int) -> None:
    assert PASSWORD not in text
    assert f"redis://:***@127.0.0.1:{port}/0" in text


@pytest.mark.parametrize("url", [
    "redis://:{pw}@127.0.0.1:{port}/0",
    "redis+sentinel://:{pw}@127.0.0.1:{port}/mymaster/0",
    "redis+cluster://:{pw}@127.0.0.1:{port}",
])
def test_server_down_at_startup_names_the_url_with_the_password_masked(url, errors_log):
    port = free_port()  # nothing listens there
    url = url.format(pw=PASSWORD, port=port)
    masked = url.replace(PASSWORD, "***")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        make(url)
    assert time.monotonic() - started < 10
    assert PASSWORD not in str(info.value) and masked in str(info.value)
    assert "unreachable" in str(info.value)
    records = [r for r in errors_log.records if r.name == "dash_state" and r.levelno == logging.ERROR]
    assert len(records) == 1 and PASSWORD not in errors_log.text
    assert masked in records[0].getMessage()


def test_server_dies_during_operation_then_the_same_backend_recovers(server, errors_log):
    backend = make(url_of(server), STATE_RETRIES=2)
    backend.set("u", "k", freeze("before"), ttl=60)
    server.kill()

    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        backend.get("u", "k")
    with pytest.raises(BackendUnavailable):
        backend.set("u", "k2", freeze("while down"), ttl=60)
    assert time.monotonic() - started < 10
    assert_masked(str(info.value), server.port)
    records = [r for r in errors_log.records if r.name == "dash_state" and r.levelno == logging.ERROR]
    assert len(records) == 2  # one per failed operation, not one per retry
    assert all(f"127.0.0.1:{server.port}" in r.getMessage() for r in records) and PASSWORD not in errors_log.text

    server.start()  # same port, empty (no persistence)
    assert backend.get("u", "k") is None
    backend.set("u", "k", freeze("after"), ttl=60)
    assert backend.get("u", "k").thaw() == "after"
    assert backend.delete_user("u") == 1
    backend.close()


def test_a_hung_server_times_out_within_bounds_and_recovers(server, errors_log, monkeypatch):
    """SIGSTOP: connections open (the kernel accepts them) but no reply ever comes, so this is the
    socket timeout path. Worst case per operation: (STATE_RETRIES + 1) x READ_TIMEOUT plus backoff."""
    monkeypatch.setattr(redis_backend, "READ_TIMEOUT", 0.3)  # 5 s in production; read when the client is made
    backend = make(url_of(server), STATE_RETRIES=2)
    backend.set("u", "k", freeze("before"), ttl=60)
    server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="unreachable"):
            backend.get("u", "k")
        assert time.monotonic() - started < 3 * 0.3 + 1.5
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert PASSWORD not in errors_log.text
    assert backend.get("u", "k").thaw() == "before"
    backend.close()


def test_a_transaction_cut_before_exec_leaves_nothing_half_written(server, monkeypatch):
    """The connection dies after the server queued SET and the index update but before EXEC: the
    server discards the queue, on every retry, so neither a value nor an index entry appears."""
    backend = make(url_of(server), STATE_RETRIES=1)
    backend.set("u", "kept", freeze("old value"), ttl=60)
    original = AbstractConnection.send_packed_command
    queued: list[bytes] = []

    def send_all_but_exec(self, command, check_health=True):
        data = command if isinstance(command, bytes) else b"".join(command)
        exec_at = data.rfind(b"*1\r\n$4\r\nEXEC\r\n")
        if b"MULTI" not in data or exec_at < 0:
            return original(self, command, check_health)
        original(self, [data[:exec_at]], check_health)
        while self.can_read(timeout=0.2):  # MULTI's OK, then QUEUED for each command: the server has them
            queued.append(self.read_response())
        raise redis.ConnectionError("simulated crash before EXEC")

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send_all_but_exec)
    with pytest.raises(BackendUnavailable):
        backend.set("u", "kept", freeze("new value"), ttl=60)
    with pytest.raises(BackendUnavailable):
        backend.set("u", "fresh", freeze("never stored"), ttl=60)
    monkeypatch.setattr(AbstractConnection, "send_packed_command", original)

    assert queued.count(b"OK") == 4 and queued.count(b"QUEUED") == 20  # 2 writes x 2 attempts x (MULTI + 5)
    assert backend.get("u", "kept").thaw() == "old value"
    assert backend.get("u", "fresh") is None
    with server.client() as raw:
        assert raw.zrange(f"{backend.prefix}{{u}}:index", 0, -1) == [b"kept"]
    assert backend.delete_user("u") == 1
    backend.close()


def test_a_dash_app_answers_500_while_redis_is_down_and_recovers(server, errors_log):
    app = write_read_app(STATE_BACKEND="redis", STATE_REDIS_URL=url_of(server), STATE_RETRIES=1,
                         STATE_KEY_PREFIX=f"dash-state-test-{uuid.uuid4().hex[:8]}:")
    client = DashClient(app)
    client.layout()

    def write(n):
        return client.raw_call([("s", "data")], [("btn", "n_clicks", n)])

    def read(token):
        return client.call([("out", "children")], [("s", "data", token)])["out"]["children"]

    token = write(1).get_json()["response"]["s"]["data"]
    assert read(token) == repr({"clicks": 1, "rows": [0]})

    server.kill()
    response = write(2)
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in body and PASSWORD not in body and "127.0.0.1" not in body
    messages = [r.getMessage() for r in errors_log.records if r.name == "dash_state" and r.levelno == logging.ERROR]
    assert messages and f"redis://:***@127.0.0.1:{server.port}/0" in messages[0]
    assert PASSWORD not in errors_log.text

    server.start()
    response = write(3)
    assert response.status_code == 200
    assert read(response.get_json()["response"]["s"]["data"]) == repr({"clicks": 3, "rows": [0, 1, 2]})
