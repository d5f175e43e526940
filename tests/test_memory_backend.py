import logging
import threading

import pytest

from dash_state.backends.memory import MemoryBackend
from dash_state.codecs import freeze
from dash_state.errors import StoreValueError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def snap(n_bytes):
    return freeze("x" * (n_bytes - 2))  # JSON string: two quote bytes


def test_get_set_delete_touch():
    backend = MemoryBackend()
    assert backend.get("u", "a") is None
    backend.set("u", "a", freeze({"v": 1}), ttl=10)
    assert backend.get("u", "a").thaw() == {"v": 1}
    assert backend.touch("u", "a", 10) and not backend.touch("u", "missing", 10)
    assert backend.delete("u", "a") and not backend.delete("u", "a")
    assert backend.get("u", "a") is None


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


def test_byte_cap_evicts_least_recently_used_and_warns(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    backend = MemoryBackend(max_bytes=300)
    for name in "abc":
        backend.set("u", f"{name}", snap(100), ttl=60)
    backend.get("u", "a")  # a is now the most recently used
    backend.set("u", "d", snap(100), ttl=60)
    assert backend.get("u", "b") is None
    assert all(backend.get("u", f"{n}") is not None for n in "acd")
    assert backend.stats()["bytes"] <= 300 and backend.stats()["evictions"] == 1
    assert "evicted a live value" in caplog.text


def test_evicting_expired_values_is_silent(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    clock = Clock()
    backend = MemoryBackend(max_bytes=200, clock=clock)
    backend.set("u", "old", snap(100), ttl=1)
    clock.now += 5
    backend.set("u", "new1", snap(100), ttl=60)
    backend.set("u", "new2", snap(100), ttl=60)
    assert backend.stats()["evictions"] == 0 and caplog.text == ""


def test_periodic_sweep_frees_expired_values():
    clock = Clock()
    backend = MemoryBackend(clock=clock, sweep_interval=10)
    for i in range(50):
        backend.set("u", f"{i}", snap(100), ttl=1)
    clock.now += 11
    backend.set("u", "fresh", snap(100), ttl=60)
    assert backend.stats()["entries"] == 1


def test_value_larger_than_the_cap_is_refused_and_nothing_is_lost():
    backend = MemoryBackend(max_bytes=100)
    backend.set("u", "a", snap(50), ttl=60)
    with pytest.raises(StoreValueError, match="STATE_MEMORY_MAX_BYTES"):
        backend.set("u", "b", snap(500), ttl=60)
    assert backend.get("u", "a") is not None


def test_delete_prefix_removes_one_users_data():
    backend = MemoryBackend()
    for user in ("alice", "bob"):
        for i in range(3):
            backend.set(user, f"{i}", freeze(i), ttl=60)
    assert backend.delete_user("alice") == 3
    assert backend.get("alice", "0") is None and backend.get("bob", "0") is not None


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
