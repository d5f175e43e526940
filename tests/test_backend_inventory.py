"""``inventory()``, ``users()`` and ``gc()`` (issue 19: what the ``dash-state`` command line lists and
cleans) on memory, local, redis, sqlite and postgres.

The backends, and their clean-up, come from tests/test_backend_contract.py (the ``backends`` factory
fixture, :class:`Raw` to look behind a backend's back). Entries expire for real (``SHORT_TTL``), except
in the 100,000-entry gc runs, which move the backend's clock ahead as benchmarks/gc_time.py does
(their data is then still stored, so the gc has to delete all of it).
"""
from __future__ import annotations

import hashlib
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from dash_state.backends import Item, Pointer, history
from dash_state.backends.base import Entry
from dash_state.core.references import new_key
from dash_state.core.values import freeze
from services import redis_url
from test_backend_contract import (POINTER, SHORT_TTL, STORE_B, Raw, backends, stored_history,  # noqa: F401
                                   stored_size, total, write_to)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gc_time  # noqa: E402  (benchmarks/gc_time.py: the 100,000-entry run is the benchmark's own)

KINDS = ["memory", "local", "redis", "sqlite", "postgres"]
NOTHING = {"expired": 0, "over_bound": 0, "bytes_freed": 0, "users": 0}


@pytest.fixture(params=KINDS)
def backend(request, backends):
    return backends(request.param)


@pytest.fixture
def small_pages(monkeypatch):
    """Pages and chunks of a few entries: a handful of users already spans many of them."""
    monkeypatch.setattr("dash_state.backends.redis.inventory.PAGE", 2)
    monkeypatch.setattr("dash_state.backends.database.inventory.PAGE", 3)
    monkeypatch.setattr("dash_state.backends.local.inventory.CHUNK", 4)


def listing(backend, user: str | None = None) -> list[tuple]:
    return sorted((e.user, e.key, e.kind, e.bytes, e.target) for e in backend.inventory(user))


def stored(backend, user: str) -> int:
    """How many entries of ``user`` (values, pointers, histories; live or expired) physically remain."""
    if backend.name == "memory":
        return sum(1 for k in [*backend._entries, *backend._pointers, *backend._histories] if k[0] == user)
    if backend.name == "local":
        return len(Raw(backend)._local(user))
    if backend.name == "redis":
        with redis.Redis.from_url(redis_url()) as raw:
            return raw.zcard(f"{backend.prefix}{{{user}}}:index")
    t = backend.table
    with backend.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.user_id == user)).scalar_one()


# -- inventory and users ------------------------------------------------------------------------------
def test_inventory_lists_exactly_what_was_written(backend, small_pages):
    """Values with their bytes (what quotas count), pointers with their targets, the stores' histories;
    per user or for every user, each user's entries together."""
    value, small = freeze({"payload": "x" * 500}), freeze("loose")
    expected = []
    started = time.time()
    for user in ("alice", "bob", "{carol}:index"):
        store = [write_to(backend, user, value) for _ in range(3)]
        other = write_to(backend, user, value, STORE_B)
        loose = new_key()
        backend.set_many(user, [Item(loose, small, 60)])  # initial layout data: no pointer
        expected += [(user, key, "value", stored_size(backend, value), None) for key in store + [other]]
        expected += [(user, loose, "value", stored_size(backend, small), None),
                     (user, POINTER, "pointer", 0, store[-1]), (user, STORE_B, "pointer", 0, other),
                     (user, history.history_name(POINTER), "history", 0, None),
                     (user, history.history_name(STORE_B), "history", 0, None)]
    assert listing(backend) == sorted(expected)
    assert listing(backend, "bob") == sorted(e for e in expected if e[0] == "bob")
    assert listing(backend, "{carol}:index") == sorted(e for e in expected if e[0] == "{carol}:index")
    assert listing(backend, "nobody") == []

    entries = list(backend.inventory())
    assert all(isinstance(e, Entry) for e in entries)
    runs = [u for i, u in enumerate(e.user for e in entries) if i == 0 or entries[i - 1].user != u]
    assert sorted(runs) == ["alice", "bob", "{carol}:index"]  # each user's entries come together
    assert all(started + 59 < e.expires_at <= time.time() + 60.5 for e in entries)
    values = {(e.key, e.bytes, e.expires_at) for e in entries if e.user == "alice" and e.kind == "value"}
    assert {(k, b) for k, b, _ in values} == {(k, b) for k, b, _ in backend.usage("alice")}
    expiries = {k: when for k, _, when in backend.usage("alice")}
    assert all(abs(when - expiries[k]) < 0.1 for k, _, when in values)
    assert sorted(backend.users()) == ["alice", "bob", "{carol}:index"]


def test_expired_entries_are_not_listed(backend):
    kept = write_to(backend, "alice", freeze("kept"))
    backend.set_many("alice", [Item("A" * 22, freeze("short"), SHORT_TTL)], [Pointer(STORE_B, "A" * 22, SHORT_TTL)])
    backend.set_many("bob", [Item("B" * 22, freeze("short"), SHORT_TTL)], [Pointer(POINTER, "B" * 22, SHORT_TTL)])
    assert len(listing(backend, "alice")) == 3 + 3 and sorted(backend.users()) == ["alice", "bob"]
    time.sleep(SHORT_TTL * 1.3)
    assert {(e.key, e.kind) for e in backend.inventory()} == {
        (kept, "value"), (POINTER, "pointer"), (history.history_name(POINTER), "history")}
    assert listing(backend, "bob") == []
    assert list(backend.users()) == ["alice"]


def test_a_pointer_to_anything_but_a_key_is_not_listed(backend):
    """It reads as no pointer (``pointer()`` is None): a listed pointer always names a key."""
    backend.set_many("alice", [], [Pointer(POINTER, "not a key", 60), Pointer(STORE_B, "C" * 22, 60)])
    pointers = [(e.key, e.target) for e in backend.inventory("alice") if e.kind == "pointer"]
    assert pointers == [(STORE_B, "C" * 22)]


def test_users_lists_each_namespace_with_a_live_entry(backend, small_pages):
    names = ["a", "a}", "{a}", "a:b", "a:index", "ünï", "u.🚀", "@app"]
    for name in names:
        backend.set_many(name, [Item(new_key(), freeze(name), 60)])
    backend.set_many("pointer only", [], [Pointer(POINTER, "C" * 22, 60)])
    backend.set_many("expired", [Item(new_key(), freeze(1), SHORT_TTL)])
    time.sleep(SHORT_TTL * 1.3)
    found = list(backend.users())
    assert sorted(found) == sorted(names + ["pointer only"]) and len(found) == len(set(found))
    assert backend.delete_user("a") == 1
    assert sorted(backend.users()) == sorted(names[1:] + ["pointer only"])
    assert {e.user for e in backend.inventory()} == set(names[1:] + ["pointer only"])


# -- gc -------------------------------------------------------------------------------------------------
def test_gc_removes_expired_values_pointers_and_histories_and_leaves_live_ones(backend):
    value = freeze({"payload": "y" * 1000})
    size = stored_size(backend, value)
    latest, loose, short = write_to(backend, "alice", value), new_key(), [new_key() for _ in range(5)]
    backend.set_many("alice", [Item(loose, value, 60)])
    backend.set_many("alice", [Item(k, value, SHORT_TTL) for k in short[:3]], [Pointer(STORE_B, short[0], SHORT_TTL)])
    backend.set_many("bob", [Item(k, value, SHORT_TTL) for k in short[3:]])
    backend.set_many("bob", [Item(loose, value, 60)])  # on Redis, a user whose entries all expired has no books left
    time.sleep(SHORT_TTL * 1.3)
    live = listing(backend)
    physically = (stored(backend, "alice"), stored(backend, "bob"))
    # alice: 3 values, store B's pointer and its history; bob: 2 values
    expected = {"expired": 7, "over_bound": 0, "bytes_freed": 5 * size, "users": 2}

    counted = []
    assert backend.gc(dry_run=True, batch=2, progress=counted.append) == expected
    assert sum(counted) == 7 and len(counted) >= 2
    assert (stored(backend, "alice"), stored(backend, "bob")) == physically  # a dry run deletes nothing

    removed = []
    assert backend.gc(batch=2, progress=removed.append) == expected
    assert sum(removed) == 7 and len(removed) >= 2
    assert listing(backend) == live
    assert stored(backend, "alice") == 4 and stored(backend, "bob") == 1  # nothing expired is left
    assert backend.get("alice", latest).thaw() == value.thaw() and backend.get("bob", loose) is not None
    assert backend.pointer("alice", POINTER) == latest and backend.pointer("alice", STORE_B) is None
    assert total(backend, "alice") == 2 * size and total(backend, "bob") == size
    assert backend.gc() == NOTHING
    backend.delete("bob", loose)
    assert backend.gc() == NOTHING and list(backend.users()) == ["alice"]


def test_gc_evicts_values_past_the_bound_and_released_ones_but_never_a_stores_latest(backend):
    """Values past each store's newest ``values_per_store`` go, and released ones, as the store's next
    write would evict them; the value the store's pointer names stays (released or not), with its mark."""
    value = freeze({"payload": "z" * 800})
    size = stored_size(backend, value)
    store = [write_to(backend, "alice", value) for _ in range(6)]  # the bound is still 16 here
    mine = write_to(backend, "alice", value, STORE_B)
    assert backend.release("alice", STORE_B, mine) is False  # named by the pointer: marked, kept
    theirs = write_to(backend, "anon", value, STORE_B)
    assert backend.release("anon", STORE_B, theirs) is False
    backend.move_user("anon", "alice")  # alice's history of B: [~theirs, ~mine], her pointer still names mine
    assert backend.pointer("alice", STORE_B) == mine
    assert [k for k, _ in stored_history(backend, "alice", STORE_B)] == [theirs, mine]
    backend.values_per_store = 3
    expected = {"expired": 0, "over_bound": 4, "bytes_freed": 4 * size, "users": 1}

    assert backend.gc(dry_run=True) == expected
    assert all(backend.get("alice", key) is not None for key in store + [mine, theirs])
    assert backend.gc() == expected
    assert [backend.get("alice", key) is not None for key in store] == [False] * 3 + [True] * 3
    assert backend.get("alice", theirs) is None and backend.get("alice", mine) is not None
    assert stored_history(backend, "alice") == [(k, False) for k in reversed(store[3:])]
    assert stored_history(backend, "alice", STORE_B) == [(mine, True)]  # still released: the next write evicts it
    assert backend.pointer("alice", POINTER) == store[-1] and backend.pointer("alice", STORE_B) == mine
    assert total(backend, "alice") == 4 * size
    assert backend.gc() == NOTHING
    newer = write_to(backend, "alice", value, STORE_B)
    assert backend.get("alice", mine) is None and backend.get("alice", newer) is not None


@pytest.mark.parametrize("kind", KINDS)
def test_another_apps_data_is_never_listed_nor_cleaned(backends, kind):
    """Another app (another Redis prefix, even one that starts with ours; another table in the same
    SQLite file; another LMDB directory) keeps its expired and over-bound entries."""
    mine = backends(kind)
    theirs = backends(kind, STATE_KEY_PREFIX=mine.prefix + "other:") if kind == "redis" else backends(kind)
    value = freeze("v" * 300)
    for backend in (mine, theirs):
        for _ in range(4):
            write_to(backend, "alice", value)
        backend.set_many("alice", [Item(new_key(), value, SHORT_TTL)])
        backend.values_per_store = 2
    write_to(theirs, "theirs only", value)
    time.sleep(SHORT_TTL * 1.3)
    before = stored(theirs, "alice")
    assert "theirs only" not in set(mine.users()) and listing(mine, "theirs only") == []
    assert mine.gc() == {"expired": 1, "over_bound": 2, "bytes_freed": 3 * stored_size(mine, value), "users": 1}
    assert stored(theirs, "alice") == before
    assert theirs.gc(dry_run=True)["over_bound"] == 2 and set(theirs.users()) == {"alice", "theirs only"}


def test_the_near_tier_lists_and_cleans_its_remote_backend(backends):
    from dash_state.backends.near import NearBackend, attach

    inner = backends("redis")
    _, config, seal = inner.recipe
    near = attach(inner, config, seal)
    assert isinstance(near, NearBackend)
    try:
        write_to(near, "alice", freeze("kept"))
        near.set_many("alice", [Item(new_key(), freeze("short"), SHORT_TTL)])
        time.sleep(SHORT_TTL * 1.3)
        assert list(near.inventory()) == list(inner.inventory()) and len(list(near.inventory("alice"))) == 3
        assert list(near.users()) == ["alice"]
        assert near.gc()["expired"] == 1 and inner.gc() == NOTHING
    finally:
        near.store.close()


# -- redis: the quota books, SCAN ---------------------------------------------------------------------
def test_redis_gc_keeps_the_quota_books_exact_while_users_write(backends):
    """Each user's gc is one script, atomic with the writes: after gc runs among writers, every user's
    ``sizes.__total`` is the sum of its live values' sizes, and the index lists exactly the live entries."""
    backend = backends("redis")
    value = freeze({"payload": "q" * 600})
    users = [f"u.{i}" for i in range(6)]
    for user in users:
        for _ in range(10):
            write_to(backend, user, value)  # the bound is 16 while writing, 4 when gc runs: 6 values over it
    backend.values_per_store = 4
    errors, stop = [], threading.Event()

    def writer(user: str) -> None:
        try:
            while not stop.is_set():
                write_to(backend, user, value, STORE_B)
                backend.set_many(user, [Item(new_key(), value, 0.2)])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(user,)) for user in users[:3]]
    for t in threads:
        t.start()
    try:
        results = [backend.gc(batch=3) for _ in range(3)]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert sum(r["over_bound"] for r in results) == 6 * 6  # store A of each user (the writers' B keeps the bound)
    time.sleep(0.3)
    backend.gc()
    with redis.Redis.from_url(redis_url()) as raw:
        for user in users:
            sizes = {k.decode(): int(v) for k, v in raw.hgetall(f"{backend.prefix}{{{user}}}:sizes").items()}
            books = sizes.pop("__total")
            live = {key: size for key, size, _ in backend.usage(user)}
            assert books == sum(sizes.values()) == sum(live.values()) == total(backend, user), user
            assert sizes == live, user
            members = {m.decode() for m in raw.zrange(f"{backend.prefix}{{{user}}}:index", 0, -1)}
            assert members == {e.key for e in backend.inventory(user)}, user
        assert len(backend.usage(users[-1])) == 4  # a user nobody wrote to meanwhile: its bound, exactly


def test_redis_gc_loads_its_script_when_the_server_does_not_have_it(backends, monkeypatch):
    """After a restart (or SCRIPT FLUSH) EVALSHA answers NOSCRIPT: the script is loaded, the calls sent again."""
    from dash_state.backends.redis import inventory, scripts

    backend = backends("redis")
    fresh = scripts.GC + f"-- {uuid.uuid4().hex}\n"  # a script this server has never seen
    monkeypatch.setattr(scripts, "GC", fresh)
    monkeypatch.setattr(inventory, "GC_SHA", hashlib.sha1(fresh.encode()).hexdigest())
    for user in ("alice", "bob"):
        backend.set_many(user, [Item(new_key(), freeze(1), SHORT_TTL), Item(new_key(), freeze(2), 60)])
    time.sleep(SHORT_TTL * 1.3)
    assert backend.gc()["expired"] == 2 and backend.gc() == NOTHING


@pytest.mark.service
def test_a_10000_entry_redis_inventory_uses_scan_and_never_keys(backends, monkeypatch):
    backend = backends("redis")
    sealed = backend.seal.dump("k" * 22, freeze("v"))  # only its size matters here
    for u in range(1000):
        backend.write_many(f"u.{u:04d}", [(f"{u:04d}{i:018d}", sealed, 60) for i in range(10)], [], None)
    client, scans = backend._client, []
    scan = client.scan

    def counted_scan(*args, **kwargs):
        scans.append(kwargs.get("match"))
        return scan(*args, **kwargs)

    def keys(*args, **kwargs):
        raise AssertionError("KEYS blocks Redis: the inventory must SCAN")

    monkeypatch.setattr(client, "keys", keys)
    monkeypatch.setattr(client, "scan", counted_scan)
    started = time.perf_counter()
    entries = list(backend.inventory())
    seconds = time.perf_counter() - started
    print(f"redis inventory of 10,000 entries of 1,000 users: {seconds:.2f} s, {len(scans)} SCAN calls")
    assert len(entries) == 10_000 and {e.kind for e in entries} == {"value"}
    assert len({e.user for e in entries}) == 1000 and len(scans) >= 2
    assert set(scans) == {f"{backend.prefix}{{*}}:index"}
    assert len(list(backend.users())) == 1000
    assert backend.gc(dry_run=True) == NOTHING
    assert seconds < 30


# -- 100,000 expired entries (benchmarks/gc_time.py measures redis, postgres and local) -----------------
@pytest.mark.service
@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_gc_of_100000_expired_entries(backends, kind, monkeypatch):
    backend = backends(kind)
    gc_time.fill(backend, 100_000, users=100)
    if kind == "redis":
        monkeypatch.setattr("dash_state.backends.redis.redis._now_ms", lambda: int((time.time() + gc_time.SHIFT) * 1000))
    else:
        monkeypatch.setattr(backend, "_clock", lambda: time.time() + gc_time.SHIFT)
    batches = []
    seconds, result = gc_time.timed_gc(backend)
    print(f"gc of 100,000 expired entries on {kind}: {seconds:.2f} s")
    assert result == {"expired": 100_000, "over_bound": 0, "bytes_freed": result["bytes_freed"], "users": 100}
    assert result["bytes_freed"] > 100_000 * 100
    assert seconds < 60
    assert backend.gc(progress=batches.append) == NOTHING and sum(batches) == 0
    assert list(backend.users()) == [] and stored(backend, "u.gc-00000") == 0
