"""Big frames against gunicorn's 30 s worker timeout: 1M and 2M rows on memory and redis (same worker
and another worker), the longest single request of the runs and its headroom."""
from __future__ import annotations

import gc
import statistics

from benchdata import make_frame

from .apps import BUTTON, STORE, close_app, server_store_app, state_settings
from .budget import Clock
from .env import Env
from .messages import say, short_error
from .scenarios import LABELS, DashScenario
from .sizes import rows_label
from .tab import CallbackFailed, Tab
from .targets import GUNICORN_TIMEOUT_S


def measure_big(row_counts: list[int], runs: int, env: Env, clock: Clock) -> dict:
    """1M and 2M rows on memory and redis, W and R separately: the longest request vs 30 s. 2M rows
    (about 120 MiB stored) is over the default STATE_MAX_VALUE_BYTES (64 MiB): first one write with
    the defaults (what a default app does), then the measured runs with the limits raised."""
    out: dict = {"rows": {}, "limits": {"STATE_MAX_VALUE_BYTES": 512 << 20, "STATE_MAX_USER_BYTES": 2 << 30,
                                        "STATE_MEMORY_MAX_BYTES": 2 << 30}}
    kinds = [("ss_memory", "memory", False), ("ss_redis", "redis", False), ("ss_redis_other", "redis", True)]
    for rows in row_counts:
        if clock.over():
            out["rows"][str(rows)] = {"status": "not run: time budget"}
            continue
        say(f"  big frames: {rows_label(rows)} ...")
        value = make_frame(rows)
        entry: dict = {"label": rows_label(rows), "memory_bytes": int(value.memory_usage(deep=True).sum()),
                       "defaults": {}, "scenarios": {}}
        expected = f"{rows} rows"
        for key, kind, other in kinds:  # one write with the default limits
            if kind == "redis" and env.redis_error:
                continue
            if other:
                continue
            app = server_store_app(value, state_settings(kind, env))
            try:
                tab = Tab(app)
                tab.open()
                tab.callback((STORE, "data"), [(BUTTON, "n_clicks", 1)],
                             {"dash_state": {"stores": [STORE], "prev": {}}})
                entry["defaults"][kind] = "stored (HTTP 200)"
            except CallbackFailed as exc:
                entry["defaults"][kind] = f"refused: {str(exc)[:160]}"
            except Exception as exc:
                entry["defaults"][kind] = f"failed: {short_error(exc)}"
            finally:
                close_app(app)
        scenarios: list[DashScenario] = []
        for key, kind, other in kinds:
            if kind == "redis" and env.redis_error:
                entry["scenarios"][key] = {"status": f"unavailable: {env.redis_error}"}
                continue
            settings = {**state_settings(kind, env), **out["limits"]}
            if other:  # as in the matrix: Redis itself, not this host's near tier
                settings["STATE_NEAR_TIER_BYTES"] = 0
            writer = server_store_app(value, settings)
            reader = server_store_app(value, {**settings, "STATE_READ_CACHE_BYTES": 0}) if other else None
            scenarios.append(DashScenario(key, LABELS[key], expected, writer, reader, server_store=True))
        samples: dict[str, list[tuple[float, float]]] = {s.key: [] for s in scenarios}
        gc.collect()
        gc.freeze()
        try:
            for index in range(1 + runs):  # one warm-up, then interleaved runs
                for scenario in scenarios:
                    if not scenario.ok or clock.over():
                        continue
                    gc.collect()
                    try:
                        w, r = scenario.round_trip()
                        scenario.after()
                    except Exception as exc:
                        scenario.status = f"failed: {short_error(exc)}"
                        continue
                    if index > 0:
                        samples[scenario.key].append((w, r))
        finally:
            for scenario in scenarios:
                scenario.close()
            gc.unfreeze()
        for scenario in scenarios:
            got = samples[scenario.key]
            if not got:
                status = scenario.status if not scenario.ok else "not run: time budget"
                entry["scenarios"][scenario.key] = {"status": status}
                continue
            longest = max(max(w, r) for w, r in got)
            entry["scenarios"][scenario.key] = {
                "status": "ok", "label": scenario.label, "n": len(got),
                "w_median_s": statistics.median(w for w, _ in got), "r_median_s": statistics.median(r for _, r in got),
                "round_trip_median_s": statistics.median(w + r for w, r in got), "longest_request_s": longest,
                "headroom_x": GUNICORN_TIMEOUT_S / longest, "met": longest < GUNICORN_TIMEOUT_S}
        out["rows"][str(rows)] = entry
        del value
        gc.collect()
    return out
