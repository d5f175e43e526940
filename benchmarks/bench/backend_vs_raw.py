"""Backend vs raw client: each byte backend's ``set`` + ``get`` against its raw client (redis-py,
SQLAlchemy Core) moving the same sealed bytes, i.e. what dash-state's backend layer itself costs."""
from __future__ import annotations

import gc
import statistics
import time
import uuid
from collections.abc import Callable

import numpy as np
from benchdata import SEED

from .apps import state_settings
from .budget import Clock
from .codec_costs import dash_state_internals
from .env import RUN, Env
from .messages import short_error


class RawSql:
    """SQLAlchemy Core on a table shaped like the database backend's: upsert + select in autocommit,
    as a hand-written cache would do it (SQLite with the backend's pragmas)."""

    def __init__(self, url: str, table: str):
        import sqlalchemy as sa

        self.sa, self.table = sa, table
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        if self.engine.dialect.name == "sqlite":
            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                for pragma in ("PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"):
                    cursor.execute(pragma)
                cursor.close()
        blob = "BYTEA" if self.engine.dialect.name == "postgresql" else "BLOB"
        with self.engine.connect() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
            conn.execute(sa.text(f'CREATE TABLE "{table}" (user_id VARCHAR(255) NOT NULL, "key" VARCHAR(255) NOT NULL, '
                                 f'value {blob} NOT NULL, expires_at DOUBLE PRECISION NOT NULL, '
                                 f'PRIMARY KEY (user_id, "key"))'))
            conn.execute(sa.text(f'CREATE INDEX "ix_{table}_expires_at" ON "{table}" (expires_at)'))
        self.upsert = sa.text(f'INSERT INTO "{table}" (user_id, "key", value, expires_at) VALUES (:u, :k, :v, :e) '
                              f'ON CONFLICT (user_id, "key") DO UPDATE SET value = excluded.value, '
                              f'expires_at = excluded.expires_at')
        self.select = sa.text(f'SELECT value FROM "{table}" WHERE user_id = :u AND "key" = :k AND expires_at > :now')
        self.remove = sa.text(f'DELETE FROM "{table}" WHERE user_id = :u AND "key" = :k')

    def set_get(self, key: str, data: bytes) -> bytes:
        with self.engine.connect() as conn:
            conn.execute(self.upsert, {"u": "bench-user", "k": key, "v": data, "e": time.time() + 3600})
        with self.engine.connect() as conn:
            return conn.execute(self.select, {"u": "bench-user", "k": key, "now": time.time()}).scalar_one()

    def delete(self, key: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(self.remove, {"u": "bench-user", "k": key})

    def close(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(self.sa.text(f'DROP TABLE IF EXISTS "{self.table}"'))
        self.engine.dispose()


def measure_backend_vs_raw(env: Env, quick: bool, clock: Clock) -> list[dict]:
    """1 KB and 10 MB (--quick: 1 MB) values on redis, sqlite and postgres; a fresh key per run."""
    try:
        freeze, seal, create_backend, build_config = dash_state_internals()
    except Exception as exc:
        return [{"backend": "all", "status": f"unavailable: {short_error(exc)}"}]
    sizes = [("1 KB", 1024, 5 if quick else 50), ("1 MB" if quick else "10 MB", (1 << 20) if quick else (10 << 20),
                                                  3 if quick else 15)]
    rng = np.random.default_rng(SEED)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
    rows = []
    for kind in ("redis", "sqlite", "postgres"):
        reason = {"redis": env.redis_error, "postgres": env.postgres_error}.get(kind)
        if reason or clock.over():
            rows += [{"backend": kind, "size": label, "status": f"unavailable: {reason}" if reason else
                      "not run: time budget"} for label, _, _ in sizes]
            continue
        settings = state_settings(kind, env)
        try:
            backend = create_backend(settings["STATE_BACKEND"], build_config((settings, "benchmark")), seal)
        except Exception as exc:
            rows += [{"backend": kind, "size": label, "status": f"failed: {short_error(exc)}"} for label, _, _ in sizes]
            continue
        if kind == "redis":
            r, prefix = env.redis(), env.prefix("rawclient")
            raw_set_get = lambda key, data: (r.set(prefix + key, data, ex=3600), r.get(prefix + key))[1]  # noqa: E731
            raw_delete = lambda key: r.delete(prefix + key)  # noqa: E731
            raw_close: Callable[[], None] = lambda: None  # noqa: E731
            what = "redis-py SET (EX 3600) + GET"
        else:
            url = settings["STATE_DATABASE_URL"]
            sql = RawSql(url, f"raw_bench_{RUN}")
            raw_set_get, raw_delete, raw_close = sql.set_get, sql.delete, sql.close
            what = "SQLAlchemy INSERT ... ON CONFLICT DO UPDATE + SELECT (autocommit)"
        try:
            for label, nbytes, runs in sizes:
                text = rng.choice(alphabet, nbytes).tobytes().decode("ascii")
                data = bytes(seal.dump("k" * 22, freeze(text)))
                b_samples, r_samples = [], []
                try:
                    for i in range(2 + runs):
                        key = uuid.uuid4().hex[:22]
                        snapshot = freeze(text)  # untimed, a new snapshot each time as each write in an app
                        gc.collect()
                        start = time.perf_counter()
                        backend.set("bench-user", key, snapshot, 3600)
                        got = backend.get("bench-user", key)
                        b = time.perf_counter() - start
                        if got is None or len(got.thaw()) != nbytes:
                            raise AssertionError("the backend returned another value")
                        backend.delete("bench-user", key)
                        key = uuid.uuid4().hex[:22]
                        gc.collect()
                        start = time.perf_counter()
                        raw = raw_set_get(key, data)
                        w = time.perf_counter() - start
                        if len(raw) != len(data):
                            raise AssertionError("the raw client returned other bytes")
                        raw_delete(key)
                        if i >= 2:
                            b_samples.append(b * 1000)
                            r_samples.append(w * 1000)
                    bm, rm = statistics.median(b_samples), statistics.median(r_samples)
                    rows.append({"backend": kind, "size": label, "status": "ok", "bytes_moved": len(data), "runs": runs,
                                 "backend_median_ms": bm, "backend_p95_ms": float(np.percentile(b_samples, 95)),
                                 "raw_median_ms": rm, "raw_p95_ms": float(np.percentile(r_samples, 95)),
                                 "ratio": bm / rm, "raw_client": what})
                except Exception as exc:
                    rows.append({"backend": kind, "size": label, "status": f"failed: {short_error(exc)}"})
        finally:
            backend.close()
            raw_close()
    return rows
