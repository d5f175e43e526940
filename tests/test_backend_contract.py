"""One contract, every backend: memory, redis, sqlite and postgres behave the same."""
from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from dash_state.backends import create_backend
from dash_state.codecs import freeze
from dash_state.config import build_config
from dash_state.wire import Wire, derive_secret
from services import database_url, redis_url

BACKENDS = ["memory", "redis", "sqlite", "postgres"]
SHORT_TTL = 0.6


def make_backend(kind: str, tmp_path, **settings):
    run = uuid.uuid4().hex[:8]
    if kind == "memory":
        name, extra = "memory", {}
    elif kind == "redis":
        name, extra = "redis", {"STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": f"dash-state-test-{run}:"}
    elif kind == "sqlite":
        name, extra = "database", {"STATE_DATABASE_URL": f"sqlite:///{tmp_path}/state.db"}
    else:
        name, extra = "database", {"STATE_DATABASE_URL": database_url(), "STATE_DATABASE_TABLE": f"dash_state_test_{run}"}
    config = build_config(({"STATE_BACKEND": name, **extra, **settings}, "test"))
    wire = Wire(derive_secret(b"contract secret"), config["STATE_COMPRESSION"], config["STATE_COMPRESSION_MIN_BYTES"])
    return create_backend(name, config, wire), (name, config, wire)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    made, recipe = make_backend(request.param, tmp_path)
    made.recipe = recipe
    yield made
    if request.param == "redis":
        for user in ("alice", "bob", "u", "mallory"):
            made.delete_user(user)
    if request.param == "postgres":
        made.drop_table()
    made.close()


def test_get_set_delete(backend):
    assert backend.get("alice", "k1") is None
    backend.set("alice", "k1", freeze({"v": 1}), ttl=60)
    assert backend.get("alice", "k1").thaw() == {"v": 1}
    backend.set("alice", "k1", freeze({"v": 2}), ttl=60)  # replace
    assert backend.get("alice", "k1").thaw() == {"v": 2}
    assert backend.delete("alice", "k1") is True
    assert backend.delete("alice", "k1") is False
    assert backend.get("alice", "k1") is None


def test_expired_values_are_never_served_and_touch_extends_life(backend):
    backend.set("u", "short", freeze("x"), ttl=SHORT_TTL)
    backend.set("u", "kept", freeze("y"), ttl=SHORT_TTL)
    time.sleep(SHORT_TTL * 0.6)
    assert backend.touch("u", "kept", SHORT_TTL) is True
    time.sleep(SHORT_TTL * 0.6)
    assert backend.get("u", "short") is None
    assert backend.get("u", "kept").thaw() == "y"
    assert backend.touch("u", "short", 60) is False
    time.sleep(SHORT_TTL * 1.1)
    assert backend.get("u", "kept") is None


def test_users_are_separate_and_one_call_deletes_a_user(backend):
    for user in ("alice", "bob"):
        for i in range(5):
            backend.set(user, f"k{i}", freeze(f"{user}-{i}"), ttl=60)
    assert backend.get("bob", "k1").thaw() == "bob-1"
    assert backend.get("alice", "k1").thaw() == "alice-1"
    assert backend.delete_user("alice") == 5
    assert backend.get("alice", "k1") is None and backend.get("bob", "k4").thaw() == "bob-4"


@pytest.mark.parametrize("value", ["", "ünïcødé ✓ 漢字 🚀", {"ключ": ["значение", None, 1.5]}, [], {}, 0, None])
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


def test_after_a_restart(backend, tmp_path):
    """A new process (a fresh backend object on the same server) sees shared data; memory starts empty."""
    backend.set("u", "persist", freeze({"kept": True}), ttl=60)
    name, config, wire = backend.recipe
    again = create_backend(name, config, wire)
    try:
        got = again.get("u", "persist")
        if backend.shared:
            assert got.thaw() == {"kept": True}
        else:
            assert got is None
    finally:
        again.close()


@pytest.mark.parametrize("backend", ["redis", "sqlite", "postgres"], indirect=True)  # memory keeps objects in-process
def test_tampered_or_moved_values_are_rejected(backend):
    from dash_state.errors import CorruptValue

    sealed = backend.wire.dump("alice", "k", freeze({"secret": 1}))
    backend.write("mallory", "k", sealed, 60)  # a value copied to another user's key
    with pytest.raises(CorruptValue):
        backend.get("mallory", "k")
    flipped = bytearray(sealed)
    flipped[-3] ^= 0xFF
    backend.write("alice", "k", bytes(flipped), 60)
    with pytest.raises(CorruptValue):
        backend.get("alice", "k")


def test_stats_are_reported(backend):
    backend.set("u", "k", freeze("v"), ttl=60)
    assert isinstance(backend.stats(), dict)
