"""The database backend beyond the shared contract: schema, restarts, races, the sweep, MariaDB, errors."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from dash_state.backends import Item, Pointer, create_backend, database
from dash_state.backends.database import SCHEMA_VERSION, DatabaseBackend, engines, schema
from dash_state.config import build_config
from dash_state.errors import BackendUnavailable, ConfigError, QuotaExceeded, StoreValueError
from dash_state.core.keys import Keys
from dash_state.core.references import new_key
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
from services import database_url, missing, reachable

MYSQL_URL = os.environ.get("STATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
WIRE = Seal(Keys((b"database tests",)))
ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def url_for(kind: str, tmp_path) -> str:
    return f"sqlite:///{tmp_path}/state.db" if kind == "sqlite" else database_url()


@pytest.fixture
def opened():
    """Make backends on unique tables; drops the tables and closes every backend afterwards."""
    made: list[DatabaseBackend] = []

    def make(url: str, table: str | None = None, **kwargs) -> DatabaseBackend:
        backend = DatabaseBackend(WIRE, url, table or f"dash_state_t_{uuid.uuid4().hex[:8]}", **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in reversed(made):
        if backend._engine is not None:
            backend.table.metadata.drop_all(backend.engine)  # not through the backend: its circuit may be open
            backend.close()


def count(backend: DatabaseBackend) -> int:
    with backend.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(backend.table)).scalar_one()


# -- schema ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_tables_and_schema_version_exist_after_first_use(kind, tmp_path, opened):
    backend = opened(url_for(kind, tmp_path))
    inspector = sa.inspect(backend.engine)
    table = backend.table.name
    assert {c["name"] for c in inspector.get_columns(table)} == {"user_id", "key", "value", "expires_at", "size"}
    assert inspector.get_pk_constraint(table)["constrained_columns"] == ["user_id", "key"]
    assert [i["column_names"] for i in inspector.get_indexes(table)] == [["expires_at"]]
    with backend.engine.connect() as conn:
        rows = conn.execute(sa.select(backend.meta_table)).all()
    assert [tuple(r) for r in rows] == [("schema", SCHEMA_VERSION)]
    assert backend.stats()["schema_version"] == 2 and backend.stats()["table"] == table


def test_the_documented_ddl_is_what_postgresql_gets():
    def flat(sql: str) -> str:
        return re.sub(r"\s*([(),])\s*", r"\1", " ".join(sql.split())).rstrip(";")

    documented = flat(re.sub(r"--[^\n]*", "", schema.__doc__))  # without the SQL comments
    values, meta = database.define_tables("dash_state_values")
    for ddl in (CreateTable(values), CreateIndex(next(iter(values.indexes))), CreateTable(meta)):
        compiled = flat(str(ddl.compile(dialect=postgresql.dialect())))
        assert compiled in documented, compiled
    assert f"INSERT INTO dash_state_values_meta VALUES ('schema', {SCHEMA_VERSION})" in schema.__doc__
    assert "ALTER TABLE dash_state_values ALTER COLUMN value SET STORAGE EXTERNAL" in schema.__doc__


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_second_backend_on_the_same_table_sees_the_data(kind, tmp_path, opened):
    first = opened(url_for(kind, tmp_path))
    first.set("u", "k", freeze({"v": 1}), ttl=60)
    second = opened(url_for(kind, tmp_path), first.table.name)
    assert second.engine is first.engine  # one engine per URL and process
    assert second.get("u", "k").thaw() == {"v": 1}
    second.set("u", "k2", freeze("two"), ttl=60)
    first.close()  # the engine stays open while the other backend still uses it
    assert second.get("u", "k2").thaw() == "two"
    with second.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(second.meta_table)).scalar_one() == 1
    with pytest.raises(BackendUnavailable, match="closed"):
        first.get("u", "k")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_newer_schema_version_is_refused(kind, tmp_path, opened):
    backend = opened(url_for(kind, tmp_path))
    with backend.engine.connect() as conn:
        conn.execute(sa.update(backend.meta_table).values(version=SCHEMA_VERSION + 1))
    before = len(engines._engines)
    with pytest.raises(ConfigError, match=r"schema version 3, but this dash-state knows only version 2"):
        DatabaseBackend(WIRE, url_for(kind, tmp_path), backend.table.name)
    assert len(engines._engines) == before  # nothing leaked by the failed start


def test_an_older_schema_version_runs_the_migrations(tmp_path, opened, monkeypatch):
    backend = opened(url_for("sqlite", tmp_path))
    with backend.engine.connect() as conn:
        conn.execute(sa.update(backend.meta_table).values(version=0))
    ran = []
    monkeypatch.setitem(schema.MIGRATIONS, 0, lambda conn, table: ran.append(table.name))
    again = opened(url_for("sqlite", tmp_path), backend.table.name)
    assert ran == [backend.table.name] and again.schema_version == SCHEMA_VERSION  # 0 -> 1 -> 2
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(again.meta_table.c.version)).scalar_one() == SCHEMA_VERSION


def v1_tables(url: str, name: str) -> sa.Engine:
    """The tables as schema version 1 made them (no ``size`` column), with rows of three users."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    key_type = sa.String(255).with_variant(sa.dialects.mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")
    values = sa.Table(name, metadata, sa.Column("user_id", key_type, primary_key=True),
                      sa.Column("key", key_type, primary_key=True),
                      sa.Column("value", sa.LargeBinary().with_variant(sa.dialects.mysql.LONGBLOB(), "mysql", "mariadb"),
                                nullable=False),
                      sa.Column("expires_at", sa.Double, nullable=False), sa.Index(f"ix_{name}_expires_at", "expires_at"))
    meta = sa.Table(f"{name}_meta", metadata, sa.Column("name", sa.String(64), primary_key=True),
                    sa.Column("version", sa.Integer, nullable=False))
    metadata.create_all(engine)
    rows = [{"user_id": user, "key": f"k{i}", "value": bytes(WIRE.dump(f"k{i}", freeze("v" * (100 * i + n)))),
             "expires_at": time.time() + 600} for n, user in enumerate(("alice", "bob", "carol")) for i in range(5)]
    with engine.begin() as conn:
        conn.execute(sa.insert(values), rows)
        conn.execute(sa.insert(meta), {"name": "schema", "version": 1})
    return engine


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_version_1_table_gets_sizes_and_quotas_work_on_it(kind, tmp_path, opened):
    name = f"dash_state_v1_{uuid.uuid4().hex[:8]}"
    engine = v1_tables(url_for(kind, tmp_path), name)
    try:
        backend = opened(url_for(kind, tmp_path), name)
        assert backend.schema_version == SCHEMA_VERSION
        with backend.engine.connect() as conn:
            t = backend.table
            rows = conn.execute(sa.select(t.c.size, sa.func.length(t.c.value))).all()
            assert len(rows) == 15 and all(size == length > 0 for size, length in rows)
            assert conn.execute(sa.select(backend.meta_table.c.version)).scalar_one() == SCHEMA_VERSION
        assert backend.get("bob", "k3").thaw() == "v" * 301
        used = sum(size for _, size, _ in backend.usage("alice"))
        assert used == sum(len(WIRE.dump("k", freeze("v" * (100 * i)))) for i in range(5))
        with pytest.raises(QuotaExceeded):  # the migrated sizes count
            backend.set_many("alice", [Item(new_key(), freeze("x"), 60)], quota=used)
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_workers_starting_together_on_a_version_1_table_all_start(kind, tmp_path, opened):
    """A deploy restarts every worker at once: each sees version 1 and migrates; none may fail."""
    name = f"dash_state_v1_{uuid.uuid4().hex[:8]}"
    engine = v1_tables(url_for(kind, tmp_path), name)
    barrier, errors, backends = threading.Barrier(8), [], []

    def start():
        try:
            barrier.wait()
            backends.append(DatabaseBackend(WIRE, url_for(kind, tmp_path), name, retries=0))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors[:3]
        assert all(b.schema_version == SCHEMA_VERSION for b in backends)
        assert sum(size for _, size, _ in backends[0].usage("carol")) > 0
    finally:
        for made in backends:
            made.close()
        engine.dispose()
        opened(url_for(kind, tmp_path), name)  # dropped at teardown


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_rows_hold_sizes_and_pointers_take_none(kind, tmp_path, opened):
    backend = opened(url_for(kind, tmp_path))
    key = new_key()
    backend.set_many("u", [Item(key, freeze({"a": "b" * 1000}), 60)], [Pointer("latest." + "s" * 22, key, 60)])
    with backend.engine.connect() as conn:
        t = backend.table
        rows = {k: (bytes(v), size) for k, v, size in conn.execute(sa.select(t.c.key, t.c.value, t.c.size))}
    assert rows["latest." + "s" * 22] == (key.encode(), 0)
    assert rows[key][1] == len(rows[key][0]) and rows[key][0].startswith(b"DSW2")
    assert [k for k, _, _ in backend.usage("u")] == [key]


QUOTA_WRITER = """
import sys
from dash_state.backends import Item
from dash_state.backends.database import DatabaseBackend
from dash_state.errors import QuotaExceeded
from dash_state.core.keys import Keys
from dash_state.core.references import new_key
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
backend = DatabaseBackend(Seal(Keys((b'database tests',))), sys.argv[1], sys.argv[2])
value, kept = freeze('x' * 4000), 0
for _ in range(30):
    try:
        backend.set_many('alice', [Item(new_key(), value, 600)], quota=int(sys.argv[3]))
        kept += 1
    except QuotaExceeded:
        pass
print(kept)
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_processes_writing_for_one_user_never_pass_the_quota(kind, tmp_path, opened):
    """Four processes (each its own engine and connections) write for one user at once: the per-user
    lock makes the quota check and the write one step, so the quota ends exactly filled."""
    backend = opened(url_for(kind, tmp_path))
    size = len(WIRE.dump(new_key(), freeze("x" * 4000)))
    quota = 37 * size + size // 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", QUOTA_WRITER, url_for(kind, tmp_path), backend.table.name,
                               str(quota)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    kept = 0
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
        kept += int(out)
    usage = backend.usage("alice")
    assert kept == len(usage) == 37
    assert sum(s for _, s, _ in usage) == 37 * size <= quota


# -- concurrency ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_many_backends_starting_at_once_and_concurrent_upserts(kind, tmp_path, opened):
    """Table creation races (several workers starting together) and upserts of one key from 16 threads."""
    table = f"dash_state_race_{uuid.uuid4().hex[:8]}"
    barrier, errors, backends = threading.Barrier(8), [], []

    def start():
        try:
            barrier.wait()
            backends.append(DatabaseBackend(WIRE, url_for(kind, tmp_path), table, retries=0))  # no retry hides a race
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors[:3]
        backend = backends[0]
        write_barrier = threading.Barrier(16)

        def write(n):
            try:
                write_barrier.wait()
                for i in range(25):
                    backends[n % 8].set("u", "same", freeze({"n": n, "i": i}), ttl=60)
                    backends[n % 8].set("u", f"own-{n}", freeze(i), ttl=60)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]  # in particular no IntegrityError from a SELECT-then-INSERT race
        assert backend.get("u", "same").thaw()["i"] == 24
        assert count(backend) == 17
    finally:
        for made in backends:
            made.close()
        opened(url_for(kind, tmp_path), table)  # dropped at teardown


def test_processes_share_one_sqlite_file(tmp_path):
    """Three processes write to one SQLite file at once: WAL and the busy timeout queue them."""
    script = (
        "import sys\n"
        "from dash_state.backends.database import DatabaseBackend\n"
        "from dash_state.core.keys import Keys\n"
        "from dash_state.core.seal import Seal\n"
        "from dash_state.core.values import freeze\n"
        "b = DatabaseBackend(Seal(Keys((b'database tests',))), sys.argv[1])\n"
        "for i in range(150):\n"
        "    b.set('u', f'{sys.argv[2]}-{i}', freeze({'i': i, 'pad': 'x' * 5000}), ttl=60)\n"
        "    b.set('u', 'shared', freeze(sys.argv[2]), ttl=60)\n"
    )
    url = f"sqlite:///{tmp_path}/shared.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, url, f"p{n}"], env=env, stderr=subprocess.PIPE)
             for n in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    backend = DatabaseBackend(WIRE, url)
    try:
        assert count(backend) == 3 * 150 + 1
        assert backend.get("u", "p1-149").thaw()["i"] == 149
        with backend.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        backend.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_forked_worker_uses_its_own_connections(kind, tmp_path, opened):
    backend = opened(url_for(kind, tmp_path))
    backend.set("u", "before", freeze(1), ttl=60)
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's pooled connection
        code = 1
        try:
            parent_engine = backend._engine
            backend.set("u", "child", freeze(2), ttl=60)
            code = 0 if backend.engine is not parent_engine and backend.get("u", "before").thaw() == 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backend.get("u", "child").thaw() == 2  # the parent's connection still works
    assert backend.get("u", "before").thaw() == 1


# -- expiry and the sweep ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_expired_rows_are_never_served_even_before_the_sweep(kind, tmp_path, opened):
    clock = Clock()
    backend = opened(url_for(kind, tmp_path), clock=clock)
    backend.set("u", "k", freeze("v"), ttl=10)
    clock.now += 10.001
    assert backend.get("u", "k") is None
    assert backend.touch("u", "k", 60) is False
    assert count(backend) == 1  # still there: the WHERE clause, not a deletion, hides it
    backend.set("u", "k", freeze("new"), ttl=10)  # rewriting an expired key revives it
    assert backend.get("u", "k").thaw() == "new"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_sweep_removes_expired_rows_and_is_bounded(kind, tmp_path, opened):
    clock = Clock()
    backend = opened(url_for(kind, tmp_path), clock=clock)
    rows = [{"user_id": f"u{i % 7}", "key": f"k{i}", "value": b"x", "expires_at": clock.now - 1 - i % 50}
            for i in range(2500)]
    rows += [{"user_id": "live", "key": f"k{i}", "value": b"y", "expires_at": clock.now + 60} for i in range(10)]
    with backend.engine.connect() as conn:
        conn.execute(sa.insert(backend.table), rows)
    started = time.perf_counter()
    assert backend.sweep() == 1000  # one sweep deletes at most 1000 rows
    assert time.perf_counter() - started < 2
    assert count(backend) == 1510
    assert [backend.sweep() for _ in range(3)] == [1000, 500, 0]
    assert count(backend) == 10 and backend.stats()["swept_rows"] == 2500


def test_the_write_path_sweeps_at_most_every_minute(tmp_path, opened):
    clock = Clock()
    backend = opened(url_for("sqlite", tmp_path), clock=clock, sweep_limit=100)
    backend.set("u", "first", freeze(0), ttl=1)  # the first write sweeps (nothing to do yet)
    assert backend.sweeps == 1
    with backend.engine.connect() as conn:
        conn.execute(sa.insert(backend.table), [{"user_id": "old", "key": f"k{i}", "value": b"x",
                                                 "expires_at": clock.now - 1} for i in range(250)])
    clock.now += 30
    backend.set("u", "k", freeze(1), ttl=600)
    assert backend.sweeps == 1  # not due yet
    clock.now += 31
    backend.set("u", "k", freeze(1), ttl=600)
    assert (backend.sweeps, backend.swept) == (2, 100)
    clock.now += 0.5
    backend.set("u", "k", freeze(1), ttl=600)
    assert backend.sweeps == 2
    clock.now += 0.6  # a full sweep brings the next one forward to 1 s: the backlog drains
    backend.set("u", "k", freeze(1), ttl=600)
    backend.set("u", "k", freeze(1), ttl=600)
    assert (backend.sweeps, backend.swept) == (3, 200)
    clock.now += 1.1
    backend.set("u", "k", freeze(1), ttl=600)  # 51 left (50 old + "first"): not full, back to 60 s
    clock.now += 1.1
    backend.set("u", "k", freeze(1), ttl=600)
    assert (backend.sweeps, backend.swept) == (4, 251)
    assert count(backend) == 1


# -- configuration and errors -----------------------------------------------------------------------------
def test_a_relative_sqlite_path_is_relative_to_the_working_directory(tmp_path):
    assert Path.cwd() == tmp_path  # conftest runs every test in its own empty working directory
    config = build_config(({"STATE_BACKEND": "database"}, "test"))
    backend = create_backend("database", config, WIRE)
    try:
        backend.set("u", "k", freeze(1), ttl=60)
        assert (tmp_path / "state.db").exists()
        stats = backend.stats()
        assert stats["url"] == f"sqlite:///{tmp_path}/state.db" and stats["dialect"] == "sqlite"
    finally:
        backend.close()


@pytest.mark.parametrize("url, fragment", [
    ("nosuchdb://host/db", "supports sqlite, postgresql, mysql and mariadb"),
    ("mysql://root:hunter2pw@127.0.0.1/test", 'pip install "dash-state[postgres]"'),
    ("postgresql+nosuchdriver://u:hunter2pw@h/db", '"dash-state[mysql]" that of mysql+pymysql://'),
    ("sqlite://", "in-memory SQLite"),
    ("sqlite:///:memory:", "in-memory SQLite"),
])
def test_unusable_urls_are_config_errors_naming_the_setting(url, fragment):
    config = build_config(({"STATE_BACKEND": "database", "STATE_DATABASE_URL": url}, "app.server.config"))
    with pytest.raises(ConfigError) as info:
        create_backend("database", config, WIRE)
    message = str(info.value)
    assert "STATE_DATABASE_URL (from app.server.config)" in message and fragment in message
    assert 'pip install "dash-state[postgres]"' in message or "in-memory" in message
    assert "hunter2pw" not in message


def test_a_table_name_too_long_for_postgresql_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="STATE_DATABASE_TABLE 't{49}' is longer than 48 characters"):
        DatabaseBackend(WIRE, url_for("sqlite", tmp_path), "t" * 49)


def test_unreachable_server_masks_the_password(caplog):
    database_url()  # the tests below need PostgreSQL's driver and a port where nothing listens
    from pg_server import free_port

    url = f"postgresql+psycopg://postgres:hunter2secret@127.0.0.1:{free_port()}/test"
    config = build_config(({"STATE_BACKEND": "database", "STATE_DATABASE_URL": url, "STATE_RETRIES": 1}, "test"))
    caplog.set_level(logging.ERROR, logger="dash_state")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        create_backend("database", config, WIRE)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert sa.make_url(url).render_as_string(hide_password=True) in message and "(attempts: 2)" in message
    assert "hunter2secret" not in message and "hunter2secret" not in caplog.text
    assert any(r.levelno == logging.ERROR and "cannot reach" in r.getMessage() for r in caplog.records)


def test_a_refused_statement_is_backend_unavailable_with_the_password_masked(opened, caplog):
    url = database_url().replace("postgres@", "postgres:hunter2secret@")
    backend = opened(url)
    backend.set("u", "k", freeze(1), ttl=60)
    with backend.engine.connect() as conn:
        conn.execute(sa.text(f"DROP TABLE {backend.table.name}"))
    caplog.set_level(logging.INFO, logger="dash_state")
    with pytest.raises(BackendUnavailable, match="refused the operation") as info:
        backend.get("u", "k")
    assert "***" in str(info.value) and "hunter2secret" not in str(info.value) + caplog.text
    assert "SELECT" not in str(info.value)  # the driver's first line, not the statement and its parameters
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "hunter2secret" not in errors[0].getMessage()
    backend.table.metadata.create_all(backend.engine)
    deadline = time.monotonic() + 15
    while True:  # the circuit opened: it lets a probe through after its cooldown
        try:
            assert backend.get("u", "k") is None
            break
        except BackendUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert any("reachable again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


# -- MariaDB / MySQL ------------------------------------------------------------------------------------
@pytest.fixture
def mysql_url():
    if not reachable(MYSQL_URL, 3306):  # "where reachable" (the issue): never required
        missing(f"MariaDB/MySQL is not reachable at {MYSQL_URL} (start it, or set STATE_TEST_MYSQL_URL)",
                required=False)
    return MYSQL_URL


@pytest.mark.parametrize("scheme", ["mysql+pymysql", "mariadb+pymysql"])  # SQLAlchemy has a dialect for each
def test_mariadb_round_trip(scheme, mysql_url, opened):
    clock = Clock()
    backend = opened(scheme + mysql_url[mysql_url.index(":"):], clock=clock)
    assert backend.stats()["dialect"] == scheme.split("+")[0]
    backend.set("alice", "k", freeze({"v": 1}), ttl=10)
    backend.set("alice", "K", freeze({"v": "upper"}), ttl=10)  # keys are case-sensitive (binary collation)
    backend.set("bob", "k", freeze("bob"), ttl=10)
    backend.set("alice", "k", freeze({"v": 2}), ttl=10)  # upsert
    assert backend.get("alice", "k").thaw() == {"v": 2} and backend.get("alice", "K").thaw() == {"v": "upper"}
    clock.now += 9
    assert backend.touch("alice", "k", 10) is True and backend.touch("alice", "nope", 10) is False
    clock.now += 2
    assert backend.get("alice", "k").thaw() == {"v": 2} and backend.get("alice", "K") is None
    assert backend.touch("alice", "K", 10) is False
    assert backend.delete("bob", "k") is True and backend.delete("bob", "k") is False
    assert backend.delete_user("alice") == 2 and backend.get("alice", "k") is None
    column = {c["name"]: c for c in sa.inspect(backend.engine).get_columns(backend.table.name)}["value"]
    assert "LONGBLOB" in str(column["type"]).upper()
    clock.now += 100
    backend.set("u", "k", freeze(1), ttl=1)
    with backend.engine.connect() as conn:
        conn.execute(sa.insert(backend.table), [{"user_id": "old", "key": f"k{i}", "value": b"x",
                                                 "expires_at": clock.now - 5} for i in range(1200)])
    assert backend.sweep() == 1000 and backend.sweep() == 200  # MySQL's DELETE ... LIMIT


def test_mariadb_quota_pointers_and_moving_a_user(mysql_url, opened):
    """The MySQL paths: GET_LOCK around the quota check, INSERT IGNORE when moving, binary keys."""
    backend = opened(mysql_url)
    value = freeze("m" * 3000)
    size = len(WIRE.dump(new_key(), value))
    old, new = new_key(), new_key()
    backend.set_many("user", [Item(old, value, 0.2)], [Pointer("latest." + "s" * 22, old, 0.2)])
    backend.set_many("anon", [Item(new, value, 60), Item(new.swapcase(), value, 60)],
                     [Pointer("latest." + "s" * 22, new, 60), Pointer("latest." + "t" * 22, "garbage!", 60)], quota=2 * size)
    with pytest.raises(QuotaExceeded):
        backend.set_many("anon", [Item(new_key(), value, 60)], quota=2 * size)
    time.sleep(0.4)
    assert backend.move_user("anon", "user") == 2
    assert backend.pointer("user", "latest." + "s" * 22) == new and backend.pointer("user", "latest." + "t" * 22) is None
    assert sorted(k for k, _, _ in backend.usage("user")) == sorted([new, new.swapcase()])
    assert backend.usage("anon") == []
    errors, barrier = [], threading.Barrier(6)

    def writer():
        try:
            barrier.wait()
            for _ in range(10):
                try:
                    backend.set_many("racer", [Item(new_key(), value, 60)], quota=7 * size)
                except QuotaExceeded:
                    pass
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert sum(s for _, s, _ in backend.usage("racer")) == 7 * size


def test_mariadb_50_mb_value(mysql_url, opened, monkeypatch):
    """LONGBLOB holds 50 MB; the server must accept it too: MariaDB takes values up to half its
    max_allowed_packet (measured), so a server with the 16 MB default needs it raised. Without that, a
    too-large value is a StoreValueError at once, never a BackendUnavailable after retries."""
    big = "x" * (50 * 1024 * 1024)
    backend = opened(mysql_url)
    if backend._max_value < len(big) + 1024:
        with monkeypatch.context() as patch:
            patch.setattr(backend, "_transaction", lambda *_: pytest.fail("the value was sent to the server"))
            started = time.monotonic()
            with pytest.raises(StoreValueError, match="max_allowed_packet"):
                backend.set("u", "big", freeze(big), ttl=60)
            assert time.monotonic() - started < 5  # sealing 50 MB, no round trip (loose: machines are busy)
        from pg_server import MariaDBServer

        server = MariaDBServer()  # our own instance with max_allowed_packet=256M; the shared one stays as is
        try:
            private = DatabaseBackend(WIRE, server.url)
            private.set("u", "big", freeze(big), ttl=60)
            assert private.get("u", "big").thaw() == big
            private.close()
        finally:
            server.cleanup()
    else:
        backend.set("u", "big", freeze(big), ttl=60)
        assert backend.get("u", "big").thaw() == big
