"""The redis backend beyond the shared contract: URL schemes, key layout, the per-user index, and real
Sentinel and Cluster deployments. Servers other than the shared one (db 15) are started by the tests."""
from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from dash_state.backends import Item, Pointer, create_backend
from dash_state.backends import redis as redis_backend
from dash_state.backends.redis import scripts
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable, ConfigError, QuotaExceeded
from dash_state.core.keys import Keys
from dash_state.core.references import new_key
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
from redis_servers import RedisServer, free_port, redis_cluster, redis_sentinel, require_binary
from services import redis_url

pytestmark = pytest.mark.service


def make(url: str, prefix: str | None = None, **settings):
    prefix = prefix or f"dash-state-test-{uuid.uuid4().hex[:8]}:"
    config = build_config(({"STATE_BACKEND": "redis", "STATE_REDIS_URL": url, "STATE_KEY_PREFIX": prefix,
                            **settings}, "test"))
    return create_backend("redis", config, Seal(Keys((b"redis tests",))))


@pytest.fixture
def shared():
    """Backends on the shared server (db 15); every key they made is deleted afterwards."""
    url, made = redis_url(), []

    def factory(prefix: str | None = None, **settings):
        made.append(make(url, prefix, **settings))
        return made[-1]

    yield factory
    with redis.Redis.from_url(url) as raw:
        for backend in made:
            for key in raw.scan_iter(match=f"{backend.prefix}*", count=500):  # tests may scan; the backend never does
                raw.unlink(key)
    for backend in made:
        backend.close()


@pytest.fixture
def short_dir():
    """A short directory: a unix socket path must fit in 107 bytes, pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="dsr-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(short_dir):
    started = RedisServer(short_dir / "single").start()
    yield started
    started.kill()


HANDSHAKE = {"hello", "client", "config", "info"}  # new connections and the statistics themselves


def command_calls(server: RedisServer) -> dict[str, int]:
    """Every command the server executed since the last CONFIG RESETSTAT, with how often (server-side,
    nothing missed, commands run by scripts included). Only on servers the tests started themselves."""
    with server.client() as raw:
        found: dict[str, int] = {}
        for name, stats in raw.info("commandstats").items():
            command = name.removeprefix("cmdstat_").split("|")[0]
            found[command] = found.get(command, 0) + stats["calls"]
        return found


def commands_seen(server: RedisServer) -> set[str]:
    return set(command_calls(server))


def books(backend, user: str, raw) -> tuple[list[bytes], dict[bytes, int]]:
    """The per-user index members and sizes hash, as stored."""
    index, sizes = (f"{backend.prefix}{{{user}}}:{name}" for name in ("index", "sizes"))
    return raw.zrange(index, 0, -1), {k: int(v) for k, v in raw.hgetall(sizes).items()}


# -- URLs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, mode", [
    ("redis://127.0.0.1:6379/0", "single"),
    ("rediss://:pw@cache.example.com:6380/2?ssl_cert_reqs=none", "single"),
    ("unix:///var/run/redis/redis.sock?db=3", "single"),
    ("redis+sentinel://:pw@s1:26379,s2:26379,[::1]:26380/mymaster/1", "sentinel"),
    ("redis+cluster://:pw@n1:7000,n2:7001", "cluster"),
])
def test_url_schemes_parse(url, mode):
    target = redis_backend.parse_url(url)
    assert target.mode == mode
    assert "pw" not in repr(target)


def test_sentinel_and_cluster_urls_give_nodes_service_db_and_password():
    target = redis_backend.parse_url("redis+sentinel://:s%40cret@s1:26379,s2:26380/mymaster/4")
    assert (target.nodes, target.service, target.db, target.password) == (
        (("s1", 26379), ("s2", 26380)), "mymaster", 4, "s@cret")
    cluster = redis_backend.parse_url("redis+cluster://n1:7000,n2:7001")
    assert cluster.nodes == (("n1", 7000), ("n2", 7001)) and cluster.password is None


@pytest.mark.parametrize("url", [
    "memcached://:hunter2@127.0.0.1:11211",
    "redis://:hunter2@127.0.0.1:notaport/0",
    "redis://:hunter2@127.0.0.1:6379/notadb",
    "redis+sentinel://:hunter2@127.0.0.1:26379",  # no service name
    "redis+sentinel://:hunter2@127.0.0.1:26379/mymaster/x",
    "redis+cluster://:hunter2@127.0.0.1:7000/3",  # a cluster has only db 0
    "redis+cluster://:hunter2@127.0.0.1",  # startup nodes need a port
])
def test_unparseable_urls_are_config_errors_naming_the_setting_with_the_password_masked(url):
    with pytest.raises(ConfigError) as info:
        make(url)
    message = str(info.value)
    assert "STATE_REDIS_URL" in message and "hunter2" not in message and "***" in message


def test_an_unknown_url_option_is_a_config_error(server):
    with pytest.raises(ConfigError, match="STATE_REDIS_URL"):
        make(f"redis://127.0.0.1:{server.port}/0?no_such_option=1")


@pytest.mark.parametrize("url, masked", [
    ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://user:hunter2@host/1", "rediss://user:***@host/1"),
    ("redis://:hun@ter2@host:6379/0", "redis://:***@host:6379/0"),  # an unescaped @ in the password
    ("unix:///tmp/r.sock?db=1&password=hunter2", "unix:///tmp/r.sock?db=1&password=***"),
    ("redis+sentinel://:hunter2@a:1,b:2/m/0", "redis+sentinel://:***@a:1,b:2/m/0"),
    ("redis://host:6379/0", "redis://host:6379/0"),
])
def test_mask_url(url, masked):
    assert redis_backend.mask_url(url) == masked


def test_unix_socket(short_dir):
    sock = short_dir / "redis.sock"
    server = RedisServer(short_dir / "unix", "--unixsocket", str(sock), "--unixsocketperm", "700",
                         port=0, client_kwargs={"unix_socket_path": str(sock)}).start()
    try:
        backend = make(f"unix://{sock}?db=2")
        backend.set("u", "k", freeze({"via": "socket"}), ttl=60)
        assert backend.get("u", "k").thaw() == {"via": "socket"}
        with server.client(db=2) as raw:
            assert raw.exists(f"{backend.prefix}{{u}}:k")
        assert backend.delete_user("u") == 1
        backend.close()
    finally:
        server.kill()


def test_rediss_over_tls(short_dir):
    openssl = shutil.which("openssl") or require_binary("openssl")
    cert, key = short_dir / "cert.pem", short_dir / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    port = free_port()
    server = RedisServer(short_dir / "tls", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file",
                         str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", port=0,
                         client_kwargs={"host": "127.0.0.1", "port": port, "ssl": True, "ssl_ca_certs": str(cert)})
    try:
        server.start()
        backend = make(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
        assert backend._client.connection_pool.connection_class is redis.SSLConnection
        backend.set("u", "k", freeze("encrypted in transit"), ttl=60)
        assert backend.get("u", "k").thaw() == "encrypted in transit"
        assert backend.stats()["mode"] == "single"
        backend.close()
    finally:
        server.kill()


# -- keys and the per-user index ----------------------------------------------------------------------
def test_key_layout_uses_the_prefix_and_the_user_as_a_hash_tag(shared):
    backend = shared()
    backend.set_many("alice", [Item("k1", freeze(1), 1.5)], [Pointer("latest.p", "k1" * 11, 1.5)])
    with redis.Redis.from_url(redis_url()) as raw:
        value_key, index_key = f"{backend.prefix}{{alice}}:k1", f"{backend.prefix}{{alice}}:index"
        sizes_key, pointer_key = f"{backend.prefix}{{alice}}:sizes", f"{backend.prefix}{{alice}}:latest.p"
        history_key = pointer_key + ".history"  # the store's recent keys (STATE_VALUES_PER_STORE)
        assert 1000 < raw.pttl(value_key) <= 1500  # PX with fractional seconds
        assert raw.type(index_key) == b"zset"
        assert raw.zrange(index_key, 0, -1) == [b"k1", b"latest.p", b"latest.p.history"]
        assert raw.get(history_key) == b"k1" * 11 and 1000 < raw.pttl(history_key) <= 1500
        assert raw.hgetall(sizes_key) == {b"k1": str(raw.strlen(value_key)).encode(),
                                          b"__total": str(raw.strlen(value_key)).encode()}
        assert raw.get(pointer_key) == b"k1" * 11 and 1000 < raw.pttl(pointer_key) <= 1500
        assert sorted(raw.scan_iter(match=f"{backend.prefix}*")) == sorted(
            k.encode() for k in (value_key, index_key, sizes_key, pointer_key, history_key))  # no staging key left
    keys = (value_key, index_key, sizes_key, pointer_key, history_key)
    assert len({key_slot(k.encode()) for k in keys} | {key_slot(b"alice")}) == 1


def test_tiny_ttls_become_one_millisecond_not_an_error(shared):
    backend = shared()
    backend.set("u", "k", freeze(1), ttl=0.0001)
    time.sleep(0.01)
    assert backend.get("u", "k") is None
    backend.set("u", "k2", freeze(1), ttl=60)
    assert backend.touch("u", "k2", 0.0001) is True


def test_two_prefixes_on_one_redis_do_not_see_each_other(shared):
    app_a, app_b = shared(), shared()
    app_a.set("alice", "k", freeze("from a"), ttl=60)
    app_b.set("alice", "k", freeze("from b"), ttl=60)
    app_b.set("alice", "only-b", freeze("b"), ttl=60)
    assert app_a.get("alice", "k").thaw() == "from a" and app_b.get("alice", "k").thaw() == "from b"
    assert app_a.get("alice", "only-b") is None
    assert app_a.delete_user("alice") == 1
    assert app_b.get("alice", "k").thaw() == "from b" and app_b.get("alice", "only-b").thaw() == "b"


def test_delete_user_is_one_call_that_leaves_other_users_intact(server):
    backend = make(f"redis://127.0.0.1:{server.port}/0")
    for user in ("alice", "bob", "carol"):
        for i in range(30):
            backend.set(user, f"k{i}", freeze([user, i]), ttl=60)
    with server.client() as raw:
        raw.config_resetstat()
        assert backend.delete_user("bob") == 30
        calls = {k: v for k, v in command_calls(server).items() if k not in HANDSHAKE}
        assert calls == {"zrange": 1, "unlink": 2}  # no KEYS, no SCAN, no call per key
        assert not raw.exists(f"{backend.prefix}{{bob}}:index") and not raw.exists(f"{backend.prefix}{{bob}}:sizes")
    assert backend.get("bob", "k0") is None
    assert all(backend.get(u, f"k{i}").thaw() == [u, i] for u in ("alice", "carol") for i in range(30))
    assert backend.delete_user("bob") == 0
    backend.close()


def test_delete_user_does_not_count_values_that_already_expired(shared):
    backend = shared()
    for i in range(3):
        backend.set("u", f"short{i}", freeze(i), ttl=0.1)
    backend.set("u", "long", freeze("kept"), ttl=60)
    time.sleep(0.3)
    assert backend.delete_user("u") == 1


def test_the_index_expires_with_its_longest_lived_value(shared):
    backend = shared()
    index = f"{backend.prefix}{{u}}:index"
    with redis.Redis.from_url(redis_url()) as raw:
        backend.set("u", "a", freeze(1), ttl=5)
        assert 0 < raw.pttl(index) <= 5000
        backend.set("u", "b", freeze(1), ttl=60)
        assert 5000 < raw.pttl(index) <= 60000
        backend.set("u", "c", freeze(1), ttl=1)  # a shorter value never shortens the index
        assert 5000 < raw.pttl(index) <= 60000
        assert backend.touch("u", "a", 120)  # touch keeps the index alive as long as the value
        assert 60000 < raw.pttl(index) <= 120000

        backend.set("v", "only", freeze(1), ttl=0.2)
        time.sleep(0.4)
        assert not raw.exists(f"{backend.prefix}{{v}}:index")  # nothing left behind for a gone user


def test_each_write_prunes_index_entries_and_sizes_of_expired_values(shared):
    backend = shared()
    backend.set("u", "keeper", freeze("k"), ttl=60)
    for i in range(20):
        backend.set("u", f"old{i}", freeze(i), ttl=0.05)
    time.sleep(0.15)
    backend.set("u", "new", freeze(1), ttl=60)
    with redis.Redis.from_url(redis_url()) as raw:
        members, sizes = books(backend, "u", raw)
        assert members == [b"keeper", b"new"]
        assert set(sizes) == {b"keeper", b"new", b"__total"} and sizes[b"__total"] == sizes[b"keeper"] + sizes[b"new"]


def test_delete_and_touch_of_missing_values(shared):
    backend = shared()
    assert backend.touch("u", "missing", 60) is False
    assert backend.delete("u", "missing") is False
    backend.set("u", "k", freeze(1), ttl=60)
    assert backend.delete("u", "k") is True
    with redis.Redis.from_url(redis_url()) as raw:
        assert not raw.exists(f"{backend.prefix}{{u}}:index")  # delete also drops the index entry
        assert books(backend, "u", raw)[1] == {b"__total": 0}  # and its size


def test_a_write_is_one_transaction_and_values_are_staged_then_renamed(server):
    backend = make(f"redis://127.0.0.1:{server.port}/0")
    backend.set("u", "warm", freeze(0), ttl=60)  # the connection exists: no handshake below
    with server.client() as raw:
        raw.config_resetstat()
    backend.set_many("u", [Item(c * 22, freeze(c), 60) for c in "xyz"], [Pointer("latest." + "p" * 22, "x" * 22, 60)])
    calls = command_calls(server)
    assert {name: calls.get(name) for name in ("multi", "exec", "eval", "set", "rename")} == {
        "multi": 1, "exec": 1, "eval": 1, "set": 5, "rename": 3}  # three values staged and renamed, a pointer, its history
    assert calls.get("get") == 1  # only the store's history, inside the script: never a value
    assert "keys" not in calls and "scan" not in calls
    backend.close()


def test_a_refused_write_leaves_no_trace(shared):
    backend = shared()
    backend.set_many("u", [Item("kept", freeze("k" * 500), 60)], [Pointer("latest.s", "kept" * 5 + "kk", 60)])
    with redis.Redis.from_url(redis_url()) as raw:
        before = books(backend, "u", raw), raw.get(f"{backend.prefix}{{u}}:kept")
        for items in ([Item("new", freeze("n" * 5000), 60)],
                      [Item("kept", freeze("r" * 5000), 60)],  # replacing a value: the old bytes stay
                      [Item("other", freeze(1), 60), Item("kept", freeze("r" * 5000), 60)]):
            with pytest.raises(QuotaExceeded):
                backend.set_many("u", items, [Pointer("latest.s", "n" * 22, 60)], quota=1000)
            assert (books(backend, "u", raw), raw.get(f"{backend.prefix}{{u}}:kept")) == before
            assert 50_000 < raw.pttl(f"{backend.prefix}{{u}}:kept") <= 60_000
            assert not list(raw.scan_iter(match=f"{backend.prefix}*~staged*"))
    assert backend.get("u", "kept").thaw() == "k" * 500 and backend.pointer("u", "latest.s") == "kept" * 5 + "kk"
    assert backend.get("u", "new") is None and backend.get("u", "other") is None


def test_a_failing_script_takes_its_staged_values_back_without_opening_the_circuit(shared, caplog):
    backend = shared()
    backend.set("u", "kept", freeze("old"), ttl=60)
    caplog.set_level(logging.INFO, logger="dash_state")
    with redis.Redis.from_url(redis_url()) as raw:
        index = f"{backend.prefix}{{u}}:index"
        raw.delete(index)
        raw.set(index, "not a sorted set", ex=60)  # the script's first command now fails: WRONGTYPE
        with pytest.raises(BackendUnavailable, match="refused the operation"):
            backend.set_many("u", [Item("kept", freeze("new"), 60), Item("fresh", freeze(1), 60)])
        assert not list(raw.scan_iter(match=f"{backend.prefix}*~staged*"))
        assert backend.get("u", "kept").thaw() == "old" and backend.get("u", "fresh") is None
        assert not backend.breaker.is_open and caplog.records == []  # the server answers: not an outage
        raw.delete(index)
    backend.set("u", "fresh", freeze(2), ttl=60)
    assert backend.get("u", "fresh").thaw() == 2


def test_the_bookkeeping_always_matches_what_is_stored(shared):
    """A seeded random mix of writes, replacements, refusals, deletes, touches and expiries: the index
    lists exactly the live values, and each size (and their total) is the stored value's length."""
    rng = random.Random(1234)
    backend = shared()
    keys = [f"k{i}" for i in range(12)]
    for step in range(300):
        op = rng.random()
        if op < 0.55:
            items = [Item(rng.choice(keys), freeze("v" * rng.randint(0, 3000)), rng.choice([60, 60, 0.05]))
                     for _ in range(rng.randint(1, 3))]
            items = list({item.key: item for item in items}.values())
            try:
                backend.set_many("u", items, [Pointer("latest.s", "p" * 22, 60)], quota=rng.choice([None, 15_000]))
            except QuotaExceeded:
                pass
        elif op < 0.75:
            backend.delete("u", rng.choice(keys))
        elif op < 0.9:
            backend.touch("u", rng.choice(keys), rng.choice([60, 0.05]))
        else:
            time.sleep(0.06)
    time.sleep(0.1)
    backend.set("u", "final", freeze("f"), ttl=60)  # prunes what expired
    with redis.Redis.from_url(redis_url()) as raw:
        members, sizes = books(backend, "u", raw)
        live = {key for key in keys + ["final"] if raw.exists(f"{backend.prefix}{{u}}:{key}")}
        assert set(members) - {b"latest.s", b"latest.s.history"} == {key.encode() for key in live}
        assert {k.decode(): v for k, v in sizes.items() if k != b"__total"} == {
            key: raw.strlen(f"{backend.prefix}{{u}}:{key}") for key in live}
        assert sizes[b"__total"] == sum(v for k, v in sizes.items() if k != b"__total")
        assert not list(raw.scan_iter(match=f"{backend.prefix}*~staged*"))
    assert sorted((k, s) for k, s, _ in backend.usage("u")) == sorted((k.decode(), v) for k, v in sizes.items()
                                                                       if k != b"__total")


def test_a_replacement_with_a_ttl_that_runs_out_at_once_removes_the_old_value(shared):
    backend = shared()
    backend.set("u", "k", freeze("old"), ttl=60)
    backend.set("u", "k", freeze("new"), ttl=0.0001)
    time.sleep(0.01)
    assert backend.get("u", "k") is None
    backend.set("u", "other", freeze(1), ttl=60)
    assert [key for key, _, _ in backend.usage("u")] == ["other"]


def test_the_scripts_keep_their_documented_key_and_argument_layout():
    assert "KEYS[3 + n + m + i]" in scripts.WRITE  # staging keys, then the histories, come last
    assert "KEYS[3 + 2 * n + m + j]" in scripts.WRITE and "ARGV[7 + 3 * i]" in scripts.WRITE
    assert "PEXPIRE', KEYS[3]" in scripts.TOUCH and "ZADD', KEYS[1], 'XX'" in scripts.TOUCH


def test_no_code_path_sends_keys_or_scan(server):
    """Server-side command statistics see every command any client sent: KEYS and SCAN never appear."""
    with server.client() as raw:
        raw.config_resetstat()
    backend = make(f"redis://127.0.0.1:{server.port}/0")
    for user in ("a", "b"):
        for i in range(5):
            backend.set(user, f"k{i}", freeze(i), ttl=60)
    backend.get("a", "k1")
    backend.get("a", "nope")
    backend.touch("a", "k1", 60)
    backend.touch("a", "nope", 60)
    backend.delete("a", "k2")
    backend.delete_user("b")
    backend.stats()
    again = make(f"redis://127.0.0.1:{server.port}/0", prefix=backend.prefix)  # startup check
    again.close()
    backend.close()
    seen = commands_seen(server)
    assert {"set", "get", "pexpire", "zadd", "zrange", "unlink", "ping"} <= seen
    assert not seen & {"keys", "scan", "sscan", "zscan", "flushdb", "flushall"}, seen


def test_stats_are_cheap_and_mask_the_password(shared):
    backend = shared()
    stats = backend.stats()
    assert stats["mode"] == "single" and stats["prefix"] == backend.prefix and stats["retries"] == 3
    assert stats["url"] == redis_backend.mask_url(redis_url())


# -- one client per process ---------------------------------------------------------------------------
def test_backends_share_one_client_per_process_and_url(shared):
    first, second = shared(prefix="dash-state-test-shared-a:"), shared(prefix="dash-state-test-shared-b:")
    assert first._client is second._client
    first.close()
    second.set("u", "k", freeze("still works"), ttl=60)  # closing one backend leaves the pool to the other
    assert second.get("u", "k").thaw() == "still works"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_opens_its_own_connections(shared):
    parent = shared()
    parent.set("parent", "k", freeze("p"), ttl=60)
    pool = parent._client.connection_pool
    parent_sockets = {id(c._sock) for c in pool._available_connections}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report problems through the pipe, never return into pytest
        status = "ok"
        try:
            child = make(redis_url(), prefix=parent.prefix)
            if child._client is parent._client:
                status = "the child reused the parent's client"
            child.set("child", "k", freeze("c"), ttl=60)
            if child.get("parent", "k").thaw() != "p" or parent.get("child", "k").thaw() != "c":
                status = "wrong data in the child"
            child_sockets = {id(c._sock) for c in child._client.connection_pool._available_connections}
            if child_sockets & parent_sockets:
                status = "the child used the parent's sockets"
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            status = f"{type(exc).__name__}: {exc}"
        os.write(write, status.encode()[:4000])
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        assert pipe.read() == "ok"
    assert parent.get("child", "k").thaw() == "c"  # the parent's connections are undisturbed
    assert parent.get("parent", "k").thaw() == "p"


# -- Sentinel and Cluster -----------------------------------------------------------------------------
def test_sentinel_round_trip(short_dir):
    with redis_sentinel(short_dir / "sentinel") as (master, sentinel):
        backend = make(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0")
        assert backend.stats()["mode"] == "sentinel"
        backend.set("u", "k", freeze({"through": "sentinel"}), ttl=60)
        assert backend.get("u", "k").thaw() == {"through": "sentinel"}
        with master.client() as raw:
            assert raw.exists(f"{backend.prefix}{{u}}:k")  # it really is on the master
        assert backend.delete_user("u") == 1
        backend.close()


def test_cluster_spreads_users_over_all_nodes_and_keeps_each_user_in_one_slot(short_dir):
    with redis_cluster(short_dir / "cluster") as nodes:
        for node in nodes:
            with node.client() as raw:
                raw.config_resetstat()
        backend = make(f"redis+cluster://127.0.0.1:{nodes[0].port}")
        assert backend.stats()["mode"] == "cluster"
        users = [f"user{i:03d}" for i in range(200)]
        for user in users:
            backend.set(user, "a", freeze({"user": user}), ttl=60)
            backend.set(user, "b", freeze([user] * 3), ttl=60)
        assert all(backend.get(u, "a").thaw() == {"user": u} and backend.get(u, "b").thaw() == [u] * 3 for u in users)

        sizes = []
        for node in nodes:
            with node.client() as raw:
                sizes.append(raw.dbsize())
        assert sum(sizes) == 200 * 4  # two values, the index and the sizes hash per user
        assert all(size > 0 for size in sizes), sizes

        with pytest.raises(QuotaExceeded):  # the quota script runs on the user's node, in the user's slot
            backend.set_many("user001", [Item("a", freeze("x" * 5000), 60)], quota=1000)
        assert backend.get("user001", "a").thaw() == {"user": "user001"}
        backend.set_many("user001", [Item(new_key(), freeze(1), 60)], [Pointer("latest.s", "a" * 22, 60)], quota=10_000)
        assert backend.pointer("user001", "latest.s") == "a" * 22
        assert backend.move_user("user001", "user002") == 1  # across slots; user002's own a and b stay
        assert backend.get("user002", "a").thaw() == {"user": "user002"}
        assert backend.pointer("user002", "latest.s") == "a" * 22 and backend.usage("user001") == []

        assert backend.touch("user007", "a", 120) is True
        assert backend.delete("user007", "b") is True
        assert backend.delete_user("user007") == 1 and backend.delete_user("user008") == 2
        assert backend.get("user008", "a") is None and backend.get("user009", "a").thaw() == {"user": "user009"}
        for node in nodes:
            seen = commands_seen(node)
            assert not seen & {"keys", "scan", "sscan", "zscan"}, seen
        backend.close()


@pytest.mark.parametrize("policy, warned", [("allkeys-lru", True), ("volatile-ttl", True), ("volatile-lru", True),
                                            ("noeviction", False)])
def test_an_evicting_policy_is_named_at_start_up(short_dir, caplog, policy, warned):
    """Every dash-state key has a TTL, so volatile-* evicts other users' values as allkeys-* does."""
    started = RedisServer(short_dir / "policy", "--maxmemory-policy", policy).start()
    try:
        with caplog.at_level(logging.WARNING, logger="dash_state"):
            make(f"redis://127.0.0.1:{started.port}/0").close()
    finally:
        started.kill()
    warnings = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    assert bool(warnings) == warned, warnings
    if warned:
        assert policy in warnings[0] and "other users' values" in warnings[0]
        assert "set maxmemory-policy noeviction" in warnings[0]


def test_a_server_without_config_get_starts_without_the_policy_check(short_dir, caplog):
    started = RedisServer(short_dir / "noconfig", "--maxmemory-policy", "allkeys-lru",
                          "--rename-command", "CONFIG", "").start()
    try:
        with caplog.at_level(logging.WARNING, logger="dash_state"):
            backend = make(f"redis://127.0.0.1:{started.port}/0")
            backend.write_many("u", [("k" * 22, b"x", 60)], [], None)
            assert backend.read("u", "k" * 22) == b"x"
            backend.close()
    finally:
        started.kill()
    assert not [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]
