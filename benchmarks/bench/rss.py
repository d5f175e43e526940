"""RSS of the memory backend: 10 users write a fresh 13 MB frame 1,000 times, with and without
releasing the replaced references, each variant in a fresh child process (``run.py --_rss-child``) so
its peak RSS is its own; the growth is held against ``STATE_MEMORY_MAX_BYTES``."""
from __future__ import annotations

import gc
import importlib.util
import json
import logging
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
from benchdata import SEED, make_frame

from . import RUN_SCRIPT
from .apps import BUTTON, OUT, STORE, new_dash
from .budget import Clock
from .messages import say, short_error
from .tab import CallbackFailed, Tab, is_reference

RSS_FRAME_BYTES = 13_000_000


def rss_child(spec: dict) -> dict:
    """Runs in a fresh process: 10 users write a fresh 13 MB frame 1,000 times (round robin)."""
    import resource

    import psutil
    from dash import Input, Output, State, dcc

    from dash_state import ServerStore, get_state_manager

    logging.getLogger("dash_state").setLevel(logging.ERROR)
    process = psutil.Process()
    base = make_frame(spec["rows"])
    permutation = np.random.default_rng(SEED).permutation(len(base))

    app = new_dash({"STATE_BACKEND": "memory", "STATE_MEMORY_MAX_BYTES": spec["cap"]})
    from dash import html

    app.layout = html.Div([html.Button("go", id=BUTTON), dcc.Input(id="who"), ServerStore(id=STORE), html.Div(id=OUT)])

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"), State("who", "value"))
    def write(n_clicks, who):
        frame = base.take(permutation)  # a fresh frame each time, as a filter or merge would make
        frame["marker"] = np.int64(n_clicks)
        return frame

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(frame):
        return None if frame is None else int(frame["marker"].iloc[0])

    one_frame = base.take(permutation)
    one_frame["marker"] = np.int64(0)
    frame_bytes = int(one_frame.memory_usage(deep=True).sum())
    del one_frame
    tabs = [Tab(app) for _ in range(spec["users"])]
    for tab in tabs:
        tab.open()
    manager = get_state_manager(app)
    gc.collect()
    before = process.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    held: list[Any] = [None] * len(tabs)
    counts = {"ok": 0, "refused_413": 0, "other_errors": 0, "wrong_value": 0}
    errors: list[str] = []
    started = time.perf_counter()
    for i in range(spec["writes"]):
        u = i % len(tabs)
        tab, click = tabs[u], i + 1
        prev = {STORE: held[u]} if is_reference(held[u]) else {}
        try:
            reference, *_ = tab.callback((STORE, "data"), [(BUTTON, "n_clicks", click)],
                                         {"dash_state": {"stores": [STORE], "prev": prev}}, state=[("who", "value", u)])
        except CallbackFailed as exc:
            counts["refused_413" if exc.status == 413 else "other_errors"] += 1
            if exc.status != 413 and len(errors) < 3:
                errors.append(str(exc))
            continue
        marker, *_ = tab.callback((OUT, "children"), [(STORE, "data", reference)])
        counts["ok"] += 1
        if marker != click:
            counts["wrong_value"] += 1
        old, held[u] = held[u], reference
        if spec["release"] and is_reference(old):
            tab.release(STORE, old)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    after = process.memory_info().rss
    gc.collect()
    after_gc = process.memory_info().rss
    stats = manager.backend("memory").stats()
    return {"users": spec["users"], "writes": spec["writes"], "release": spec["release"], "cap": spec["cap"],
            "rows": spec["rows"], "frame_bytes": frame_bytes, "rss_before": before, "rss_after": after,
            "rss_after_gc": after_gc, "rss_peak_sampled": peak[0],
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "backend_bytes": stats["bytes"], "backend_entries": stats["entries"], "backend_refused": stats["refused"],
            "counts": counts, "errors": errors, "seconds": seconds}


def measure_rss(quick: bool, clock: Clock) -> list[dict]:
    """Both variants (release, never release), each in its child process; --quick shrinks everything."""
    if importlib.util.find_spec("psutil") is None:
        return [{"status": "unavailable: psutil is not installed (pip install psutil)"}]
    probe = make_frame(20_000)
    probe = probe.take(np.random.default_rng(SEED).permutation(len(probe)))
    probe["marker"] = np.int64(0)
    bytes_per_row = probe.memory_usage(deep=True).sum() / len(probe)  # as the child's frames (after take)
    spec = {"users": 10, "writes": 1000, "cap": 256 << 20, "rows": int(RSS_FRAME_BYTES / bytes_per_row)}
    if quick:
        spec = {"users": 5, "writes": 60, "cap": 8 << 20, "rows": 15_000}
    rows = []
    for release in (True, False):
        if clock.over():
            rows.append({"release": release, "status": "not run: time budget"})
            continue
        child = {**spec, "release": release}
        try:
            done = subprocess.run([sys.executable, str(RUN_SCRIPT), "--_rss-child", json.dumps(child)],
                                  capture_output=True, text=True, timeout=max(60.0, min(900.0, clock.left() + 120)))
            line = next((x for x in done.stdout.splitlines() if x.startswith("RSS-RESULT ")), None)
            if line is None:
                raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-600:]}")
            result = json.loads(line[len("RSS-RESULT "):])
            growth = result["rss_peak_sampled"] - result["rss_before"]
            result.update({"status": "ok", "peak_growth": growth, "met": growth <= result["cap"]})
            rows.append(result)
            say(f"  rss release={release}: before {result['rss_before'] >> 20} MiB, peak "
                f"{result['rss_peak_sampled'] >> 20} MiB, after {result['rss_after'] >> 20} MiB")
        except Exception as exc:
            rows.append({"release": release, "status": f"failed: {short_error(exc)}"})
    return rows
