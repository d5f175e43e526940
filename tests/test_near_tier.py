"""The near tier (redis and PostgreSQL): another process of the host reads what this one wrote or read
from the host's store plus one existence check; nothing deleted, released, cleared or expired is ever
served; while the server is unreachable unexpired values it holds are still served. Also: its LRU
bound, its sealing rule, and how it is switched on and off."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import uuid

import pandas as pd
import pytest
import redis

from dash_state.backends import create_backend, near
from dash_state.backends.near import NearBackend, NearStore
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable
from dash_state.core.keys import Keys
from dash_state.core.manager import StateManager, pointer_name
from dash_state.core.references import parse
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
from services import database_url, redis_url

SECRET = (b"near tier tests",)
WAIT = 120  # seconds a spawned process may take


def manager(settings: dict, **extra) -> StateManager:
    return StateManager(build_config(({**settings, **extra}, "test")), Keys(SECRET))


def plain_backend(settings: dict):
    """The remote backend alone, as a host (or process) without a near tier uses it."""
    config = build_config(({**settings, "STATE_NEAR_TIER_BYTES": 0}, "test"))
    return create_backend(config["STATE_BACKEND"], config, Seal(Keys(SECRET)))


@pytest.fixture(params=["redis", "postgres"])
def settings(request, tmp_path):
    near_path = str(tmp_path / "near")
    if request.param == "redis":
        prefix = f"dash-state-near-{uuid.uuid4().hex[:8]}:"
        yield {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": prefix,
               "STATE_NEAR_TIER_PATH": near_path}
        with redis.Redis.from_url(redis_url()) as raw:
            for key in raw.scan_iter(match=f"{prefix}*", count=500):
                raw.unlink(key)
        return
    table = f"near_{uuid.uuid4().hex[:10]}"
    found = {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(), "STATE_DATABASE_TABLE": table,
             "STATE_NEAR_TIER_PATH": near_path}
    yield found
    backend = plain_backend(found)
    backend.drop_table()
    backend.close()


pytestmark = pytest.mark.service


def near_stats(m: StateManager, settings: dict) -> dict:
    return m.stats()["backends"][settings["STATE_BACKEND"]]["near_tier"]


# -- work done in other processes (spawned, like gunicorn workers) --------------------------------------
def _read_elsewhere(settings: dict, tokens: list[str], conn) -> None:
    """Read every token with the remote backend's value reads forbidden; send back values and stats."""
    m = manager(settings, STATE_READ_CACHE_BYTES=0)
    backend = m.backend(settings["STATE_BACKEND"])

    def forbidden(*args):
        raise AssertionError("a value was transferred from the remote backend")

    backend.inner.read = forbidden
    try:
        values = [m.load("s", token, who="alice") for token in tokens]
        conn.send(([v.to_dict("list") if isinstance(v, pd.DataFrame) else v for v in values],
                   near_stats(m, settings)))
    except BaseException as exc:  # reported by the test
        conn.send(exc)
    finally:
        m.close()


def _remove_elsewhere(settings: dict, action: str, user: str, key: str, conn) -> None:
    """Delete through the remote backend alone, as another host would."""
    backend = plain_backend(settings)
    try:
        if action == "delete":
            conn.send(backend.delete(user, key))
        elif action == "clear_user":
            conn.send(backend.delete_user(user) > 0)
        else:
            conn.send(backend.release(user, pointer_name("s"), key))
    finally:
        backend.close()


def elsewhere(target, *args):
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    process = context.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    try:
        assert mine.poll(WAIT), "the other process did not answer"
        answer = mine.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    if isinstance(answer, BaseException):
        raise answer
    return answer


# -- across processes ---------------------------------------------------------------------------------------
def test_another_process_reads_from_the_near_tier_with_one_existence_check(settings):
    frame = pd.DataFrame({"n": range(20_000), "x": [i / 3 for i in range(20_000)]})
    writer = manager(settings)
    try:
        tokens = [writer.save("s", frame, who="alice"), writer.save("s", {"small": [1, 2, 3]}, who="alice")]
        values, stats = elsewhere(_read_elsewhere, settings, tokens)
        assert values == [frame.to_dict("list"), {"small": [1, 2, 3]}]
        assert stats["hits"] == 2 and stats["misses"] == 0 and stats["entries"] == 2
    finally:
        writer.close()


def test_a_value_read_from_the_server_is_kept_for_the_next_process(settings):
    """Written by a host without a near tier: the first reader here fetches it, the next one does not."""
    token = manager(settings, STATE_NEAR_TIER_BYTES=0).save("s", {"from": "elsewhere"}, who="alice")
    first = manager(settings, STATE_READ_CACHE_BYTES=0)
    try:
        assert first.load("s", token, who="alice") == {"from": "elsewhere"}
        assert near_stats(first, settings)["misses"] == 1
    finally:
        first.close()
    values, stats = elsewhere(_read_elsewhere, settings, [token])
    assert values == [{"from": "elsewhere"}] and stats["hits"] == 1


@pytest.mark.parametrize("action", ["delete", "clear_user", "release"])
@pytest.mark.parametrize("cache", [0, 1 << 20], ids=["near-only", "with-read-cache"])
def test_what_another_process_removes_is_never_served(settings, action, cache):
    writer = manager(settings)
    reader = manager(settings, STATE_READ_CACHE_BYTES=cache)
    try:
        old = writer.save("s", {"v": "old"}, who="alice")
        latest = writer.save("s", {"v": "latest"}, who="alice")  # so a release of `old` deletes it
        assert reader.load("s", old, who="alice") == {"v": "old"}  # a near-tier (and cache) hit
        assert near_stats(reader, settings)["hits"] == 1
        assert elsewhere(_remove_elsewhere, settings, action, "alice", parse(old).key) is True
        assert reader.load("s", old, who="alice") is None
        assert reader.load("s", old, who="alice") is None
        expected = None if action == "clear_user" else {"v": "latest"}
        assert reader.load("s", latest, who="alice") == expected
        assert near_stats(reader, settings)["entries"] == (0 if action == "clear_user" else 1)
    finally:
        writer.close()
        reader.close()


def test_this_hosts_deletes_releases_and_logouts_drop_the_near_copy_first(settings):
    m = manager(settings)
    try:
        tokens = [m.save("s", {"n": n}, who="alice") for n in range(3)]
        assert near_stats(m, settings)["entries"] == 3
        assert m.delete("s", tokens[0], who="alice")
        assert m.release("s", tokens[1], who="alice")
        assert near_stats(m, settings)["entries"] == 1
        m.backend(settings["STATE_BACKEND"]).delete_user("alice")
        assert near_stats(m, settings)["entries"] == 0 and near_stats(m, settings)["bytes"] == 0
    finally:
        m.close()


def test_an_expired_value_is_not_served(settings):
    import time

    m = manager(settings, STATE_TTL_DEFAULT=1, STATE_READ_CACHE_BYTES=0)
    try:
        token = m.save("s", {"v": 1}, who="alice")
        assert m.load("s", token, who="alice") == {"v": 1}
        time.sleep(1.3)
        assert m.load("s", token, who="alice") is None
    finally:
        m.close()


def test_a_touch_moves_the_near_expiry_along(settings):
    import time

    m = manager(settings, STATE_TTL_DEFAULT=1.5, STATE_READ_CACHE_BYTES=0)
    try:
        token = m.save("s", {"v": 1}, who="alice")
        backend = m.backend(settings["STATE_BACKEND"])
        first = backend.store.expires("alice", parse(token).key)
        time.sleep(0.5)
        assert m.touch("s", token, who="alice")
        assert backend.store.expires("alice", parse(token).key) >= first + 0.4
    finally:
        m.close()


# -- the store itself -----------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_the_near_store_evicts_the_least_recently_used(tmp_path):
    clock = Clock()
    store = NearStore(Seal(Keys(SECRET)), str(tmp_path / "lru"), budget=4000, clock=clock)
    try:
        for name in "abcd":
            assert store.keep("u", name, freeze("x" * 900), clock() + 600)
            clock.now += 10
        assert store.fetch("u", "a") is not None  # now the most recently used (its stamp is refreshed)
        clock.now += 10
        assert store.keep("u", "e", freeze("x" * 900), clock() + 600)
        assert store.fetch("u", "b") is None  # the least recently used went
        assert all(store.fetch("u", name) is not None for name in "acde")
        stats = store.near_stats()
        assert stats["entries"] == 4 and stats["bytes"] <= 4000 and stats["evicted"] == 1
        assert not store.keep("u", "huge", freeze("x" * 1100), clock() + 600)  # over a quarter: not kept
        clock.now += 601
        store.keep("u", "f", freeze("y"), clock() + 600)  # this write's sweep removes the expired ones
        assert store.near_stats()["entries"] == 1
        store.forget("u", "f")
        assert store.near_stats()["bytes"] == 0  # the index follows every way a record goes
    finally:
        store.close()


def test_the_near_store_is_sealed_on_disk_and_unsealed_on_tmpfs(tmp_path):
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    shm = f"/dev/shm/dash-state-test-near-{uuid.uuid4().hex[:8]}"
    seal = Seal(Keys(SECRET))
    disk, memory = NearStore(seal, str(tmp_path / "disk"), 1 << 20), NearStore(seal, shm, 1 << 20)
    try:
        assert disk.sealed and not memory.sealed
        for store in (disk, memory):
            store.keep("u", "k", freeze({"secret": "plain text"}), 2e9)
            assert store.fetch("u", "k")[0].thaw() == {"secret": "plain text"}
        assert b"plain text" not in open(tmp_path / "disk" / "data.mdb", "rb").read()
    finally:
        disk.close()
        memory.close()
        shutil.rmtree(shm, ignore_errors=True)


def test_a_damaged_near_copy_is_dropped_and_read_from_the_server(settings, monkeypatch):
    m = manager(settings, STATE_READ_CACHE_BYTES=0)
    try:
        token = m.save("s", {"v": "good"}, who="alice")
        store = m.backend(settings["STATE_BACKEND"]).store
        original = store._open

        def damaged(key, record, data):
            return original(key, record, b"\0" * len(data))

        monkeypatch.setattr(store, "_open", damaged)
        assert m.load("s", token, who="alice") == {"v": "good"}  # from the server
        monkeypatch.setattr(store, "_open", original)
        assert near_stats(m, settings)["failures"] == 1
    finally:
        m.close()


# -- switching it on and off ------------------------------------------------------------------------------------
def test_settings_and_namespacing(settings, tmp_path):
    on, off = manager(settings), manager(settings, STATE_NEAR_TIER_BYTES=0)
    other = dict(settings)
    if settings["STATE_BACKEND"] == "redis":
        other["STATE_KEY_PREFIX"] += "other:"
    else:
        other["STATE_DATABASE_TABLE"] += "_o"
    try:
        assert isinstance(on.backend(settings["STATE_BACKEND"]), NearBackend)
        assert not isinstance(off.backend(settings["STATE_BACKEND"]), NearBackend)
        config = build_config((settings, "test"))
        seal = Seal(Keys(SECRET))
        name = settings["STATE_BACKEND"]
        here = near.directory(config, seal, near.identity(on.backend(name)))
        assert here.startswith(settings["STATE_NEAR_TIER_PATH"])
        assert near_stats(on, settings)["path"] == here
        elsewhere_backend = plain_backend(other)
        try:
            assert near.directory(config, seal, near.identity(elsewhere_backend)) != here  # never mixed
        finally:
            if name == "database":
                elsewhere_backend.drop_table()
            elsewhere_backend.close()
        assert near.directory(config, Seal(Keys((b"another app",))), near.identity(on.backend(name))) != here
    finally:
        on.close()
        off.close()


def test_sqlite_gets_no_near_tier(tmp_path):
    m = manager({"STATE_BACKEND": "database", "STATE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
                 "STATE_NEAR_TIER_PATH": str(tmp_path / "near")})
    try:
        assert not isinstance(m.backend("database"), NearBackend)
    finally:
        m.close()


def test_an_unusable_near_tier_path_is_a_config_error_when_asked_for(settings, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    from dash_state.errors import ConfigError

    with pytest.raises(ConfigError, match="STATE_NEAR_TIER_BYTES = 0"):
        manager(settings, STATE_NEAR_TIER_PATH=str(blocker)).backend(settings["STATE_BACKEND"])


def test_writes_fail_while_reads_of_held_values_go_on(settings, monkeypatch):
    """Without a real outage (see test_near_tier_outages.py): the remote backend raising as its open
    circuit breaker does."""
    m = manager(settings, STATE_READ_CACHE_BYTES=0)
    try:
        token = m.save("s", {"v": 1}, who="alice")
        inner = m.backend(settings["STATE_BACKEND"]).inner

        def down(*args, **kwargs):
            raise BackendUnavailable("dash-state test backend is unavailable")

        for name in ("read", "expiry", "set_many", "delete", "touch", "pointer"):
            monkeypatch.setattr(inner, name, down)
        assert m.load("s", token, who="alice") == {"v": 1}
        with pytest.raises(BackendUnavailable):
            m.save("s", {"v": 2}, who="alice")
        assert near_stats(m, settings)["outage_hits"] == 1
    finally:
        monkeypatch.undo()
        m.close()
