"""The database backend: sealed values in one SQL table, shared by every process using the same URL.

SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy 2 Core. ``STATE_DATABASE_URL`` names the
database (default ``sqlite:///state.db``, relative to the working directory when the backend starts),
``STATE_DATABASE_TABLE`` the table; the tables (:mod:`.schema`) are created on first use.

* ``expires_at`` is wall-clock epoch seconds, so all processes and hosts agree on it. Reads and
  touches match only ``expires_at > now``: an expired row is never served.
* A bounded sweep from the write path deletes expired rows: at most every 60 s per process, at most
  1000 rows through the ``expires_at`` index; one that hits the limit brings the next forward to 1 s.
* Reads and single-row changes are one statement in autocommit mode. A write is one transaction that
  takes a per-user lock (PostgreSQL advisory lock, SQLite's write lock, MySQL ``GET_LOCK``), checks the
  user's live bytes against the quota and upserts every row: all or nothing, never over quota. In
  the same transaction each store's history row (:mod:`..history`) is updated and the values past
  ``STATE_VALUES_PER_STORE`` are deleted; their bytes no longer count for the quota check. A write's
  ``expect`` (compare-and-set) reads the pointers first in it, ``FOR UPDATE`` (:mod:`.pointers`).
* Connection-level errors are retried ``STATE_RETRIES`` times (after 0.1, 0.2, 0.4 s ...), then raise
  BackendUnavailable naming the URL with its password masked; a circuit breaker then fails fast and
  logs one ERROR per outage.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Callable, TypeVar

from sqlalchemy import String, bindparam, delete, func, select, text, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)

from dash_state.backends import history
from dash_state.backends.base import (
    POINTER_PREFIX,
    BytesBackend,
    Entry,
    Pointer,
    is_key,
)
from dash_state.backends.breaker import Breaker
from dash_state.backends.database import engines, histories
from dash_state.backends.database import inventory as _inventory
from dash_state.backends.database import pointers as pointer_rows
from dash_state.backends.database.engines import BEGIN, DRIVERS, MYSQL, check_url
from dash_state.backends.database.schema import (
    INSERT,
    SCHEMA_VERSION,
    check_version,
    define_tables,
)
from dash_state.config import Config
from dash_state.core.seal import Seal
from dash_state.errors import (
    BackendUnavailable,
    ConfigError,
    QuotaExceeded,
    StoreValueError,
)

log = logging.getLogger("dash_state")
T = TypeVar("T")
SWEEP_INTERVAL = 60.0
SWEEP_CATCH_UP = 1.0
SWEEP_LIMIT = 1000
BACKOFF = 0.1


def _connection_level(exc: DBAPIError) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated


class DatabaseBackend(BytesBackend):
    name = "database"
    shared = True  # SQLite included: processes on one host share the file
    remote = True

    def __init__(self, seal: Seal, url: str, table: str = "dash_state_values", retries: int = 3, *,
                 url_source: str = "default", clock: Callable[[], float] = time.time, timeout: float = 2.0,
                 sweep_interval: float = SWEEP_INTERVAL, sweep_limit: int = SWEEP_LIMIT, values_per_store: int = 16):
        super().__init__(seal)
        self.values_per_store = values_per_store
        self.evicted_per_store = 0
        self.url = check_url(url, url_source)
        self.masked_url = self.url.render_as_string(hide_password=True)
        self.retries, self.timeout = retries, timeout
        self.sweep_interval, self.sweep_limit = sweep_interval, sweep_limit
        self.sweeps = self.swept = 0
        self.breaker = Breaker(f"database backend ({self.masked_url})", probe=self._probe)
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
            self._engine: Engine | None = engines.acquire(self.url, timeout)
        except (ImportError, ArgumentError) as exc:  # a missing driver; NoSuchModuleError is an ArgumentError
            raise ConfigError(f"{where}: {exc}; {DRIVERS}") from None
        try:
            if self._engine.dialect.is_async:
                raise ConfigError(f"{where} names an asyncio driver; use postgresql+psycopg:// or mysql+pymysql://")
            self._statements()
            self.schema_version = self._setup()
        except BaseException:
            self.close()
            raise

    # -- values ----------------------------------------------------------------------------------------
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

    def write_many(self, user: str, items: list[tuple[str, Any, float]], pointers: list[Pointer],
                   quota: int | None, expect: Mapping[str, str | None] | None = None) -> None:
        for _, data, _ in items:
            if self._max_value is not None and len(data) > self._max_value:
                raise StoreValueError(
                    f"value of {len(data)} bytes is too large for the MySQL/MariaDB server at {self.masked_url}: "
                    f"it takes at most {self._max_value} bytes (half its max_allowed_packet); raise max_allowed_packet")
        now = self._clock()
        rows = [{"user_id": user, "key": key, "value": bytes(data), "expires_at": now + ttl, "size": len(data)}
                for key, data, ttl in items]
        rows += [{"user_id": user, "key": name, "value": target.encode("ascii", "replace"), "expires_at": now + ttl, "size": 0}
                 for name, target, ttl in pointers]
        new_keys = [key for key, _, _ in items]
        adding = sum(len(data) for _, data, _ in items)

        def work(conn: Connection) -> int:
            pointer_rows.check(conn, self._locking, user, expect, self._clock())  # first: else nothing changes
            plans = histories.plan(conn, self._rows_in, user, pointers, now, self.values_per_store)
            evicting = sorted({key for _, _, evicted in plans for key in evicted} - set(new_keys))
            if quota is not None and adding:  # evicted values free their bytes for this very write
                used = conn.execute(self._used, {"u": user, "now": now, "keys": new_keys + evicting}).scalar() or 0
                if used + adding > quota:
                    raise QuotaExceeded(f"this user's ServerStore values would take {used + adding:,} bytes, more "
                                        f"than STATE_MAX_USER_BYTES = {quota:,}")
            gone = conn.execute(self._evict, {"u": user, "keys": evicting}).rowcount if evicting else 0
            conn.execute(self._upsert, rows + [histories.row(user, name, entries, expires)
                                               for name, (entries, expires), _ in plans])
            return gone

        self.evicted_per_store += self._transaction(user, work)
        self._maybe_sweep(now)

    def alive(self, user: str, key: str) -> bool:
        args = {"u": user, "k": key, "now": self._clock()}
        return self._run(lambda conn: conn.execute(self._alive, args).first()) is not None

    def expiry(self, user: str, key: str) -> float | None:
        """When a live value expires (epoch seconds, as stored), or None: the query of ``alive``."""
        args = {"u": user, "k": key, "now": self._clock()}
        found = self._run(lambda conn: conn.execute(self._alive, args).scalar())
        return None if found is None else float(found)

    def pointer(self, user: str, name: str) -> str | None:
        raw = self._run(lambda conn: conn.execute(self._select, {"u": user, "k": name, "now": self._clock()}).scalar())
        target = bytes(raw).decode("ascii", "replace") if raw is not None else None
        return target if is_key(target) else None

    def touch(self, user: str, key: str, ttl: float) -> bool:
        if key.startswith(POINTER_PREFIX):
            return self._transaction(user, lambda conn: pointer_rows.touch(conn, self._locking, self._touch, user, key,
                                                                           ttl, self._clock()))
        now = self._clock()
        args = {"u": user, "k": key, "now": now, "until": now + ttl}
        return self._run(lambda conn: conn.execute(self._touch, args).rowcount) == 1

    def delete(self, user: str, key: str) -> bool:
        return self._run(lambda conn: conn.execute(self._delete, {"u": user, "k": key}).rowcount) == 1

    def release(self, user: str, pointer: str, key: str) -> bool:
        now, name = self._clock(), history.history_name(pointer)

        def work(conn: Connection) -> bool:
            rows = {k: (bytes(v), e) for k, v, e in conn.execute(self._rows_in, {"u": user, "now": now,
                                                                                  "keys": [pointer, name]})}
            if pointer in rows and rows[pointer][0] == key.encode():
                value, expires = rows.get(name, (b"", 0.0))
                marked = history.mark(history.parse(value), key)
                conn.execute(self._upsert, [histories.row(user, pointer, marked, max(expires, rows[pointer][1]))])
                return False
            return conn.execute(self._delete, {"u": user, "k": key}).rowcount == 1

        return self._transaction(user, work)

    # -- users -----------------------------------------------------------------------------------------
    def delete_user(self, user: str) -> int:
        return self._run(lambda conn: conn.execute(self._delete_user, {"u": user}).rowcount)

    def move_user(self, source: str, target: str) -> int:
        args = {"src": source, "dst": target, "now": self._clock()}

        def work(conn: Connection) -> int:
            conn.execute(self._expired_of, {"u": target, "now": args["now"]})  # not the target's any more
            histories.merge(conn, self._histories_of, self._upsert, source, target, args["now"])
            moved = conn.execute(self._move, args).rowcount
            conn.execute(self._move_pointers, args)
            conn.execute(self._delete_user, {"u": source})
            return moved

        return self._transaction(target, work)

    def usage(self, user: str) -> list[tuple[str, int, float]]:
        t = self.table
        query = select(t.c.key, t.c.size, t.c.expires_at).where(t.c.user_id == user, t.c.expires_at > self._clock(),
                                                                 t.c.key.not_like(POINTER_PREFIX + "%"))
        return [(k, int(s), float(e)) for k, s, e in self._run(lambda conn: conn.execute(query).all())]

    def inventory(self, user: str | None = None) -> Iterator[Entry]:
        return _inventory.inventory(self, user)  # keyset pages (.inventory)

    def users(self) -> Iterator[str]:
        return _inventory.users(self)

    def gc(self, dry_run: bool = False, batch: int = 1000, progress: Callable[[int], None] | None = None) -> dict:
        return _inventory.gc(self, dry_run, batch, progress)  # the sweep's DELETE, then the bound per user

    # -- lifecycle -------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Figures this process knows without asking the server (no table scans)."""
        dialect = self.engine.dialect
        return {"dialect": dialect.name, "driver": dialect.driver, "url": self.masked_url,
                "table": self.table.name, "schema_version": self.schema_version, "sweeps": self.sweeps,
                "swept_rows": self.swept, "pool": self.engine.pool.status(), "outages": self.breaker.outages,
                "down": self.breaker.is_open, "evicted_per_store": self.evicted_per_store}

    def close(self) -> None:
        engine, self._engine = getattr(self, "_engine", None), None
        if engine is not None:
            engines.release(self.url, self._pid)

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
                    self._engine, self._pid = engines.acquire(self.url, self.timeout), os.getpid()
        if self._engine is None:
            raise BackendUnavailable(f"the database backend for {self.masked_url} is closed")
        return self._engine

    # -- internals -------------------------------------------------------------------------------------
    def _statements(self) -> None:
        """Build every statement once; SQLAlchemy caches their compiled form."""
        t, dialect = self.table, self._engine.dialect.name
        upsert = INSERT[dialect](t)
        user, key, now = t.c.user_id == bindparam("u"), t.c.key == bindparam("k"), bindparam("now")
        self._select = select(t.c.value).where(user, key, t.c.expires_at > now)
        self._binary_select = None
        if dialect == "postgresql" and self._engine.dialect.driver == "psycopg":
            self._binary_select = f'SELECT value FROM "{t.name}" WHERE user_id = %s AND key = %s AND expires_at > %s'
        self._alive = select(t.c.expires_at).where(user, key, t.c.expires_at > now)
        self._used = select(func.sum(t.c.size)).where(user, t.c.expires_at > now,
                                                      t.c.key.not_in(bindparam("keys", expanding=True)))
        self._touch = update(t).where(user, key, t.c.expires_at > now).values(expires_at=bindparam("until"))
        self._delete = delete(t).where(user, key)
        in_keys = t.c.key.in_(bindparam("keys", expanding=True))
        self._rows_in = select(t.c.key, t.c.value, t.c.expires_at).where(user, in_keys, t.c.expires_at > now)
        self._locking = self._rows_in.with_for_update()  # not rendered on SQLite, whose writers take turns
        self._evict = delete(t).where(user, in_keys)
        self._histories_of = select(t.c.key, t.c.value, t.c.expires_at).where(
            user, t.c.key.like(POINTER_PREFIX + "%" + history.SUFFIX), t.c.expires_at > now)
        self._delete_user = delete(t).where(user)
        self._expired_of = delete(t).where(user, t.c.expires_at <= now)
        columns = [t.c.user_id, t.c.key, t.c.value, t.c.expires_at, t.c.size]
        moving = select(bindparam("dst", type_=String(255)), t.c.key, t.c.value, t.c.expires_at, t.c.size).where(
            t.c.user_id == bindparam("src"), t.c.expires_at > now)
        pointers = t.c.key.like(POINTER_PREFIX + "%")
        # SQLAlchemy 2 reports no rowcount for INSERT ... SELECT unless asked (PostgreSQL gave -1)
        move = upsert.from_select(columns, moving.where(~pointers)).execution_options(preserve_rowcount=True)
        move_pointers = upsert.from_select(columns, moving.where(pointers))
        changed = {"value": None, "expires_at": None, "size": None}
        if dialect in MYSQL:
            self._upsert = upsert.on_duplicate_key_update({c: upsert.inserted[c] for c in changed})
            self._move, self._move_pointers = move.prefix_with("IGNORE"), move_pointers.prefix_with("IGNORE")
            limit = dict.fromkeys(("mysql_limit", "mariadb_limit"), self.sweep_limit)  # each dialect its own
            self._sweep = delete(t).where(t.c.expires_at <= now).with_dialect_options(**limit)
        else:
            self._upsert = upsert.on_conflict_do_update(index_elements=[t.c.user_id, t.c.key],
                                                        set_={c: upsert.excluded[c] for c in changed})
            self._move, self._move_pointers = move.on_conflict_do_nothing(), move_pointers.on_conflict_do_nothing()
            doomed = select(t.c.user_id, t.c.key).where(t.c.expires_at <= now).limit(self.sweep_limit)
            # expires_at is checked again: a row rewritten since the subquery read it must survive
            self._sweep = delete(t).where(tuple_(t.c.user_id, t.c.key).in_(doomed), t.c.expires_at <= now)
        self._lock_sql = {"postgresql": "SELECT pg_advisory_xact_lock(hashtextextended(%(u)s, 0))",
                          "mysql": "SELECT GET_LOCK(%(u)s, 10)", "mariadb": "SELECT GET_LOCK(%(u)s, 10)"}.get(dialect)

    def _setup(self) -> int:
        """Connect, create the tables if needed, check the schema version; runs once per backend."""
        try:
            self._run(lambda conn: None)  # reachable? (else retries, then BackendUnavailable, logged once)
            for attempt in range(5):
                try:
                    with self.engine.connect() as conn:
                        self.table.metadata.create_all(conn)  # checkfirst
                    break
                except DBAPIError:  # another process created a table after our check ("already exists"
                    if attempt == 4:  # or, on PostgreSQL, a unique violation in its catalog): check again
                        raise
                    time.sleep(0.05 * (attempt + 1))
            if self._engine.dialect.name in MYSQL:
                packet = self._attempt(lambda conn: conn.execute(text("SELECT @@max_allowed_packet")).scalar())
                self._max_value = int(packet) // 2 - 65536  # measured: MariaDB refuses values above half of it
            return self._attempt(lambda conn: check_version(conn, self.table, self.meta_table, self.masked_url))
        except SQLAlchemyError as exc:
            raise self._unavailable(f"{self.masked_url} refused to set up table {self.table.name}", exc) from exc

    def _transaction(self, user: str, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction holding this user's lock: all of it or none of it."""
        dialect = self._engine.dialect.name

        def run(conn: Connection) -> T:
            conn.exec_driver_sql(BEGIN[dialect])
            try:
                if self._lock_sql is not None:
                    conn.exec_driver_sql(self._lock_sql, {"u": "dash-state:" + user})
                result = work(conn)
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            finally:  # MySQL's named lock outlives transactions: release it after COMMIT/ROLLBACK
                if dialect in MYSQL:
                    conn.exec_driver_sql("DO RELEASE_LOCK(%(u)s)", {"u": "dash-state:" + user})
            return result

        return self._run(run)

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

    def _probe(self) -> None:
        """While the circuit is open: ``SELECT 1`` on one connection, without retries (the breaker's
        probe). The pool's pre-ping replaces a connection to the old server first."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def _run(self, work: Callable[[Connection], T]) -> T:
        """One operation with retries, through the circuit breaker; failures become BackendUnavailable."""
        def guarded() -> T:
            try:
                return self._attempt(work)
            except SQLAlchemyError as exc:  # not a connection problem: the server refused the statement
                raise self._unavailable(f"{self.masked_url} refused the operation", exc) from exc

        return self.breaker.call(guarded, "use the database")

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
                    raise self._unavailable(f"cannot reach {self.masked_url} (attempts: {attempt + 1})", exc) from exc
                time.sleep(BACKOFF * 2 ** attempt)
                attempt += 1

    def _unavailable(self, what: str, exc: BaseException) -> BackendUnavailable:
        return BackendUnavailable(f"dash-state database backend: {what}: {self._describe(exc)}")

    def _describe(self, exc: BaseException) -> str:
        """The driver's own first line, without SQL, parameters (values can be 50 MB) or the password."""
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        return first.replace(str(self.url.password), "***") if self.url.password else first


def from_config(config: Config, seal: Seal) -> DatabaseBackend:
    return DatabaseBackend(seal, config["STATE_DATABASE_URL"], config["STATE_DATABASE_TABLE"], config["STATE_RETRIES"],
                           url_source=config.sources.get("STATE_DATABASE_URL", "default"),
                           timeout=config["STATE_BACKEND_TIMEOUT"], values_per_store=config["STATE_VALUES_PER_STORE"])


__all__ = ["DatabaseBackend", "SCHEMA_VERSION", "from_config", "define_tables"]
