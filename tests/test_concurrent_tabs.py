"""Eight tabs of one user writing one store at once, each releasing the reference it replaced (what the
component does): the server ends with one value per tab and consistent bookkeeping, on every backend.
(Once 80 Redis keys instead of 10: the "latest" pointer was read and written back without a
compare-and-set. Now the pointer is set inside the write itself and nothing is read first.)"""
from __future__ import annotations

import threading
import uuid

import pytest
from dash import html

import dash_state
from apps import new_app
from dash_state import ServerStore
from services import database_url, redis_url

TABS = 8
WRITES = 15


def backend_settings(kind: str, tmp_path) -> dict:
    run = uuid.uuid4().hex[:8]
    if kind == "memory":
        return {}
    if kind == "redis":
        return {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": f"tabs-{run}:"}
    if kind == "sqlite":
        return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": f"sqlite:///{tmp_path}/tabs.db"}
    return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(), "STATE_DATABASE_TABLE": f"tabs_{run}"}


@pytest.mark.parametrize("kind", ["memory", "redis", "sqlite", "postgres"])
def test_concurrent_tabs_hold_one_value_each(kind, tmp_path):
    app = new_app(**backend_settings(kind, tmp_path))
    app.layout = html.Div([ServerStore(id="s")])
    manager = dash_state.get_state_manager(app)
    namespace = dash_state.identity.user_namespace("ann")
    held: dict[int, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(TABS)

    def tab(number: int) -> None:
        try:
            start.wait()
            for n in range(WRITES):
                token = manager.save("s", {"tab": number, "n": n, "rows": list(range(200))}, namespace)
                previous, held[number] = held.get(number), token
                if previous is not None:
                    manager.release("s", previous, namespace)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(TABS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not errors, errors
        backend = manager.backend(manager.settings("s").backend)
        usage = backend.usage(namespace)
        assert len(usage) == TABS, usage  # one value per tab: every replaced one was released
        assert {manager.load("s", token, namespace)["tab"] for token in held.values()} == set(range(TABS))
        latest = manager.latest("s", namespace)
        assert latest["n"] == WRITES - 1 and latest["tab"] in range(TABS)
        if kind == "redis":
            import redis

            server = redis.Redis.from_url(redis_url())
            prefix = backend.prefix
            sizes = {k.decode(): int(v) for k, v in server.hgetall(f"{prefix}{{{namespace}}}:sizes").items()}
            assert sizes.pop("__total") == sum(size for _, size, _ in usage)  # the quota's books balance
            # values, the pointer and its history, index, sizes
            assert len(list(server.scan_iter(match=prefix + "*"))) == TABS + 4
    finally:
        manager.clear_user("ann")
        if kind == "postgres":
            manager.backend("database").drop_table()
