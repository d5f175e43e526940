"""The read cache in front of shared backends: it saves transfers, and never serves what another worker
deleted or what expired; values tampered with in storage are missing, never decoded."""
import logging
import threading
import time
import uuid

import pandas as pd
import pytest
import redis
import sqlalchemy as sa

from dash_state.core.cache import ReadCache
from dash_state.config import build_config
from dash_state.core.keys import Keys
from dash_state.core.manager import StateManager
from dash_state.core.references import parse
from dash_state.core.values import freeze
from services import redis_url

SECRET = Keys((b"shared secret",))


@pytest.fixture(params=["redis", "sqlite"])
def settings(request, tmp_path):
    if request.param == "redis":
        prefix = f"dash-state-cache-{uuid.uuid4().hex[:8]}:"
        yield {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": prefix}
        with redis.Redis.from_url(redis_url()) as raw:
            for key in raw.scan_iter(match=f"{prefix}*", count=500):
                raw.unlink(key)
    else:
        yield {"STATE_BACKEND": "database", "STATE_DATABASE_URL": f"sqlite:///{tmp_path}/cache.db"}


@pytest.fixture
def workers():
    made = []

    def worker(settings, **extra):
        """One process's manager; two of them on the same settings behave like two gunicorn workers."""
        made.append(StateManager(build_config(({**settings, **extra}, "test")), SECRET))
        return made[-1]

    yield worker
    for manager in made:
        manager.close()


def tamper(settings, manager, token, user="alice") -> None:
    """Flip one byte of the stored value behind ``token``, as someone with access to the server could."""
    key = parse(token).key
    if settings["STATE_BACKEND"] == "redis":
        with redis.Redis.from_url(redis_url()) as raw:
            name = f"{settings['STATE_KEY_PREFIX']}{{{user}}}:{key}"
            data = raw.get(name)
            assert raw.set(name, data[:-1] + bytes([data[-1] ^ 1]), xx=True, keepttl=True)
        return
    backend = manager.backend("database")
    t = backend.table
    with backend.engine.connect() as conn:
        where = (t.c.user_id == user, t.c.key == key)
        data = bytes(conn.execute(sa.select(t.c.value).where(*where)).scalar_one())
        conn.execute(sa.update(t).where(*where).values(value=data[:-1] + bytes([data[-1] ^ 1])))


def test_a_hit_skips_the_transfer_and_the_result_is_still_a_private_copy(settings, workers, monkeypatch):
    manager = workers(settings)
    frame = pd.DataFrame({"a": range(1000)})
    token = manager.save("s", frame, who="alice")
    backend = manager.backend(settings["STATE_BACKEND"])
    monkeypatch.setattr(backend, "read", lambda *a: pytest.fail("the cached value was read again"))
    first = manager.load("s", token, who="alice")
    first.iloc[0, 0] = -1
    pd.testing.assert_frame_equal(manager.load("s", token, who="alice"), frame)
    assert manager.stats()["read_cache"]["hits"] == 2


def test_a_value_deleted_by_another_worker_is_not_served_from_the_cache(settings, workers, warnings_log):
    a, b = workers(settings), workers(settings)
    token = a.save("s", {"v": 1}, who="alice")
    assert b.load("s", token, who="alice") == {"v": 1}  # now cached in b as well
    assert b.stats()["read_cache"]["entries"] == 1
    assert a.delete("s", token, who="alice")
    assert b.load("s", token, who="alice") is None
    assert b.stats()["misses"]["expired"] == 1
    assert b.stats()["read_cache"]["entries"] == 0  # the dead entry left the cache


def test_a_user_deleted_by_another_worker_is_not_served_from_the_cache(settings, workers):
    a, b = workers(settings), workers(settings)
    tokens = [a.save("s", {"n": n}, who="alice") for n in range(3)]
    assert [b.load("s", t, who="alice") for t in tokens] == [{"n": n} for n in range(3)]
    a.backend(settings["STATE_BACKEND"]).delete_user("alice")
    assert [b.load("s", t, who="alice") for t in tokens] == [None] * 3


def test_an_expired_value_is_not_served_from_the_cache(settings, workers):
    manager = workers(settings, STATE_TTL_DEFAULT=0.5)
    token = manager.save("s", {"v": 1}, who="alice")
    assert manager.load("s", token, who="alice") == {"v": 1}
    time.sleep(0.8)
    assert manager.load("s", token, who="alice") is None


def test_a_value_tampered_with_in_storage_is_missing(settings, workers, caplog):
    """The seal fails (CorruptValue): the manager treats the value as missing and logs one ERROR. (Two
    hosts: with a shared near tier, b would serve the copy a kept when it wrote them.)"""
    a, b = workers(settings, STATE_NEAR_TIER_BYTES=0), workers(settings, STATE_NEAR_TIER_BYTES=0)
    tokens = [a.save("s", {"secret": n}, who="alice") for n in range(3)]
    for token in tokens:
        tamper(settings, a, token)
    caplog.set_level(logging.ERROR, logger="dash_state")
    assert [b.load("s", t, who="alice") for t in tokens] == [None] * 3  # b never had them in its cache
    assert b.stats()["misses"]["tampered"] == 3 and b.stats()["read_cache"]["entries"] == 0
    corrupt = [r for r in caplog.records if r.levelno == logging.ERROR and "failed its check" in r.getMessage()]
    assert len(corrupt) == 1  # throttled: not one line per request
    assert a.load("s", tokens[0], who="alice") == {"secret": 0}  # a's copy is what a itself sealed


def test_the_cache_can_be_turned_off(settings, workers):
    manager = workers(settings, STATE_READ_CACHE_BYTES=0)
    token = manager.save("s", [1, 2], who="alice")
    assert manager.load("s", token, who="alice") == [1, 2]
    assert manager.stats()["read_cache"] is None


def test_concurrent_readers_and_a_deleting_worker(settings, workers):
    settings = {**settings, "STATE_VALUES_PER_STORE": 20}  # all 20 values of one store stay readable
    a, b = workers(settings), workers(settings)
    tokens = [a.save("s", {"n": n}, who="alice") for n in range(20)]
    errors, stop = [], threading.Event()

    def reader():
        try:
            while not stop.is_set():
                for n, token in enumerate(tokens):
                    got = b.load("s", token, who="alice")
                    assert got in ({"n": n}, None)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for token in tokens[::2]:
        a.delete("s", token, who="alice")
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert [b.load("s", t, who="alice") for t in tokens] == [None if n % 2 == 0 else {"n": n} for n in range(20)]


# -- the cache itself -----------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def snap(n_bytes):
    return freeze("x" * (n_bytes - 2))


def test_the_cache_stays_within_its_bytes_dropping_the_least_recently_used():
    cache = ReadCache(max_bytes=1000)
    for name in "abcd":
        cache.put("redis", "u", name, snap(200))
    assert cache.get("redis", "u", "a") is not None  # a is now the most recently used
    cache.put("redis", "u", "e", snap(200))  # exactly full
    assert cache.stats()["bytes"] == 1000 and cache.get("redis", "u", "b") is not None
    cache.put("redis", "u", "f", snap(200))  # c is now the least recently used
    assert cache.get("redis", "u", "c") is None
    assert all(cache.get("redis", "u", n) is not None for n in "abdef")
    assert cache.stats()["bytes"] == 1000 and cache.stats()["entries"] == 5


def test_one_huge_value_is_not_cached_and_flushes_nothing():
    cache = ReadCache(max_bytes=1000)
    cache.put("redis", "u", "small", snap(100))
    cache.put("redis", "u", "huge", snap(251))  # more than a quarter of the cache
    assert cache.get("redis", "u", "huge") is None and cache.get("redis", "u", "small") is not None


def test_entries_nobody_reads_are_dropped_at_the_next_write():
    clock = Clock()
    cache = ReadCache(max_bytes=10_000, max_idle=300, clock=clock)
    cache.put("redis", "u", "old", snap(100))
    cache.put("redis", "u", "read", snap(100))
    clock.now += 200
    assert cache.get("redis", "u", "read") is not None
    clock.now += 200
    cache.put("redis", "u", "new", snap(100))
    assert cache.get("redis", "u", "old") is None
    assert cache.get("redis", "u", "read") is not None and cache.stats()["bytes"] == 200


def test_entries_are_per_backend_and_user_and_drop_user_removes_only_that_user():
    cache = ReadCache(max_bytes=10_000)
    cache.put("redis", "alice", "k", freeze("alice on redis"))
    cache.put("database", "alice", "k", freeze("alice on database"))
    cache.put("redis", "bob", "k", freeze("bob"))
    assert cache.get("redis", "alice", "k").thaw() == "alice on redis"
    assert cache.get("database", "alice", "k").thaw() == "alice on database"
    cache.drop_user("alice")
    assert cache.get("redis", "alice", "k") is None and cache.get("database", "alice", "k") is None
    assert cache.get("redis", "bob", "k").thaw() == "bob"
    cache.drop("redis", "bob", "k")
    assert cache.stats()["entries"] == 0 and cache.stats()["bytes"] == 0
