"""The near tier: what another worker of the same host pays to read a 100k-row frame.

One process (spawned, like a gunicorn worker) writes ``--values`` frames (``benchdata.make_frame``,
100k rows, 6.3 MB) through a StateManager; another process of the same host reads each of them once
(its first read: the per-process read cache cannot help) with ``manager.load``, which includes the
reference check, the backend read and the thaw. Scenarios, read in turn (interleaved), all in this run:

* ``local``: the local backend on tmpfs (the frame is mapped in place);
* ``redis + near``: Redis, with the near tier on tmpfs (a local read plus one PTTL);
* ``redis``: Redis without the near tier (``STATE_NEAR_TIER_BYTES = 0``: GET, decrypt, decode);
* ``redis, process cache hit``: the reader reads one value again (one EXISTS, a shallow copy): what the
  per-process read cache in front of the near tier still saves.

The writer's ``save`` times are printed too (with the near tier a write also keeps its copy).
Target: ``redis + near`` <= 1.3x ``local``. Redis at ``STATE_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``); every key and directory it makes is removed at the end::

    .venv/bin/python benchmarks/near_tier.py              # about half a minute
    .venv/bin/python benchmarks/near_tier.py --values 5   # smoke run
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REDIS_URL = os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = (b"near tier benchmark",)
WAIT = 300.0


def scenarios(tag: str) -> dict[str, dict]:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    common = {"STATE_REDIS_URL": REDIS_URL, "STATE_NEAR_TIER_PATH": f"{base}/dash-state-bench-near-{tag}"}
    return {
        "local": {"STATE_BACKEND": "local", "STATE_LOCAL_PATH": f"{base}/dash-state-bench-local-{tag}"},
        "redis + near": {**common, "STATE_BACKEND": "redis", "STATE_KEY_PREFIX": f"dash-state-bench-{tag}-a:"},
        "redis": {**common, "STATE_BACKEND": "redis", "STATE_KEY_PREFIX": f"dash-state-bench-{tag}-b:",
                  "STATE_NEAR_TIER_BYTES": 0},
    }


def manager(settings: dict, **extra: Any) -> Any:
    from dash_state.config import build_config
    from dash_state.core.keys import Keys
    from dash_state.core.manager import StateManager

    return StateManager(build_config(({**settings, **extra}, "benchmark")), Keys(SECRET))


def writer(tag: str, values: int, rows: int, conn: Any) -> None:
    from benchdata import make_frame

    frame = make_frame(rows)
    tokens: dict[str, list[str]] = {}
    saves: dict[str, list[float]] = {}
    for name, settings in scenarios(tag).items():
        m = manager(settings)
        m.save("warm-up", make_frame(1000), who="alice")
        tokens[name], saves[name] = [], []
        for i in range(values):
            started = time.perf_counter()
            tokens[name].append(m.save(f"s{i}", frame, who="alice"))
            saves[name].append(time.perf_counter() - started)
        m.close()
    conn.send((tokens, saves))


def reader(tag: str, tokens: dict[str, list[str]], conn: Any) -> None:
    from benchdata import make_frame

    managers = {name: manager(settings, STATE_READ_CACHE_BYTES=0) for name, settings in scenarios(tag).items()}
    for m in managers.values():  # imports, connections and LMDB handles before the timing
        m.load("warm-up", m.save("warm-up", make_frame(1000), who="bob"), who="bob")
    times: dict[str, list[float]] = {name: [] for name in managers}
    count = len(next(iter(tokens.values())))
    for i in range(count):
        for name, m in managers.items():
            started = time.perf_counter()
            value = m.load(f"s{i}", tokens[name][i], who="alice")
            times[name].append(time.perf_counter() - started)
            assert value is not None and len(value) > 0, f"{name}: value {i} missing"
    cached = manager(scenarios(tag)["redis + near"])
    token = tokens["redis + near"][0]
    cached.load("s0", token, who="alice")
    hits = []
    for _ in range(count):
        started = time.perf_counter()
        cached.load("s0", token, who="alice")
        hits.append(time.perf_counter() - started)
    times["redis, process cache hit"] = hits
    near = managers["redis + near"].stats()["backends"]["redis"]["near_tier"]
    for m in [*managers.values(), cached]:
        m.close()
    conn.send((times, near))


def run(target: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    process = context.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    try:
        if not mine.poll(WAIT):
            raise TimeoutError(f"a worker did not answer within {WAIT:.0f} s")
        return mine.recv()
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()


def clean(tag: str) -> None:
    import redis

    for settings in scenarios(tag).values():
        for key in ("STATE_LOCAL_PATH", "STATE_NEAR_TIER_PATH"):
            if key in settings:
                shutil.rmtree(settings[key], ignore_errors=True)
    with redis.Redis.from_url(REDIS_URL) as raw:
        for key in raw.scan_iter(match=f"dash-state-bench-{tag}-*", count=500):
            raw.unlink(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=15, help="frames written and read per scenario")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    try:
        tokens, saves = run(writer, tag, args.values, args.rows)
        times, near = run(reader, tag, tokens)
    finally:
        clean(tag)
    assert near["hits"] == args.values + 1 and near["misses"] == 0, f"the reader missed the near tier: {near}"
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"\n{args.rows:,}-row frame written by one process, read once by another ({args.values} values, "
          f"median ms; near tier sealed: {near['sealed']})")
    print(f"{'scenario':<28}{'read ms':>9}{'vs local':>10}{'vs redis':>10}{'write ms':>10}")
    for name, ms in median.items():
        write = f"{statistics.median(saves[name]) * 1000:>10.2f}" if name in saves else f"{'':>10}"
        print(f"{name:<28}{ms:>9.2f}{ms / median['local']:>10.2f}{ms / median['redis']:>10.2f}{write}")
    ratio = median["redis + near"] / median["local"]
    print(f"\ntarget redis + near <= 1.3x local: {ratio:.2f}x, {'met' if ratio <= 1.3 else 'missed'}")


if __name__ == "__main__":
    main()
