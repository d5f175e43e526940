"""The memory backend beyond the shared contract: a byte cap that refuses instead of evicting other
users, expiry on a fake clock, the sweep, and the bookkeeping of bytes per user."""
import threading

import numpy as np
import pandas as pd
import pytest

from dash_state.backends import Item, Pointer
from dash_state.backends.memory import MemoryBackend
from dash_state.errors import QuotaExceeded, StoreValueError
from dash_state.core.references import APP_OWNER
from dash_state.core.values import freeze

POINTER = "latest." + "P" * 22


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def snap(n_bytes):
    return freeze("x" * (n_bytes - 2))  # JSON string: two quote bytes


def consistent(backend: MemoryBackend) -> None:
    """The running totals agree with the entries themselves."""
    entries = backend._entries
    assert backend.stats()["bytes"] == sum(value.nbytes for value, _ in entries.values())
    per_user: dict[str, int] = {}
    for (user, _), (value, _) in entries.items():
        per_user[user] = per_user.get(user, 0) + value.nbytes
    assert backend._user_bytes == per_user


def test_get_set_delete_touch():
    backend = MemoryBackend()
    assert backend.get("u", "a") is None
    backend.set("u", "a", freeze({"v": 1}), ttl=10)
    assert backend.get("u", "a").thaw() == {"v": 1}
    assert backend.touch("u", "a", 10) and not backend.touch("u", "missing", 10)
    assert backend.delete("u", "a") and not backend.delete("u", "a")
    assert backend.get("u", "a") is None
    consistent(backend)


def test_ttl_expiry_and_touch_extends_life():
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    backend.set("u", "a", freeze(1), ttl=10)
    clock.now += 9
    assert backend.touch("u", "a", 10)
    clock.now += 9
    assert backend.get("u", "a").thaw() == 1
    clock.now += 10.001
    assert backend.get("u", "a") is None
    assert not backend.touch("u", "a", 10)
    assert backend.stats()["bytes"] == 0


def test_pointers_expire_on_their_own_clock():
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    backend.set_many("u", [Item("k" * 22, freeze(1), 100)], [Pointer(POINTER, "k" * 22, 10)])
    clock.now += 9.999
    assert backend.pointer("u", POINTER) == "k" * 22
    clock.now += 0.001
    assert backend.pointer("u", POINTER) is None and backend.get("u", "k" * 22).thaw() == 1


# -- the byte cap: refuse, never evict another user ------------------------------------------------
def test_a_full_backend_refuses_the_write_and_evicts_nobody():
    backend = MemoryBackend(max_bytes=300)
    for name in "abc":
        backend.set("u", name, snap(100), ttl=60)
    with pytest.raises(QuotaExceeded, match="STATE_MEMORY_MAX_BYTES") as info:
        backend.set("v", "d", snap(100), ttl=60)
    assert "300" in str(info.value)
    assert all(backend.get("u", n) is not None for n in "abc") and backend.get("v", "d") is None
    assert backend.stats() == {"entries": 3, "bytes": 300, "max_bytes": 300, "users": 1, "refused": 1,
                               "evicted_new_visitors": 0, "evicted_per_store": 0}
    with pytest.raises(QuotaExceeded):  # not even the same user's older values make room
        backend.set("u", "d", snap(100), ttl=60)
    assert backend.stats()["refused"] == 2
    backend.set("u", "a", snap(60), ttl=60)  # replacing by a smaller value always fits
    backend.set("v", "d", snap(40), ttl=60)
    assert backend.stats()["bytes"] == 300
    consistent(backend)


def test_one_user_filling_memory_leaves_every_value_of_other_users():
    backend = MemoryBackend(max_bytes=1_000_000)
    others = {f"user{n}": [freeze({"n": n, "i": i, "pad": "p" * 2000}) for i in range(20)] for n in range(5)}
    for user, values in others.items():
        for i, value in enumerate(values):
            backend.set(user, f"k{i}", value, ttl=60)
    before, written = backend.stats()["bytes"], 0
    with pytest.raises(QuotaExceeded, match="STATE_MEMORY_MAX_BYTES"):
        while True:
            backend.set("hog", f"k{written}", snap(50_000), ttl=60)
            written += 1
    assert written == (1_000_000 - before) // 50_000
    for user, values in others.items():
        for i, value in enumerate(values):
            assert backend.get(user, f"k{i}").thaw() == value.thaw()
    assert all(backend.get("hog", f"k{i}") is not None for i in range(written))
    consistent(backend)


def test_expired_values_make_room_silently(caplog):
    clock = Clock()
    backend = MemoryBackend(max_bytes=200, clock=clock)
    backend.set("other", "old", snap(100), ttl=1)
    backend.set("u", "old", snap(100), ttl=1)
    clock.now += 5
    backend.set("u", "new1", snap(100), ttl=60)
    backend.set("u", "new2", snap(100), ttl=60)
    assert backend.stats()["refused"] == 0 and caplog.text == ""
    assert backend.stats()["entries"] == 2
    consistent(backend)


def test_shared_layout_data_makes_room_only_for_shared_layout_data():
    backend = MemoryBackend(max_bytes=300)
    for name in "abc":
        backend.set(APP_OWNER, name, snap(100), ttl=60)
    with pytest.raises(QuotaExceeded):  # a user's write never pushes out anything, not even @app data
        backend.set("u", "k", snap(100), ttl=60)
    assert all(backend.get(APP_OWNER, n) is not None for n in "abc")
    backend.get(APP_OWNER, "a")  # a is now the most recently used
    backend.set(APP_OWNER, "d", snap(100), ttl=60)  # @app data makes room for @app data, oldest first
    assert backend.get(APP_OWNER, "b") is None
    assert all(backend.get(APP_OWNER, n) is not None for n in "acd")

    backend.delete(APP_OWNER, "a")
    backend.set("u", "k", snap(100), ttl=60)
    with pytest.raises(QuotaExceeded):  # and @app data never pushes out a user's value
        backend.set(APP_OWNER, "e", snap(300), ttl=60)
    assert backend.get("u", "k") is not None
    consistent(backend)


def test_periodic_sweep_frees_expired_values_and_pointers():
    clock = Clock()
    backend = MemoryBackend(clock=clock, sweep_interval=10)
    for i in range(50):
        backend.set_many("u", [Item(f"{i}", snap(100), 1)], [Pointer(f"latest.{i}", "k" * 22, 1)])
    clock.now += 11
    backend.set("u", "fresh", snap(100), ttl=60)
    assert backend.stats()["entries"] == 1 and backend._pointers == {}
    assert backend.stats()["users"] == 1


def test_value_larger_than_the_cap_is_refused_and_nothing_is_lost():
    backend = MemoryBackend(max_bytes=100)
    backend.set("u", "a", snap(50), ttl=60)
    with pytest.raises(StoreValueError, match="STATE_MEMORY_MAX_BYTES"):  # QuotaExceeded is a StoreValueError
        backend.set("u", "b", snap(500), ttl=60)
    assert backend.get("u", "a") is not None


def test_a_refused_batch_stores_none_of_its_values_or_pointers():
    backend = MemoryBackend(max_bytes=250)
    backend.set_many("u", [Item("a" * 22, snap(100), 60)], [Pointer(POINTER, "a" * 22, 60)])
    with pytest.raises(QuotaExceeded):
        backend.set_many("u", [Item("b" * 22, snap(100), 60), Item("c" * 22, snap(100), 60)],
                         [Pointer(POINTER, "b" * 22, 60)])
    assert backend.get("u", "b" * 22) is None and backend.get("u", "c" * 22) is None
    assert backend.pointer("u", POINTER) == "a" * 22
    assert backend.stats()["bytes"] == 100
    consistent(backend)


# -- per-user quota and real sizes ------------------------------------------------------------------
def test_the_user_quota_is_checked_before_the_memory_cap_and_counts_real_sizes():
    backend = MemoryBackend(max_bytes=1 << 30)
    frame = freeze(pd.DataFrame({"rows": [[f"{c}-{r}" + "x" * 120 for r in range(1024)] for c in range(8)]}))
    array = freeze(np.array(["y" * (1 << 20) + str(i) for i in range(10)], dtype=object))
    assert frame.nbytes >= 1 << 20 and array.nbytes >= 10 << 20
    with pytest.raises(QuotaExceeded, match="STATE_MAX_USER_BYTES"):
        backend.set_many("u", [Item("frame", frame, 60)], quota=1 << 20)
    with pytest.raises(QuotaExceeded, match="STATE_MAX_USER_BYTES"):
        backend.set_many("u", [Item("array", array, 60)], quota=10 << 20)
    backend.set_many("u", [Item("frame", frame, 60), Item("array", array, 60)], quota=12 << 20)
    assert backend.stats()["bytes"] == frame.nbytes + array.nbytes == sum(s for _, s, _ in backend.usage("u"))


def test_expired_values_of_the_user_stop_counting_before_a_quota_refusal():
    clock = Clock()
    backend = MemoryBackend(clock=clock, sweep_interval=3600)
    backend.set_many("u", [Item("old", snap(1000), 5)], quota=1000)
    clock.now += 6  # expired, but no sweep ran: the refusal path sweeps first
    backend.set_many("u", [Item("new", snap(1000), 5)], quota=1000)
    assert [k for k, _, _ in backend.usage("u")] == ["new"]
    consistent(backend)


# -- users --------------------------------------------------------------------------------------------
def test_delete_user_removes_one_users_values_and_pointers():
    backend = MemoryBackend()
    for user in ("alice", "bob"):
        for i in range(3):
            backend.set(user, f"{i}", freeze(i), ttl=60)
        backend.set_many(user, [], [Pointer(POINTER, "k" * 22, 60)])
    assert backend.delete_user("alice") == 3
    assert backend.get("alice", "0") is None and backend.get("bob", "0") is not None
    assert backend.pointer("alice", POINTER) is None and backend.pointer("bob", POINTER) == "k" * 22
    consistent(backend)


def test_move_user_keeps_the_byte_counts_right():
    clock = Clock()
    backend = MemoryBackend(max_bytes=10_000, clock=clock)
    backend.set_many("anon", [Item("a", snap(100), 60), Item("b", snap(200), 60), Item("x", snap(300), 1)])
    backend.set_many("user", [Item("b", snap(50), 60), Item("y", snap(400), 1)])
    clock.now += 2
    assert backend.move_user("anon", "user") == 1  # a; b was the user's, x expired
    assert sorted((k, s) for k, s, _ in backend.usage("user")) == [("a", 100), ("b", 50)]
    assert backend.usage("anon") == [] and "anon" not in backend._user_bytes
    consistent(backend)


def test_concurrent_writers_never_tear_values():
    backend = MemoryBackend(max_bytes=10_000_000)
    errors = []

    def worker(n):
        try:
            for i in range(300):
                value = {"writer": n, "i": i, "payload": [n] * 50}
                backend.set("u", "shared", freeze(value), ttl=60)
                got = backend.get("u", "shared").thaw()
                assert got["payload"] == [got["writer"]] * 50
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert backend.stats()["entries"] == 1 and backend.stats()["bytes"] == backend.get("u", "shared").nbytes


def test_eight_users_racing_for_the_last_bytes_never_pass_the_cap():
    backend = MemoryBackend(max_bytes=100_000)
    barrier, refused, errors = threading.Barrier(8), [], []

    def worker(n):
        try:
            barrier.wait()
            for i in range(50):
                try:
                    backend.set(f"user{n}", f"k{i}", snap(1000), ttl=60)
                except QuotaExceeded:
                    refused.append(n)
                assert backend.stats()["bytes"] <= 100_000
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert backend.stats()["bytes"] == 100_000 and len(refused) == 8 * 50 - 100
    assert backend.stats()["refused"] == len(refused)
    consistent(backend)


# -- new visitors: identities cost nothing to make, so their idle values make room ---------------------
def test_a_full_backend_evicts_new_visitors_least_recently_used_values_and_nobody_else():
    backend = MemoryBackend(max_bytes=400)
    backend.mark_new("old", False)
    backend.set("old", "o", snap(100), ttl=60)
    for user in ("new1", "new2"):
        backend.mark_new(user, True)
        backend.set(user, "a", snap(100), ttl=60)
    backend.get("new1", "a")  # new1 is active: new2's value is the least recently used
    backend.set("old", "p", snap(100), ttl=60)  # fits exactly
    backend.mark_new("new3", True)
    backend.set("new3", "a", snap(100), ttl=60)  # a fourth new visitor: new2's idle value makes room
    assert backend.get("new2", "a") is None and backend.get("new1", "a") is not None
    assert backend.get("old", "o") is not None and backend.get("old", "p") is not None
    assert backend.stats()["evicted_new_visitors"] == 1


def test_new_visitors_never_evict_established_users_and_never_their_own_newest_value():
    backend = MemoryBackend(max_bytes=300)
    for key in "abc":
        backend.set("old", key, snap(100), ttl=60)
    backend.mark_new("new", True)
    with pytest.raises(QuotaExceeded, match="STATE_MEMORY_MAX_BYTES"):
        backend.set("new", "a", snap(100), ttl=60)
    assert all(backend.get("old", key) is not None for key in "abc")
    backend.delete_user("old")
    backend.set("new", "a", snap(200), ttl=60)
    with pytest.raises(QuotaExceeded):  # its own values never make room for itself
        backend.set("new", "b", snap(200), ttl=60)
    assert backend.get("new", "a") is not None


def test_a_new_visitor_that_becomes_established_is_no_longer_evicted():
    backend = MemoryBackend(max_bytes=200)
    backend.mark_new("u", True)
    backend.set("u", "a", snap(100), ttl=60)
    backend.mark_new("u", False)  # came back after STATE_NEW_VISITOR_SECONDS
    backend.mark_new("v", True)
    backend.set("v", "a", snap(100), ttl=60)
    backend.mark_new("w", True)
    backend.set("w", "a", snap(100), ttl=60)  # only v (new, idle) may make room
    assert backend.get("u", "a") is not None and backend.get("v", "a") is None
