"""Round-trip benchmark: write a DataFrame to a store in one callback, read it back in another.

Three scenarios, each its own Dash app in this process, all measured in the same run:

1. ``dcc.Store``      W returns ``df.to_dict("records")``, R rebuilds ``pd.DataFrame(records)``.
2. ``ServerStore``    W returns ``df`` (kept in the memory backend), R receives a DataFrame.
3. ``dispatch``       the same two callbacks on a ``dcc.Store`` with a trivial value (1 -> "1"):
                      what Dash itself costs for two callback requests.

Callbacks are driven through Flask's test client with ``tests/dash_client.py`` (the way Dash's
renderer calls them). One round trip = wall time of W's HTTP request + wall time of R's HTTP request,
R being sent the value W returned (what the browser sends back). Only the two test-client requests
are timed (``time.perf_counter`` around ``test_client.post``); the simulated browser's own JSON
encoding of the request body and parsing of the response happen outside the timed region.

Run from the repo root::

    .venv/bin/python benchmarks/roundtrip.py                       # 100k rows, 7 runs
    .venv/bin/python benchmarks/roundtrip.py --rows 1000 --runs 3  # smoke run
    .venv/bin/python benchmarks/roundtrip.py --json results.json --profile
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dash  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from dash import Input, Output, dcc, html  # noqa: E402

from dash_client import DashClient  # noqa: E402
from dash_state import ServerStore  # noqa: E402

logging.getLogger("dash_state").setLevel(logging.WARNING)

SECRET_KEY = "dash-state-roundtrip-benchmark"
RATIO_TARGET = 50.0  # dcc.Store round trip / ServerStore round trip, at least
OVERHEAD_TARGET_MS = 3.0  # ServerStore round trip - dispatch baseline, at most

BUTTON, STORE, OUT = "go", "store", "out"


# -- data ---------------------------------------------------------------------------------------------
# make_frame lives in benchdata.py (no Dash import there, so the load-test app can use it too);
# ``roundtrip.make_frame`` stays importable under this name.
from benchdata import SEED, make_frame  # noqa: E402,F401


# -- apps ---------------------------------------------------------------------------------------------
def new_app(store: Any) -> dash.Dash:
    app = dash.Dash(__name__)
    app.server.config["SECRET_KEY"] = SECRET_KEY
    app.layout = html.Div([html.Button("go", id=BUTTON), store, html.Div(id=OUT)])
    return app


def dcc_store_app(df: pd.DataFrame) -> dash.Dash:
    app = new_app(dcc.Store(id=STORE))

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return df.to_dict("records")

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(records):
        frame = pd.DataFrame(records)
        return f"{len(frame)} rows"

    return app


def server_store_app(df: pd.DataFrame) -> dash.Dash:
    app = new_app(ServerStore(id=STORE))

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return df

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(frame):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"R expected a DataFrame, got {type(frame).__name__}")
        return f"{len(frame)} rows"

    return app


def dispatch_app(df: pd.DataFrame) -> dash.Dash:
    app = new_app(dcc.Store(id=STORE))

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return 1

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(value):
        return str(value)

    return app


SCENARIOS: list[tuple[str, str, Callable[[pd.DataFrame], dash.Dash]]] = [
    ("dcc_store", "dcc.Store (records)", dcc_store_app),
    ("server_store", "ServerStore (memory)", server_store_app),
    ("dispatch", "Dash dispatch baseline (trivial value)", dispatch_app),
]


# -- measuring ----------------------------------------------------------------------------------------
class TimedHttp:
    """Wraps a Flask test client: times each POST and records its request body size."""

    def __init__(self, inner):
        self._inner = inner
        self.last_seconds = 0.0
        self.last_request_bytes = 0

    def post(self, *args, **kwargs):
        data = kwargs.get("data", b"")
        self.last_request_bytes = len(data.encode() if isinstance(data, str) else data)
        start = time.perf_counter()
        response = self._inner.post(*args, **kwargs)
        self.last_seconds = time.perf_counter() - start
        return response

    def __getattr__(self, name):
        return getattr(self._inner, name)


class Scenario:
    def __init__(self, key: str, label: str, factory: Callable[[pd.DataFrame], dash.Dash], df: pd.DataFrame):
        self.key, self.label = key, label
        self.app = factory(df)
        self.client = DashClient(self.app)
        self.http = self.client.http = TimedHttp(self.client.http)
        self.client.layout()  # first request: creates the session cookie, registers ServerStore ids
        self.samples: list[float] = []  # seconds per round trip
        self.w_samples: list[float] = []  # of which the W request
        self.r_samples: list[float] = []  # of which the R request
        self.client_json: list[float] = []  # seconds the simulated browser spent on JSON, untimed
        self.bytes_to_browser = self.bytes_back = self.bytes_back_compact = 0
        self.check = ""

    def round_trip(self) -> float:
        """W then R; returns the seconds spent in the two HTTP requests."""
        begin = time.perf_counter()
        written = self.client.call(outputs=[(STORE, "data")], inputs=[(BUTTON, "n_clicks", 1)])
        w_seconds = self.http.last_seconds
        self.bytes_to_browser = self.client.last_response_bytes
        value = written[STORE]["data"]  # what the browser now holds and sends back
        read = self.client.call(outputs=[(OUT, "children")], inputs=[(STORE, "data", value)])
        r_seconds = self.http.last_seconds
        self.bytes_back = self.http.last_request_bytes
        total = w_seconds + r_seconds
        self.client_json.append(time.perf_counter() - begin - total)
        self.check = read[OUT]["children"]
        self._value = value
        self._last = (w_seconds, r_seconds)
        return total

    def finish(self, rows: int) -> None:
        # A browser's JSON.stringify is compact; DashClient's json.dumps adds a space after , and :
        body_value = json.dumps(self._value, separators=(",", ":"))
        spaced_value = json.dumps(self._value)
        self.bytes_back_compact = self.bytes_back - len(spaced_value) + len(body_value)
        expected = "1" if self.key == "dispatch" else f"{rows} rows"
        if self.check != expected:
            raise AssertionError(f"{self.label}: R returned {self.check!r}, expected {expected!r}")

    def stats(self) -> dict:
        ms = [s * 1000 for s in self.samples]
        return {
            "label": self.label,
            "bytes_to_browser": self.bytes_to_browser,
            "bytes_back": self.bytes_back,
            "bytes_back_compact_json": self.bytes_back_compact,
            "median_ms": statistics.median(ms),
            "p90_ms": float(np.percentile(ms, 90)),
            "min_ms": min(ms),
            "max_ms": max(ms),
            "samples_ms": ms,
            "w_median_ms": statistics.median(self.w_samples) * 1000,
            "r_median_ms": statistics.median(self.r_samples) * 1000,
            "untimed_client_json_median_ms": statistics.median(self.client_json) * 1000,
        }


def run(rows: int, runs: int, warmup: int) -> tuple[dict, list[Scenario]]:
    df = make_frame(rows)
    scenarios = [Scenario(key, label, factory, df) for key, label, factory in SCENARIOS]
    # Interleave the scenarios run by run, so drift on the machine (frequency, other load) hits all
    # of them alike; collect garbage before each sample so one scenario's garbage is not another's pause.
    for i in range(warmup + runs):
        for scenario in scenarios:
            gc.collect()
            seconds = scenario.round_trip()
            if i >= warmup:
                scenario.samples.append(seconds)
                scenario.w_samples.append(scenario._last[0])
                scenario.r_samples.append(scenario._last[1])
    for scenario in scenarios:
        scenario.finish(rows)

    stats = {s.key: s.stats() for s in scenarios}
    ratio = stats["dcc_store"]["median_ms"] / stats["server_store"]["median_ms"]
    overhead = stats["server_store"]["median_ms"] - stats["dispatch"]["median_ms"]
    result = {
        "parameters": {"rows": rows, "runs": runs, "warmup": warmup, "seed": SEED,
                       "timing": "perf_counter around the W and R test-client POSTs; median and p90 "
                                 "(linear interpolation) over runs"},
        "frame": {"rows": len(df), "columns": {c: str(t) for c, t in df.dtypes.items()},
                  "memory_bytes": int(df.memory_usage(deep=True).sum())},
        "environment": environment(),
        "scenarios": stats,
        "ratios": {
            "dcc_store_over_server_store": {"value": ratio, "target": f">= {RATIO_TARGET:g}x",
                                            "pass": ratio >= RATIO_TARGET},
            "server_store_minus_dispatch_ms": {"value": overhead, "target": f"<= {OVERHEAD_TARGET_MS:g} ms",
                                               "pass": overhead <= OVERHEAD_TARGET_MS},
        },
    }
    return result, scenarios


def environment() -> dict:
    from importlib.metadata import version

    packages = {}
    for name in ("dash", "dash-state", "flask", "pandas", "numpy", "pyarrow", "orjson"):
        try:
            packages[name] = version(name)
        except Exception:
            packages[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "packages": packages}


# -- output -------------------------------------------------------------------------------------------
def fmt_bytes(n: int) -> str:
    if n >= 1 << 20:
        return f"{n:,} ({n / (1 << 20):.1f} MiB)"
    if n >= 1 << 10:
        return f"{n:,} ({n / (1 << 10):.1f} KiB)"
    return f"{n:,}"


def markdown(result: dict) -> str:
    p = result["parameters"]
    lines = [
        f"Round trip (W write + R read) of a {p['rows']:,}-row DataFrame; median/p90 of {p['runs']} runs "
        f"after {p['warmup']} warm-ups.",
        "",
        "| scenario | bytes to browser | bytes back | round trip median ms | p90 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in result["scenarios"].values():
        lines.append(f"| {s['label']} | {fmt_bytes(s['bytes_to_browser'])} | {fmt_bytes(s['bytes_back'])} "
                     f"| {s['median_ms']:.2f} | {s['p90_ms']:.2f} |")
    r = result["ratios"]
    ratio, overhead = r["dcc_store_over_server_store"], r["server_store_minus_dispatch_ms"]
    lines += [
        "",
        f"- dcc.Store / ServerStore: **{ratio['value']:.1f}x** (target {ratio['target']}): "
        f"**{'PASS' if ratio['pass'] else 'MISS'}**",
        f"- ServerStore - dispatch baseline: **{overhead['value']:.2f} ms** (target {overhead['target']}): "
        f"**{'PASS' if overhead['pass'] else 'MISS'}**",
    ]
    return "\n".join(lines)


def profile(scenario: Scenario, runs: int, top: int = 10) -> str:
    """cProfile the ServerStore round trips; top entries by cumulative time inside dash_state/pandas/pyarrow."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    for _ in range(runs):
        gc.collect()
        profiler.enable()
        scenario.round_trip()
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    wanted = (f"{os.sep}dash_state{os.sep}", f"{os.sep}pandas{os.sep}", f"{os.sep}pyarrow{os.sep}")
    rows = []
    for (filename, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():
        if any(w in filename for w in wanted):
            rows.append((ct, tt, nc, filename, line, func))
    rows.sort(reverse=True)

    def short(path: str) -> str:
        for w in wanted:
            if w in path:
                return w.strip(os.sep) + os.sep + path.split(w, 1)[1]
        return path

    out = [f"cProfile of {runs} ServerStore round trips (profiled total {total * 1000 / runs:.2f} ms per round "
           f"trip, inflated by profiling); top {top} cumulative entries inside dash_state / pandas / pyarrow:",
           "", "| cumulative ms / round trip | own ms / round trip | calls / round trip | function |",
           "|---:|---:|---:|---|"]
    for ct, tt, nc, filename, line, func in rows[:top]:
        out.append(f"| {ct * 1000 / runs:.3f} | {tt * 1000 / runs:.3f} | {nc / runs:g} | "
                   f"`{short(filename)}:{line}({func})` |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the DataFrame (default 100000)")
    parser.add_argument("--runs", type=int, default=7, help="measured round trips per scenario (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured round trips first (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, cProfile the ServerStore scenario and print its top entries")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("--rows and --runs must be >= 1, --warmup >= 0")

    result, scenarios = run(args.rows, args.runs, args.warmup)
    print(markdown(result))
    if args.profile:
        server_store = next(s for s in scenarios if s.key == "server_store")
        text = profile(server_store, args.runs)
        result["profile_server_store"] = text
        print()
        print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
