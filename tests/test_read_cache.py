"""The read cache in front of shared backends: it saves transfers, and never serves what another worker
deleted or what expired."""
import time
import uuid

import pandas as pd
import pytest

from dash_state.config import build_config
from dash_state.manager import StateManager
from services import redis_url


@pytest.fixture(params=["redis", "sqlite"])
def settings(request, tmp_path):
    if request.param == "redis":
        return {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(),
                "STATE_KEY_PREFIX": f"dash-state-cache-{uuid.uuid4().hex[:8]}:"}
    return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": f"sqlite:///{tmp_path}/cache.db"}


def worker(settings, **extra):
    """One process's manager; two of them on the same settings behave like two gunicorn workers."""
    return StateManager(build_config(({**settings, **extra}, "test")), b"shared secret")


def test_a_hit_skips_the_transfer_and_the_result_is_still_a_private_copy(settings, monkeypatch):
    manager = worker(settings)
    frame = pd.DataFrame({"a": range(1000)})
    token = manager.save("s", frame, user="alice")
    backend = manager.backend(settings["STATE_BACKEND"])
    monkeypatch.setattr(backend, "read", lambda *a: pytest.fail("the cached value was read again"))
    first = manager.load("s", token, user="alice")
    first.iloc[0, 0] = -1
    pd.testing.assert_frame_equal(manager.load("s", token, user="alice"), frame)
    assert manager.stats()["read_cache"]["hits"] == 2


def test_a_value_deleted_by_another_worker_is_not_served_from_the_cache(settings, warnings_log):
    a, b = worker(settings), worker(settings)
    token = a.save("s", {"v": 1}, user="alice")
    assert b.load("s", token, user="alice") == {"v": 1}  # now cached in b as well
    assert a.delete(token, user="alice")
    assert b.load("s", token, user="alice") is None
    assert b.stats()["misses"]["missing"] == 1


def test_an_expired_value_is_not_served_from_the_cache(settings):
    manager = worker(settings, STATE_TTL_DEFAULT=0.5)
    token = manager.save("s", {"v": 1}, user="alice")
    assert manager.load("s", token, user="alice") == {"v": 1}
    time.sleep(0.8)
    assert manager.load("s", token, user="alice") is None


def test_the_cache_can_be_turned_off(settings):
    manager = worker(settings, STATE_READ_CACHE_BYTES=0)
    token = manager.save("s", [1, 2], user="alice")
    assert manager.load("s", token, user="alice") == [1, 2]
    assert manager.stats()["read_cache"] is None
