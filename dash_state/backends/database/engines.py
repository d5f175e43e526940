"""SQLAlchemy engines for the database backend: one per (URL, process), checked URLs, SQLite pragmas.

* ``pool_pre_ping`` replaces connections a restarted server dropped; a forked worker never uses its
  parent's connections (they are forgotten, not closed, after a fork).
* Connections run in autocommit mode; a write opens its own transaction explicitly (see
  :data:`BEGIN`), so reads stay single statements and writes are all or nothing.
* SQLite runs in WAL mode with a busy timeout: writers in other threads and processes wait their
  turn instead of failing with "database is locked".
"""
from __future__ import annotations

import os
import threading
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from dash_state.errors import ConfigError

DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")
MYSQL = ("mysql", "mariadb")
DRIVERS = ('pip install "dash-state[postgres]" installs the driver of postgresql+psycopg://, '
           '"dash-state[mysql]" that of mysql+pymysql://')
#: How a write transaction starts on an autocommit connection: SQLite takes the write lock at once.
BEGIN = {"sqlite": "BEGIN IMMEDIATE", "postgresql": "BEGIN", "mysql": "START TRANSACTION",
         "mariadb": "START TRANSACTION"}

_engines: dict[tuple[str, int], list] = {}  # -> [engine, number of backends using it]
_engines_lock = threading.Lock()


def check_url(raw: str, source: str) -> URL:
    """Parse the URL, refusing what cannot work with a ConfigError that names the setting."""
    where = f"STATE_DATABASE_URL (from {source})"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"{where} is not a database URL such as postgresql+psycopg://user@host/db") from None
    dialect = url.get_backend_name()
    if dialect not in DIALECTS:
        raise ConfigError(f"{where} uses {dialect!r}; the database backend supports sqlite, postgresql, "
                          f"mysql and mariadb ({DRIVERS})")
    if dialect == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise ConfigError(f"{where}: an in-memory SQLite database is private to one connection; name a "
                              "file (sqlite:///state.db) or use the memory backend")
        if not url.database.startswith("file:") and not os.path.isabs(url.database):
            url = url.set(database=os.path.abspath(url.database))
    return url


def acquire(url: URL, timeout: float) -> Engine:
    key = (url.render_as_string(hide_password=False), os.getpid())
    with _engines_lock:
        entry = _engines.get(key)
        if entry is None:
            entry = _engines[key] = [_create(url, timeout), 0]
        entry[1] += 1
        return entry[0]


def release(url: URL, pid: int) -> None:
    key = (url.render_as_string(hide_password=False), pid)
    with _engines_lock:
        entry = _engines.get(key, [None, 0])
        entry[1] -= 1
        if entry[0] is not None and entry[1] <= 0:
            del _engines[key]
            entry[0].dispose()


def _create(url: URL, timeout: float) -> Engine:
    args: dict[str, Any] = {}
    if url.get_backend_name() != "sqlite" and "connect_timeout" not in url.query:
        args["connect_timeout"] = max(1, round(timeout))
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
