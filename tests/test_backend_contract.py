"""One contract, every backend: memory, redis, sqlite, postgres and local behave the same.

Redis runs on the shared server (db 15) under a prefix of its own per test, PostgreSQL in a table of
its own per test, SQLite in the test's own directory, local in the test's own directory (a disk:
values sealed) and, as ``local-shm``, in a directory of its own under /dev/shm (tmpfs: values
unsealed); everything is removed afterwards. Tests that
look at what a backend really stored (or tamper with it) bypass the backend through :class:`Raw`,
as someone with access to the Redis or SQL server would.
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest
import redis
import sqlalchemy as sa

from dash_state.backends import POINTER_PREFIX, Item, Pointer, create_backend, history
from dash_state.core.codecs import Snapshot
from dash_state.config import build_config
from dash_state.errors import ConfigError, CorruptValue, PointerConflict, QuotaExceeded
from dash_state.core.keys import Keys
from dash_state.core.references import new_key
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
from services import database_url, redis_url

BACKENDS = ["memory", "redis", "sqlite", "postgres", "local", "local-shm"]
BYTES_BACKENDS = ["redis", "sqlite", "postgres", "local"]  # the ones that seal values (memory keeps objects)
SHORT_TTL = 0.6
SECRET = b"contract secret"
POINTER = POINTER_PREFIX + "A" * 22


def seal_for(config, *secrets: bytes, encryption: str | None = None) -> Seal:
    return Seal(Keys(secrets or (SECRET,)), encryption or config["STATE_ENCRYPTION"], config["STATE_COMPRESSION"],
                config["STATE_COMPRESSION_MIN_BYTES"])


def make_backend(kind: str, tmp_path, secrets: tuple[bytes, ...] = (), **settings):
    run = uuid.uuid4().hex[:8]
    if kind == "memory":
        name, extra = "memory", {}
    elif kind == "redis":
        name, extra = "redis", {"STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": f"dash-state-test-{run}:"}
    elif kind == "local":
        name, extra = "local", {"STATE_LOCAL_PATH": f"{tmp_path}/local-{run}"}
    elif kind == "local-shm":
        name, extra = "local", {"STATE_LOCAL_PATH": f"/dev/shm/dash-state-test-{run}"}
    elif kind == "sqlite":
        name, extra = "database", {"STATE_DATABASE_URL": f"sqlite:///{tmp_path}/state.db",
                                   "STATE_DATABASE_TABLE": f"dash_state_test_{run}"}
    else:
        name, extra = "database", {"STATE_DATABASE_URL": database_url(), "STATE_DATABASE_TABLE": f"dash_state_test_{run}"}
    config = build_config(({"STATE_BACKEND": name, **extra, **settings}, "test"))
    seal = seal_for(config, *secrets)
    return create_backend(name, config, seal), (name, config, seal)


def dispose(backend, kind: str) -> None:
    """Remove everything a backend made on a shared server, then close it."""
    if kind == "redis":
        with redis.Redis.from_url(redis_url()) as raw:
            for key in raw.scan_iter(match=f"{backend.prefix}*", count=500):  # tests may scan; backends never do
                raw.unlink(key)
    elif kind in ("sqlite", "postgres"):
        backend.drop_table()
    backend.close()
    if kind == "local-shm":
        shutil.rmtree(backend.path)


@pytest.fixture
def backends(request, tmp_path):
    """A factory for more backends of one kind (other settings, other secrets); all disposed of."""
    made = []

    def factory(kind: str, secrets: tuple[bytes, ...] = (), **settings):
        backend, recipe = make_backend(kind, tmp_path, secrets, **settings)
        backend.recipe, backend.kind = recipe, kind
        made.append(backend)
        return backend

    yield factory
    for backend in reversed(made):
        dispose(backend, backend.kind)


@pytest.fixture(params=BACKENDS)
def backend(request, backends):
    return backends(request.param)


def stored_size(backend, snapshot: Snapshot) -> int:
    """What a value counts toward quotas: the snapshot's size in memory, its sealed bytes elsewhere
    (its encoded bytes on local-shm, which keeps values unsealed)."""
    if backend.keeps_objects:
        return snapshot.nbytes
    if backend.name == "local" and not backend.sealed:
        return snapshot.encoded_size()
    return len(backend.seal.dump(new_key(), snapshot))


def total(backend, user: str) -> int:
    return sum(size for _, size, _ in backend.usage(user))


class Raw:
    """What a redis or database backend stored, read and written behind its back."""

    def __init__(self, backend):
        self.backend = backend

    def _redis_key(self, user: str, key: str) -> str:
        return f"{self.backend.prefix}{{{user}}}:{key}"

    def _local(self, user: str, key: str | None = None):
        """The local backend's LMDB records of ``user`` (all of them, or one), read directly."""
        from dash_state.backends.local import records

        env = self.backend.env
        with env.handle().begin() as txn:
            found = [(k, records.unpack(v)) for k, v in txn.cursor(db=env.dbs["values"])]
        return [(k, r) for k, r in found
                if records.split_key(k)[0] == user and (key is None or records.split_key(k)[1] == key)]

    def _local_put(self, user: str, key: str, data: bytes) -> None:
        from dash_state.backends.local import files, records

        env = self.backend.env
        (raw_key, record), = self._local(user, key)
        if record.file:  # a large value: its file's bytes after the header
            with open(os.path.join(self.backend.values_dir, record.file), "r+b") as out:
                out.seek(len(files.HEADER))
                out.write(data)
                out.truncate()
            return
        with env.handle().begin(write=True) as txn:
            txn.put(raw_key, records.pack(record.flags, record.expires, record.size, data), db=env.dbs["values"])

    def read(self, user: str, key: str) -> bytes | None:
        if self.backend.name == "local":
            from dash_state.backends.local import files

            found = self._local(user, key)
            if not found:
                return None
            record = found[0][1]
            if not record.file:
                return record.body
            with open(os.path.join(self.backend.values_dir, record.file), "rb") as stored:
                return stored.read()[len(files.HEADER):]
        if self.backend.name == "redis":
            with redis.Redis.from_url(redis_url()) as raw:
                return raw.get(self._redis_key(user, key))
        t = self.backend.table
        with self.backend.engine.connect() as conn:
            found = conn.execute(sa.select(t.c.value).where(t.c.user_id == user, t.c.key == key)).scalar()
        return None if found is None else bytes(found)

    def replace(self, user: str, key: str, data: bytes) -> None:
        """Overwrite the stored bytes in place, keeping the expiry and the bookkeeping."""
        if self.backend.name == "local":
            self._local_put(user, key, data)
            return
        if self.backend.name == "redis":
            with redis.Redis.from_url(redis_url()) as raw:
                assert raw.set(self._redis_key(user, key), data, xx=True, keepttl=True)
            return
        t = self.backend.table
        with self.backend.engine.connect() as conn:
            done = conn.execute(sa.update(t).where(t.c.user_id == user, t.c.key == key).values(value=data))
        assert done.rowcount == 1

    def value_rows(self, user: str) -> int:
        """How many values of ``user`` physically exist (live or not yet removed), pointers excluded."""
        if self.backend.name == "local":
            return sum(1 for _, record in self._local(user) if not record.is_pointer)
        if self.backend.name == "redis":
            with redis.Redis.from_url(redis_url()) as raw:
                names = list(raw.scan_iter(match=f"{self.backend.prefix}{{{user}}}:*", count=500))
            books = {self._redis_key(user, "index").encode(), self._redis_key(user, "sizes").encode()}
            return sum(1 for n in names if n not in books and b":" + POINTER_PREFIX.encode() not in n)
        t = self.backend.table
        with self.backend.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.user_id == user, t.c.key.not_like(POINTER_PREFIX + "%"))).scalar_one()


# -- values -----------------------------------------------------------------------------------------
def test_get_set_delete(backend):
    assert backend.get("alice", "k1") is None
    backend.set("alice", "k1", freeze({"v": 1}), ttl=60)
    assert backend.get("alice", "k1").thaw() == {"v": 1}
    backend.set("alice", "k1", freeze({"v": 2}), ttl=60)  # replace
    assert backend.get("alice", "k1").thaw() == {"v": 2}
    assert backend.alive("alice", "k1") and not backend.alive("alice", "k2") and not backend.alive("bob", "k1")
    assert backend.delete("alice", "k1") is True
    assert backend.delete("alice", "k1") is False
    assert backend.get("alice", "k1") is None and not backend.alive("alice", "k1")


def test_expired_values_are_never_served_and_touch_extends_life(backend):
    backend.set("u", "short", freeze("x"), ttl=SHORT_TTL)
    backend.set("u", "kept", freeze("y"), ttl=SHORT_TTL)
    time.sleep(SHORT_TTL * 0.6)
    assert backend.touch("u", "kept", SHORT_TTL) is True
    time.sleep(SHORT_TTL * 0.6)
    assert backend.get("u", "short") is None and not backend.alive("u", "short")
    assert backend.get("u", "kept").thaw() == "y"
    assert backend.touch("u", "short", 60) is False
    time.sleep(SHORT_TTL * 1.1)
    assert backend.get("u", "kept") is None


def test_touching_an_expired_value_revives_nothing_and_frees_its_quota(backend):
    """A tab left open past the TTL keeps touching its dead references: that must not bring the value
    back, list it in usage(), or keep its bytes counted against the user's quota."""
    value = freeze("x" * 3000)
    size = stored_size(backend, value)
    backend.set_many("u", [Item("kept", value, 60), Item("gone", value, 0.3)], quota=2 * size)
    time.sleep(0.5)
    assert backend.touch("u", "gone", 3600) is False
    assert backend.get("u", "gone") is None and not backend.alive("u", "gone")
    assert [key for key, _, _ in backend.usage("u")] == ["kept"]
    backend.set_many("u", [Item("next", value, 60)], quota=2 * size)  # the dead value's bytes count no more
    assert backend.get("u", "next").thaw() == "x" * 3000


def test_users_are_separate_and_one_call_deletes_a_user(backend):
    for user in ("alice", "bob"):
        for i in range(5):
            backend.set(user, f"k{i}", freeze(f"{user}-{i}"), ttl=60)
    backend.set_many("alice", [], [Pointer(POINTER, "k0" * 11, 60)])
    assert backend.get("bob", "k1").thaw() == "bob-1"
    assert backend.get("alice", "k1").thaw() == "alice-1"
    assert backend.delete_user("alice") >= 5  # whether the pointer is counted is the backend's business
    assert backend.get("alice", "k1") is None and backend.get("bob", "k4").thaw() == "bob-4"
    assert backend.pointer("alice", POINTER) is None and backend.usage("alice") == []
    assert backend.delete_user("alice") == 0


@pytest.mark.parametrize("users", [("a", "a}", "{a}", "a:b", "a:index"), ("ünï", "ünï:", "{ünï}", "u.🚀", "")])
def test_namespaces_with_braces_colons_and_non_ascii_stay_apart(backend, users):
    for user in users:
        backend.set_many(user, [Item("k", freeze(f"value of {user!r}"), 60)], [Pointer(POINTER, "B" * 22, 60)])
    for user in users:
        assert backend.get(user, "k").thaw() == f"value of {user!r}"
        assert [key for key, _, _ in backend.usage(user)] == ["k"]
    assert backend.delete_user(users[0]) >= 1
    assert backend.get(users[0], "k") is None
    assert all(backend.get(u, "k").thaw() == f"value of {u!r}" for u in users[1:])
    assert all(backend.pointer(u, POINTER) == "B" * 22 for u in users[1:])


@pytest.mark.parametrize("value", ["", "ünïcødé ✓ 漢字 🚀", {"ключ": ["значение", None, 1.5]}, [], {}, 0, None,
                                   "\x00\ud7ff\ue000\U0010ffff", {"": {"": [[[]]]}}, 2 ** 53, -1.5e308])
def test_unicode_and_empty_values(backend, value):
    backend.set("u", "k", freeze(value), ttl=60)
    assert backend.get("u", "k").thaw() == value


def test_frames_series_and_arrays(backend):
    frame = pd.DataFrame({"a": np.arange(1000), "s": ["x", "yy"] * 500, "t": pd.date_range("2024", periods=1000, freq="s")})
    backend.set("u", "frame", freeze(frame), ttl=60)
    backend.set("u", "series", freeze(frame["a"].rename("named")), ttl=60)
    backend.set("u", "array", freeze(np.eye(4, dtype="float32")), ttl=60)
    pd.testing.assert_frame_equal(backend.get("u", "frame").thaw(), frame)
    pd.testing.assert_series_equal(backend.get("u", "series").thaw(), frame["a"].rename("named"))
    assert np.array_equal(backend.get("u", "array").thaw(), np.eye(4, dtype="float32"))


def test_a_50_mb_value(backend):
    big = "x" * (50 * 1024 * 1024)
    backend.set("u", "big", freeze(big), ttl=60)
    assert backend.get("u", "big").thaw() == big


def test_concurrent_writers_never_tear_values(backend):
    errors = []

    def writer(n):
        try:
            for i in range(40):
                backend.set("u", "shared", freeze({"writer": n, "payload": [n] * 2000}), ttl=60)
                got = backend.get("u", "shared").thaw()
                assert got["payload"] == [got["writer"]] * 2000
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_after_a_restart(backend):
    """A new process (a fresh backend object on the same server) sees shared data; memory starts empty."""
    backend.set("u", "persist", freeze({"kept": True}), ttl=60)
    name, config, seal = backend.recipe
    again = create_backend(name, config, seal)
    try:
        got = again.get("u", "persist")
        if backend.shared:
            assert got.thaw() == {"kept": True}
        else:
            assert got is None
    finally:
        again.close()


def test_stats_are_reported(backend):
    backend.set("u", "k", freeze("v"), ttl=60)
    assert isinstance(backend.stats(), dict)


# -- pointers ---------------------------------------------------------------------------------------
def test_pointers_name_a_key_expire_and_are_per_user(backend):
    first, second = new_key(), new_key()
    backend.set_many("alice", [Item(first, freeze("v1"), 60)], [Pointer(POINTER, first, 60)])
    assert backend.pointer("alice", POINTER) == first
    assert backend.pointer("bob", POINTER) is None
    assert backend.pointer("alice", POINTER_PREFIX + "B" * 22) is None
    backend.set_many("alice", [Item(second, freeze("v2"), 60)], [Pointer(POINTER, second, 60)])
    assert backend.pointer("alice", POINTER) == second
    assert [key for key, _, _ in sorted(backend.usage("alice"))] == sorted([first, second])  # pointers are no values

    backend.set_many("alice", [], [Pointer(POINTER, first, SHORT_TTL)])  # a pointer lives by its own TTL
    time.sleep(SHORT_TTL * 1.3)
    assert backend.pointer("alice", POINTER) is None
    assert backend.get("alice", first).thaw() == "v1" and backend.get("alice", second).thaw() == "v2"

    backend.set_many("alice", [], [Pointer(POINTER, second, 60)])
    assert backend.delete("alice", POINTER) is True
    assert backend.pointer("alice", POINTER) is None and backend.get("alice", second).thaw() == "v2"


@pytest.mark.parametrize("target", ["", "short", "A" * 21, "A" * 23, "A" * 21 + "!", "A" * 21 + "=", "A" * 21 + " ",
                                    "A" * 21 + "\n", "\nAAAAAAAAAAAAAAAAAAAAAA", "A" * 21 + "/", "../../etc/passwd/....",
                                    "é" * 22, "A" * 21 + "é", "Ａ" * 22, "A" * 21 + "\x00", "🚀" * 11, "A" * 21 + "\ud800"])
def test_a_pointer_to_anything_but_a_key_reads_as_none(backend, target):
    backend.set_many("alice", [], [Pointer(POINTER, target, 60)])
    assert backend.pointer("alice", POINTER) is None


@pytest.mark.parametrize("kind", BYTES_BACKENDS)
@pytest.mark.parametrize("garbage", [b"\xff" * 22, b"A" * 21 + b"\xe9", "é".encode() * 11, b"", b"DSW2" + b"\0" * 40])
def test_a_pointer_garbled_in_storage_reads_as_none(backends, kind, garbage):
    backend = backends(kind)
    backend.set_many("alice", [], [Pointer(POINTER, "C" * 22, 60)])
    Raw(backend).replace("alice", POINTER, garbage)
    assert backend.pointer("alice", POINTER) is None


# -- quotas -----------------------------------------------------------------------------------------
def test_a_write_over_the_quota_is_refused_whole_and_keeps_the_previous_value_and_pointer(backend):
    old, new1, new2 = new_key(), new_key(), new_key()
    previous, small, big = freeze("p" * 1000), freeze("s" * 10), freeze("b" * 6000)
    quota = stored_size(backend, previous) + stored_size(backend, small) + stored_size(backend, big) - 1
    backend.set_many("alice", [Item(old, previous, 60)], [Pointer(POINTER, old, 60)], quota=quota)
    before = sorted((key, size) for key, size, _ in backend.usage("alice"))

    with pytest.raises(QuotaExceeded, match="STATE_MAX_USER_BYTES") as info:
        backend.set_many("alice", [Item(new1, small, 60), Item(new2, big, 60)],
                         [Pointer(POINTER, new1, 60), Pointer(POINTER_PREFIX + "other" + "x" * 17, new2, 60)], quota=quota)
    assert f"{quota:,}" in str(info.value)
    assert backend.get("alice", new1) is None and backend.get("alice", new2) is None
    assert not backend.alive("alice", new1) and not backend.alive("alice", new2)
    assert backend.get("alice", old).thaw() == "p" * 1000
    assert backend.pointer("alice", POINTER) == old
    assert backend.pointer("alice", POINTER_PREFIX + "other" + "x" * 17) is None
    assert sorted((key, size) for key, size, _ in backend.usage("alice")) == before
    if not backend.keeps_objects:
        assert Raw(backend).value_rows("alice") == 1  # nothing was stored and taken back behind usage()

    # Replacing the previous value by a larger one over the quota: the previous value stays, and so
    # does its accounting (a refused write that kept the new bytes would let a user pass the quota).
    with pytest.raises(QuotaExceeded):
        backend.set_many("alice", [Item(old, freeze("r" * 20000), 60)], quota=quota)
    assert backend.get("alice", old).thaw() == "p" * 1000
    assert sorted((key, size) for key, size, _ in backend.usage("alice")) == before
    if not backend.keeps_objects:
        assert len(Raw(backend).read("alice", old)) == before[0][1]

    # One byte more of quota and exactly the same write goes through.
    backend.set_many("alice", [Item(new1, small, 60), Item(new2, big, 60)], [Pointer(POINTER, new1, 60)], quota=quota + 1)
    assert backend.get("alice", new2).thaw() == "b" * 6000 and backend.pointer("alice", POINTER) == new1
    assert total(backend, "alice") == quota + 1


def test_the_quota_counts_live_values_only(backend):
    value = freeze("v" * 2000)
    size = stored_size(backend, value)
    quota = 2 * size
    backend.set_many("u", [Item("a", value, 60), Item("short", value, 0.3)], quota=quota)
    with pytest.raises(QuotaExceeded):
        backend.set_many("u", [Item("b", value, 60)], quota=quota)
    time.sleep(0.5)
    backend.set_many("u", [Item("b", value, 60)], quota=quota)  # the expired value no longer counts
    assert backend.delete("u", "a")
    backend.set_many("u", [Item("c", value, 60)], quota=quota)  # nor does a deleted one
    assert sorted(key for key, _, _ in backend.usage("u")) == ["b", "c"] and total(backend, "u") == quota
    backend.set_many("u", [], [Pointer(POINTER, "c" * 22, 60)], quota=quota)  # pointers take no quota
    assert backend.pointer("u", POINTER) == "c" * 22 and total(backend, "u") == quota
    backend.set_many("u", [Item("b", freeze("small"), 60)], quota=quota)  # replacing by a smaller value
    assert total(backend, "u") == size + stored_size(backend, freeze("small"))


def test_one_users_values_never_count_against_another(backend):
    value = freeze("x" * 5000)
    size = stored_size(backend, value)
    backend.set_many("bob", [Item(f"b{i}", value, 60) for i in range(10)])
    backend.set_many("alice", [Item("a", value, 60)], quota=size)
    with pytest.raises(QuotaExceeded):
        backend.set_many("alice", [Item("a2", value, 60)], quota=size)
    assert total(backend, "alice") == size and total(backend, "bob") == 10 * size


def test_eight_threads_of_one_user_never_end_above_the_quota(backend):
    """Every write checks the quota atomically with storing: concurrent writers of one user cannot
    both see room for one more value. The quota ends filled exactly, never overshot."""
    backend.values_per_store = 1000  # this is about the quota: no value leaves through the per-store bound
    value = freeze({"payload": "x" * 3000})
    size = stored_size(backend, value)
    per_write = 2 * size  # each write: two values and a pointer
    quota = 25 * per_write + per_write // 2
    stored, refused, errors, samples = [], [], [], []
    barrier = threading.Barrier(9)

    def writer(n):
        try:
            barrier.wait()
            for i in range(12):
                items = [Item(new_key(), value, 60), Item(new_key(), value, 60)]
                try:
                    backend.set_many("alice", items, [Pointer(POINTER, items[0].key, 60)], quota=quota)
                    stored.append(items)
                except QuotaExceeded:
                    refused.append(n)
                if i < 3:  # another user, with the same quota, while alice's is full
                    backend.set_many("bob", [Item(new_key(), value, 60)], quota=quota)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    barrier.wait()
    while any(t.is_alive() for t in threads):
        samples.append(total(backend, "alice"))
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert max(samples, default=0) <= quota
    used = backend.usage("alice")
    assert sum(size for _, size, _ in used) <= quota
    assert len(stored) == quota // per_write == 25 and len(refused) == 8 * 12 - 25
    assert sorted(key for key, _, _ in used) == sorted(item.key for items in stored for item in items)
    assert all(backend.get("alice", item.key).thaw() == {"payload": "x" * 3000} for items in stored for item in items)
    assert backend.pointer("alice", POINTER) in {items[0].key for items in stored}
    assert total(backend, "bob") == 8 * 3 * size
    if not backend.keeps_objects:
        assert Raw(backend).value_rows("alice") == 50  # nothing refused was left behind in storage


def test_real_sizes_object_columns_and_object_arrays_count_fully(backend):
    lists = pd.DataFrame({"id": range(8), "rows": [[f"{c:02d}{r:04d}" + "x" * 122 for r in range(1024)]
                                                   for c in range(8)]})  # 8 x 1024 x 128 characters: 1 MiB
    frame = freeze(lists)
    assert frame.nbytes >= 1 << 20
    strings = np.array([f"{i}" + "y" * (1 << 20) for i in range(10)], dtype=object)
    array = freeze(strings)
    assert array.nbytes >= 10 << 20

    with pytest.raises(QuotaExceeded):
        backend.set_many("u", [Item("frame", frame, 60)], quota=512 << 10)
    with pytest.raises(QuotaExceeded):
        backend.set_many("u", [Item("array", array, 60)], quota=5 << 20)
    assert backend.usage("u") == []

    backend.set_many("u", [Item("frame", frame, 60), Item("array", array, 60)], quota=16 << 20)
    sizes = {key: size for key, size, _ in backend.usage("u")}
    assert sizes["frame"] >= 1 << 20 and sizes["array"] >= 10 << 20
    back = backend.get("u", "frame").thaw()
    assert back["id"].tolist() == list(range(8))
    assert [list(cell) for cell in back["rows"]] == lists["rows"].tolist()
    got = backend.get("u", "array").thaw()
    assert got.dtype == object and got.tolist() == strings.tolist()


@pytest.mark.parametrize("kind", BACKENDS)
def test_one_user_filling_up_never_evicts_another_user(backends, kind):
    """User A writes until refused, by the memory cap or by the per-user quota: every value of user B
    (and A's own earlier values) is still there afterwards."""
    value = freeze("z" * 10_000)
    backend = backends(kind, STATE_MEMORY_MAX_BYTES=400_000)
    size = stored_size(backend, value)
    for i in range(10):
        backend.set("bob", f"b{i}", freeze({"bob": i, "pad": "p" * 5000}), ttl=60)
    quota = None if kind == "memory" else 300_000
    written = 0
    with pytest.raises(QuotaExceeded) as info:
        for i in range(1000):
            backend.set_many("alice", [Item(f"a{i}", value, 60)], quota=quota)
            written += 1
    setting = "STATE_MEMORY_MAX_BYTES" if kind == "memory" else "STATE_MAX_USER_BYTES"
    assert setting in str(info.value)
    assert 0 < written < 1000
    if kind != "memory":
        assert written == quota // size
    assert all(backend.get("bob", f"b{i}").thaw() == {"bob": i, "pad": "p" * 5000} for i in range(10))
    assert all(backend.get("alice", f"a{i}").thaw() == "z" * 10_000 for i in range(written))
    assert backend.get("alice", f"a{written}") is None


# -- values per store (STATE_VALUES_PER_STORE) -------------------------------------------------------
STORE_B = POINTER_PREFIX + "B" * 22


def write_to(backend, user: str, value, pointer: str = POINTER, quota: int | None = None) -> str:
    """One callback's write to one store: a value and the store's pointer naming it."""
    key = new_key()
    backend.set_many(user, [Item(key, value, 60)], [Pointer(pointer, key, 60)], quota=quota)
    return key


def test_a_store_keeps_its_16_newest_values_and_the_evicted_ones_free_the_quota(backend):
    """17 writes to one store keep 16: the oldest goes, the newest (the pointer's) always stays, and
    the bytes of the evicted value no longer count; another store and values without a pointer are
    not touched."""
    value = freeze({"payload": "x" * 2000})
    size = stored_size(backend, value)
    other = write_to(backend, "alice", value, STORE_B)
    loose = [new_key() for _ in range(20)]  # initial layout data is written without a pointer
    backend.set_many("alice", [Item(k, value, 60) for k in loose])
    keys = [write_to(backend, "alice", value) for _ in range(17)]
    assert backend.get("alice", keys[0]) is None
    assert all(backend.get("alice", k) is not None for k in keys[1:])
    assert backend.pointer("alice", POINTER) == keys[-1]
    assert {k for k, _, _ in backend.usage("alice")} == set(keys[1:]) | {other} | set(loose)
    assert total(backend, "alice") == (16 + 1 + 20) * size
    assert backend.stats()["evicted_per_store"] == 1


def test_the_newest_value_is_kept_even_with_a_bound_of_one(backends):
    for kind in ("memory", "local"):
        backend = backends(kind, STATE_VALUES_PER_STORE=1)
        keys = [write_to(backend, "alice", freeze(n)) for n in range(3)]
        assert [backend.get("alice", k) is not None for k in keys] == [False, False, True]
        assert [k for k, _, _ in backend.usage("alice")] == [keys[-1]]


def test_a_write_the_quota_only_allows_after_evicting_is_accepted(backend):
    """The quota check counts the values the same write evicts as gone already."""
    value = freeze({"payload": "y" * 3000})
    size = stored_size(backend, value)
    quota = 16 * size + size // 2
    keys = [write_to(backend, "alice", value, quota=quota) for _ in range(16)]
    with pytest.raises(QuotaExceeded):  # another store has no value to give up
        write_to(backend, "alice", value, STORE_B, quota=quota)
    keys.append(write_to(backend, "alice", value, quota=quota))
    assert backend.get("alice", keys[0]) is None and backend.get("alice", keys[-1]) is not None
    assert total(backend, "alice") == 16 * size


def test_the_bound_is_per_user_and_store(backend):
    """Two users and two stores, written in one batch each: each (user, store) keeps its own 16."""
    value = freeze("v" * 500)
    for _ in range(20):
        for user in ("alice", "bob"):
            a, b = new_key(), new_key()
            backend.set_many(user, [Item(a, value, 60), Item(b, value, 60)], [Pointer(POINTER, a, 60),
                                                                             Pointer(STORE_B, b, 60)])
    assert len(backend.usage("alice")) == len(backend.usage("bob")) == 32


def test_releasing_the_latest_value_keeps_it_until_the_stores_next_write(backend):
    """A page going away releases what it holds: an older value goes at once; the store's latest
    value stays readable (the pointer names it) and goes with the next write to that store."""
    old, latest = write_to(backend, "alice", freeze("old")), write_to(backend, "alice", freeze("latest"))
    assert backend.release("alice", POINTER, old) is True and backend.get("alice", old) is None
    assert backend.release("alice", POINTER, latest) is False
    assert backend.get("alice", latest).thaw() == "latest" and backend.pointer("alice", POINTER) == latest
    other = write_to(backend, "alice", freeze("other store"), STORE_B)
    assert backend.get("alice", latest) is not None  # a write to another store leaves it
    newer = write_to(backend, "alice", freeze("newer"))
    assert backend.get("alice", latest) is None and backend.get("alice", newer).thaw() == "newer"
    assert {k for k, _, _ in backend.usage("alice")} == {newer, other}
    assert backend.release("alice", POINTER, "Z" * 22) is False  # unknown: nothing to do


def test_concurrent_writers_of_one_store_end_with_exactly_16_values(backend):
    """Eight threads writing one store of one user: the bound is applied atomically with each write,
    so the store ends with its 16 newest values and the pointer names one of them."""
    value = freeze({"payload": "z" * 1000})
    errors, barrier = [], threading.Barrier(8)

    def writer():
        try:
            barrier.wait()
            for _ in range(6):
                write_to(backend, "alice", value)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    live = {k for k, _, _ in backend.usage("alice")}
    assert len(live) == 16 and backend.pointer("alice", POINTER) in live
    assert total(backend, "alice") == 16 * stored_size(backend, value)


def test_login_carry_over_merges_histories_and_the_next_write_trims_them(backend):
    value = freeze("w" * 300)
    mine = [write_to(backend, "user", value) for _ in range(10)]
    anonymous = [write_to(backend, "anon", value) for _ in range(10)]
    assert backend.move_user("anon", "user") == 10
    assert len(backend.usage("user")) == 20  # nothing is evicted by the move itself
    newest = write_to(backend, "user", value)
    live = {k for k, _, _ in backend.usage("user")}
    assert newest in live and set(anonymous) <= live and len(live) == 16
    assert live - {newest} - set(anonymous) == set(mine[5:])  # the user's own oldest went first
    backend.delete_user("user")
    assert backend.usage("user") == [] and backend.pointer("user", POINTER) is None
    again = [write_to(backend, "user", value) for _ in range(3)]  # no history left behind
    assert {k for k, _, _ in backend.usage("user")} == set(again)


# -- compare-and-set on pointers (expect) and touching a pointer ----------------------------------------
def stored_history(backend, user: str, pointer: str = POINTER) -> list:
    """A store's history as the backend keeps it (read behind its back)."""
    if backend.keeps_objects:
        return list(backend._histories.get((user, pointer), []))
    return history.parse(Raw(backend).read(user, history.history_name(pointer)))


def snapshot_of(backend, user: str) -> dict:
    """Everything a refused write must leave as it was: values (keys and sizes), both stores' pointers and
    histories, the bytes counted against the quota and, for bytes backends, what is physically stored."""
    found = {"usage": sorted((key, size) for key, size, _ in backend.usage(user)), "total": total(backend, user),
             "pointers": [backend.pointer(user, name) for name in (POINTER, STORE_B)],
             "histories": [stored_history(backend, user, name) for name in (POINTER, STORE_B)]}
    if not backend.keeps_objects:
        found["rows"] = Raw(backend).value_rows(user)
    if backend.name == "local":
        found["files"] = sorted(os.listdir(backend.values_dir))
    return found


def test_a_write_expecting_the_pointers_target_is_stored(backend):
    first = write_to(backend, "alice", freeze("one"))
    second = new_key()
    backend.set_many("alice", [Item(second, freeze("two"), 60)], [Pointer(POINTER, second, 60)], expect={POINTER: first})
    assert backend.pointer("alice", POINTER) == second and backend.get("alice", second).thaw() == "two"
    assert [key for key, _ in stored_history(backend, "alice")] == [second, first]


def test_a_write_expecting_another_target_is_refused_whole(backend):
    """Nothing of a refused compare-and-set is stored: no value (not even a large one's file), no
    pointer, no history entry, no eviction by the per-store bound, no bytes against the quota."""
    backend.values_per_store = 2  # the refused write would evict the store's oldest value
    value = freeze("v" * 1000)
    first, second = write_to(backend, "alice", value), write_to(backend, "alice", value)
    write_to(backend, "alice", value, STORE_B)
    before = snapshot_of(backend, "alice")
    small, large = new_key(), new_key()  # a large value has a file of its own on the local backend
    items = [Item(small, freeze("new"), 60), Item(large, freeze("L" * (200 << 10)), 60)]
    with pytest.raises(PointerConflict) as info:
        backend.set_many("alice", items, [Pointer(POINTER, small, 60), Pointer(STORE_B, large, 60)],
                         quota=1 << 30, expect={POINTER: first})
    assert (info.value.name, info.value.found) == (POINTER, second)
    for key in (small, large):
        assert backend.get("alice", key) is None and not backend.alive("alice", key)
    assert backend.get("alice", first).thaw() == "v" * 1000  # not evicted
    assert snapshot_of(backend, "alice") == before
    backend.set_many("alice", items, [Pointer(POINTER, small, 60)], quota=1 << 30, expect={POINTER: second})
    assert backend.pointer("alice", POINTER) == small and backend.get("alice", first) is None


def test_expecting_no_pointer(backend):
    """None: the write goes through only while the store has no live pointer."""
    first = new_key()
    backend.set_many("alice", [Item(first, freeze(1), 60)], [Pointer(POINTER, first, 60)], expect={POINTER: None})
    assert backend.pointer("alice", POINTER) == first
    before = snapshot_of(backend, "alice")
    again = new_key()
    with pytest.raises(PointerConflict) as info:
        backend.set_many("alice", [Item(again, freeze(2), 60)], [Pointer(POINTER, again, 60)], expect={POINTER: None})
    assert (info.value.name, info.value.found) == (POINTER, first)
    assert backend.get("alice", again) is None and snapshot_of(backend, "alice") == before
    backend.set_many("bob", [Item(again, freeze(2), 60)], [Pointer(POINTER, again, 60)], expect={POINTER: None})
    assert backend.pointer("bob", POINTER) == again  # another user's namespace has none


def test_an_expired_pointer_or_one_naming_no_key_counts_as_none(backend):
    old = new_key()
    backend.set_many("alice", [Item(old, freeze("old"), 60)], [Pointer(POINTER, old, 0.3)])
    backend.set_many("alice", [], [Pointer(STORE_B, "not a key", 60)])
    time.sleep(0.5)
    with pytest.raises(PointerConflict) as info:
        backend.set_many("alice", [], [Pointer(POINTER, old, 60)], expect={POINTER: old})
    assert info.value.found is None and backend.pointer("alice", POINTER) is None
    new = new_key()
    backend.set_many("alice", [Item(new, freeze("new"), 60)], [Pointer(POINTER, new, 60), Pointer(STORE_B, new, 60)],
                     expect={POINTER: None, STORE_B: None})
    assert backend.pointer("alice", POINTER) == backend.pointer("alice", STORE_B) == new


def test_expecting_one_pointer_while_writing_another(backend):
    """The pointers a write expects and the ones it writes are independent: a store's write can be
    conditional on another store's pointer, and every expected pointer must match."""
    a = write_to(backend, "alice", freeze("a"))
    b = new_key()
    backend.set_many("alice", [Item(b, freeze("b"), 60)], [Pointer(STORE_B, b, 60)], expect={POINTER: a})
    assert backend.pointer("alice", POINTER) == a and backend.pointer("alice", STORE_B) == b
    before = snapshot_of(backend, "alice")
    c = new_key()
    with pytest.raises(PointerConflict) as info:
        backend.set_many("alice", [Item(c, freeze("c"), 60)], [Pointer(STORE_B, c, 60)], expect={POINTER: a, STORE_B: a})
    assert (info.value.name, info.value.found) == (STORE_B, b)
    assert backend.get("alice", c) is None and snapshot_of(backend, "alice") == before
    backend.set_many("alice", [Item(c, freeze("c"), 60)], [Pointer(STORE_B, c, 60)], expect={POINTER: a, STORE_B: b})
    assert backend.pointer("alice", STORE_B) == c and backend.pointer("alice", POINTER) == a


def test_touching_a_pointer_extends_it_and_its_history(backend):
    backend.values_per_store = 1  # the next write evicts what the history lists: proof that it survived
    key, other = new_key(), new_key()
    backend.set_many("alice", [Item(key, freeze("kept"), 60)], [Pointer(POINTER, key, SHORT_TTL)])
    backend.set_many("alice", [Item(other, freeze("other"), 60)], [Pointer(STORE_B, other, SHORT_TTL)])
    time.sleep(SHORT_TTL * 0.6)
    assert backend.touch("alice", POINTER, 60) is True
    time.sleep(SHORT_TTL * 0.6)  # past the original TTL
    assert backend.pointer("alice", POINTER) == key and backend.pointer("alice", STORE_B) is None
    assert stored_history(backend, "alice") == [(key, False)]
    assert sorted(k for k, _, _ in backend.usage("alice")) == sorted([key, other])  # a pointer is no value
    assert backend.touch("alice", STORE_B, 60) is False  # expired: not revived
    assert backend.pointer("alice", STORE_B) is None
    assert backend.touch("alice", POINTER_PREFIX + "C" * 22, 60) is False  # never written
    assert backend.touch("bob", POINTER, 60) is False
    newer = write_to(backend, "alice", freeze("newer"))
    assert backend.get("alice", key) is None and backend.get("alice", newer).thaw() == "newer"


def test_touching_a_pointer_naming_no_key_is_refused(backend):
    backend.set_many("alice", [], [Pointer(POINTER, "not a key", 60)])
    assert backend.touch("alice", POINTER, 600) is False


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_the_near_tier_leaves_compare_and_set_and_pointer_touches_to_the_remote_backend(backends, kind, tmp_path):
    from dash_state.backends.near import NearBackend, NearStore

    inner = backends(kind)
    store = NearStore(inner.seal, str(tmp_path / "near"), 16 << 20)
    tier = NearBackend(inner, store)
    try:
        first, refused = new_key(), new_key()
        tier.set_many("alice", [Item(first, freeze("one"), 60)], [Pointer(POINTER, first, SHORT_TTL)],
                      expect={POINTER: None})
        assert store.fetch("alice", first) is not None and inner.pointer("alice", POINTER) == first
        with pytest.raises(PointerConflict):
            tier.set_many("alice", [Item(refused, freeze("two"), 60)], [Pointer(POINTER, refused, 60)],
                          expect={POINTER: None})
        assert store.fetch("alice", refused) is None and tier.get("alice", refused) is None
        time.sleep(SHORT_TTL * 0.6)
        assert tier.touch("alice", POINTER, 60) is True
        time.sleep(SHORT_TTL * 0.6)
        assert tier.pointer("alice", POINTER) == first and tier.get("alice", first).thaw() == "one"
        assert tier.touch("alice", POINTER_PREFIX + "C" * 22, 60) is False
    finally:
        store.close()


# Two OS processes (or threads, for memory) each add one to a counter 300 times by compare-and-set:
# read the pointer, read the value it names, write value + 1 under a new key expecting that pointer,
# and start over on PointerConflict. A lost update would leave the counter below 600.
INCREMENTS = 300
COUNTER = POINTER_PREFIX + "counter" + "c" * 15


def increment(backend, user: str, times: int) -> int:
    """Add one ``times`` times; returns how many conflicts it met."""
    conflicts = done = 0
    while done < times:
        current = backend.pointer(user, COUNTER)
        value = None if current is None else backend.get(user, current)
        if value is None:  # evicted by the other writer's newer values since the pointer was read
            conflicts += 1
            continue
        key = new_key()
        try:
            backend.set_many(user, [Item(key, freeze(value.thaw() + 1), 60)], [Pointer(COUNTER, key, 60)],
                             expect={COUNTER: current})
        except PointerConflict:
            conflicts += 1
            continue
        done += 1
    return conflicts


def _increment_elsewhere(name: str, settings: dict, user: str, start, conn) -> None:
    """A spawned process: the same backend opened afresh, as another worker would."""
    try:
        config = build_config((settings, "test"))
        backend = create_backend(name, config, seal_for(config))
        try:
            start.wait(60)
            conn.send(increment(backend, user, INCREMENTS))
        finally:
            backend.close()
    except BaseException as exc:  # reported by the test
        conn.send(exc)


def settings_of(backend) -> tuple[str, dict]:
    """What another process needs to open the same store."""
    if backend.kind == "redis":
        return "redis", {"STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": backend.prefix}
    if backend.kind == "local":
        return "local", {"STATE_LOCAL_PATH": backend.path}
    return "database", {"STATE_DATABASE_URL": backend.url.render_as_string(hide_password=False),
                        "STATE_DATABASE_TABLE": backend.table.name}


@pytest.mark.parametrize("kind", ["local", "redis", "postgres", "sqlite"])
def test_two_processes_incrementing_by_compare_and_set_lose_no_update(backends, kind):
    import multiprocessing

    backend = backends(kind)
    user, first = f"counter-{uuid.uuid4().hex[:8]}", new_key()
    backend.set_many(user, [Item(first, freeze(0), 60)], [Pointer(COUNTER, first, 60)], expect={COUNTER: None})
    name, settings = settings_of(backend)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    pipes, processes = [], []
    for _ in range(2):
        mine, theirs = context.Pipe()
        process = context.Process(target=_increment_elsewhere, args=(name, {"STATE_BACKEND": name, **settings}, user,
                                                                         start, theirs), daemon=True)
        process.start()
        pipes.append(mine)
        processes.append(process)
    try:
        answers = []
        for mine in pipes:
            assert mine.poll(120), "a process did not finish"
            answers.append(mine.recv())
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    errors = [a for a in answers if isinstance(a, BaseException)]
    assert not errors, errors
    assert backend.get(user, backend.pointer(user, COUNTER)).thaw() == 2 * INCREMENTS


def test_two_threads_incrementing_by_compare_and_set_lose_no_update(backends):
    backend = backends("memory")
    first = new_key()
    backend.set_many("u", [Item(first, freeze(0), 60)], [Pointer(COUNTER, first, 60)], expect={COUNTER: None})
    errors, barrier = [], threading.Barrier(2)

    def worker():
        try:
            barrier.wait()
            increment(backend, "u", INCREMENTS)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert backend.get("u", backend.pointer("u", COUNTER)).thaw() == 2 * INCREMENTS


# -- moving a user (login carry-over) ---------------------------------------------------------------
def test_move_user_moves_values_and_pointers_and_the_target_keeps_its_own(backend):
    k1, k2, k3, mine, gone = (new_key() for _ in range(5))
    frame = pd.DataFrame({"n": np.arange(50), "s": ["a", "b"] * 25})
    other = POINTER_PREFIX + "other" + "o" * 17
    backend.set_many("anon", [Item(k1, freeze({"from": "anon"}), 60), Item(k2, freeze("anon's k2"), 60),
                              Item(k3, freeze(frame), 60), Item(gone, freeze("short"), 0.2)],
                     [Pointer(POINTER, k1, 60), Pointer(other, k2, 60)])
    backend.set_many("user", [Item(k2, freeze("user's k2"), 60), Item(mine, freeze("mine"), 60)],
                     [Pointer(other, mine, 60)])
    time.sleep(0.4)

    assert backend.move_user("anon", "user") == 2  # k1 and k3: k2 was the user's already, `gone` expired
    assert backend.get("user", k1).thaw() == {"from": "anon"}  # sealed values decrypt under their new owner
    assert backend.get("user", k2).thaw() == "user's k2"
    pd.testing.assert_frame_equal(backend.get("user", k3).thaw(), frame)
    assert backend.get("user", mine).thaw() == "mine" and backend.get("user", gone) is None
    assert backend.pointer("user", POINTER) == k1 and backend.pointer("user", other) == mine

    for key in (k1, k2, k3, gone):
        assert backend.get("anon", key) is None and not backend.alive("anon", key)
    assert backend.pointer("anon", POINTER) is None and backend.pointer("anon", other) is None
    assert backend.usage("anon") == []
    if not backend.keeps_objects:
        assert Raw(backend).value_rows("anon") == 0

    expected = {k1: freeze({"from": "anon"}), k2: freeze("user's k2"), k3: freeze(frame), mine: freeze("mine")}
    usage = {key: (size, expires) for key, size, expires in backend.usage("user")}
    assert {key: size for key, (size, _) in usage.items()} == {k: stored_size(backend, v) for k, v in expected.items()}
    assert all(time.time() + 50 < expires <= time.time() + 60 for _, expires in usage.values())  # TTLs move along

    used = total(backend, "user")  # moved values count toward the user's quota
    with pytest.raises(QuotaExceeded):
        backend.set_many("user", [Item(new_key(), freeze("x"), 60)], quota=used)
    backend.set_many("user", [Item(new_key(), freeze("x"), 60)], quota=used + stored_size(backend, freeze("x")))
    assert backend.move_user("anon", "user") == 0


def test_move_user_replaces_what_already_expired_in_the_target(backend):
    """An expired pointer or value of the target is not "the target's": the anonymous one moves in."""
    old, new = new_key(), new_key()
    backend.set_many("user", [Item(old, freeze("old"), 0.2)], [Pointer(POINTER, old, 0.2)])
    time.sleep(0.4)
    backend.set_many("anon", [Item(old, freeze("anon's"), 60), Item(new, freeze("new"), 60)], [Pointer(POINTER, new, 60)])
    assert backend.move_user("anon", "user") == 2
    assert backend.pointer("user", POINTER) == new
    assert backend.get("user", old).thaw() == "anon's" and backend.get("user", new).thaw() == "new"


def test_move_user_into_an_unknown_user_and_from_an_unknown_user(backend):
    key = new_key()
    backend.set_many("anon", [Item(key, freeze([1, 2]), 60)], [Pointer(POINTER, key, 60)])
    assert backend.move_user("nobody", "anon") == 0
    assert backend.get("anon", key).thaw() == [1, 2]
    assert backend.move_user("anon", "fresh") == 1
    assert backend.get("fresh", key).thaw() == [1, 2] and backend.pointer("fresh", POINTER) == key


# -- usage ----------------------------------------------------------------------------------------------
def test_usage_lists_live_values_with_their_sizes_and_expiry(backend):
    a, b, c = new_key(), new_key(), new_key()
    values = {a: freeze("a" * 100), b: freeze(pd.DataFrame({"x": np.arange(100)})), c: freeze("short")}
    started = time.time()
    backend.set_many("alice", [Item(a, values[a], 60), Item(b, values[b], 120), Item(c, values[c], 0.3)],
                     [Pointer(POINTER, a, 600)])
    backend.set("bob", a, freeze("bob's"), ttl=60)
    usage = {key: (size, expires) for key, size, expires in backend.usage("alice")}
    assert {key: size for key, (size, _) in usage.items()} == {k: stored_size(backend, v) for k, v in values.items()}
    assert started + 59 <= usage[a][1] <= time.time() + 60.5
    assert started + 119 <= usage[b][1] <= time.time() + 120.5
    time.sleep(0.5)
    assert sorted(key for key, _, _ in backend.usage("alice")) == sorted([a, b])
    assert backend.delete("alice", a)
    assert [key for key, _, _ in backend.usage("alice")] == [b]
    assert backend.touch("alice", b, 600)
    assert time.time() + 590 < backend.usage("alice")[0][2] <= time.time() + 600.5
    assert backend.usage("nobody") == []


# -- sealed values (redis, database) ------------------------------------------------------------------
TAMPERING = {
    "magic": lambda d: b"X" + d[1:],
    "flags": lambda d: d[:4] + bytes([d[4] ^ 0x01]) + d[5:],
    "hmac flag": lambda d: d[:4] + bytes([d[4] ^ 0x02]) + d[5:],
    "nonce": lambda d: d[:8] + bytes([d[8] ^ 0x80]) + d[9:],
    "body": lambda d: d[:40] + bytes([d[40] ^ 0x01]) + d[41:],
    "tag": lambda d: d[:-1] + bytes([d[-1] ^ 0x01]),
    "truncated": lambda d: d[: len(d) // 2],
    "tag cut off": lambda d: d[:-16],
    "appended": lambda d: d + b"\0",
    "empty": lambda d: b"",
    "unsealed value": lambda d: bytes(freeze({"admin": True}).to_bytes()),
    "pickle": lambda d: b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.",
}


@pytest.mark.parametrize("kind", BYTES_BACKENDS)
@pytest.mark.parametrize("encryption", ["aes-gcm", "hmac"])
@pytest.mark.parametrize("tamper", list(TAMPERING))
def test_a_value_tampered_with_in_storage_is_corrupt(backends, kind, encryption, tamper):
    backend = backends(kind, STATE_ENCRYPTION=encryption)
    backend.set("alice", "k", freeze({"secret": "s" * 100}), ttl=60)
    raw = Raw(backend)
    raw.replace("alice", "k", TAMPERING[tamper](raw.read("alice", "k")))
    with pytest.raises(CorruptValue):
        backend.get("alice", "k")


@pytest.mark.parametrize("kind", BYTES_BACKENDS)
def test_every_single_byte_flip_in_storage_is_detected(backends, kind):
    backend = backends(kind)
    backend.set("alice", "k", freeze([1, 2]), ttl=60)
    raw = Raw(backend)
    sealed = raw.read("alice", "k")
    for position in range(len(sealed)):
        raw.replace("alice", "k", sealed[:position] + bytes([sealed[position] ^ 0x40]) + sealed[position + 1:])
        with pytest.raises(CorruptValue):
            backend.get("alice", "k")
    raw.replace("alice", "k", sealed)
    assert backend.get("alice", "k").thaw() == [1, 2]


@pytest.mark.parametrize("kind", BYTES_BACKENDS)
@pytest.mark.parametrize("encryption", ["aes-gcm", "hmac"])
def test_a_value_copied_under_another_key_fails_but_moves_between_users(backends, kind, encryption):
    backend = backends(kind, STATE_ENCRYPTION=encryption)
    source, target = new_key(), new_key()
    backend.set("alice", source, freeze({"role": "admin"}), ttl=60)
    sealed = Raw(backend).read("alice", source)
    backend.write_many("alice", [(target, sealed, 60)], [], None)  # same user, another key
    backend.write_many("mallory", [(target, sealed, 60)], [], None)  # another user, another key
    for user in ("alice", "mallory"):
        with pytest.raises(CorruptValue):
            backend.get(user, target)
    # The seal binds a value to its key, not to its user: that is what lets move_user() move bytes.
    backend.write_many("mallory", [(source, sealed, 60)], [], None)
    assert backend.get("mallory", source).thaw() == {"role": "admin"}


@pytest.mark.parametrize("kind", BYTES_BACKENDS)
@pytest.mark.parametrize("encryption", ["aes-gcm", "hmac"])
def test_values_sealed_with_an_old_secret_read_while_it_is_a_fallback(backends, kind, encryption):
    old = backends(kind, secrets=(b"old secret",), STATE_ENCRYPTION=encryption)
    old.set("alice", "k", freeze({"written": "before the rotation"}), ttl=60)
    name, config, _ = old.recipe

    rotated = create_backend(name, config, seal_for(config, b"new secret", b"old secret", encryption=encryption))
    without = create_backend(name, config, seal_for(config, b"new secret", encryption=encryption))
    try:
        assert rotated.get("alice", "k").thaw() == {"written": "before the rotation"}
        with pytest.raises(CorruptValue):
            without.get("alice", "k")
        rotated.set("alice", "k2", freeze("after"), ttl=60)  # new values use the current secret
        assert without.get("alice", "k2").thaw() == "after"
        with pytest.raises(CorruptValue):
            old.get("alice", "k2")
    finally:
        rotated.close()
        without.close()


def _block_cryptography(monkeypatch) -> None:
    """Make ``import cryptography...`` fail, as on a machine without the package."""
    names = [n for n in sys.modules if n == "cryptography" or n.startswith("cryptography.")]
    for name in names + ["cryptography", "cryptography.exceptions", "cryptography.hazmat.primitives.ciphers.aead"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("kind", BYTES_BACKENDS)
def test_hmac_mode_needs_no_cryptography_authenticates_and_keeps_values_readable(backends, kind, monkeypatch):
    encrypted = backends(kind)
    encrypted.set("alice", "aes", freeze({"sealed": "with aes"}), ttl=60)
    _block_cryptography(monkeypatch)
    with pytest.raises(ConfigError, match="cryptography"):
        Seal(Keys((SECRET,)), "aes-gcm")

    name, config, _ = encrypted.recipe
    backend = create_backend(name, config, Seal(Keys((SECRET,)), "hmac"))
    try:
        frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
        backend.set("alice", "json", freeze({"visible": "plain text at rest"}), ttl=60)
        backend.set("alice", "frame", freeze(frame), ttl=60)
        assert backend.get("alice", "json").thaw() == {"visible": "plain text at rest"}
        pd.testing.assert_frame_equal(backend.get("alice", "frame").thaw(), frame)
        raw = Raw(backend)
        stored = raw.read("alice", "json")
        assert stored.startswith(b"DSW2") and b'{"visible":"plain text at rest"}' in stored

        raw.replace("alice", "json", stored.replace(b"plain", b"PLAIN"))
        with pytest.raises(CorruptValue):
            backend.get("alice", "json")
        with pytest.raises(CorruptValue, match="hmac"):  # an encrypted value: missing, never an ImportError
            backend.get("alice", "aes")
    finally:
        backend.close()
    monkeypatch.undo()
    assert encrypted.get("alice", "frame").thaw()["b"].tolist() == ["x", "y", "z"]  # aes processes read hmac values


@pytest.mark.parametrize("kind", BYTES_BACKENDS)
def test_compressed_values_are_smaller_in_storage_and_read_by_any_process(backends, kind):
    backend = backends(kind, STATE_COMPRESSION="zstd", STATE_COMPRESSION_MIN_BYTES=1000)
    value = {"rows": [{"id": i, "name": "repeated text"} for i in range(5000)]}
    backend.set("alice", "big", freeze(value), ttl=60)
    backend.set("alice", "tiny", freeze("under the threshold"), ttl=60)
    raw = Raw(backend)
    stored = raw.read("alice", "big")
    assert stored[4] & 0x01 and len(stored) < freeze(value).nbytes / 5
    assert not raw.read("alice", "tiny")[4] & 0x01
    name, config, _ = backend.recipe
    plain = create_backend(name, config, Seal(Keys((SECRET,))))  # compression off in that process
    try:
        assert plain.get("alice", "big").thaw() == value
    finally:
        plain.close()
    assert {key: size for key, size, _ in backend.usage("alice")}["big"] == len(stored)  # quotas count stored bytes
