"""Services and temporary places: what the run creates outside this process (removed at the end),
whether Redis, PostgreSQL, dash-extensions and pyarrow are there, and the versions the report records."""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from . import REPO

RUN = uuid.uuid4().hex[:8]  # in every Redis prefix and PostgreSQL table name of this run


class Env:
    """Everything the run creates outside this process, so all of it is removed at the end."""

    def __init__(self, redis_url: str, postgres_url: str):
        self.redis_url, self.postgres_url = redis_url, postgres_url
        self.tmp = Path(tempfile.mkdtemp(prefix="dash-state-run-"))
        # the local backend's stores and the near tiers: on tmpfs, as deployed (/dev/shm is the default)
        self.shm = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()) / f"dash-state-run-{RUN}"
        self.prefixes: list[str] = []
        self.pg_tables: list[str] = []
        self._redis = None
        self.redis_error = self._probe_redis()
        self.postgres_error = self._probe_postgres()
        self.dash_extensions_error = None if importlib.util.find_spec("dash_extensions") else \
            "dash-extensions is not installed (pip install dash-extensions==2.0.6)"
        self.arrow_error = None if importlib.util.find_spec("pyarrow") else "pyarrow is not installed"

    def prefix(self, what: str) -> str:
        prefix = f"bench-{RUN}-{what}-{uuid.uuid4().hex[:4]}:"
        self.prefixes.append(prefix)
        return prefix

    def shm_dir(self, what: str) -> str:
        """A fresh directory name under the run's tmpfs directory (a local store, a near tier's base)."""
        self.shm.mkdir(parents=True, exist_ok=True)
        return str(self.shm / f"{what}-{uuid.uuid4().hex[:6]}")

    def pg_table(self) -> str:
        table = f"dash_state_bench_{RUN}_{len(self.pg_tables)}"
        self.pg_tables.append(table)
        return table

    def sqlite_url(self) -> str:
        return f"sqlite:///{self.tmp}/state-{uuid.uuid4().hex[:6]}.db"

    def redis(self):
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=60, socket_connect_timeout=5)
        return self._redis

    def _probe_redis(self) -> str | None:
        try:
            self.redis().ping()
            return None
        except Exception as exc:
            return f"Redis at {self.redis_url}: {type(exc).__name__}: {exc}"

    def _probe_postgres(self) -> str | None:
        try:
            import sqlalchemy as sa

            engine = sa.create_engine(self.postgres_url, connect_args={"connect_timeout": 5})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            return None
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"PostgreSQL at {self.postgres_url}: {type(exc).__name__}: {first}"

    def redis_keys(self, prefix: str) -> list[bytes]:
        return list(self.redis().scan_iter(match=prefix + "*", count=1000))

    def clear_prefix(self, prefix: str) -> None:
        if self.redis_error:
            return
        keys = self.redis_keys(prefix)
        for start in range(0, len(keys), 500):
            self.redis().delete(*keys[start:start + 500])

    def cleanup(self) -> list[str]:
        notes = []
        for prefix in self.prefixes:
            try:
                self.clear_prefix(prefix)
            except Exception as exc:
                notes.append(f"redis cleanup of {prefix} failed: {exc}")
        if self.pg_tables and not self.postgres_error:
            try:
                import sqlalchemy as sa

                engine = sa.create_engine(self.postgres_url)
                with engine.begin() as conn:
                    for table in self.pg_tables:
                        for name in (table, f"{table}_meta"):
                            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
                engine.dispose()
            except Exception as exc:
                notes.append(f"dropping PostgreSQL tables failed: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.shm, ignore_errors=True)
        return notes


def environment(env: Env) -> dict:
    """What was measured, with what: package versions, server versions, the commit of dash-state."""
    from importlib.metadata import version

    packages = {}
    for name in ("dash", "dash-state", "dash-extensions", "flask", "pandas", "numpy", "pyarrow", "orjson",
                 "cryptography",
                 "redis", "sqlalchemy", "psycopg", "matplotlib", "psutil"):
        try:
            packages[name] = version(name)
        except Exception:
            packages[name] = None
    servers = {}
    if not env.redis_error:
        try:
            servers["redis"] = env.redis().info("server").get("redis_version")
        except Exception:
            pass
    if not env.postgres_error:
        try:
            import sqlalchemy as sa

            engine = sa.create_engine(env.postgres_url)
            with engine.connect() as conn:
                servers["postgres"] = conn.execute(sa.text("SHOW server_version")).scalar()
            engine.dispose()
        except Exception:
            pass
    import sqlite3

    servers["sqlite"] = sqlite3.sqlite_version
    git = {}
    try:  # which dash-state was measured: the commit, and whether dash_state/ had uncommitted changes
        git["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                       text=True, timeout=10, check=False).stdout.strip() or None
        changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "dash_state"],
                                 capture_output=True, text=True, timeout=10, check=False).stdout.splitlines()
        git["dash_state_uncommitted_files"] = len(changed)
    except Exception:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "packages": packages, "servers": servers, "git": git,
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def loadavg() -> list[float] | None:
    """Recorded at the start, before each size and at the end: a busy machine inflates the times."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None

