"""What two settings cost on the write+read round trip of a 100k-row frame, measured in one run.

* ``STATE_ENCRYPTION``: ``hmac`` (0.1's integrity tag: HMAC-SHA256 over the value) against ``aes-gcm``
  (0.2's default: encrypted and authenticated), on Redis and on memory (which stores no bytes, so it
  shows the noise floor of the comparison);
* ``STATE_METRICS``: off against on (counters and latency histograms per store), on memory, the path
  where a fixed cost shows most.

Scenarios are interleaved, run by run, in an order that rotates every run, so machine drift and
position affect them alike; each tab releases the reference it replaced, as the component does. Two
identical "metrics off" apps give the A/A difference: a ratio closer to 1 than that is noise. Run from the repo root::

    .venv/bin/python benchmarks/settings_cost.py [--rows 100000] [--runs 41] [--markdown PATH]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import dash  # noqa: E402
from dash import Input, Output, html  # noqa: E402

from benchdata import make_frame  # noqa: E402
from dash_client import DashClient  # noqa: E402
from dash_state import ServerStore  # noqa: E402

REDIS = "redis://127.0.0.1:6379/15"


def app_for(frame, **config) -> DashClient:
    app = dash.Dash(__name__)
    app.server.config.update(SECRET_KEY="settings-cost", **config)
    app.layout = html.Div([html.Button(id="w"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("w", "n_clicks"))
    def write(n):
        return frame

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return f"{len(data)} rows"

    client = DashClient(app)
    client.layout()
    client.previous = None
    return client


def round_trip(client) -> float:
    gc.collect()
    started = time.perf_counter()
    token = client.call([("s", "data")], [("w", "n_clicks", 1)])["s"]["data"]
    client.call([("out", "children")], [("s", "data", token)])
    elapsed = time.perf_counter() - started
    if client.previous:  # what the component does after a write (untimed: it rides on a later request)
        client.http.post("/_dash-state/v1/release", json={"stores": [{"id": "s", "reference": client.previous}]})
    client.previous = token
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=201)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    frame = make_frame(args.rows)
    redis = {"STATE_BACKEND": "redis", "STATE_REDIS_URL": REDIS, "STATE_KEY_PREFIX": f"cost-{uuid.uuid4().hex[:8]}:"}
    scenarios = {
        "redis, hmac": app_for(frame, STATE_ENCRYPTION="hmac", **redis),
        "redis, aes-gcm": app_for(frame, STATE_ENCRYPTION="aes-gcm", **redis),
        "memory, hmac": app_for(frame, STATE_ENCRYPTION="hmac"),
        "memory, aes-gcm": app_for(frame, STATE_ENCRYPTION="aes-gcm"),
        "memory, metrics off": app_for(frame, STATE_METRICS=False),
        "memory, metrics on": app_for(frame, STATE_METRICS=True),
        "memory, metrics off (A/A control)": app_for(frame, STATE_METRICS=False),
    }
    samples: dict[str, list[float]] = {name: [] for name in scenarios}
    names = list(scenarios)
    for run in range(args.runs + 3):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = round_trip(scenarios[name])
            if run >= 3:  # warm-ups
                samples[name].append(seconds * 1000)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    lines = [f"Write+read round trip of a {args.rows:,}-row frame, median of {args.runs} interleaved runs:", "",
             "| scenario | median ms | p95 ms |", "|---|---:|---:|"]
    for name, values in samples.items():
        p95 = sorted(values)[int(0.95 * (len(values) - 1))]
        lines.append(f"| {name} | {medians[name]:.2f} | {p95:.2f} |")
    lines += ["",
              f"- Redis: AES-GCM / HMAC = {medians['redis, aes-gcm'] / medians['redis, hmac']:.3f}",
              f"- memory (stores no bytes): AES-GCM / HMAC = {medians['memory, aes-gcm'] / medians['memory, hmac']:.3f}",
              f"- metrics on / off (memory): {medians['memory, metrics on'] / medians['memory, metrics off']:.3f} "
              f"({medians['memory, metrics on'] - medians['memory, metrics off']:+.3f} ms; target: at most 3 % more)",
              f"- A/A control, two identical metrics-off apps: "
              f"{medians['memory, metrics off (A/A control)'] / medians['memory, metrics off']:.3f}"]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    import redis as redis_py

    server = redis_py.Redis.from_url(REDIS)
    for key in server.scan_iter(match=redis["STATE_KEY_PREFIX"] + "*"):  # this run's keys only
        server.delete(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
