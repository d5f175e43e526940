"""The matrix: every scenario at one size, in three modes (back to back, interleaved, idle), and the
per-mode summary of each scenario's samples (median, p95, W and R medians)."""
from __future__ import annotations

import gc
import statistics
import time

import numpy as np

from .budget import Clock
from .env import Env
from .messages import say, short_error
from . import scenarios as scenario_module
from .scenarios import (HOST_SCENARIOS, LABELS, SCENARIOS, DashScenario, Scenario, build_scenario,
                        unavailable_reason)
from .sizes import Size

MODES = {"b2b": "back to back", "interleaved": "interleaved", "idle": "idle"}
MODE_ORDER = ["interleaved", "b2b", "idle"]  # execution order (the chart's mode first)


def cell(scenario: Scenario, mode: str) -> dict:
    """One cell of the report: the scenario's samples in ``mode``, or why there are none."""
    samples = scenario.samples.get(mode, [])
    if samples:
        total = [(w + r) * 1000 for w, r in samples]
        out = {"status": "ok", "n": len(total), "median_ms": statistics.median(total),
               "p95_ms": float(np.percentile(total, 95)), "min_ms": min(total), "max_ms": max(total),
               "w_median_ms": statistics.median(w * 1000 for w, _ in samples),
               "r_median_ms": statistics.median(r * 1000 for _, r in samples),
               "samples_ms": [round(t, 4) for t in total]}
        if scenario.slow_mode == mode:
            out["note"] = f"slow: measured once ({scenario.slow_seconds:.1f} s per round trip)"
        if mode in scenario.budget_cut:
            out["note"] = "cut short by the time budget"
        return out
    if not scenario.ok:
        return {"status": scenario.status}
    if scenario.slow_mode is not None:
        return {"status": f"skipped: {scenario.slow_seconds:.0f} s per round trip (measured once, "
                          f"{MODES[scenario.slow_mode]} mode)"}
    if mode in scenario.budget_cut:
        return {"status": "not run: time budget"}
    return {"status": "not run"}


def measure_size(size: Size, keys: list[str], modes: list[str], runs: int, warmup: int, idle_s: float,
                 slow_s: float, env: Env, clock: Clock) -> dict:
    """Every scenario at ``size``, mode after mode, on the same apps. Interleaved and idle rotate who goes
    first so the machine's drift hits all scenarios alike; a first round trip slower than ``slow_s`` is
    the scenario's only sample (dcc.Store at 1M rows would take minutes)."""
    scenarios: list[Scenario] = []
    for key, _, needs in SCENARIOS:
        if key not in keys:
            continue
        reason = unavailable_reason(needs, env, size)
        host_sizes = scenario_module.HOST_SIZES
        if key in HOST_SCENARIOS and host_sizes is not None and size.rows not in host_sizes:
            scenario = Scenario(key, LABELS[key])
            scenario.status = "not run: --host-sizes"
        elif reason:
            scenario = Scenario(key, LABELS[key])
            scenario.status = f"unavailable: {reason}"
        else:
            try:
                scenario = build_scenario(key, size, env)
            except Exception as exc:
                scenario = Scenario(key, LABELS[key])
                scenario.status = f"failed: {short_error(exc)}"
                say(f"  {size.label} / {LABELS[key]}: {scenario.status}")
        scenarios.append(scenario)

    def one(scenario: Scenario, mode: str, index: int) -> None:
        if not scenario.ok or scenario.slow_mode is not None:
            return
        if clock.over():
            scenario.budget_cut.add(mode)
            return
        gc.collect()
        if mode == "idle":
            time.sleep(idle_s)  # the process sat idle; nothing of this is timed
        wall = time.perf_counter()
        try:
            w, r = scenario.round_trip()
            scenario.after()
        except Exception as exc:
            scenario.status = f"failed: {short_error(exc)}"
            say(f"  {size.label} / {scenario.label}: {scenario.status}")
            return
        wall = time.perf_counter() - wall
        if index == 0 and wall > slow_s:  # too slow to repeat: this one measurement is all we take
            scenario.slow_mode, scenario.slow_seconds = mode, wall
            scenario.samples.setdefault(mode, []).append((w, r))
            say(f"  {size.label} / {scenario.label}: {wall:.1f} s per round trip, measured once")
            return
        if index >= warmup:
            scenario.samples.setdefault(mode, []).append((w, r))

    # Dash apps are ~100k objects: move them out of the collector's way, so the gc.collect() before each
    # round trip takes well under a millisecond instead of ~100 ms (unfrozen again after this size).
    gc.collect()
    gc.freeze()
    try:
        for mode in modes:
            gc.collect()
            gc.freeze()
            started = time.perf_counter()
            if mode == "b2b":
                for scenario in scenarios:
                    for index in range(warmup + runs):
                        one(scenario, mode, index)
            else:
                for index in range(warmup + runs):
                    shift = index % max(1, len(scenarios))  # rotate who goes first
                    for scenario in scenarios[shift:] + scenarios[:shift]:
                        one(scenario, mode, index)
            say(f"  {size.label}: {MODES[mode]} done in {time.perf_counter() - started:.0f} s "
                f"(elapsed {clock.elapsed() / 60:.1f} min)")
    finally:
        cache = {}
        for scenario in scenarios:
            if isinstance(scenario, DashScenario):
                cache[scenario.key] = scenario.cache_stats()
            scenario.close()
        gc.unfreeze()
        gc.collect()
    out = {}
    for scenario in scenarios:
        out[scenario.key] = {
            "label": scenario.label,
            "modes": {mode: cell(scenario, mode) for mode in modes},
            "bytes_to_browser": scenario.bytes_to_browser,
            "bytes_back": scenario.bytes_back,
            "released": getattr(getattr(scenario, "w", None), "released", None),
            "managers": cache.get(scenario.key),
        }
        if not scenario.ok:
            out[scenario.key]["status"] = scenario.status
    return out
