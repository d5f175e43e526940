"""The scenarios of the matrix: one way each of keeping a value between W and R (a Dash app driven by a
simulated tab, or raw redis-py without Dash), the table of their keys and what each needs."""
from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .apps import (BUTTON, OUT, STORE, close_app, dcc_store_app, dispatch_app, server_store_app, serverside_app,
                   state_settings)
from .env import Env
from .messages import short_error
from .sizes import Size
from .tab import Tab, is_reference

# How the simulated tab releases the reference a write replaced: "route" POSTs /_dash-state/v1/release
# after the round trip (untimed, as the brief of this benchmark specifies); "piggyback" sends it in the
# next callback request's dash_state hints, as src_js/renderer.js now does (released inside R's request).
# Set from --release before any scenario runs.
RELEASE_MODE = "route"
# The row counts at which HOST_SCENARIOS run (None: every size); set from --host-sizes before any scenario.
HOST_SIZES: set[int] | None = None


class Scenario:
    """One way of keeping a value between two callbacks; ``round_trip`` returns (W seconds, R seconds)."""

    def __init__(self, key: str, label: str):
        self.key, self.label = key, label
        self.status = "ok"  # or "unavailable: ...", "failed: ...", "slow: ..."
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.slow_mode: str | None = None
        self.slow_seconds = 0.0
        self.budget_cut: set[str] = set()
        self.bytes_to_browser = self.bytes_back = None
        self.extra: dict = {}

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def round_trip(self) -> tuple[float, float]:
        raise NotImplementedError

    def after(self) -> None:
        """Untimed work after a round trip: the release the component sends, cleanup of others' files."""

    def close(self) -> None:
        pass


class DashScenario(Scenario):
    """W and R through one tab on one app, or W on ``writer`` and R on ``reader``: the same browser
    (the same identity cookie) served by another worker."""

    def __init__(self, key: str, label: str, expected: str, writer, reader=None, server_store: bool = False,
                 cleanup: Callable[[], None] | None = None, apps: list | None = None):
        super().__init__(key, label)
        self.expected = expected
        self.server_store = server_store
        self.cleanup = cleanup
        self.apps = apps or [writer] + ([reader] if reader is not None else [])
        self.w = Tab(writer)
        self.w.open()
        self.r = self.w
        if reader is not None:
            self.r = Tab(reader)
            self.r.adopt_cookie(self.w)  # the same browser, its next request served by another worker
            self.r.open()
        self.held: Any = None  # what the tab's store holds
        self._replaced: Any = None

    def round_trip(self) -> tuple[float, float]:
        extra = None
        if self.server_store:  # the component's hints on a request whose output is a ServerStore
            extra = {"dash_state": {"stores": [STORE], "prev": {STORE: self.held} if is_reference(self.held) else {}}}
        value, w_seconds, _, w_bytes = self.w.callback((STORE, "data"), [(BUTTON, "n_clicks", 1)], extra)
        if self.r is not self.w:
            self.r.adopt_cookie(self.w)
        r_extra = None
        if self.server_store and RELEASE_MODE == "piggyback" and is_reference(self.held) and self.held != value:
            # the component's newer way: the replaced reference rides on the page's next callback request
            # (here R) and is released after that request, inside its timed region
            r_extra = {"dash_state": {"stores": [], "prev": {}, "release": [{"id": STORE, "reference": self.held}]}}
        summary, r_seconds, r_bytes, _ = self.r.callback((OUT, "children"), [(STORE, "data", value)], r_extra)
        if summary != ("1" if self.key == "dispatch" else self.expected):
            raise AssertionError(f"R returned {summary!r}, expected {self.expected!r}")
        self.bytes_to_browser, self.bytes_back = w_bytes, r_bytes
        if self.server_store:  # other scenarios' data is not kept: it would be garbage to collect
            self._replaced, self.held = self.held, value
        return w_seconds, r_seconds

    def after(self) -> None:
        if self.server_store and RELEASE_MODE == "route" and is_reference(self._replaced) \
                and self._replaced != self.held:
            self.w.release(STORE, self._replaced)
        self._replaced = None
        if self.cleanup is not None:
            self.cleanup()

    def cache_stats(self) -> list | None:
        """Each app's read-cache figures (proof that 'same worker' hits it and 'another worker' cannot)."""
        if not self.server_store:
            return None
        from dash_state import get_state_manager

        out = []
        for app in self.apps:
            try:
                stats = get_state_manager(app).stats()
                cache = stats.get("read_cache")
                out.append({"reads": stats.get("reads"), "hits": stats.get("hits"), "writes": stats.get("writes"),
                            "released": stats.get("released"),
                            "read_cache": None if cache is None else
                            {k: cache.get(k) for k in ("hits", "misses", "bytes")}})
            except Exception as exc:
                out.append({"error": short_error(exc)})
        return out

    def close(self) -> None:
        for app in self.apps:
            close_app(app)


class CrossProcessScenario(DashScenario):
    """W in another process of this host (a spawned child with its own app: :class:`~.remote.RemoteTab`),
    R here, on an app that shares the store: what a gunicorn worker other than the writer pays to read.
    The same browser: the child's identity cookie is copied to this process's tab before each R."""

    def __init__(self, key: str, label: str, expected: str, size_token: str, writer_settings: dict, reader):
        from .remote import RemoteTab

        Scenario.__init__(self, key, label)
        self.expected, self.server_store, self.cleanup = expected, True, None
        self.apps = [reader]
        self.remote = RemoteTab(size_token, writer_settings)
        try:
            self.w = self.remote
            self.r = Tab(reader)
            self.r.adopt_cookie(self.w)
            self.r.open()
        except BaseException:
            self.remote.close()
            raise
        self.held = None
        self._replaced = None

    def cache_stats(self) -> list | None:
        out = super().cache_stats() or []
        for entry in out:
            entry.setdefault("process", "reader (this process)")
        try:
            out.append(self.remote.stats())
        except Exception as exc:
            out.append({"error": short_error(exc), "process": "writer (another process)"})
        return out

    def close(self) -> None:
        super().close()
        self.remote.close()


RAW_LABEL = "raw redis-py: pickle + SET + GET + unpickle (no Dash)"


class RawPickleRedis(Scenario):
    """No Dash: ``pickle.dumps`` + redis-py ``SET ... EX`` (W) and ``GET`` + ``pickle.loads`` (R),
    what a hand-written cache of the frame costs (Serverside's format, without Dash)."""

    def __init__(self, env: Env, value: Any):
        super().__init__("raw_redis_pickle", RAW_LABEL)
        self.value, self.r = value, env.redis()
        self.prefix = env.prefix("raw")
        self._key = None

    def round_trip(self) -> tuple[float, float]:
        key = f"{self.prefix}{uuid.uuid4().hex}"
        start = time.perf_counter()
        data = pickle.dumps(self.value, protocol=pickle.HIGHEST_PROTOCOL)
        self.r.set(key, data, ex=3600)
        middle = time.perf_counter()
        value = pickle.loads(self.r.get(key))
        end = time.perf_counter()
        if type(value) is not type(self.value):
            raise AssertionError("raw redis returned another value")
        self.bytes_to_browser = len(data)
        self._key = key
        return middle - start, end - middle

    def after(self) -> None:
        if self._key:
            self.r.delete(self._key)
            self._key = None


# key, label, what it needs
SCENARIOS: list[tuple[str, str, tuple[str, ...]]] = [
    ("dispatch", "Dash dispatch floor (two trivial callbacks)", ()),
    ("dcc_store", "dcc.Store", ()),
    ("serverside_fs", "Serverside (FileSystemBackend)", ("dash_extensions",)),
    ("serverside_redis", "Serverside (RedisBackend)", ("dash_extensions", "redis")),
    ("raw_redis_pickle", RAW_LABEL, ("redis",)),
    ("ss_memory", "ServerStore (memory)", ()),
    ("ss_local", "ServerStore (local, same process)", ("arrow",)),
    ("ss_local_other", "ServerStore (local, another process reads)", ("arrow",)),
    ("ss_redis", "ServerStore (redis, same worker)", ("redis", "arrow")),
    ("ss_redis_other", "ServerStore (redis, another worker reads, near tier off)", ("redis", "arrow")),
    ("ss_redis_near_other", "ServerStore (redis + near tier, another process reads)", ("redis", "arrow")),
    ("ss_sqlite", "ServerStore (sqlite)", ("arrow",)),
    ("ss_postgres", "ServerStore (postgres)", ("postgres", "arrow")),
    # not run by default (--scenarios): the database backends read by another worker (read cache off)
    ("ss_sqlite_other", "ServerStore (sqlite, another worker reads)", ("arrow",)),
    ("ss_postgres_other", "ServerStore (postgres, another worker reads)", ("postgres", "arrow")),
]
LABELS = {key: label for key, label, _ in SCENARIOS}
OPTIONAL = ("ss_sqlite_other", "ss_postgres_other")
# the scenarios of the host-local stores (the default backend, and redis's near tier); each needs a second
# process per size (a spawned writer, a few seconds to start), so --quick (CI's smoke run) leaves them out
HOST_SCENARIOS = ("ss_local", "ss_local_other", "ss_redis_near_other")
DEFAULT_SCENARIOS = [key for key, *_ in SCENARIOS if key not in OPTIONAL]  # the full run
QUICK_SCENARIOS = [key for key in DEFAULT_SCENARIOS if key not in HOST_SCENARIOS]


def unavailable_reason(needs: tuple[str, ...], env: Env, size: Size) -> str | None:
    """Why a scenario cannot run here (a service or package is missing), or None."""
    reasons = {"redis": env.redis_error, "postgres": env.postgres_error, "dash_extensions": env.dash_extensions_error,
               "arrow": env.arrow_error if size.rows is not None else None}
    return next((reasons[need] for need in needs if reasons.get(need)), None)


def clear_dir(path: Path) -> Callable[[], None]:
    """Serverside's FileSystemBackend keeps every file it wrote: delete them after each round trip."""
    def clear() -> None:
        for child in path.iterdir() if path.exists() else ():
            if child.is_file():
                child.unlink(missing_ok=True)
    return clear


def build_scenario(key: str, size: Size, env: Env) -> Scenario:
    """The scenario ``key`` carrying ``size``'s value, its apps built and its tab(s) opened."""
    label = LABELS[key]
    value, expected = size.value, size.expected
    if key == "dispatch":
        return DashScenario(key, label, expected, dispatch_app(value))
    if key == "dcc_store":
        return DashScenario(key, label, expected, dcc_store_app(value))
    if key == "serverside_fs":
        from dash_extensions.enrich import FileSystemBackend

        directory = env.tmp / f"serverside-fs-{uuid.uuid4().hex[:6]}"
        return DashScenario(key, label, expected, serverside_app(value, FileSystemBackend(cache_dir=str(directory))),
                            cleanup=clear_dir(directory))
    if key == "serverside_redis":
        from urllib.parse import urlsplit

        from dash_extensions.enrich import RedisBackend

        parts = urlsplit(env.redis_url)
        prefix = env.prefix("serverside")
        backend = RedisBackend(host=parts.hostname or "127.0.0.1", port=parts.port or 6379,
                               db=int(parts.path.strip("/") or 0), key_prefix=prefix, socket_timeout=60)
        return DashScenario(key, label, expected, serverside_app(value, backend),
                            cleanup=lambda: env.clear_prefix(prefix))
    if key == "raw_redis_pickle":
        return RawPickleRedis(env, value)
    if key == "ss_memory":
        return DashScenario(key, label, expected, server_store_app(value, state_settings("memory", env)),
                            server_store=True)
    if key == "ss_redis":
        return DashScenario(key, label, expected, server_store_app(value, state_settings("redis", env)),
                            server_store=True)
    if key == "ss_local":
        return DashScenario(key, label, expected, server_store_app(value, state_settings("local", env)),
                            server_store=True)
    if key in ("ss_local_other", "ss_redis_near_other"):
        # written by another process of this host (read cache on, as deployed), read here with no read cache
        settings = state_settings("local" if key == "ss_local_other" else "redis", env)
        reader = server_store_app(value, {**settings, "STATE_READ_CACHE_BYTES": 0})
        return CrossProcessScenario(key, label, expected, size.key, settings, reader)
    if key == "ss_redis_other":
        # Redis itself: the near tier (on by default) would serve this host's second app from tmpfs
        settings = {**state_settings("redis", env), "STATE_NEAR_TIER_BYTES": 0}
        writer = server_store_app(value, settings)  # a worker as deployed: read cache on
        reader = server_store_app(value, {**settings, "STATE_READ_CACHE_BYTES": 0})  # never has the value
        return DashScenario(key, label, expected, writer, reader, server_store=True)
    if key in ("ss_sqlite_other", "ss_postgres_other"):
        settings = state_settings("sqlite" if key == "ss_sqlite_other" else "postgres", env)
        settings["STATE_NEAR_TIER_BYTES"] = 0  # the database itself (sqlite has no near tier anyway)
        writer = server_store_app(value, settings)
        reader = server_store_app(value, {**settings, "STATE_READ_CACHE_BYTES": 0})
        return DashScenario(key, label, expected, writer, reader, server_store=True)
    if key == "ss_sqlite":
        return DashScenario(key, label, expected, server_store_app(value, state_settings("sqlite", env)),
                            server_store=True)
    if key == "ss_postgres":
        return DashScenario(key, label, expected, server_store_app(value, state_settings("postgres", env)),
                            server_store=True)
    raise ValueError(key)

