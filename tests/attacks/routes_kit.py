"""What the route attack modules share: an app with one store, a browser that wrote to it, hostile
POSTs, and the checks every refusal must pass (a JSON answer with the reason, one log line and no
traceback, the stored value unchanged)."""
from __future__ import annotations

import contextlib
import json
import logging
import uuid

import pytest

import dash_state
from apps import write_read_app
from dash_client import DashClient

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.service),
            pytest.param("postgres", marks=pytest.mark.service)]


def backend_config(kind: str) -> dict:
    """Settings for one backend, with a key prefix or table of its own (see :func:`cleanup`)."""
    from services import database_url, redis_url

    if kind == "redis":
        return {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(),
                "STATE_KEY_PREFIX": f"atk-{uuid.uuid4().hex[:8]}:"}
    if kind == "postgres":
        return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(),
                "STATE_DATABASE_TABLE": f"atk_{uuid.uuid4().hex[:8]}"}
    return {}


def cleanup(app, config: dict) -> None:
    manager = dash_state.get_state_manager(app)
    if config.get("STATE_BACKEND") == "redis":
        import redis

        server = redis.Redis.from_url(config["STATE_REDIS_URL"])
        for key in server.scan_iter(match=config["STATE_KEY_PREFIX"] + "*"):
            server.delete(key)
    elif config.get("STATE_BACKEND") == "database":
        manager.backend("database").drop_table()


@contextlib.contextmanager
def world(kind: str = "memory", value_factory=None, **config):
    """``(app, client, token)``: a browser that loaded the page and wrote ``value_factory(2)`` (default
    ``{"clicks": 2, "rows": [0, 1]}``) into store 's' through a callback; cleaned up afterwards."""
    config = {**backend_config(kind), **config}
    app = write_read_app(value_factory=value_factory, **config)
    try:
        client = DashClient(app)
        client.layout()
        token = client.call([("s", "data")], [("btn", "n_clicks", 2)])["s"]["data"]
        yield app, client, token
    finally:
        cleanup(app, config)


def post(client, route: str, body, content_type: str = "application/json", **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.http.post(f"/_dash-state/v1/{route}", data=data, content_type=content_type, headers=headers)


def read(client, token) -> str:
    """What a Python callback receives for ``token`` (repr)."""
    return client.call([("out", "children")], [("s", "data", token)])["out"]["children"]


def refused(response, status: int, *words: str, log=None) -> dict:
    """Assert a refusal: ``status``, a JSON body whose error names ``words``, no traceback anywhere,
    and (given ``caplog``) exactly one dash_state log line."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, text[:500])
    assert response.is_json and "Traceback" not in text, text[:500]
    error = response.get_json()["error"]
    for word in words:
        assert word in error, (word, error)
    if log is not None:
        lines = [r for r in log.records if r.name == "dash_state" and r.levelno >= logging.WARNING]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert "Traceback" not in log.text and not any(r.exc_info for r in log.records)
    return response.get_json()
