"""Backend benchmark: ServerStore on every backend against dcc.Store and dash-extensions ``Serverside``.

One script, one run, the same data for every scenario. Four data sizes: a 10 KB JSON value (a dict of
lists and strings) and DataFrames of 1k, 100k and 1M rows (``roundtrip.make_frame``: fixed seed; int,
two string columns, datetime, int, float). Per size, these scenarios run interleaved, run by run:

========================  =====================================================================
``dispatch``              Dash's own cost: the same two callbacks on a dcc.Store with value ``1``
``dcc_store``             dcc.Store; W returns ``df.to_dict("records")``, R rebuilds the frame
``serverside_fs``         dash-extensions 2.x ``Serverside(df)`` with ``FileSystemBackend`` (tmp dir)
``serverside_redis``      ``Serverside(df)`` with ``RedisBackend`` (db 15, unique key prefix)
``ss_memory``             ServerStore, ``STATE_BACKEND="memory"``
``ss_redis``              ServerStore, ``STATE_BACKEND="redis"`` (db 15, unique ``STATE_KEY_PREFIX``)
``ss_sqlite``             ServerStore, ``STATE_BACKEND="database"`` on a sqlite file in a tmp dir
``ss_postgres``           ServerStore, ``STATE_BACKEND="database"`` on PostgreSQL, unique table
``raw_redis``             no Dash: redis-py SET+GET of the bytes ServerStore(redis) stores (for
                          the "ServerStore(redis) <= 1.2 x raw redis-py" target)
========================  =====================================================================

The Dash scenarios are measured as in ``roundtrip.py``: two callbacks, W (button -> store ``data``) and
R (store ``data`` -> a Div), driven through Flask's test client with ``tests/dash_client.py``; one round
trip = wall time of W's POST + wall time of R's POST, R being sent what W returned. The simulated
browser's JSON work is outside the timed region; ``gc.collect()`` runs before each round trip, outside
it too. Median and p90 (linear interpolation) after warm-ups.

A second part measures each byte-storing ServerStore backend's own ``set`` + ``get`` (through the
backend object, sealing included) against its raw client moving the same bytes (redis-py SET/GET;
SQLAlchemy ``INSERT ... ON CONFLICT DO UPDATE`` + ``SELECT`` on an equivalent table), at 1 KB and 10 MB.

Run from the repo root::

    .venv/bin/python benchmarks/backends.py                    # full run, writes benchmarks/backends.png
    .venv/bin/python benchmarks/backends.py --quick            # smoke run (< 60 s), no chart
    .venv/bin/python benchmarks/backends.py --json out.json --profile

Needs matplotlib for the chart (a benchmark-only dependency: ``.venv/bin/pip install matplotlib``).
Redis at redis://127.0.0.1:6379/15 and PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:5432/test
by default (``--redis-url``, ``--postgres-url``); a scenario whose server or backend module is missing
is reported as "unavailable: <reason>" and the rest still runs.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import platform
import shutil
import statistics
import string
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

import dash  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from dash import Input, Output, dcc, html  # noqa: E402

from dash_client import DashClient  # noqa: E402
from dash_state import ServerStore  # noqa: E402
from dash_state.codecs import freeze  # noqa: E402
from dash_state.config import build_config  # noqa: E402
from dash_state.defaults import DEFAULTS  # noqa: E402
from dash_state.wire import Wire, derive_secret  # noqa: E402
from roundtrip import TimedHttp, make_frame  # noqa: E402  (same frame, same timing wrapper)

logging.getLogger("dash_state").setLevel(logging.WARNING)

SECRET_KEY = "dash-state-backends-benchmark"
SEED = 20240601
RUN = uuid.uuid4().hex[:8]
BUTTON, STORE, OUT = "go", "store", "out"
SKIP_SECONDS = 60.0  # a scenario whose first (warm-up) round trip takes longer is skipped at that size

# Targets (ratios within one run)
MEMORY_VS_FS = 0.1  # ServerStore(memory) <= 0.1 x Serverside(FileSystem)
REDIS_VS_SERVERSIDE = 0.5  # ServerStore(redis) <= 0.5 x Serverside(Redis)
REDIS_VS_RAW = 1.2  # ServerStore(redis) <= 1.2 x (dispatch baseline + raw redis SET+GET of the same bytes)
BACKEND_VS_RAW = 1.3  # backend set+get <= 1.3 x the raw client moving the same bytes


# -- data ---------------------------------------------------------------------------------------------
def make_json(target_bytes: int = 10 * 1024, seed: int = SEED) -> dict:
    """A JSON-compatible dict of lists and strings, about ``target_bytes`` as compact JSON."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(string.ascii_lowercase))
    value: dict[str, Any] = {"title": "Quarterly sales by product", "labels": [], "values": [], "notes": []}
    while len(json.dumps(value, separators=(",", ":"))) < target_bytes:
        i = len(value["labels"])
        value["labels"].append(f"product-{i:03d}")
        value["values"].append(round(float(rng.uniform(0, 1000)), 2))
        value["notes"].append("".join(rng.choice(letters, 12)))
    return value


class Size:
    def __init__(self, key: str, label: str, make: Callable[[], Any], rows: int | None):
        self.key, self.label, self.rows = key, label, rows
        self.value = make()
        if rows is None:
            self.expected = f"{len(self.value['values'])} values"
            self.nbytes = len(json.dumps(self.value, separators=(",", ":")))
        else:
            self.expected = f"{rows} rows"
            self.nbytes = int(self.value.memory_usage(deep=True).sum())

    def describe(self) -> dict:
        if self.rows is None:
            return {"label": self.label, "kind": "json", "compact_json_bytes": self.nbytes}
        return {"label": self.label, "kind": "frame", "rows": self.rows, "memory_bytes": self.nbytes,
                "columns": {c: str(t) for c, t in self.value.dtypes.items()}}


def sizes_for(quick: bool) -> list[Size]:
    frames = [("1k", "1k rows", 1_000), ("10k", "10k rows", 10_000)] if quick else \
        [("1k", "1k rows", 1_000), ("100k", "100k rows", 100_000), ("1m", "1M rows", 1_000_000)]
    out = [Size("json", "10 KB JSON", make_json, None)]
    out += [Size(key, label, (lambda n=rows: make_frame(n)), rows) for key, label, rows in frames]
    return out


def summarize(value: Any) -> str:
    """What R returns: the check that R received the whole value."""
    if isinstance(value, pd.DataFrame):
        return f"{len(value)} rows"
    if isinstance(value, dict):
        return f"{len(value['values'])} values"
    raise TypeError(f"R expected a DataFrame or dict, got {type(value).__name__}")


# -- environment: servers and temporary places -----------------------------------------------------
class Env:
    """Everything the run creates outside this process, so it can all be removed at the end."""

    def __init__(self, redis_url: str, postgres_url: str):
        self.redis_url, self.postgres_url = redis_url, postgres_url
        self.tmp = Path(tempfile.mkdtemp(prefix="dash-state-bench-"))
        self.sqlite_url = f"sqlite:///{self.tmp}/bench.db"
        self.key_prefix = f"dash-state-bench-{RUN}:"  # ServerStore(redis)
        self.serverside_prefix = f"dash-ext-bench-{RUN}:"  # Serverside(Redis)
        self.raw_prefix = f"raw-bench-{RUN}:"  # raw redis-py
        self.pg_table = f"dash_state_bench_{RUN}"
        self.pg_raw_table = f"raw_bench_{RUN}"
        self.sqlite_raw_table = f"raw_bench_{RUN}"
        self._redis = None
        self.redis_error = self._probe_redis()
        self.postgres_error = self._probe_postgres()

    def redis(self):
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url)
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

            engine = sa.create_engine(self.postgres_url)
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            return None
        except Exception as exc:
            return f"PostgreSQL at {self.postgres_url}: {type(exc).__name__}: {str(exc).splitlines()[0]}"

    def clear_redis(self) -> None:
        if self.redis_error:
            return
        r = self.redis()
        for prefix in (self.key_prefix, self.serverside_prefix, self.raw_prefix):
            batch = []
            for key in r.scan_iter(match=prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    r.delete(*batch)
                    batch = []
            if batch:
                r.delete(*batch)

    def clear_tables(self) -> None:
        """Empty the ServerStore tables between sizes (outside timing), so they do not grow all run."""
        import sqlalchemy as sa

        for url, table in ((self.postgres_url, self.pg_table), (self.sqlite_url, "dash_state_values")):
            if url == self.postgres_url and self.postgres_error:
                continue
            try:
                engine = sa.create_engine(url)
                with engine.begin() as conn:
                    if sa.inspect(conn).has_table(table):
                        conn.execute(sa.text(f'DELETE FROM "{table}"'))
                engine.dispose()
            except Exception:
                pass

    def cleanup(self) -> list[str]:
        notes = []
        try:
            self.clear_redis()
        except Exception as exc:
            notes.append(f"redis cleanup failed: {exc}")
        if not self.postgres_error:
            import sqlalchemy as sa

            try:
                engine = sa.create_engine(self.postgres_url)
                with engine.begin() as conn:
                    for table in (self.pg_table, f"{self.pg_table}_meta", self.pg_raw_table):
                        conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
                engine.dispose()
            except Exception as exc:
                notes.append(f"dropping PostgreSQL tables failed: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return notes


def module_missing(name: str) -> str | None:
    if importlib.util.find_spec(f"dash_state.backends.{name}") is None:
        return f"dash_state/backends/{name}.py does not exist yet"
    return None


def state_settings(kind: str, env: Env) -> tuple[str, dict]:
    """(backend name, STATE_* settings) of one ServerStore scenario."""
    if kind == "memory":
        return "memory", {"STATE_BACKEND": "memory"}
    if kind == "redis":
        return "redis", {"STATE_BACKEND": "redis", "STATE_REDIS_URL": env.redis_url,
                         "STATE_KEY_PREFIX": env.key_prefix}
    if kind == "sqlite":
        return "database", {"STATE_BACKEND": "database", "STATE_DATABASE_URL": env.sqlite_url}
    return "database", {"STATE_BACKEND": "database", "STATE_DATABASE_URL": env.postgres_url,
                        "STATE_DATABASE_TABLE": env.pg_table}


def make_backend(kind: str, env: Env):
    """A dash_state backend object outside any app, as the contract tests build them."""
    from dash_state.backends import create_backend

    name, settings = state_settings(kind, env)
    config = build_config((settings, "benchmark"))
    wire = Wire(derive_secret(SECRET_KEY.encode()), config["STATE_COMPRESSION"], config["STATE_COMPRESSION_MIN_BYTES"])
    return create_backend(name, config, wire), wire


def preflight(kind: str, env: Env) -> str | None:
    """None if ServerStore on this backend can work here, else why not."""
    if kind == "memory":
        return None
    if kind == "redis" and env.redis_error:
        return env.redis_error
    if kind == "postgres" and env.postgres_error:
        return env.postgres_error
    missing = module_missing("redis" if kind == "redis" else "database")
    if missing:
        return missing
    try:
        backend, _ = make_backend(kind, env)
        try:
            backend.set("preflight", "k", freeze({"ok": 1}), ttl=60)
            got = backend.get("preflight", "k")
            if got is None or got.thaw() != {"ok": 1}:
                return "the backend did not return what was written"
            backend.delete("preflight", "k")
        finally:
            backend.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


# -- apps ---------------------------------------------------------------------------------------------
def layout(store: Any) -> html.Div:
    return html.Div([html.Button("go", id=BUTTON), store, html.Div(id=OUT)])


def dispatch_app(value: Any, env: Env) -> dash.Dash:
    app = dash.Dash(__name__)
    app.server.config["SECRET_KEY"] = SECRET_KEY
    app.layout = layout(dcc.Store(id=STORE))

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return 1

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(data):
        return str(data)

    return app


def dcc_store_app(value: Any, env: Env) -> dash.Dash:
    app = dash.Dash(__name__)
    app.server.config["SECRET_KEY"] = SECRET_KEY
    app.layout = layout(dcc.Store(id=STORE))
    is_frame = isinstance(value, pd.DataFrame)

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return value.to_dict("records") if is_frame else value

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(data):
        return summarize(pd.DataFrame(data) if is_frame else data)

    return app


def serverside_app(backend_factory: Callable[[Env], Any]) -> Callable[[Any, Env], dash.Dash]:
    def factory(value: Any, env: Env) -> dash.Dash:
        from dash_extensions.enrich import DashProxy, Serverside, ServersideOutputTransform

        backend = backend_factory(env)
        app = DashProxy(__name__, transforms=[ServersideOutputTransform(backends=[backend])])
        app.server.config["SECRET_KEY"] = SECRET_KEY
        app.layout = layout(dcc.Store(id=STORE))

        @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
        def write(n_clicks):
            return Serverside(value)

        @app.callback(Output(OUT, "children"), Input(STORE, "data"))
        def read(data):
            return summarize(data)

        app._bench_cleanup = getattr(backend, "clear", None)
        return app

    return factory


def fs_backend(env: Env):
    from dash_extensions.enrich import FileSystemBackend

    return FileSystemBackend(cache_dir=str(env.tmp / f"serverside-fs-{uuid.uuid4().hex[:6]}"))


def redis_serverside_backend(env: Env):
    from urllib.parse import urlsplit

    from dash_extensions.enrich import RedisBackend

    parts = urlsplit(env.redis_url)
    db = int(parts.path.strip("/") or 0)
    # RedisBackend(default_timeout=86400, **kwargs) -> flask_caching RedisCache(host, port, password, db, key_prefix)
    return RedisBackend(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=db,
                        key_prefix=env.serverside_prefix)


def server_store_app(kind: str, read_cache: bool = True) -> Callable[[Any, Env], dash.Dash]:
    def factory(value: Any, env: Env) -> dash.Dash:
        app = dash.Dash(__name__)
        app.server.config["SECRET_KEY"] = SECRET_KEY
        app.server.config.update(state_settings(kind, env)[1])
        if not read_cache:
            app.server.config["STATE_READ_CACHE_BYTES"] = 0
        app.layout = layout(ServerStore(id=STORE))

        @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
        def write(n_clicks):
            return value

        @app.callback(Output(OUT, "children"), Input(STORE, "data"))
        def read(data):
            return summarize(data)

        return app

    return factory


# key, label, factory, needs (a preflight check name or None)
DASH_SCENARIOS: list[tuple[str, str, Callable[[Any, Env], dash.Dash], str | None]] = [
    ("dispatch", "Dash dispatch baseline (value 1)", dispatch_app, None),
    ("dcc_store", "dcc.Store", dcc_store_app, None),
    ("serverside_fs", "Serverside (FileSystemBackend)", serverside_app(fs_backend), None),
    ("serverside_redis", "Serverside (RedisBackend)", serverside_app(redis_serverside_backend), "redis-server"),
    ("ss_memory", "ServerStore (memory)", server_store_app("memory"), "memory"),
    ("ss_redis", "ServerStore (redis)", server_store_app("redis"), "redis"),
    ("ss_sqlite", "ServerStore (sqlite)", server_store_app("sqlite"), "sqlite"),
    ("ss_postgres", "ServerStore (postgres)", server_store_app("postgres"), "postgres"),
]
# Since the read cache (STATE_READ_CACHE_BYTES), R in the same process as W gets the value from the cache
# after an existence check. With it off, R moves and decodes the value, as a worker that did not write
# it would (multi-worker deployments, the reason to use redis or a database).
if "STATE_READ_CACHE_BYTES" in DEFAULTS:
    DASH_SCENARIOS += [
        ("ss_redis_nocache", "ServerStore (redis, read cache off)", server_store_app("redis", False), "redis"),
        ("ss_sqlite_nocache", "ServerStore (sqlite, read cache off)", server_store_app("sqlite", False), "sqlite"),
        ("ss_postgres_nocache", "ServerStore (postgres, read cache off)", server_store_app("postgres", False),
         "postgres"),
    ]
RAW_REDIS_LABEL = "raw redis-py SET+GET of the same bytes (no Dash)"
CHART_KEYS = [key for key, *_ in DASH_SCENARIOS]


# -- measuring ----------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def summary_ms(samples: list[float]) -> dict:
    ms = [s * 1000 for s in samples]
    return {"median_ms": statistics.median(ms), "p90_ms": percentile(ms, 90), "min_ms": min(ms),
            "max_ms": max(ms), "runs": len(ms), "samples_ms": ms}


class Scenario:
    def __init__(self, key: str, label: str):
        self.key, self.label = key, label
        self.status = "ok"  # or "unavailable: ..." / "skipped: ..."
        self.samples: list[float] = []
        self.extra: dict = {}

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def round_trip(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def stats(self) -> dict:
        out = {"label": self.label, "status": self.status, **self.extra}
        if self.ok and self.samples:
            out.update(summary_ms(self.samples))
        return out


class DashScenario(Scenario):
    def __init__(self, key: str, label: str, app: dash.Dash, expected: str):
        super().__init__(key, label)
        self.app, self.expected = app, expected
        self.client = DashClient(app)
        self.http = self.client.http = TimedHttp(self.client.http)
        self.client.layout()  # first request: session cookie, ServerStore ids, DashProxy transforms
        self.w: list[float] = []
        self.r: list[float] = []
        self.bytes_to_browser = self.bytes_back = 0

    def round_trip(self) -> float:
        written = self.client.call(outputs=[(STORE, "data")], inputs=[(BUTTON, "n_clicks", 1)])
        w_seconds = self.http.last_seconds
        self.bytes_to_browser = self.client.last_response_bytes
        value = written[STORE]["data"]
        read = self.client.call(outputs=[(OUT, "children")], inputs=[(STORE, "data", value)])
        r_seconds = self.http.last_seconds
        self.bytes_back = self.http.last_request_bytes
        expected = "1" if self.key == "dispatch" else self.expected
        if read[OUT]["children"] != expected:
            raise AssertionError(f"R returned {read[OUT]['children']!r}, expected {expected!r}")
        self._last = (w_seconds, r_seconds)
        return w_seconds + r_seconds

    def record(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.w.append(self._last[0])
        self.r.append(self._last[1])

    def stats(self) -> dict:
        out = super().stats()
        if self.ok and self.samples:
            out.update({"bytes_to_browser": self.bytes_to_browser, "bytes_back": self.bytes_back,
                        "w_median_ms": statistics.median(self.w) * 1000,
                        "r_median_ms": statistics.median(self.r) * 1000})
        return out

    def close(self) -> None:
        cleanup = getattr(self.app, "_bench_cleanup", None)
        if cleanup:
            try:
                cleanup()
            except Exception:
                pass
        state = getattr(self.app, "_dash_state", None)
        if state is not None and state._manager is not None:
            state._manager.close()


class RawRedisScenario(Scenario):
    """redis-py SET (with a TTL, as a cache would) + GET of the bytes ServerStore(redis) stores for this value."""

    def __init__(self, env: Env, value: Any):
        super().__init__("raw_redis", RAW_REDIS_LABEL)
        wire = Wire(derive_secret(SECRET_KEY.encode()))
        self.data = wire.dump("user", "key", freeze(value))
        self.extra["bytes"] = len(self.data)
        self.r = env.redis()
        self.prefix = env.raw_prefix

    def round_trip(self) -> float:
        key = f"{self.prefix}{uuid.uuid4().hex}"
        start = time.perf_counter()
        self.r.set(key, self.data, ex=3600)
        got = self.r.get(key)
        seconds = time.perf_counter() - start
        if len(got) != len(self.data):
            raise AssertionError("raw redis GET returned other bytes")
        self.r.delete(key)
        self._last = seconds
        return seconds

    def record(self, seconds: float) -> None:
        self.samples.append(seconds)


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # an HTTP 500 from a callback: DashClient puts the server's traceback text in the message
    line = next((t for t in reversed(text) if t.strip() and not t.startswith(" ")), text[0] if text else "")
    return f"{type(exc).__name__}: {line[:200]}"


def build_scenarios(size: Size, env: Env, problems: dict[str, str]) -> list[Scenario]:
    scenarios: list[Scenario] = []
    for key, label, factory, needs in DASH_SCENARIOS:
        reason = problems.get(needs) if needs else None
        if reason:
            scenario = Scenario(key, label)
            scenario.status = f"unavailable: {reason}"
        else:
            try:
                scenario = DashScenario(key, label, factory(size.value, env), size.expected)
            except Exception as exc:
                scenario = Scenario(key, label)
                scenario.status = f"unavailable: {short_error(exc)}"
        scenarios.append(scenario)
    if env.redis_error:
        raw = Scenario("raw_redis", RAW_REDIS_LABEL)
        raw.status = f"unavailable: {env.redis_error}"
    else:
        raw = RawRedisScenario(env, size.value)
    scenarios.append(raw)
    return scenarios


def measure_size(size: Size, env: Env, problems: dict[str, str], runs: int, warmup: int,
                 log: Callable[[str], None], profile_runs: int = 0) -> tuple[dict, str | None]:
    scenarios = build_scenarios(size, env, problems)
    profile_text = None
    try:
        for i in range(warmup + runs):
            for scenario in scenarios:
                if not scenario.ok:
                    continue
                gc.collect()
                wall = time.perf_counter()
                try:
                    seconds = scenario.round_trip()
                except Exception as exc:
                    scenario.status = f"unavailable: {short_error(exc)}"
                    log(f"  {size.label} / {scenario.label}: {scenario.status}")
                    continue
                wall = time.perf_counter() - wall
                if i == 0:
                    scenario.extra["first_run_wall_s"] = round(wall, 3)
                if i == 0 and wall > SKIP_SECONDS:
                    scenario.status = f"skipped: {wall:.0f} s per run"
                    scenario.extra["single_run_wall_s"] = wall
                    scenario.extra["single_run_timed_ms"] = seconds * 1000
                    log(f"  {size.label} / {scenario.label}: {scenario.status}")
                    continue
                if i >= warmup:
                    scenario.record(seconds)
            log(f"  {size.label}: {'warm-up' if i < warmup else 'run'} {i + 1 - (warmup if i >= warmup else 0)} done")
        stats = {s.key: s.stats() for s in scenarios}
        if profile_runs:
            profile_text = profile_scenarios([s for s in scenarios if s.ok and s.key.startswith("ss_")],
                                             profile_runs, size.label)
    finally:
        for scenario in scenarios:
            scenario.close()
        env.clear_redis()
        env.clear_tables()
    return stats, profile_text


# -- raw client overhead --------------------------------------------------------------------------------
class RawSql:
    """SQLAlchemy Core on a table shaped like the database backend's: upsert + select, as a hand-written
    cache would do it. Same columns, primary key and ``expires_at`` index as the backend's table; the
    engine runs in autocommit mode (one statement per operation, as the backend does) and on SQLite gets
    the backend's pragmas (WAL, synchronous=NORMAL, busy timeout), so the comparison is about the code
    path, not about durability settings. No ``pool_pre_ping`` (the backend uses it)."""

    def __init__(self, url: str, table: str):
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        if self.engine.dialect.name == "sqlite":
            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                for pragma in ("PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"):
                    cursor.execute(pragma)
                cursor.close()
        self.table = table
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
        now = time.time()
        with self.engine.connect() as conn:
            conn.execute(self.upsert, {"u": "bench-user", "k": key, "v": data, "e": now + 3600})
        with self.engine.connect() as conn:
            return conn.execute(self.select, {"u": "bench-user", "k": key, "now": time.time()}).scalar_one()

    def delete(self, key: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(self.remove, {"u": "bench-user", "k": key})

    def close(self, drop: bool) -> None:
        if drop:
            with self.engine.connect() as conn:
                conn.execute(self.sa.text(f'DROP TABLE IF EXISTS "{self.table}"'))
        self.engine.dispose()


def random_text(nbytes: int, seed: int = SEED) -> str:
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer((string.ascii_letters + string.digits).encode(), dtype=np.uint8)
    return rng.choice(alphabet, nbytes).tobytes().decode("ascii")


def measure_raw_overhead(env: Env, problems: dict[str, str], raw_sizes: list[tuple[str, int, int]],
                         warmup: int, log: Callable[[str], None]) -> list[dict]:
    rows: list[dict] = []
    for kind in ("redis", "sqlite", "postgres"):
        reason = problems.get(kind)
        if reason:
            for label, nbytes, _ in raw_sizes:
                rows.append({"backend": kind, "size": label, "status": f"unavailable: {reason}"})
            continue
        try:
            backend, wire = make_backend(kind, env)
        except Exception as exc:
            for label, nbytes, _ in raw_sizes:
                rows.append({"backend": kind, "size": label, "status": f"unavailable: {short_error(exc)}"})
            continue
        if kind == "redis":
            r = env.redis()
            raw_set_get = lambda key, data: (r.set(env.raw_prefix + key, data, ex=3600), r.get(env.raw_prefix + key))[1]  # noqa: E731
            raw_delete = lambda key: r.delete(env.raw_prefix + key)  # noqa: E731
            raw_close = lambda: None  # noqa: E731
            raw_what = "redis-py SET (EX 3600) + GET"
        else:
            url = env.sqlite_url if kind == "sqlite" else env.postgres_url
            sql = RawSql(url, env.sqlite_raw_table if kind == "sqlite" else env.pg_raw_table)
            raw_set_get, raw_delete = sql.set_get, sql.delete
            raw_close = lambda sql=sql, kind=kind: sql.close(drop=True)  # noqa: E731
            raw_what = "SQLAlchemy INSERT ... ON CONFLICT DO UPDATE + SELECT (autocommit, one connection checkout each)"
        try:
            for label, nbytes, runs in raw_sizes:
                text = random_text(nbytes)
                data = wire.dump("bench-user", "probe", freeze(text))
                b_samples, r_samples = [], []
                try:
                    for i in range(warmup + runs):
                        key = uuid.uuid4().hex
                        snapshot = freeze(text)  # a JSON string: orjson runs here, untimed; a new one each
                        gc.collect()             # time, as each write in an app is a new snapshot
                        start = time.perf_counter()
                        backend.set("bench-user", key, snapshot, 3600)
                        got = backend.get("bench-user", key)
                        b = time.perf_counter() - start
                        if got is None or got.nbytes != len(data) - 21:  # minus the seal: magic, mac, flags
                            raise AssertionError("the backend returned another value")
                        backend.delete("bench-user", key)
                        key = uuid.uuid4().hex
                        gc.collect()
                        start = time.perf_counter()
                        raw = raw_set_get(key, data)
                        w = time.perf_counter() - start
                        if len(raw) != len(data):
                            raise AssertionError("the raw client returned other bytes")
                        raw_delete(key)
                        if i >= warmup:
                            b_samples.append(b)
                            r_samples.append(w)
                    bs, rs = summary_ms(b_samples), summary_ms(r_samples)
                    ratio = bs["median_ms"] / rs["median_ms"]
                    rows.append({"backend": kind, "size": label, "status": "ok", "bytes_moved": len(data),
                                 "runs": runs, "backend_set_get": bs, "raw_set_get": rs, "raw_client": raw_what,
                                 "ratio": ratio, "target": f"<= {BACKEND_VS_RAW:g}x",
                                 "pass": ratio <= BACKEND_VS_RAW})
                    log(f"  raw overhead {kind} {label}: backend {bs['median_ms']:.2f} ms, raw {rs['median_ms']:.2f} ms")
                except Exception as exc:
                    rows.append({"backend": kind, "size": label, "status": f"unavailable: {short_error(exc)}"})
        finally:
            backend.close()
            raw_close()
    return rows


# -- codec costs (where time goes) --------------------------------------------------------------------
def measure_codecs(size: Size, repeats: int) -> dict:
    """Arrow IPC encode/decode (what ServerStore's byte backends do) vs pickle (what Serverside does)."""
    import pickle

    def timed(fn: Callable[[], Any]) -> float:
        samples = []
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1000

    wire = Wire(derive_secret(SECRET_KEY.encode()))
    sealed = wire.dump("u", "k", freeze(size.value))
    pickled = pickle.dumps(size.value, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "stored_bytes": len(sealed),
        "pickle_bytes": len(pickled),
        "freeze_ms": timed(lambda: freeze(size.value)),
        "encode_ms": timed(lambda: freeze(size.value).to_bytes()),  # freeze + Arrow IPC / orjson
        "seal_ms": timed(lambda: wire.dump("u", "k", freeze(size.value))),  # + HMAC + framing
        "unseal_decode_ms": timed(lambda: wire.load("u", "k", sealed).thaw()),
        "pickle_dumps_ms": timed(lambda: pickle.dumps(size.value, protocol=pickle.HIGHEST_PROTOCOL)),
        "pickle_loads_ms": timed(lambda: pickle.loads(pickled)),
    }


# -- profiling -------------------------------------------------------------------------------------------
PROFILE_WANTED = ("/dash_state/", "pyarrow", "redis", "sqlalchemy", "psycopg", "sqlite3", "hmac", "sha256", "concurrent/futures",
                  "orjson", "socket")


def profile_scenarios(scenarios: list[Scenario], runs: int, size_label: str, top: int = 15,
                      own_top: int = 10) -> str:
    import cProfile
    import pstats

    parts = []
    for scenario in scenarios:
        profiler = cProfile.Profile()
        for _ in range(runs):
            gc.collect()
            profiler.enable()
            scenario.round_trip()
            profiler.disable()
        stats = pstats.Stats(profiler)
        rows = []
        for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
            where = f"{filename}:{line}({func})"
            if any(w in where.lower() for w in PROFILE_WANTED):
                rows.append((ct, tt, nc, where))
        rows.sort(reverse=True)
        by_own = sorted(rows, key=lambda row: row[1], reverse=True)[:own_top]
        parts += [f"#### {scenario.label}, {size_label}: cProfile of {runs} round trips "
                  f"({stats.total_tt * 1000 / runs:.1f} ms per round trip under the profiler)", "",
                  f"Top {top} by cumulative time, then the top {own_top} by own time, of the functions in "
                  "dash_state, pyarrow, redis, sqlalchemy, psycopg, sqlite3, hmac/sha256, orjson and socket I/O:", "",
                  "| cumulative ms / rt | own ms / rt | calls / rt | function |", "|---:|---:|---:|---|"]
        for row in rows[:top] + [None] + by_own:
            if row is None:
                parts.append("| | | | *by own time:* |")
                continue
            ct, tt, nc, where = row
            short = where
            for marker in ("/site-packages/", str(REPO) + "/", "/lib/python3"):
                if marker in short:
                    short = short.split(marker, 1)[1]
            parts.append(f"| {ct * 1000 / runs:.2f} | {tt * 1000 / runs:.2f} | {nc / runs:g} | `{short}` |")
        parts.append("")
    return "\n".join(parts)


# -- targets ------------------------------------------------------------------------------------------------
def median_of(results: dict, size: str, key: str) -> float | None:
    s = results.get(size, {}).get(key)
    return s.get("median_ms") if s and s.get("status") == "ok" and "median_ms" in s else None


def targets(results: dict, raw_rows: list[dict], sizes: list[Size], headline: str) -> list[dict]:
    out = []

    def ratio_target(name: str, num_key: str, den: Callable[[str], float | None], limit: float, definition: str,
                     above_dispatch: bool = True):
        per_size = {}
        for size in sizes:
            num, d = median_of(results, size.key, num_key), den(size.key)
            per_size[size.key] = None if num is None or d is None else num / d
        value = per_size.get(headline)
        out.append({"name": name, "definition": definition, "headline_size": headline, "value": value,
                    "limit": limit, "pass": None if value is None else value <= limit, "per_size": per_size})
        if above_dispatch:
            disp, num = median_of(results, headline, "dispatch"), median_of(results, headline, num_key)
            d = den(headline)
            if None not in (disp, num, d):
                out[-1]["above_dispatch_ms"] = {"numerator": num - disp, "denominator": d - disp}

    ratio_target("ServerStore(memory) / Serverside(FileSystem)", "ss_memory",
                 lambda s: median_of(results, s, "serverside_fs"), MEMORY_VS_FS,
                 "round-trip median of ServerStore(memory) / round-trip median of Serverside(FileSystemBackend)")
    ratio_target("ServerStore(redis) / Serverside(Redis)", "ss_redis",
                 lambda s: median_of(results, s, "serverside_redis"), REDIS_VS_SERVERSIDE,
                 "round-trip median of ServerStore(redis) / round-trip median of Serverside(RedisBackend)")

    def raw_baseline(s: str) -> float | None:
        d, r = median_of(results, s, "dispatch"), median_of(results, s, "raw_redis")
        return None if d is None or r is None else d + r

    ratio_target("ServerStore(redis) / (dispatch + raw redis-py)", "ss_redis", raw_baseline, REDIS_VS_RAW,
                 "round-trip median of ServerStore(redis) / (round-trip median of the Dash dispatch baseline + "
                 "median of a raw redis-py SET+GET of the exact bytes ServerStore(redis) stores for that value). "
                 "The denominator is the least a hand-written Dash + redis-py solution pays if encoding were free.",
                 above_dispatch=False)
    if any(median_of(results, size.key, "ss_redis_nocache") is not None for size in sizes):
        # context, not targets: the same two redis ratios when R does not find the value in the read cache
        ratio_target("context, read cache off: ServerStore(redis) / Serverside(Redis)", "ss_redis_nocache",
                     lambda s: median_of(results, s, "serverside_redis"), REDIS_VS_SERVERSIDE,
                     "as above, with STATE_READ_CACHE_BYTES=0 (R moves and decodes the value, as another "
                     "worker would)")
        ratio_target("context, read cache off: ServerStore(redis) / (dispatch + raw redis-py)", "ss_redis_nocache",
                     raw_baseline, REDIS_VS_RAW, "as above, with STATE_READ_CACHE_BYTES=0", above_dispatch=False)
        out[-1]["context"] = out[-2]["context"] = True
    for row in raw_rows:
        value = row.get("ratio")
        out.append({"name": f"{row['backend']} backend set+get / raw client, {row['size']}",
                    "definition": f"median of backend.set+backend.get / median of {row.get('raw_client', 'raw client')} "
                                  "of the same bytes",
                    "headline_size": row["size"], "value": value, "limit": BACKEND_VS_RAW,
                    "pass": None if value is None else value <= BACKEND_VS_RAW, "per_size": {},
                    "status": row["status"]})
    return out


# -- output ------------------------------------------------------------------------------------------------
def short_bytes(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


def markdown(result: dict) -> str:
    sizes = result["sizes"]
    p = result["parameters"]
    lines = [f"Round trip (W write + R read), median ms (p90 ms); bytes to browser = W's response body. "
             f"{p['runs']} runs after {p['warmup']} warm-ups"
             + (f"; 1M rows: {p['big_runs']} runs after {p['big_warmup']} warm-up(s)" if "1m" in sizes else "")
             + ".", ""]
    head = "| scenario |" + "".join(f" {s['label']} ms | {s['label']} bytes |" for s in sizes.values())
    lines += [head, "|---|" + "---:|---:|" * len(sizes)]
    keys = [k for k, *_ in DASH_SCENARIOS] + ["raw_redis"]
    for key in keys:
        label = None
        cells = []
        for size_key in sizes:
            s = result["scenarios"][size_key][key]
            label = s["label"]
            if s["status"] != "ok":
                cells += [s["status"], ""]
            else:
                b = s.get("bytes_to_browser", s.get("bytes"))
                cells += [f"{s['median_ms']:.2f} ({s['p90_ms']:.2f})",
                          "" if b is None else (short_bytes(b) if key != "raw_redis" else f"({short_bytes(b)} moved)")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    lines += ["", "Codec costs per value (median ms; not part of the table above, for reading it):", "",
              "| size | ServerStore stored bytes | freeze | freeze+encode | freeze+encode+seal | unseal+decode "
              "| pickle bytes | pickle.dumps | pickle.loads |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size_key, c in result["codecs"].items():
        lines.append(f"| {sizes[size_key]['label']} | {short_bytes(c['stored_bytes'])} | {c['freeze_ms']:.2f} "
                     f"| {c['encode_ms']:.2f} | {c['seal_ms']:.2f} | {c['unseal_decode_ms']:.2f} "
                     f"| {short_bytes(c['pickle_bytes'])} | {c['pickle_dumps_ms']:.2f} | {c['pickle_loads_ms']:.2f} |")

    lines += ["", "Backend set+get vs the raw client moving the same bytes (median ms (p90 ms)):", "",
              "| backend | value | bytes moved | runs | backend set+get | raw set+get | backend / raw | target |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for row in result["raw_overhead"]:
        if row["status"] != "ok":
            lines.append(f"| {row['backend']} | {row['size']} | | | {row['status']} | | | |")
            continue
        b, r = row["backend_set_get"], row["raw_set_get"]
        lines.append(f"| {row['backend']} | {row['size']} | {row['bytes_moved']:,} | {row['runs']} "
                     f"| {b['median_ms']:.3f} ({b['p90_ms']:.3f}) | {r['median_ms']:.3f} ({r['p90_ms']:.3f}) "
                     f"| {row['ratio']:.2f}x | {row['target']}: **{'PASS' if row['pass'] else 'MISS'}** |")

    lines += ["", "Targets (ratios from this run; headline size in bold, other sizes for context):", ""]
    for t in result["targets"]:
        if t["value"] is None:
            verdict = f"**n/a** ({t.get('status') or 'a scenario is unavailable'})"
        else:
            verdict = f"**{t['value']:.3f}x** (target <= {t['limit']:g}x): **{'PASS' if t['pass'] else 'MISS'}**"
        extra = ""
        if t["per_size"]:
            extra = "; all sizes: " + ", ".join(
                f"{sizes[k]['label']} {'n/a' if v is None else f'{v:.3f}x'}" for k, v in t["per_size"].items())
        head = f"{t['name']} at {sizes[t['headline_size']]['label']}" if t["per_size"] else t["name"]
        if "above_dispatch_ms" in t:
            a = t["above_dispatch_ms"]
            extra += (f" (above the dispatch baseline at {sizes[t['headline_size']]['label']}: "
                      f"{a['numerator']:.2f} ms vs {a['denominator']:.2f} ms)")
        lines.append(f"- {head}: {verdict}{extra}")
    return "\n".join(lines)


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["sizes"]
    keys = CHART_KEYS
    labels = {k: lbl for k, lbl, *_ in DASH_SCENARIOS}
    colors = {"dispatch": "#9e9e9e", "dcc_store": "#6d4c41", "serverside_fs": "#fb8c00",
              "serverside_redis": "#e53935", "ss_memory": "#1e88e5", "ss_redis": "#8e24aa",
              "ss_sqlite": "#43a047", "ss_postgres": "#00897b", "ss_redis_nocache": "#ce93d8",
              "ss_sqlite_nocache": "#a5d6a7", "ss_postgres_nocache": "#80cbc4"}
    fig, ax = plt.subplots(figsize=(15, 7), dpi=110)
    n = len(keys)
    width = 0.8 / n
    x = np.arange(len(sizes))
    values = [[result["scenarios"][s][k] for s in sizes] for k in keys]
    finite = [v["median_ms"] for row in values for v in row if v["status"] == "ok"]
    bottom = min(finite) / 2 if finite else 0.1
    for i, key in enumerate(keys):
        xs = x - 0.4 + width * (i + 0.5)
        heights, errs = [], []
        for j, stat in enumerate(values[i]):
            if stat["status"] == "ok":
                heights.append(stat["median_ms"])
                errs.append(stat["p90_ms"] - stat["median_ms"])
            else:
                heights.append(np.nan)
                errs.append(0)
                word = "skipped" if stat["status"].startswith("skipped") else "n/a"
                ax.text(xs[j], bottom * 1.15, word, rotation=90, ha="center", va="bottom", fontsize=8,
                        color=colors[key])
        bars = ax.bar(xs, heights, width * 0.95, label=labels[key], color=colors[key],
                      hatch="///" if key.endswith("_nocache") else None, edgecolor="white", linewidth=0.3,
                      yerr=[np.zeros(len(errs)), errs], capsize=2, error_kw={"elinewidth": 0.8, "alpha": 0.7})
        for rect, h, e in zip(bars, heights, errs):
            if not np.isnan(h):
                text = f"{h:.0f}" if h >= 100 else f"{h:.1f}"
                ax.text(rect.get_x() + rect.get_width() / 2, (h + e) * 1.08, text, ha="center", va="bottom",
                        fontsize=7, rotation=90)
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom)
    top = max(finite) if finite else 10
    ax.set_ylim(top=top * 12)
    ax.set_xticks(x)
    ax.set_xticklabels([s["label"] for s in sizes.values()], fontsize=11)
    ax.set_ylabel("write + read round trip, median ms (log scale; whisker = p90)")
    env = result["environment"]
    ax.set_title(f"dash-state backends: W+R callback round trip through Flask's test client\n"
                 f"{env['cpu_count']} vCPUs, Python {env['python']}, dash {env['packages'].get('dash')}, "
                 f"dash-extensions {env['packages'].get('dash-extensions')}", fontsize=11)
    ax.grid(axis="y", which="major", alpha=0.35)
    ax.grid(axis="y", which="minor", alpha=0.12)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", fontsize=9, ncol=2, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def environment() -> dict:
    from importlib.metadata import version

    packages = {}
    for name in ("dash", "dash-extensions", "dash-state", "flask", "flask-caching", "cachelib", "pandas",
                 "numpy", "pyarrow", "orjson", "redis", "sqlalchemy", "psycopg", "matplotlib"):
        try:
            packages[name] = version(name)
        except Exception:
            packages[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "packages": packages,
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def server_versions(env: Env) -> dict:
    out = {}
    if not env.redis_error:
        try:
            out["redis"] = env.redis().info("server").get("redis_version")
        except Exception:
            pass
    try:
        import sqlite3

        out["sqlite"] = sqlite3.sqlite_version
    except Exception:
        pass
    if not env.postgres_error:
        try:
            import sqlalchemy as sa

            engine = sa.create_engine(env.postgres_url)
            with engine.connect() as conn:
                out["postgres"] = conn.execute(sa.text("SHOW server_version")).scalar()
            engine.dispose()
        except Exception:
            pass
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10 KB JSON, 1k and 10k rows, 3 runs, raw sizes 1 KB and 1 MB; no chart "
                             "unless --chart is given")
    parser.add_argument("--runs", type=int, default=7, help="measured round trips per scenario (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured round trips first (default 2)")
    parser.add_argument("--big-runs", type=int, default=5, help="measured round trips at 1M rows (default 5)")
    parser.add_argument("--big-warmup", type=int, default=1, help="warm-ups at 1M rows (default 1)")
    parser.add_argument("--raw-runs-small", type=int, default=50, help="raw-overhead runs at 1 KB (default 50)")
    parser.add_argument("--raw-runs-large", type=int, default=15, help="raw-overhead runs at 10 MB (default 15)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--chart", metavar="PATH", help="chart path (default benchmarks/backends.png; "
                                                        "--quick writes none unless given)")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the ServerStore scenarios at the headline size and print the top entries")
    parser.add_argument("--redis-url", default=os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--postgres-url", default=os.environ.get(
        "STATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup, args.big_runs, args.big_warmup = 3, 1, 3, 1
        args.raw_runs_small, args.raw_runs_large = 5, 3
    if min(args.runs, args.big_runs, args.raw_runs_small, args.raw_runs_large) < 1 or min(args.warmup, args.big_warmup) < 0:
        parser.error("runs must be >= 1 and warm-ups >= 0")
    chart_path = None if args.no_chart else (Path(args.chart) if args.chart else
                                             (None if args.quick else HERE / "backends.png"))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    log(f"preparing data (run id {RUN}) ...")
    sizes = sizes_for(args.quick)
    headline = "10k" if args.quick else "100k"
    raw_sizes = [("1 KB", 1024, args.raw_runs_small),
                 (("1 MB", 1 << 20, args.raw_runs_large) if args.quick else ("10 MB", 10 << 20, args.raw_runs_large))]
    env = Env(args.redis_url, args.postgres_url)
    result: dict = {}
    try:
        problems = {"redis-server": env.redis_error}
        for kind in ("memory", "redis", "sqlite", "postgres"):
            problems[kind] = preflight(kind, env)
            log(f"ServerStore({kind}): {'ok' if problems[kind] is None else 'unavailable: ' + problems[kind]}")
        problems = {k: v for k, v in problems.items() if v}

        scenarios, profiles = {}, {}
        for size in sizes:
            big = size.key == "1m"
            log(f"measuring {size.label} ...")
            stats, prof = measure_size(size, env, problems, args.big_runs if big else args.runs,
                                       args.big_warmup if big else args.warmup, log,
                                       profile_runs=5 if args.profile and size.key == headline else 0)
            scenarios[size.key] = stats
            if prof:
                profiles[size.key] = prof
        log("codec costs ...")
        codecs = {size.key: measure_codecs(size, 3 if size.key == "1m" or args.quick else 5) for size in sizes}
        log("raw client overhead ...")
        raw_rows = measure_raw_overhead(env, problems, raw_sizes, 2 if not args.quick else 1, log)

        result = {
            "parameters": {"quick": args.quick, "runs": args.runs, "warmup": args.warmup, "big_runs": args.big_runs,
                           "big_warmup": args.big_warmup, "seed": SEED, "run_id": RUN, "headline_size": headline,
                           "skip_seconds": SKIP_SECONDS, "redis_url": args.redis_url,
                           "postgres_url": args.postgres_url,
                           "timing": "perf_counter around the W and R test-client POSTs; median and p90 (linear "
                                     "interpolation); scenarios interleaved run by run; gc.collect() untimed"},
            "environment": {**environment(), "servers": server_versions(env), "load_average_at_start": load_at_start},
            "sizes": {s.key: s.describe() for s in sizes},
            "scenarios": scenarios,
            "codecs": codecs,
            "raw_overhead": raw_rows,
        }
        result["targets"] = targets(scenarios, raw_rows, sizes, headline)
        if profiles:
            result["profiles"] = profiles
        result["elapsed_s"] = time.perf_counter() - started
    finally:
        notes = env.cleanup()
        for note in notes:
            log(note)

    print(markdown(result))
    for text in result.get("profiles", {}).values():
        print()
        print(text)
    print(f"\n(total {result['elapsed_s']:.0f} s)")
    if chart_path:
        chart(result, chart_path)
        log(f"chart written to {chart_path}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
