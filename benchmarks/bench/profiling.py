"""``--profile``: one scenario at one size under cProfile (or py-spy), as Markdown tables of the
functions that cost the most per round trip, instead of the benchmark."""
from __future__ import annotations

import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import REPO
from .env import Env
from .scenarios import LABELS, SCENARIOS, Scenario, build_scenario, unavailable_reason
from .sizes import Size


def short_where(where: str) -> str:
    """A file path without the site-packages / repository prefix, for a table cell."""
    for marker in ("/site-packages/", str(REPO) + "/", "/lib/python3.11/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return where


def profile_scenario(key: str, size: Size, runs: int, tool: str, env: Env, top: int) -> str:
    """Three warm-ups, then ``runs`` profiled round trips (the release after each stays outside)."""
    reason = unavailable_reason(next(n for k, _, n in SCENARIOS if k == key), env, size)
    if reason:
        return f"{LABELS[key]}: unavailable: {reason}"
    scenario = build_scenario(key, size, env)
    try:
        for _ in range(3):  # warm-up
            scenario.round_trip()
            scenario.after()
        if tool == "py-spy":
            return profile_py_spy(scenario, size, runs, top)
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        timed = []
        for _ in range(runs):
            gc.collect()
            profiler.enable()
            w, r = scenario.round_trip()
            profiler.disable()
            scenario.after()
            timed.append((w + r) * 1000)
        stats = pstats.Stats(profiler)
        rows = []
        for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
            rows.append((ct, tt, nc, f"{filename}:{line}({func})"))
        rows.sort(reverse=True)
        ours = [row for row in rows if "dash_state" in row[3]]
        by_own = sorted(rows, key=lambda row: row[1], reverse=True)
        lines = [f"#### cProfile: {LABELS[key]}, {size.label}, {runs} round trips",
                 "", f"Median round trip under the profiler: {statistics.median(timed):.2f} ms (the profiler inflates "
                 f"it); profiled total {stats.total_tt * 1000 / runs:.2f} ms per round trip (Flask test client and "
                 "the simulated browser included).", ""]
        for title, chosen in ((f"Top {top} by cumulative time (everything)", rows[:top]),
                              (f"Top {top} inside dash_state by cumulative time", ours[:top]),
                              (f"Top {top} by own time", by_own[:top])):
            lines += [f"{title}:", "", "| cumulative ms / rt | own ms / rt | calls / rt | function |",
                      "|---:|---:|---:|---|"]
            for ct, tt, nc, where in chosen:
                lines.append(f"| {ct * 1000 / runs:.3f} | {tt * 1000 / runs:.3f} | {nc / runs:g} | "
                             f"`{short_where(where)}` |")
            lines.append("")
        return "\n".join(lines)
    finally:
        scenario.close()


def profile_py_spy(scenario: Scenario, size: Size, runs: int, top: int) -> str:
    """py-spy attached to this process: samples outside ``round_trip`` (its sampler, py-spy's start) are dropped."""
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if py_spy is None:
        return "py-spy is not installed (pip install py-spy); use --profile-tool cprofile"
    out = Path(tempfile.mkdtemp(prefix="dash-state-pyspy-")) / "profile.txt"
    spy = subprocess.Popen([py_spy, "record", "--pid", str(os.getpid()), "--rate", "500", "--format", "raw",
                            "--output", str(out), "--nonblocking"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1.0)
    if spy.poll() is not None:
        return f"py-spy could not attach (exit {spy.returncode}): {spy.stdout.read().decode()[-400:]}"
    for _ in range(runs):
        scenario.round_trip()
        scenario.after()
    import signal as _signal

    spy.send_signal(_signal.SIGINT)
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
    if not out.exists():
        return "py-spy wrote no profile"
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]  # a function, not a line
        if not any("round_trip" in f for f in frames):
            continue  # samples of the idle sampler thread and of py-spy's start
        total += n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    shutil.rmtree(out.parent, ignore_errors=True)
    lines = [f"#### py-spy: {scenario.label}, {size.label}, {runs} round trips ({total} samples in round trips)", "",
             "| inclusive % | own % | frame |", "|---:|---:|---|"]
    for frame, n in sorted(inclusive.items(), key=lambda kv: kv[1], reverse=True)[:top]:
        lines.append(f"| {100 * n / max(total, 1):.1f} | {100 * own.get(frame, 0) / max(total, 1):.1f} | "
                     f"`{short_where(frame)}` |")
    return "\n".join(lines)
