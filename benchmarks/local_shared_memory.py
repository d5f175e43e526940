"""The local backend's shared memory: what 4 worker processes reading one 100 MB frame cost the host.

Part 1, memory: 4 worker processes (spawned, like gunicorn workers) each read the same ~100 MB
DataFrame and keep it. The host's memory growth is the sum over the 4 workers of the growth of their
PSS (``/proc/<pid>/smaps_rollup``: shared pages count once in the sum, split between their users),
from "imports done, backend open" to "frame read and every column summed". It is reported in copies
of the frame:

* ``local`` (tmpfs): the parent wrote the frame; every worker maps the same file: ~1 copy in all.
* ``memory``: each process has its own backend, so each worker builds and stores its own: ~4.
* ``redis``: the parent wrote it; each worker receives and decrypts its own: ~4 (and Redis keeps one
  more, outside these processes).

Part 2, time: reading a frame (``get().thaw()``, then summing one column) at 100k and 1M rows:
``local`` written by another process, ``memory`` in this process, ``redis``; as ratios against
``memory``, all measured in this run (median of ``--runs``).

Run from the repo root (about a minute; every wait has a timeout, workers are always stopped)::

    .venv/bin/python benchmarks/local_shared_memory.py
    .venv/bin/python benchmarks/local_shared_memory.py --mb 20 --runs 3   # smoke run
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = b"local shared memory benchmark"
KEY = "bench" + "b" * 17
WAIT = 120.0  # seconds any one step may take before the run gives up


def make_frame(rows: int) -> Any:
    import numpy as np
    import pandas as pd

    return pd.DataFrame({"n": np.arange(rows, dtype="int64"), "x": np.linspace(0.0, 1.0, rows)})


def make_backend(kind: str, where: str) -> Any:
    from dash_state.backends import MemoryBackend
    from dash_state.core.keys import Keys
    from dash_state.core.seal import Seal

    seal = Seal(Keys((SECRET,)))
    if kind == "local":
        from dash_state.backends.local import LocalBackend

        return LocalBackend(seal, where, max_bytes=4 << 30)
    if kind == "redis":
        from dash_state.backends.redis import RedisBackend

        return RedisBackend(seal, REDIS_URL, prefix=where)
    return MemoryBackend(max_bytes=4 << 30)


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss line for process {pid}")


def worker(kind: str, where: str, rows: int, conn: Any) -> None:
    """Open the backend, wait for "go", read (memory: build and store first), sum, wait for "stop"."""
    from dash_state.core.values import freeze

    backend = make_backend(kind, where)
    backend.set("warm-up", KEY, freeze(make_frame(1000)), 600)  # every lazy import and cache, before the baseline
    float(backend.get("warm-up", KEY).thaw()["x"].sum())
    backend.delete("warm-up", KEY)
    conn.send("ready")
    conn.recv()
    if kind == "memory":
        backend.set("u", KEY, freeze(make_frame(rows)), 600)
    frame = backend.get("u", KEY).thaw()
    conn.send(float(frame["x"].sum()) + float(frame["n"].sum()))  # every page of both columns touched
    conn.recv()
    backend.close()


def shared_memory(kind: str, where: str, rows: int, workers: int) -> float:
    """Growth of the workers' summed PSS, in bytes, while each reads and holds the frame."""
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    try:
        for _ in range(workers):
            mine, theirs = context.Pipe()
            process = context.Process(target=worker, args=(kind, where, rows, theirs), daemon=True)
            process.start()
            pipes.append(mine)
            processes.append(process)
        for pipe in pipes:
            _receive(pipe)
        before = sum(pss_kib(p.pid) for p in processes)
        for pipe in pipes:
            pipe.send("go")
        sums = {_receive(pipe) for pipe in pipes}
        assert len(sums) == 1, f"the workers read different values: {sums}"
        after = sum(pss_kib(p.pid) for p in processes)
        for pipe in pipes:
            pipe.send("stop")
        for process in processes:
            process.join(WAIT)
        return (after - before) * 1024
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()


def _receive(pipe: Any) -> Any:
    if not pipe.poll(WAIT):
        raise TimeoutError(f"a worker did not answer within {WAIT:.0f} s")
    return pipe.recv()


def write_elsewhere(where: str, rows: int) -> None:
    """Write the frame to the local store from another process."""
    script = f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from local_shared_memory import make_backend, make_frame, KEY
        from dash_state.core.values import freeze
        backend = make_backend("local", {where!r})
        backend.set("u", KEY, freeze(make_frame({rows})), 600)
        backend.close()
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True, timeout=WAIT)


def read_time(backend: Any, runs: int) -> tuple[float, float]:
    """Median seconds of get().thaw(), and of that plus summing one column."""
    reads, sums = [], []
    for _ in range(runs):
        started = time.perf_counter()
        frame = backend.get("u", KEY).thaw()
        read = time.perf_counter()
        float(frame["x"].sum())
        reads.append(read - started)
        sums.append(time.perf_counter() - started)
        del frame
    return statistics.median(reads), statistics.median(sums)


def redis_reachable() -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the shared frame in MB (default 100)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=7, help="reads per timing (median)")
    args = parser.parse_args()
    from dash_state.core.values import freeze

    kinds = ["local", "memory"] + (["redis"] if redis_reachable() else [])
    if "redis" not in kinds:
        print(f"(redis at {REDIS_URL} is not reachable: its rows are left out)")
    shm = f"/dev/shm/dash-state-bench-{uuid.uuid4().hex[:8]}"
    prefix = f"dash-state-bench-{uuid.uuid4().hex[:8]}:"
    places = {"local": shm, "memory": "", "redis": prefix}
    rows = args.mb * 1_000_000 // 16
    frame_bytes = rows * 16
    try:
        print(f"\n1. {args.workers} worker processes each read one {frame_bytes / 1e6:.0f} MB frame ({rows:,} rows)")
        print(f"{'backend':<10}{'memory growth':>16}{'copies':>9}{'vs memory':>11}")
        growth = {}
        for kind in kinds:
            if kind != "memory":
                writer = make_backend(kind, places[kind])
                writer.set("u", KEY, freeze(make_frame(rows)), 600)
                writer.close()
            growth[kind] = shared_memory(kind, places[kind], rows, args.workers)
        for kind in kinds:
            print(f"{kind:<10}{growth[kind] / 1e6:>13.0f} MB{growth[kind] / frame_bytes:>9.2f}"
                  f"{growth[kind] / growth['memory']:>11.2f}")

        print(f"\n2. Reading a frame, median of {args.runs} (ms; ratio against memory in this process)")
        print(f"{'rows':>10}{'backend':>10}{'get+thaw':>12}{'ratio':>8}{'+ sum(x)':>12}{'ratio':>8}")
        for size in (100_000, 1_000_000):
            times = {}
            for kind in kinds:
                where = f"{shm}-{size}" if kind == "local" else places[kind]
                if kind == "local":
                    write_elsewhere(where, size)  # another process wrote it: nothing of it is in this one
                backend = make_backend(kind, where)
                if kind != "local":
                    backend.set("u", KEY, freeze(make_frame(size)), 600)
                times[kind] = read_time(backend, args.runs)
                backend.close()
            for kind in kinds:
                (read, total), (base_read, base_total) = times[kind], times["memory"]
                print(f"{size:>10,}{kind:>10}{read * 1e3:>12.2f}{read / base_read:>8.1f}"
                      f"{total * 1e3:>12.2f}{total / base_total:>8.1f}")
    finally:
        for path in (shm, f"{shm}-100000", f"{shm}-1000000"):
            shutil.rmtree(path, ignore_errors=True)
        if "redis" in kinds:
            import redis

            with redis.Redis.from_url(REDIS_URL) as raw:
                for key in raw.scan_iter(match=f"{prefix}*", count=500):
                    raw.unlink(key)


if __name__ == "__main__":
    main()
