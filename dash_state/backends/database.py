"""The database backend: sealed values in one SQL table, shared by every process using the same URL.

SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy 2 Core. ``STATE_DATABASE_URL`` names the
database (default ``sqlite:///state.db``: a relative SQLite path is relative to the working directory
when the backend starts, and is resolved to an absolute path then), ``STATE_DATABASE_TABLE`` the
table. Both tables are created on first use; on PostgreSQL the DDL is::

    CREATE TABLE dash_state_values (
        user_id VARCHAR(255) NOT NULL,
        key VARCHAR(255) NOT NULL,
        value BYTEA NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (user_id, key)
    );
    CREATE INDEX ix_dash_state_values_expires_at ON dash_state_values (expires_at);
    ALTER TABLE dash_state_values ALTER COLUMN value SET STORAGE EXTERNAL;  -- no pglz: see define_tables
    CREATE TABLE dash_state_values_meta (
        name VARCHAR(64) NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (name)
    );
    INSERT INTO dash_state_values_meta (name, version) VALUES ('schema', 1);

MySQL/MariaDB use ``LONGBLOB`` (a BLOB stops at 64 KB) and a binary (case-sensitive) collation for the
keys; SQLite uses ``BLOB`` and ``DOUBLE``. Why it is built this way:

* ``expires_at`` is wall-clock epoch seconds, so all processes and hosts agree on it (keep clocks in
  sync). Reads and touches match only ``expires_at > now``: an expired row is never served.
* A bounded sweep from the write path deletes expired rows: at most every 60 s per process, at most
  1000 rows through the ``expires_at`` index; one that hits the limit brings the next forward to 1 s.
* Each operation is one statement in autocommit mode (upserts per dialect, never SELECT-then-INSERT):
  atomic, so a failure leaves nothing half-written and a retry is safe.
* Connection-level errors are retried ``STATE_RETRIES`` times (after 0.1, 0.2, 0.4 s ...), then raise
  BackendUnavailable naming the URL with its password masked, and log an ERROR.
* One engine per URL and process: ``pool_pre_ping`` replaces connections a restarted server dropped,
  and a forked worker never shares its parent's connections.
* SQLite runs in WAL mode with a busy timeout: writers in other threads and processes wait their turn
  instead of failing with "database is locked".
* The meta table holds the schema version: a newer one is refused, an older one is upgraded through
  ``MIGRATIONS``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, TypeVar

from sqlalchemy import (DDL, Column, Double, Index, Integer, LargeBinary, MetaData, String, Table, bindparam,
                        create_engine, delete, event, select, text, tuple_, update)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from ..config import Config
from ..errors import BackendUnavailable, ConfigError, StoreValueError
from ..wire import Wire
from .base import BytesBackend

log = logging.getLogger("dash_state")
T = TypeVar("T")

SCHEMA_VERSION = 1
#: version n -> function that upgrades a schema at version n to n + 1 (none yet: version 1 is the first).
MIGRATIONS: dict[int, Callable[[Connection, Table], None]] = {}
SWEEP_INTERVAL = 60.0
SWEEP_CATCH_UP = 1.0
SWEEP_LIMIT = 1000
BACKOFF = 0.1
CONNECT_TIMEOUT = 5  # s; an unreachable host then costs (retries + 1) x 5 s, under gunicorn's 30 s worker timeout
_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")
_DRIVERS = "pip install 'dash-state[database]' installs the drivers of postgresql+psycopg:// and mysql+pymysql://"
_MYSQL = ("mysql", "mariadb")
_KEY = String(255).with_variant(mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), *_MYSQL)
_VALUE = LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL)
_INSERT: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert,
                           **dict.fromkeys(_MYSQL, mysql.insert)}  # each knows its dialect's upsert syntax

# -- engines: one per (url, process) ----------------------------------------------------------------
_engines: dict[tuple[str, int], list] = {}  # -> [engine, number of backends using it]
_engines_lock = threading.Lock()


def _acquire_engine(url: URL) -> Engine:
    key = (url.render_as_string(hide_password=False), os.getpid())
    with _engines_lock:
        entry = _engines.get(key)
        if entry is None:
            entry = _engines[key] = [_create_engine(url), 0]
        entry[1] += 1
        return entry[0]


def _release_engine(url: URL, pid: int) -> None:
    key = (url.render_as_string(hide_password=False), pid)
    with _engines_lock:
        entry = _engines.get(key, [None, 0])
        entry[1] -= 1
        if entry[0] is not None and entry[1] <= 0:
            del _engines[key]
            entry[0].dispose()


def _create_engine(url: URL) -> Engine:
    args: dict[str, Any] = {}
    if url.get_backend_name() != "sqlite" and "connect_timeout" not in url.query:
        args["connect_timeout"] = CONNECT_TIMEOUT
    engine = create_engine(url, pool_pre_ping=True, isolation_level="AUTOCOMMIT", connect_args=args)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Busy timeout first, so switching to WAL waits for other processes too; NORMAL sync is safe in WAL
    (an OS crash may lose the last commits, never corrupt the file)."""
    for pragma in ("PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"):
        dbapi_connection.execute(pragma)  # sqlite3.Connection.execute: a cursor of its own


def _after_fork_in_child() -> None:
    """The parent's pooled connections are not ours: forget them without closing the parent's sockets."""
    global _engines_lock
    _engines_lock = threading.Lock()
    for engine, _ in _engines.values():
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_url(raw: str, source: str) -> URL:
    """Parse the URL, refusing what cannot work with a ConfigError that names the setting."""
    where = f"STATE_DATABASE_URL (from {source})"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"{where} is not a database URL such as postgresql+psycopg://user@host/db") from None
    dialect = url.get_backend_name()
    if dialect not in _DIALECTS:
        raise ConfigError(f"{where} uses {dialect!r}; the database backend supports sqlite, postgresql, "
                          f"mysql and mariadb ({_DRIVERS})")
    if dialect == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise ConfigError(f"{where}: an in-memory SQLite database is private to one connection; name a "
                              "file (sqlite:///state.db) or use the memory backend")
        if not url.database.startswith("file:") and not os.path.isabs(url.database):
            url = url.set(database=os.path.abspath(url.database))
    return url


def define_tables(name: str) -> tuple[Table, Table]:
    """The values table and its meta table (the DDL in the module docstring)."""
    metadata = MetaData()
    values = Table(name, metadata, Column("user_id", _KEY, primary_key=True), Column("key", _KEY, primary_key=True),
                   Column("value", _VALUE, nullable=False), Column("expires_at", Double, nullable=False),
                   Index(f"ix_{name}_expires_at", "expires_at"))
    meta = Table(f"{name}_meta", metadata, Column("name", String(64), primary_key=True),
                 Column("version", Integer, nullable=False))
    # Values are Arrow IPC or JSON, often already compressed: PostgreSQL's default pglz TOAST
    # compression made a 7 MB write take 0.9 s instead of 0.09 s.
    event.listen(values, "after_create", DDL(f'ALTER TABLE "{name}" ALTER COLUMN value SET STORAGE EXTERNAL')
                 .execute_if(dialect="postgresql"))
    return values, meta


def _connection_level(exc: DBAPIError) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated


class DatabaseBackend(BytesBackend):
    name = "database"
    shared = True  # SQLite included: processes on one host share the file

    def __init__(self, wire: Wire, url: str, table: str = "dash_state_values", retries: int = 3, *,
                 url_source: str = "default", clock: Callable[[], float] = time.time,
                 sweep_interval: float = SWEEP_INTERVAL, sweep_limit: int = SWEEP_LIMIT):
        super().__init__(wire)
        self.url = _check_url(url, url_source)
        self.masked_url = self.url.render_as_string(hide_password=True)
        self.retries = retries
        self.sweep_interval, self.sweep_limit = sweep_interval, sweep_limit
        self.sweeps = self.swept = 0
        self._clock = clock
        self._next_sweep = clock()
        self._sweep_lock, self._lock = threading.Lock(), threading.Lock()
        self._max_value: int | None = None
        if len(table) > 48:  # PostgreSQL names stop at 63 characters, and ours add "ix_" + "_expires_at"
            raise ConfigError(f"STATE_DATABASE_TABLE {table!r} is longer than 48 characters")
        self.table, self.meta_table = define_tables(table)
        self._pid = os.getpid()
        where = f"STATE_DATABASE_URL (from {url_source}) = {self.masked_url}"
        try:
            self._engine = _acquire_engine(self.url)
        except (ImportError, ArgumentError) as exc:  # a missing driver; NoSuchModuleError is an ArgumentError
            raise ConfigError(f"{where}: {exc}; {_DRIVERS}") from None
        try:
            if self._engine.dialect.is_async:
                raise ConfigError(f"{where} names an asyncio driver; use postgresql+psycopg:// or mysql+pymysql://")
            self._statements()
            self.schema_version = self._setup()
        except BaseException:
            self.close()
            raise

    # -- the Backend interface -----------------------------------------------------------------------
    def read(self, user: str, key: str) -> bytes | None:
        args = {"u": user, "k": key, "now": self._clock()}
        if self._binary_select is not None:
            return self._run(lambda conn: self._read_binary(conn, args))
        return self._run(lambda conn: conn.execute(self._select, args).scalar())

    def _read_binary(self, conn: Connection, args: dict) -> bytes | None:
        """psycopg returns bytea as hex text unless asked for binary: 4x slower for a 7 MB value."""
        dbapi = conn.dialect.loaded_dbapi
        try:
            with conn.connection.driver_connection.cursor(binary=True) as cursor:
                cursor.execute(self._binary_select, (args["u"], args["k"], args["now"]))
                row = cursor.fetchone()
        except dbapi.Error as exc:  # bypassed SQLAlchemy: wrap as it would, so retries work the same
            lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
            if lost:
                conn.invalidate()
            raise DBAPIError.instance(self._binary_select, None, exc, dbapi.Error, connection_invalidated=lost,
                                      dialect=conn.dialect) from exc
        return None if row is None else row[0]

    def write(self, user: str, key: str, data: bytes, ttl: float) -> None:
        if self._max_value is not None and len(data) > self._max_value:
            raise StoreValueError(
                f"value of {len(data)} bytes is too large for the MySQL/MariaDB server at {self.masked_url}: it "
                f"takes at most {self._max_value} bytes (half its max_allowed_packet); raise max_allowed_packet")
        now = self._clock()
        args = {"user_id": user, "key": key, "value": data, "expires_at": now + ttl}
        self._run(lambda conn: conn.execute(self._upsert, args))
        self._maybe_sweep(now)

    def alive(self, user: str, key: str) -> bool:
        args = {"u": user, "k": key, "now": self._clock()}
        return self._run(lambda conn: conn.execute(self._alive, args).first()) is not None

    def touch(self, user: str, key: str, ttl: float) -> bool:
        now = self._clock()
        args = {"u": user, "k": key, "now": now, "until": now + ttl}
        return self._run(lambda conn: conn.execute(self._touch, args).rowcount) == 1

    def delete(self, user: str, key: str) -> bool:
        return self._run(lambda conn: conn.execute(self._delete, {"u": user, "k": key}).rowcount) == 1

    def delete_user(self, user: str) -> int:
        return self._run(lambda conn: conn.execute(self._delete_user, {"u": user}).rowcount)

    def stats(self) -> dict:
        """Figures this process knows without asking the server (no table scans)."""
        dialect = self.engine.dialect
        return {"dialect": dialect.name, "driver": dialect.driver, "url": self.masked_url,
                "table": self.table.name, "schema_version": self.schema_version, "sweeps": self.sweeps,
                "swept_rows": self.swept, "pool": self.engine.pool.status()}

    def close(self) -> None:
        engine, self._engine = getattr(self, "_engine", None), None
        if engine is not None:
            _release_engine(self.url, self._pid)

    # -- maintenance ---------------------------------------------------------------------------------
    def sweep(self) -> int:
        """Delete at most ``sweep_limit`` expired rows; returns how many."""
        deleted = self._run(lambda conn: conn.execute(self._sweep, {"now": self._clock()}).rowcount)
        self.sweeps += 1
        self.swept += deleted
        return deleted

    def drop_table(self) -> None:
        """Drop this backend's tables (tests, uninstalling)."""
        self._run(self.table.metadata.drop_all)

    @property
    def engine(self) -> Engine:
        if self._pid != os.getpid():  # forked after startup (gunicorn --preload): use our own connections
            with self._lock:
                if self._pid != os.getpid():
                    self._engine, self._pid = _acquire_engine(self.url), os.getpid()
        if self._engine is None:
            raise BackendUnavailable(f"the database backend for {self.masked_url} is closed")
        return self._engine

    # -- internals -----------------------------------------------------------------------------------
    def _statements(self) -> None:
        """Build every statement once; SQLAlchemy caches their compiled form."""
        t, dialect = self.table, self._engine.dialect.name
        upsert = _INSERT[dialect](t)
        user, key, now = t.c.user_id == bindparam("u"), t.c.key == bindparam("k"), bindparam("now")
        self._select = select(t.c.value).where(user, key, t.c.expires_at > now)
        self._binary_select = None
        if dialect == "postgresql" and self._engine.dialect.driver == "psycopg":
            self._binary_select = f'SELECT value FROM "{t.name}" WHERE user_id = %s AND key = %s AND expires_at > %s'

        self._alive = select(t.c.expires_at).where(user, key, t.c.expires_at > now)
        self._touch = update(t).where(user, key, t.c.expires_at > now).values(expires_at=bindparam("until"))
        self._delete = delete(t).where(user, key)
        self._delete_user = delete(t).where(user)
        if dialect in _MYSQL:
            self._upsert = upsert.on_duplicate_key_update(value=upsert.inserted.value,
                                                          expires_at=upsert.inserted.expires_at)
            limit = dict.fromkeys(("mysql_limit", "mariadb_limit"), self.sweep_limit)  # each dialect its own
            self._sweep = delete(t).where(t.c.expires_at <= now).with_dialect_options(**limit)
        else:
            self._upsert = upsert.on_conflict_do_update(
                index_elements=[t.c.user_id, t.c.key],
                set_={"value": upsert.excluded.value, "expires_at": upsert.excluded.expires_at})
            doomed = select(t.c.user_id, t.c.key).where(t.c.expires_at <= now).limit(self.sweep_limit)
            # expires_at is checked again: a row rewritten since the subquery read it must survive
            self._sweep = delete(t).where(tuple_(t.c.user_id, t.c.key).in_(doomed), t.c.expires_at <= now)

    def _setup(self) -> int:
        """Connect, create the tables if needed, check the schema version; runs once per backend."""
        try:
            self._attempt(lambda conn: None)  # reachable? (else retries, then BackendUnavailable)
            for attempt in range(5):
                try:
                    with self.engine.connect() as conn:
                        self.table.metadata.create_all(conn)  # checkfirst
                    break
                except DBAPIError:  # another process created a table after our check ("already exists"
                    if attempt == 4:  # or, on PostgreSQL, a unique violation in its catalog): check again
                        raise
                    time.sleep(0.05 * (attempt + 1))
            if self._engine.dialect.name in _MYSQL:
                packet = self._attempt(lambda conn: conn.execute(text("SELECT @@max_allowed_packet")).scalar())
                self._max_value = int(packet) // 2 - 65536  # measured: MariaDB refuses values above half of it
            return self._attempt(self._check_version)
        except SQLAlchemyError as exc:
            raise self._unavailable(f"{self.masked_url} refused to set up table {self.table.name}", exc) from exc

    def _check_version(self, conn: Connection) -> int:
        meta, dialect = self.meta_table, self._engine.dialect.name
        insert = _INSERT[dialect](meta)
        insert = insert.prefix_with("IGNORE") if dialect in _MYSQL else insert.on_conflict_do_nothing()
        conn.execute(insert, {"name": "schema", "version": SCHEMA_VERSION})
        version = conn.execute(select(meta.c.version).where(meta.c.name == "schema")).scalar_one()
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"table {self.table.name} at {self.masked_url} has schema version {version}, but this dash-state "
                f"knows only version {SCHEMA_VERSION}: upgrade dash-state in every process, or set "
                "STATE_DATABASE_TABLE to another table")
        while version < SCHEMA_VERSION:  # autocommit, and processes may race: migrations must be idempotent
            MIGRATIONS[version](conn, self.table)
            version += 1
            conn.execute(update(meta).where(meta.c.name == "schema").values(version=version))
        return version

    def _maybe_sweep(self, now: float) -> None:
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            full = self.sweep() >= self.sweep_limit
            self._next_sweep = now + (SWEEP_CATCH_UP if full else self.sweep_interval)
        except BackendUnavailable:  # already logged; the write itself succeeded
            self._next_sweep = now + self.sweep_interval
        finally:
            self._sweep_lock.release()

    def _run(self, work: Callable[[Connection], T]) -> T:
        """One operation with retries; any database failure surfaces as BackendUnavailable."""
        try:
            return self._attempt(work)
        except SQLAlchemyError as exc:  # not a connection problem: the server refused the statement
            raise self._unavailable(f"{self.masked_url} refused the operation", exc) from exc

    def _attempt(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a pooled connection, retrying connection-level errors with backoff."""
        attempt = 0
        while True:
            try:
                with self.engine.connect() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if not _connection_level(exc):
                    raise
                if attempt >= self.retries:
                    raise self._unavailable(f"cannot reach {self.masked_url} (attempts: {attempt + 1})",
                                            exc) from exc
                delay = BACKOFF * 2 ** attempt
                log.info("dash-state database backend: %s failed (%s); retrying in %.1f s", self.masked_url,
                         self._describe(exc), delay)
                time.sleep(delay)
                attempt += 1

    def _unavailable(self, what: str, exc: BaseException) -> BackendUnavailable:
        message = f"dash-state database backend: {what}: {self._describe(exc)}"
        log.error(message)
        return BackendUnavailable(message)

    def _describe(self, exc: BaseException) -> str:
        """The driver's own first line, without SQL, parameters (values can be 50 MB) or the password."""
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        return first.replace(str(self.url.password), "***") if self.url.password else first


def from_config(config: Config, wire: Wire) -> DatabaseBackend:
    return DatabaseBackend(wire, config["STATE_DATABASE_URL"], config["STATE_DATABASE_TABLE"],
                           config["STATE_RETRIES"], url_source=config.sources.get("STATE_DATABASE_URL", "default"))
