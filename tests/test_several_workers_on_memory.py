"""The memory backend keeps values per process. Under `gunicorn -w 4` a reference that another worker
minted finds nothing here: that must be said as what it is, with the fix, not as "expired"."""
from __future__ import annotations

import logging

from apps import write_read_app
from dash_client import DashClient

import dash_state


def two_workers():
    """Two processes of one app: the same SECRET_KEY, each its own memory backend."""
    first, second = write_read_app(STATE_BACKEND="memory"), write_read_app(STATE_BACKEND="memory")
    writer = DashClient(first)
    writer.layout()
    reader = DashClient(second)
    reader.http.set_cookie("dash_state_id", writer.http.get_cookie("dash_state_id").value)
    return writer, reader


def test_a_reference_minted_by_another_worker_is_named_with_the_fix(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    writer, reader = two_workers()
    token = writer.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    assert writer.call([("out", "children")], [("s", "data", token)])["out"]["children"] != "None"
    for _ in range(3):
        assert reader.call([("out", "children")], [("s", "data", token)])["out"]["children"] == "None"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once per process, not per read
    assert 'STATE_BACKEND = "local"' in errors[0].getMessage() and "another process" in errors[0].getMessage()
    misses = dash_state.get_state_manager(reader.app).stats()["misses"]
    assert misses["elsewhere"] == 3 and misses["expired"] == 0


def test_an_expired_value_of_this_process_is_still_expired(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    writer, _ = two_workers()
    token = writer.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    manager = dash_state.get_state_manager(writer.app)
    manager.backend("memory").delete_user(writer.namespace())
    assert writer.call([("out", "children")], [("s", "data", token)])["out"]["children"] == "None"
    assert manager.stats()["misses"]["expired"] == 1 and manager.stats()["misses"]["elsewhere"] == 0
    assert not [r for r in caplog.records if r.levelno == logging.ERROR]
