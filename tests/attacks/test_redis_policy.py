"""Security review, findings 15 and 16: a Redis that reaches its ``maxmemory``.

15. Every dash-state key has a TTL, so an evicting ``volatile-*`` policy (which the README used to
    recommend) lets fresh identities' writes evict other users' values, as ``allkeys-*`` does. Under
    ``noeviction`` the victims keep their values and the flood is refused.
16. A write refused because Redis is full is not an outage: it answers 413 naming Redis' maxmemory
    limit, the circuit breaker stays closed, and other users' reads keep working at once (before, the
    refusal opened the breaker and every user's reads answered 503 for a second or more).

Each test starts its own redis-server with a small ``maxmemory`` (never the shared one) and stops it.
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from dash import Input, Output, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from dash_state.backends import create_backend
from dash_state.config import build_config
from dash_state.errors import QuotaExceeded
from dash_state.core.keys import Keys
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
from redis_servers import RedisServer

pytestmark = pytest.mark.service
VICTIMS, ATTACKERS = 10, 40
VICTIM_BYTES, ATTACK_BYTES = 100_000, 2 << 20


@pytest.fixture
def redis_with():
    """Start a throwaway redis-server with the given arguments; every one is killed afterwards."""
    started: list[tuple[RedisServer, Path]] = []

    def start(*args: str) -> RedisServer:
        workdir = Path(tempfile.mkdtemp(prefix="dsr-policy-", dir="/tmp"))
        started.append((RedisServer(workdir, *args), workdir))
        return started[-1][0].start()

    yield start
    for server, workdir in started:
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def writer_app(server: RedisServer):
    """Button n writes a blob of ``app.sizes[n]`` bytes into 's'; 'out' shows ``n:len`` of what it reads."""
    app = new_app(STATE_BACKEND="redis", STATE_REDIS_URL=f"redis://127.0.0.1:{server.port}/0",
                  STATE_KEY_PREFIX=f"policy-{uuid.uuid4().hex[:8]}:", STATE_READ_CACHE_BYTES=0, STATE_RETRIES=0)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])
    app.sizes = {}

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"blob": "x" * app.sizes[n], "n": n}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return "None" if data is None else f"{data['n']}:{len(data['blob'])}"

    return app


def identity(app) -> DashClient:
    client = DashClient(app)
    client.layout()  # a fresh anonymous identity (cookie)
    return client


def write(client: DashClient, n: int, size: int):
    client.app.sizes[n] = size
    return client.raw_call([("s", "data")], [("btn", "n_clicks", n)])


def read(client: DashClient, token: str):
    return client.raw_call([("out", "children")], [("s", "data", token)])


def breaker(app):
    return dash_state.get_state_manager(app).backend("redis").breaker


@pytest.mark.parametrize("policy, victims_kept", [("volatile-ttl", False), ("noeviction", True)])
def test_fresh_identities_cannot_evict_other_users_under_noeviction(redis_with, policy, victims_kept):
    server = redis_with("--maxmemory", "48mb", "--maxmemory-policy", policy)
    app = writer_app(server)
    victims = [identity(app) for _ in range(VICTIMS)]
    tokens = []
    for n, victim in enumerate(victims, 1):
        answer = write(victim, n, VICTIM_BYTES)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        tokens.append(answer.get_json()["response"]["s"]["data"])

    floods = [write(identity(app), 1000 + i, ATTACK_BYTES) for i in range(ATTACKERS)]  # 80 MB in all
    statuses = [answer.status_code for answer in floods]
    reads = [read(victim, token) for victim, token in zip(victims, tokens)]
    kept = [n for n, answer in enumerate(reads, 1)
            if answer.status_code == 200 and answer.get_json()["response"]["out"]["children"] == f"{n}:{VICTIM_BYTES}"]

    if not victims_kept:  # why the README no longer recommends volatile-ttl: the flood fits by evicting
        assert set(statuses) == {200}, statuses
        assert len(kept) < VICTIMS, "volatile-ttl evicted none of the victims' values"
        return
    assert kept == list(range(1, VICTIMS + 1)), [(a.status_code, a.get_data(as_text=True)[:200]) for a in reads]
    assert 200 in statuses and set(statuses) == {200, 413}, statuses  # the flood is refused, not an outage
    refused = floods[statuses.index(413)].get_data(as_text=True)
    assert "maxmemory limit" in refused and "Traceback" not in refused and "127.0.0.1" not in refused
    assert not breaker(app).is_open


def test_a_full_redis_refuses_writes_with_413_and_keeps_serving_reads(redis_with, warnings_log):
    server = redis_with("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    app = writer_app(server)
    reader, filler = identity(app), identity(app)
    token = write(reader, 1, VICTIM_BYTES).get_json()["response"]["s"]["data"]

    statuses = []
    for n in range(2, 12):  # 2 MB each: Redis is full after three or four of them
        answer = write(filler, n, ATTACK_BYTES)
        statuses.append(answer.status_code)
        if answer.status_code != 200:
            break
    assert statuses[-1] == 413, statuses
    body = answer.get_data(as_text=True)
    assert "the ServerStore storage is full" in body and "maxmemory limit" in body, body
    assert "Traceback" not in body and "127.0.0.1" not in body

    answer = read(reader, token)  # at once: no cooldown to wait out
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["response"]["out"]["children"] == f"1:{VICTIM_BYTES}"
    assert not breaker(app).is_open and breaker(app).outages == 0
    operator = [r.getMessage() for r in warnings_log.records if "maxmemory limit" in r.getMessage()
                and f"127.0.0.1:{server.port}" in r.getMessage()]
    assert operator, "no WARNING told the operator which Redis is full"


def test_a_full_redis_still_lets_users_delete_values_to_make_room(redis_with):
    """Deleting is how users (and the component, releasing old references) free memory: it must work
    when Redis is over its maxmemory, where Redis refuses a script whose first write may grow memory."""
    server = redis_with("--maxmemory-policy", "noeviction")
    config = build_config(({"STATE_BACKEND": "redis", "STATE_REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}, "test"))
    backend = create_backend("redis", config, Seal(Keys((b"policy tests",))))
    try:
        for key in ("a", "b"):
            backend.set("u", key, freeze("x" * ATTACK_BYTES), ttl=60)
        with server.client() as raw:  # now over the limit: every write that may grow memory is refused
            raw.config_set("maxmemory", raw.info("memory")["used_memory"] - 100_000)
        with pytest.raises(QuotaExceeded, match="maxmemory limit"):
            backend.set("v", "c", freeze("small"), ttl=60)
        assert backend.get("u", "a").thaw() == "x" * ATTACK_BYTES and backend.touch("u", "a", 60)
        assert backend.delete("u", "a")
        assert [key for key, _, _ in backend.usage("u")] == ["b"]  # the bookkeeping followed
        backend.set("v", "c", freeze("small"), ttl=60)  # there is room again
        assert backend.get("v", "c").thaw() == "small" and not backend.breaker.is_open
    finally:
        backend.close()
