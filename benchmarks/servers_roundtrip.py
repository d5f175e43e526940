"""Round trip of a DataFrame through a store on Dash's three servers, each a real process on 127.0.0.1.

Scenarios, all measured in the same run, on tests/servers_app.py:

* ``flask  dcc.Store``    gunicorn (1 worker, 8 threads): the baseline. W returns ``df.to_dict("records")``,
  R receives the records back and rebuilds the frame.
* ``flask  ServerStore``  gunicorn (1 worker, 8 threads).
* ``fastapi ServerStore`` uvicorn (1 process).
* ``quart  ServerStore``  hypercorn (1 process).

One round trip = the wall time of W's callback request + R's callback request over HTTP (requests,
keep-alive), R being sent what W returned, as the browser would. Bodies are encoded before the timer
starts and responses parsed after it stops. The default ``local`` backend stores the values.

    .venv/bin/python benchmarks/servers_roundtrip.py                       # 100k rows, 15 runs
    .venv/bin/python benchmarks/servers_roundtrip.py --rows 1000 --runs 3  # smoke run

Bounded: every server must answer within 60 s of starting, each scenario stops after ``--budget``
seconds, and every server process is stopped at the end of its scenario.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import requests  # noqa: E402
from test_server_processes import serve  # noqa: E402

SCENARIOS = [("flask", "dcc.Store"), ("flask", "ServerStore"), ("fastapi", "ServerStore"), ("quart", "ServerStore")]
OUT = REPO / "benchmarks" / "results" / "servers_roundtrip.md"


def _body(output: str, input_id: str, prop: str, value) -> bytes:
    oid, oprop = output.split(".")
    return json.dumps({"output": output, "outputs": {"id": oid, "property": oprop},
                       "inputs": [{"id": input_id, "property": prop, "value": value}], "state": [],
                       "changedPropIds": [f"{input_id}.{prop}"]}).encode()


def round_trip(session: requests.Session, url: str, n: int, rows: int) -> float:
    headers = {"Content-Type": "application/json"}
    write_body = _body("frame.data", "go", "n_clicks", n)
    started = time.perf_counter()
    written = session.post(f"{url}/_dash-update-component", data=write_body, headers=headers, timeout=120)
    write_time = time.perf_counter() - started
    assert written.status_code == 200, written.text[:300]
    held = written.json()["response"]["frame"]["data"]  # a reference, or the records (dcc.Store)
    read_body = _body("rows.children", "frame", "data", held)
    started = time.perf_counter()
    read = session.post(f"{url}/_dash-update-component", data=read_body, headers=headers, timeout=120)
    read_time = time.perf_counter() - started
    assert read.status_code == 200, read.text[:300]
    shown = read.json()["response"]["rows"]["children"]
    assert shown == f"rows: {rows}", shown
    return write_time + read_time


def measure(backend: str, store: str, rows: int, runs: int, warmup: int, budget: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="servers-roundtrip-") as folder:
        env = {"SERVERS_APP_STORE": store, "SERVERS_APP_ROWS": str(rows)}
        with serve(backend, Path(folder), env) as url:
            session = requests.Session()
            session.get(url, timeout=60)  # the identity cookie, as the page gives it
            for n in range(warmup):
                round_trip(session, url, n + 1, rows)
            times, deadline = [], time.monotonic() + budget
            for n in range(runs):
                times.append(round_trip(session, url, warmup + n + 1, rows))
                if time.monotonic() > deadline:
                    break
            held = len(session.post(f"{url}/_dash-update-component", data=_body("frame.data", "go", "n_clicks", 0),
                                    headers={"Content-Type": "application/json"}, timeout=120).content)
    times.sort()
    return {"backend": backend, "store": store, "runs": len(times), "median_ms": statistics.median(times) * 1000,
            "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))] * 1000,
            "min_ms": times[0] * 1000, "write_response_bytes": held}


def server_name(backend: str) -> str:
    return {"flask": "gunicorn (gthread, 1 worker, 8 threads)", "fastapi": "uvicorn", "quart": "hypercorn"}[backend]


def report(results: list[dict], rows: int) -> str:
    base = next((r for r in results if r["store"] == "dcc.Store"), None)
    import dash

    lines = [
        "# Round trip through a store on Dash's Flask, FastAPI and Quart servers",
        "",
        f"`benchmarks/servers_roundtrip.py`, {time.strftime('%Y-%m-%d %H:%M')}, {rows:,}-row DataFrame "
        f"(4 columns), Dash {dash.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs. One round trip = the write callback request + the read callback request over "
        "HTTP on 127.0.0.1 (each server a real process; the `local` backend). Medians and p95 of the runs below.",
        "",
        "| server | process | store | runs | median | p95 | min | write response | vs dcc.Store (Flask) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{base['median_ms'] / r['median_ms']:.1f}x faster" if base and r is not base else "baseline"
        lines.append(f"| {r['backend']} | {server_name(r['backend'])} | {r['store']} | {r['runs']} | "
                     f"{r['median_ms']:.1f} ms | {r['p95_ms']:.1f} ms | {r['min_ms']:.1f} ms | "
                     f"{r['write_response_bytes']:,} B | {ratio} |")
    lines += ["", "On FastAPI and Quart, Dash runs sync callbacks on the event loop: these figures are one client "
              "at a time; concurrent requests queue behind a running callback there (docs/servers.md)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of measuring per scenario, at most")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = []
    for backend, store in SCENARIOS:
        result = measure(backend, store, args.rows, args.runs, args.warmup, args.budget)
        print(f"{backend:8} {store:12} median {result['median_ms']:8.1f} ms  p95 {result['p95_ms']:8.1f} ms  "
              f"({result['runs']} runs)", flush=True)
        results.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(results, args.rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
