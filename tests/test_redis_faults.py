"""The redis backend when the server is down, dies or freezes: clear errors with the password masked,
one ERROR per outage (the circuit breaker), fast failures while it lasts, bounded time, nothing
half-written, and recovery without a restart. Each test stops only a redis-server it started itself,
never the shared one."""
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
from dash_state.backends.breaker import Breaker
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable, QuotaExceeded
from dash_state.core.keys import Keys
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
from redis_servers import RedisServer, free_port

pytestmark = pytest.mark.service
PASSWORD = "hunter2"
TIMEOUT = 0.5  # STATE_BACKEND_TIMEOUT in these tests


def make(url: str, **settings):
    config = build_config(({"STATE_BACKEND": "redis", "STATE_REDIS_URL": url,
                            "STATE_KEY_PREFIX": f"dash-state-test-{uuid.uuid4().hex[:8]}:", **settings}, "test"))
    return create_backend("redis", config, Seal(Keys((b"fault tests",))))


@pytest.fixture
def server():
    workdir = Path(tempfile.mkdtemp(prefix="dsr-", dir="/tmp"))
    started = RedisServer(workdir, password=PASSWORD).start()
    yield started
    if started.process is not None and started.process.poll() is None:
        started.process.send_signal(signal.SIGCONT)  # a test that failed while the server was frozen
    started.kill()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger="dash_state")
    return caplog


def url_of(server: RedisServer) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def records(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dash_state" and r.levelno == level]


def assert_masked(text: str, port: int) -> None:
    assert PASSWORD not in text
    assert f"redis://:***@127.0.0.1:{port}/0" in text


def wait_until_it_answers(operation, limit: float = 15.0):
    """Retry ``operation`` until the circuit lets a probe through and it succeeds."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return operation()
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("url", [
    "redis://:{pw}@127.0.0.1:{port}/0",
    "redis+sentinel://:{pw}@127.0.0.1:{port}/mymaster/0",
    "redis+cluster://:{pw}@127.0.0.1:{port}",
])
def test_server_down_at_startup_names_the_url_with_the_password_masked(url, log):
    port = free_port()  # nothing listens there
    url = url.format(pw=PASSWORD, port=port)
    masked = url.replace(PASSWORD, "***")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        make(url, STATE_BACKEND_TIMEOUT=TIMEOUT)
    assert time.monotonic() - started < 10
    assert PASSWORD not in str(info.value) and masked in str(info.value)
    assert "unreachable" in str(info.value)
    errors = records(log, logging.ERROR)
    assert len(errors) == 1 and PASSWORD not in log.text
    assert masked in errors[0]


def test_the_breaker_logs_one_error_fails_fast_and_logs_recovery_once(server, log):
    backend = make(url_of(server), STATE_RETRIES=2, STATE_BACKEND_TIMEOUT=TIMEOUT)
    backend.set("u", "k", freeze("before"), ttl=60)
    server.kill()

    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="unreachable") as info:
        backend.get("u", "k")
    first = time.monotonic() - started
    assert first < TIMEOUT + 0.1 + 0.2 + 1.0  # refused at once, retried twice after 0.1 and 0.2 s
    assert_masked(str(info.value), server.port)
    assert len(records(log, logging.ERROR)) == 1 and backend.breaker.is_open

    operations = [lambda: backend.get("u", "k"), lambda: backend.set("u", "k2", freeze("while down"), ttl=60),
                  lambda: backend.touch("u", "k", 60), lambda: backend.delete("u", "k"),
                  lambda: backend.pointer("u", "latest.x"), lambda: backend.usage("u"),
                  lambda: backend.alive("u", "k"), lambda: backend.delete_user("u")]
    for n in range(40):
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="unavailable") as info:
            operations[n % len(operations)]()
        assert time.monotonic() - started < 0.05, "while the circuit is open, operations fail fast"
        assert PASSWORD not in str(info.value)
    assert len(records(log, logging.ERROR)) == 1  # one message per outage, not per operation or retry
    assert records(log, logging.INFO) == []

    server.start()  # same port, empty (no persistence)
    assert wait_until_it_answers(lambda: backend.get("u", "k")) is None
    backend.set("u", "k", freeze("after"), ttl=60)
    assert backend.get("u", "k").thaw() == "after"
    assert len(records(log, logging.ERROR)) == 1
    recovered = records(log, logging.INFO)
    assert len(recovered) == 1 and "reachable again" in recovered[0] and PASSWORD not in log.text
    assert not backend.breaker.is_open and backend.stats()["outages"] == 1
    assert backend.delete_user("u") == 1
    backend.close()


def test_a_second_outage_logs_a_second_error(server, log):
    backend = make(url_of(server), STATE_RETRIES=0, STATE_BACKEND_TIMEOUT=TIMEOUT)
    for outage in (1, 2):
        server.kill()
        with pytest.raises(BackendUnavailable):
            backend.get("u", "k")
        server.start()
        wait_until_it_answers(lambda: backend.get("u", "k"))
        assert len(records(log, logging.ERROR)) == outage and len(records(log, logging.INFO)) == outage
    assert backend.stats()["outages"] == 2
    backend.close()


def test_a_frozen_server_fails_within_the_timeout_instead_of_hanging(server, log):
    """SIGSTOP: the kernel still accepts connections, but no reply ever comes. A read fails after
    STATE_BACKEND_TIMEOUT, once (timeouts are not retried), and then the circuit fails fast."""
    backend = make(url_of(server), STATE_RETRIES=3, STATE_BACKEND_TIMEOUT=TIMEOUT)
    backend.set("u", "k", freeze("before"), ttl=60)
    server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer in time") as info:
            backend.get("u", "k")
        took = time.monotonic() - started
        assert TIMEOUT * 0.8 < took < TIMEOUT + 0.5, took  # one timeout, not (retries + 1) of them
        assert_masked(str(info.value), server.port)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            backend.set("u", "k2", freeze("x"), ttl=60)
        assert time.monotonic() - started < 0.05
        assert len(records(log, logging.ERROR)) == 1
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert wait_until_it_answers(lambda: backend.get("u", "k")).thaw() == "before"
    assert PASSWORD not in log.text
    backend.close()


def test_a_write_to_a_frozen_server_fails_within_the_timeout_and_stores_nothing(server):
    backend = make(url_of(server), STATE_RETRIES=3, STATE_BACKEND_TIMEOUT=TIMEOUT)
    backend.set("u", "k", freeze("before"), ttl=60)
    backend.breaker.cooldown = 0.0  # probe again at once: this test is about the write, not the breaker
    server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer in time"):
            backend.set("u", "k", freeze("during" * 100_000), ttl=60)
        assert time.monotonic() - started < TIMEOUT + 0.5
    finally:
        server.process.send_signal(signal.SIGCONT)
    # The server may have executed the transaction when it woke up; then it is whole, never half.
    value = wait_until_it_answers(lambda: backend.get("u", "k")).thaw()
    assert value in ("before", "during" * 100_000)
    assert {k for k, _, _ in backend.usage("u")} == {"k"}
    backend.close()


def test_starting_against_a_frozen_server_fails_within_the_timeout(server):
    server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer in time"):
            make(url_of(server), STATE_BACKEND_TIMEOUT=TIMEOUT)
        assert time.monotonic() - started < TIMEOUT + 0.5
    finally:
        server.process.send_signal(signal.SIGCONT)


def test_user_namespaces_never_appear_in_errors_or_logs(server, log, monkeypatch):
    """Redis errors can quote key names; the user namespace in their {hash tag} is masked."""
    backend = make(url_of(server), STATE_RETRIES=0)
    namespace = "a.Zx81SecretAnonId"

    def fail(*_args, **_kwargs):
        raise redis.ConnectionError(f"Error while reading key {backend.prefix}{{{namespace}}}:abc")

    monkeypatch.setattr(backend._client, "get", fail)
    with pytest.raises(BackendUnavailable) as info:
        backend.get(namespace, "abc")
    for text in (str(info.value), log.text):
        assert namespace not in text and "{***}" in text
    assert_masked(str(info.value), server.port)


def test_a_transaction_cut_before_exec_leaves_nothing_half_written(server, monkeypatch):
    """The connection dies after the server queued the staged SET and the bookkeeping EVAL, but before
    EXEC: the server discards the queue, on every retry, so neither a value nor an index entry appears."""
    backend = make(url_of(server), STATE_RETRIES=1)
    backend.set("u", "kept", freeze("old value"), ttl=60)
    backend.breaker.cooldown = 0.0  # each write below gets its own attempts
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

    assert queued.count(b"OK") == 4 and queued.count(b"QUEUED") == 8  # 2 writes x 2 attempts x (MULTI + SET + EVAL)
    assert backend.get("u", "kept").thaw() == "old value"
    assert backend.get("u", "fresh") is None
    with server.client() as raw:
        assert raw.zrange(f"{backend.prefix}{{u}}:index", 0, -1) == [b"kept"]
        assert not list(raw.scan_iter(match=f"{backend.prefix}*~staged*"))
    assert backend.delete_user("u") == 1
    backend.close()


def test_the_breaker_on_a_fake_clock():
    now = [0.0]
    breaker = Breaker("test backend", cooldown=1.0, max_cooldown=4.0, clock=lambda: now[0])

    def down():
        raise BackendUnavailable("down")

    for probe_at, wait in ((0.0, 1.0), (1.0, 2.0), (3.0, 4.0), (7.0, 4.0)):  # the wait doubles up to the cap
        now[0] = probe_at
        with pytest.raises(BackendUnavailable, match="^down$"):  # a probe reaches the server
            breaker.call(down, "probe")
        now[0] = probe_at + wait - 0.001
        with pytest.raises(BackendUnavailable, match="next attempt in 0.0 s"):  # fails fast
            breaker.call(lambda: "never called", "wait")
    now[0] = 11.0
    assert breaker.call(lambda: "up", "probe") == "up" and not breaker.is_open
    with pytest.raises(ValueError):  # other errors pass through and do not open the circuit
        breaker.call(lambda: (_ for _ in ()).throw(ValueError("bad value")), "write")
    assert not breaker.is_open and breaker.outages == 1


def test_a_dash_app_answers_503_while_redis_is_down_and_recovers(server, log):
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
    for n in (2, 3, 4):  # the first finds the outage, the others fail fast
        response = write(n)
        body = response.get_data(as_text=True)
        assert response.status_code == 503 and "unavailable" in body
        assert "Traceback" not in body and PASSWORD not in body and "127.0.0.1" not in body
    messages = records(log, logging.ERROR)
    assert len(messages) == 1 and f"redis://:***@127.0.0.1:{server.port}/0" in messages[0]
    assert PASSWORD not in log.text

    server.start()
    deadline = time.monotonic() + 15
    while (response := write(5)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert response.status_code == 200
    assert read(response.get_json()["response"]["s"]["data"]) == repr({"clicks": 5, "rows": [0, 1, 2, 3, 4]})
    assert len(records(log, logging.ERROR)) == 1


def _caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


_UNREACHABLE_CLUSTER = getattr(redis.exceptions, "RedisClusterUnreachableError", redis.exceptions.RedisClusterException)


@pytest.mark.parametrize("raised, reason", [
    # redis-py 8: a cluster no node answers for, whatever the wording
    (_caused(_UNREACHABLE_CLUSTER("no node answered"), redis.ConnectionError("refused")), "is unreachable"),
    # redis-py 5 to 7: the base type, raised from the connection error
    (_caused(redis.exceptions.RedisClusterException("Redis Cluster cannot be connected"), redis.TimeoutError("t")),
     "did not answer in time"),
    (redis.ConnectionError("Connection reset by peer"), "is unreachable"),
    (redis.TimeoutError("Timeout reading from socket"), "did not answer in time"),
    (redis.exceptions.ClusterDownError("CLUSTERDOWN The cluster is down"), "reports that the cluster is down"),
    (redis.exceptions.MaxConnectionsError("Too many connections"), "has no free connection in this process's pool"),
    (redis.exceptions.AuthenticationError("invalid username-password pair"), "refused the user name or password"),
    # wording that sounds like an outage does not make one: the types decide
    (redis.ResponseError("ERR unreachable: connection refused, timeout"), "refused the operation"),
    (redis.exceptions.RedisClusterException("Keys in request don't hash to the same slot"), "refused the operation"),
])
def test_failures_are_classified_by_exception_type_not_by_wording(server, monkeypatch, raised, reason):
    backend = make(url_of(server), STATE_RETRIES=0)

    def fail(*_args, **_kwargs):
        raise raised

    monkeypatch.setattr(backend._client, "get", fail)
    with pytest.raises(BackendUnavailable) as info:
        backend.get("u", "k")
    assert f"Redis at redis://:***@127.0.0.1:{server.port}/0 {reason}: " in str(info.value)
    assert backend.breaker.is_open  # each of these is an outage
    backend.close()


def test_a_full_redis_is_a_refused_write_not_an_outage(server, log, monkeypatch):
    """OutOfMemoryError (maxmemory reached under noeviction) is Redis answering: QuotaExceeded naming
    the limit, the circuit stays closed, and one WARNING for the operator names the URL (masked)."""
    backend = make(url_of(server), STATE_RETRIES=0)
    backend.set("u", "k", freeze("kept"), ttl=60)

    def full(*_args, **_kwargs):
        raise redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(backend._client, "pipeline", full)
    for _ in range(3):
        with pytest.raises(QuotaExceeded, match="maxmemory limit") as info:
            backend.set("u", "k", freeze("new"), ttl=60)
        assert "127.0.0.1" not in str(info.value)  # the message reaches the browser: no server address
    assert not backend.breaker.is_open and backend.stats()["outages"] == 0
    assert backend.get("u", "k").thaw() == "kept"
    warnings = records(log, logging.WARNING)
    assert len(warnings) == 1 and f"redis://:***@127.0.0.1:{server.port}/0" in warnings[0], warnings
    assert records(log, logging.ERROR) == [] and PASSWORD not in log.text
    backend.close()


def test_an_answer_from_the_server_closes_an_open_circuit():
    now = [0.0]
    breaker = Breaker("test backend", cooldown=1.0, clock=lambda: now[0], answers=(QuotaExceeded,))
    with pytest.raises(BackendUnavailable):
        breaker.call(lambda: (_ for _ in ()).throw(BackendUnavailable("down")), "read")
    now[0] = 1.0
    with pytest.raises(QuotaExceeded):  # the probe reached the server, which said it is full
        breaker.call(lambda: (_ for _ in ()).throw(QuotaExceeded("full")), "write")
    assert not breaker.is_open and breaker.call(lambda: "up", "read") == "up"
