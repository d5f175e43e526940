"""The database backend's tables, and their versions.

On PostgreSQL the DDL is::

    CREATE TABLE dash_state_values (
        user_id VARCHAR(255) NOT NULL,
        key VARCHAR(255) NOT NULL,
        value BYTEA NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,   -- epoch seconds: keep the hosts' clocks in sync
        size BIGINT DEFAULT 0 NOT NULL,         -- bytes of a value (0 for pointers): per-user quotas
        PRIMARY KEY (user_id, key)
    );
    CREATE INDEX ix_dash_state_values_expires_at ON dash_state_values (expires_at);
    ALTER TABLE dash_state_values ALTER COLUMN value SET STORAGE EXTERNAL;  -- values are compact: no pglz
    CREATE TABLE dash_state_values_meta (name VARCHAR(64) NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name));
    INSERT INTO dash_state_values_meta VALUES ('schema', 2);  -- a newer version is refused

MySQL/MariaDB use ``LONGBLOB`` (a BLOB stops at 64 KB) and a binary (case-sensitive) collation for the
keys; SQLite uses ``BLOB`` and ``DOUBLE``. A schema at an older version is upgraded through
:data:`MIGRATIONS`; one at a newer version is refused, so an old dash-state never misreads a new table.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from dash_state.backends.base import POINTER_PREFIX
from dash_state.backends.database.engines import MYSQL
from dash_state.errors import ConfigError

SCHEMA_VERSION = 2
_KEY = String(255).with_variant(mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), *MYSQL)
_VALUE = LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL)
#: Each dialect's INSERT, which knows its upsert syntax.
INSERT: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert, **dict.fromkeys(MYSQL, mysql.insert)}


def define_tables(name: str) -> tuple[Table, Table]:
    """The values table and its meta table (the DDL above)."""
    metadata = MetaData()
    values = Table(name, metadata, Column("user_id", _KEY, primary_key=True), Column("key", _KEY, primary_key=True),
                   Column("value", _VALUE, nullable=False), Column("expires_at", Double, nullable=False),
                   Column("size", BigInteger, nullable=False, server_default=text("0")),
                   Index(f"ix_{name}_expires_at", "expires_at"))
    meta = Table(f"{name}_meta", metadata, Column("name", String(64), primary_key=True),
                 Column("version", Integer, nullable=False))
    # Values are Arrow IPC, JSON or ciphertext: PostgreSQL's default pglz TOAST compression made a
    # 7 MB write take 0.9 s instead of 0.09 s.
    event.listen(values, "after_create", DDL(f'ALTER TABLE "{name}" ALTER COLUMN value SET STORAGE EXTERNAL')
                 .execute_if(dialect="postgresql"))
    return values, meta


def _add_size(conn: Connection, table: Table) -> None:
    """Version 1 -> 2: the ``size`` column, filled from the stored values (pointers keep 0)."""
    def has_size() -> bool:
        return "size" in {c["name"] for c in inspect(conn).get_columns(table.name)}

    if not has_size():
        try:
            conn.execute(text(f'ALTER TABLE {conn.dialect.identifier_preparer.quote(table.name)} '
                              "ADD COLUMN size BIGINT NOT NULL DEFAULT 0"))
        except DBAPIError:  # workers starting together: another one added it since we looked
            if not has_size():
                raise
    conn.execute(update(table).where(table.c.size == 0, table.c.key.not_like(POINTER_PREFIX + "%"))
                 .values(size=func.length(table.c.value)))


#: version n -> the function that upgrades a schema at version n to n + 1 (idempotent: processes race).
MIGRATIONS: dict[int, Callable[[Connection, Table], None]] = {1: _add_size}


def check_version(conn: Connection, values: Table, meta: Table, where: str) -> int:
    """Record the schema version of a new table, upgrade an old one, refuse a newer one."""
    dialect = conn.dialect.name
    insert = INSERT[dialect](meta)
    insert = insert.prefix_with("IGNORE") if dialect in MYSQL else insert.on_conflict_do_nothing()
    conn.execute(insert, {"name": "schema", "version": SCHEMA_VERSION})
    version = conn.execute(select(meta.c.version).where(meta.c.name == "schema")).scalar_one()
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"table {values.name} at {where} has schema version {version}, but this dash-state knows only "
            f"version {SCHEMA_VERSION}: upgrade dash-state in every process, or set STATE_DATABASE_TABLE to "
            "another table")
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](conn, values)
        version += 1
        conn.execute(update(meta).where(meta.c.name == "schema").values(version=version))
    return version
