"""One benchmark run: the services checked, the sections measured in order into one result dict (the
JSON output), everything the run created removed, then the report written."""
from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass

from benchdata import SEED

from . import scenarios
from .backend_vs_raw import measure_backend_vs_raw
from .big import measure_big
from .budget import Clock, start_watchdog
from .clicks import measure_clicks
from .codec_costs import measure_codecs
from .env import RUN, Env, environment, loadavg
from .floor import measure_floor_without_server_store
from .matrix import measure_size
from .messages import say
from .profiling import profile_scenario
from .report import write_outputs
from .rss import measure_rss
from .sizes import Size
from .targets import big_targets, click_targets, ratio_targets, rss_targets, sort_targets


@dataclass
class Plan:
    """What to measure and how often: the options once their --quick / full defaults are applied."""

    quick: bool
    size_tokens: list[str]
    modes: list[str]
    keys: list[str]
    sections: list[str]
    runs: int
    big_runs: int
    warmup: int
    idle_s: float
    clicks: int
    budget: float
    host_sizes: set[int] | None = None  # where ss_local, ss_local_other, ss_redis_near_other run (None: all)


def run(plan: Plan, args: argparse.Namespace, command: str) -> int:
    """The whole run; 0 whether targets are met or missed (the watchdog exits 3 on its own)."""
    scenarios.RELEASE_MODE = args.release
    scenarios.HOST_SIZES = plan.host_sizes
    logging.getLogger("dash_state").setLevel(logging.ERROR)  # misses and refusals are counted, not logged
    clock = Clock(plan.budget)
    guard = start_watchdog(plan.budget)
    env = Env(args.redis_url, args.postgres_url)
    for name, problem in (("redis", env.redis_error), ("postgres", env.postgres_error),
                          ("dash-extensions", env.dash_extensions_error)):
        say(f"{name}: {'ok' if problem is None else 'unavailable: ' + problem}")
    result: dict = {"parameters": {"command": command,
                                   "quick": plan.quick, "run_id": RUN, "release": args.release, "seed": SEED,
                                   "modes": plan.modes, "scenarios": plan.keys,
                                   "host_sizes": None if plan.host_sizes is None else sorted(plan.host_sizes),
                                   "warmup": plan.warmup, "idle_seconds": plan.idle_s,
                                   "slow_seconds": args.slow_seconds,
                                   "budget_minutes": plan.budget, "redis_url": args.redis_url,
                                   "postgres_url": args.postgres_url, "sections": plan.sections,
                                   "timing": "perf_counter around the W and R test-client POSTs; gc.collect() and the "
                                             "release call untimed; p95 by linear interpolation"},
                    "notes": []}
    try:
        result["environment"] = environment(env)
        if args.profile:
            size = Size(args.profile_size)
            result["sizes"] = {size.key: size.describe()}
            result["parameters"]["runs_per_size"] = {size.key: args.profile_runs}
            text = profile_scenario(args.profile, size, args.profile_runs, args.profile_tool, env, args.profile_top)
            result["profiles"] = [text]
            result["elapsed_s"] = clock.elapsed()
            write_outputs(result, args)
            return 0
        measure(result, plan, args, env, clock)
        result["elapsed_s"] = clock.elapsed()
    finally:
        for note in env.cleanup():
            say(note)
    write_outputs(result, args)
    guard.cancel()
    return 0


def measure(result: dict, plan: Plan, args: argparse.Namespace, env: Env, clock: Clock) -> None:
    """The sections of ``plan.sections``, in this order; each adds its results and its targets."""
    quick, sections = plan.quick, plan.sections
    result["load_average"] = [("start", loadavg())]
    say(f"preparing data (run {RUN}) ...")
    sizes = [Size(token) for token in plan.size_tokens]
    result["sizes"] = {s.key: s.describe() for s in sizes}
    result["parameters"]["runs_per_size"] = {s.key: (plan.big_runs if (s.rows or 0) >= 500_000 else plan.runs)
                                             for s in sizes}
    if quick:
        result["notes"].append("--quick: the 100k-row targets are evaluated at 10k rows and the 1M-row ones at "
                               "20k rows; the numbers only show that everything runs.")
    if "matrix" in sections:
        measure_matrix(result, sizes, plan, args, env, clock)
    if "clicks" in sections:
        say(f"clicks ({plan.clicks}) ...")
        click_size = Size("1k" if quick else "100k")
        result["clicks"] = {"size_label": click_size.label, "clicks": plan.clicks,
                            "rows": measure_clicks(click_size, plan.clicks, env, clock)}
        add_targets(result, click_targets(result["clicks"]["rows"], plan.clicks, click_size.label))
    if "rss" in sections:
        say("memory backend RSS (child processes) ...")
        result["rss"] = measure_rss(quick, clock)
        add_targets(result, rss_targets(result["rss"]))
    if "big" in sections:
        say("big frames ...")
        result["big"] = measure_big([10_000, 20_000] if quick else [1_000_000, 2_000_000], 1 if quick else 3, env,
                                    clock)
        add_targets(result, big_targets(result["big"]))
    if "floor" in sections and not clock.over():
        say("dispatch floor without ServerStore (child process) ...")
        result["floor_without_server_store"] = measure_floor_without_server_store(20 if quick else 200, env)
    if "codecs" in sections and not clock.over():
        say("codec costs ...")
        result["codecs"] = measure_codecs(sizes, quick)
    if "raw" in sections:
        say("backend vs raw client ...")
        result["backend_vs_raw"] = measure_backend_vs_raw(env, quick, clock)
    result["load_average"].append(("end", loadavg()))
    busy = [label for label, la in result["load_average"] if la and la[0] > (os.cpu_count() or 1)]
    if busy:
        result["notes"].append(f"the machine was busy (1-minute load average above {os.cpu_count()} CPUs: "
                               + ", ".join(busy) + "): absolute times are inflated and noisier; compare ratios")
    if clock.over():
        result["notes"].append(f"the time budget ({plan.budget:g} min) ran out: cells marked 'not run: time budget' "
                               "were not measured")


def measure_matrix(result: dict, sizes: list[Size], plan: Plan, args: argparse.Namespace, env: Env,
                   clock: Clock) -> None:
    """Every size (1 warm-up at most and ``big_runs`` at 500k rows or more), then the ratio targets: at
    100k and 1M rows (--quick: 10k and 20k)."""
    rows_of = {s.key: s.rows for s in sizes}
    mid = next((k for k, r in rows_of.items() if r == (10_000 if plan.quick else 100_000)), None)
    big = next((k for k, r in rows_of.items() if r == (20_000 if plan.quick else 1_000_000)), None)
    result["matrix"] = {}
    for size in sizes:
        bigsize = (size.rows or 0) >= 500_000
        say(f"measuring {size.label} ...")
        result["load_average"].append((f"before {size.label}", loadavg()))
        result["matrix"][size.key] = measure_size(
            size, plan.keys, plan.modes, plan.big_runs if bigsize else plan.runs,
            min(plan.warmup, 1) if bigsize else plan.warmup, plan.idle_s, args.slow_seconds, env, clock)
    labels = {s.key: s.label for s in sizes}
    result["targets"] = ratio_targets(result["matrix"], plan.modes, mid, big, labels)
    sort_targets(result["targets"])


def add_targets(result: dict, targets: list[dict]) -> None:
    """Append to the run's targets; no 'targets' key appears when there is none to add."""
    for target in targets:
        result.setdefault("targets", []).append(target)
