"""Live fan-out between two processes' managers (two apps on one server, as two workers or two hosts)
on each Redis topology and on PostgreSQL: a write through one reaches a page watching through the
other. The stream route is tested in test_live.py; here it is the sources of dash_state.live."""
from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from apps import new_app
from dash import html
from services import database_url, redis_url

import dash_state
from dash_state import ServerStore
from dash_state.backends import pointer_name
from dash_state.live.hub import Watch

pytestmark = pytest.mark.service


def two_apps(**config):
    apps = []
    for _ in range(2):
        app = new_app(**config)
        app.layout = html.Div([ServerStore(id="board", scope="app", live=True, writable=True)])
        dash_state.get_state_manager(app).store_ids.add_tree(app.layout)
        apps.append(app)
    return apps


def assert_fans_out(writer, reader, backend):
    manager = dash_state.get_state_manager(reader)
    subscription = manager.live.subscribe([Watch(backend, "@app", pointer_name("board"))])
    try:
        subscription.wait(1.0)  # the source's first look (a catch-up mark)
        with writer.server.app_context():
            version = dash_state.set_store("board", ["hello"])
        assert subscription.wait(5.0), "the write never reached the other manager"
        with reader.server.app_context():
            assert dash_state.get_store_version("board") == version
            assert dash_state.get_store("board") == ["hello"]
    finally:
        manager.live.unsubscribe(subscription)
        for app in (writer, reader):
            dash_state.get_state_manager(app).close()


@pytest.fixture
def short_dir():
    path = Path(tempfile.mkdtemp(prefix="dsl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_redis_pub_sub():
    writer, reader = two_apps(STATE_BACKEND="redis", STATE_REDIS_URL=redis_url(),
                              STATE_KEY_PREFIX=f"topo-{uuid.uuid4().hex[:8]}:")
    assert_fans_out(writer, reader, "redis")


def test_redis_sentinel(short_dir):
    from redis_servers import redis_sentinel

    with redis_sentinel(short_dir / "sentinel") as (_, sentinel):
        writer, reader = two_apps(STATE_BACKEND="redis", STATE_REDIS_URL=f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0")
        assert_fans_out(writer, reader, "redis")


def test_redis_cluster(short_dir):
    from redis_servers import redis_cluster

    with redis_cluster(short_dir / "cluster") as nodes:
        writer, reader = two_apps(STATE_BACKEND="redis", STATE_REDIS_URL=f"redis+cluster://127.0.0.1:{nodes[0].port}")
        assert_fans_out(writer, reader, "redis")


def test_postgres_listen_notify():
    import sqlalchemy

    table = f"topo_{uuid.uuid4().hex[:8]}"
    writer, reader = two_apps(STATE_BACKEND="database", STATE_DATABASE_URL=database_url(), STATE_DATABASE_TABLE=table)
    manager = dash_state.get_state_manager(reader)
    assert type(manager.live.source(manager.backend("database"))).__name__ == "PostgresChannel"
    try:
        assert_fans_out(writer, reader, "database")
    finally:
        engine = sqlalchemy.create_engine(database_url())
        with engine.begin() as conn:
            for name in (table, table + "_meta"):
                conn.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


def test_sqlite_reads_the_watched_pointers(tmp_path):
    writer, reader = two_apps(STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/live.db")
    assert_fans_out(writer, reader, "database")
