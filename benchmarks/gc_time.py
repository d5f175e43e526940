"""How long ``backend.gc()`` (``dash-state gc``) takes to remove 100,000 expired entries: redis, postgres, local.

Each backend gets ``--entries`` values (``--users`` namespaces, written ``--per-write`` values per
write), then its clock is moved ``SHIFT`` seconds ahead, so that all of them are expired while their
data is still there: the gc has to delete every key, row or LMDB record (and book-keep the quota),
the most work an expired entry can cost. One gc is timed; a second one must find nothing left. Redis
at ``STATE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``), PostgreSQL at
``STATE_TEST_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), local on
tmpfs; everything made is removed afterwards::

    .venv/bin/python benchmarks/gc_time.py                               # about a minute on 2 CPUs
    .venv/bin/python benchmarks/gc_time.py --markdown benchmarks/results/gc.md
    .venv/bin/python benchmarks/gc_time.py --entries 10000 --only redis  # smoke run

``tests/test_backend_inventory.py`` runs the same :func:`fill` and :func:`timed_gc` (redis and
postgres, 100,000 entries, under 60 s).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
REDIS_URL = os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASE_URL = os.environ.get("STATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHIFT = 3600.0  # seconds the clock moves ahead: every entry (TTL 600 s) is then expired
TTL = 600.0
KINDS = ("redis", "postgres", "local")


def make(kind: str) -> Any:
    """A backend of ``kind`` under a prefix, table or directory of its own."""
    from dash_state.backends import create_backend
    from dash_state.config import build_config
    from dash_state.core.keys import Keys
    from dash_state.core.seal import Seal

    run = uuid.uuid4().hex[:8]
    if kind == "redis":
        settings = {"STATE_BACKEND": "redis", "STATE_REDIS_URL": REDIS_URL, "STATE_KEY_PREFIX": f"dash-state-gc-{run}:"}
    elif kind == "postgres":
        settings = {"STATE_BACKEND": "database", "STATE_DATABASE_URL": DATABASE_URL,
                    "STATE_DATABASE_TABLE": f"dash_state_gc_{run}"}
    else:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
        settings = {"STATE_BACKEND": "local", "STATE_LOCAL_PATH": f"{base}/dash-state-gc-{run}",
                    "STATE_LOCAL_MAX_BYTES": 4 << 30}
    config = build_config((settings, "gc benchmark"))
    seal = Seal(Keys((b"gc benchmark",)), config["STATE_ENCRYPTION"], config["STATE_COMPRESSION"],
                config["STATE_COMPRESSION_MIN_BYTES"])
    return create_backend(settings["STATE_BACKEND"], config, seal)


def dispose(backend: Any) -> None:
    """Remove everything ``make`` made."""
    if backend.name == "redis":
        client = backend._client
        for name in client.scan_iter(match=f"{backend.prefix}*", count=1000):
            client.unlink(name)
    elif backend.name == "database":
        backend.drop_table()
    backend.close()
    if backend.name == "local":
        shutil.rmtree(backend.path, ignore_errors=True)


def fill(backend: Any, entries: int, users: int = 100, per_write: int = 1000) -> None:
    """``entries`` small values (TTL 600 s) spread over ``users`` namespaces."""
    from dash_state.core.values import freeze

    value = freeze({"payload": "x" * 100})
    sealed = backend.seal.dump("k" * 22, value)  # sealed for another key: only their sizes matter here
    per_user = -(-entries // users)
    written = 0
    for u in range(users):
        user = f"u.gc-{u:05d}"
        for start in range(0, min(per_user, entries - written), per_write):
            count = min(per_write, per_user - start, entries - written)
            keys = [uuid.uuid4().hex[:22] for _ in range(count)]
            backend.write_many(user, [(key, sealed, TTL) for key in keys], [], None)
            written += count
    assert written == entries, (written, entries)


def shift_clock(backend: Any, seconds: float = SHIFT) -> None:
    """Move the backend's clock ahead (Redis: the module's clock, for this process)."""
    if backend.name == "redis":
        import dash_state.backends.redis.redis as module

        module._now_ms = lambda: int((time.time() + seconds) * 1000)
    else:
        backend._clock = lambda: time.time() + seconds


def restore_clock(backend: Any) -> None:
    if backend.name == "redis":
        import dash_state.backends.redis.redis as module

        module._now_ms = lambda: int(time.time() * 1000)
    else:
        backend._clock = time.time


def timed_gc(backend: Any, batch: int = 1000) -> tuple[float, dict]:
    """Seconds one gc takes, and what it returned."""
    started = time.perf_counter()
    result = backend.gc(batch=batch)
    return time.perf_counter() - started, result


def measure(kind: str, entries: int, users: int) -> dict:
    backend = make(kind)
    try:
        started = time.perf_counter()
        fill(backend, entries, users)
        filled = time.perf_counter() - started
        shift_clock(backend)
        try:
            dry = time.perf_counter()
            counted = backend.gc(dry_run=True)
            dry = time.perf_counter() - dry
            seconds, result = timed_gc(backend)
            again = backend.gc()
        finally:
            restore_clock(backend)
        assert counted == result and result["expired"] == entries, (counted, result)
        assert again["expired"] == 0, again
        return {"kind": kind, "entries": entries, "users": users, "fill_s": filled, "dry_run_s": dry,
                "gc_s": seconds, "result": result}
    finally:
        dispose(backend)


def markdown(rows: list[dict]) -> str:
    title = (f"`backend.gc()` of expired entries (`benchmarks/gc_time.py`), {platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.")
    lines = [title, "Every entry's data is still stored (the clock moves ahead): the gc deletes it all.",
             "",
             "| backend | entries | namespaces | gc s | dry run s | entries/s | bytes freed |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['kind']} | unavailable: {row['error']} | | | | | |")
            continue
        rate = row["entries"] / row["gc_s"] if row["gc_s"] else float("inf")
        lines.append(f"| {row['kind']} | {row['entries']:,} | {row['users']:,} | {row['gc_s']:.2f} | "
                     f"{row['dry_run_s']:.2f} | {rate:,.0f} | {row['result']['bytes_freed']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--only", choices=KINDS, action="append")
    parser.add_argument("--markdown", type=Path, help="write the table here too")
    args = parser.parse_args()
    rows = []
    for kind in args.only or KINDS:
        try:
            row = measure(kind, args.entries, args.users)
        except Exception as exc:  # noqa: BLE001 - a service that is down: say so, measure the rest
            row = {"kind": kind, "error": f"{type(exc).__name__}: {str(exc)[:120]}"}
        rows.append(row)
        if "error" in row:
            print(f"{kind}: unavailable: {row['error']}")
        else:
            print(f"{kind}: gc of {row['entries']:,} expired entries took {row['gc_s']:.2f} s "
                  f"(dry run {row['dry_run_s']:.2f} s, fill {row['fill_s']:.1f} s)")
    report = markdown(rows)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)


if __name__ == "__main__":
    main()
