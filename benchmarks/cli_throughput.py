"""Throughput of ``dash-state export``, ``import`` and ``copy`` on Redis and PostgreSQL, against a raw
``backend.get`` loop over the same values.

Two datasets, each filled through ``dash_state.set_store`` inside ``dash_state.user_context(...)``
(filling is not timed):

* **small**: ``--users`` (1,000) users x ``--stores`` (10) ServerStores (``s0`` … ``s9``, declared by
  the layout) of a ~200-byte JSON dict each: 10,000 values (and as many pointers);
* **frames**: ``--frames`` (10) users, each with one DataFrame of ``--rows`` (100,000) rows in the
  store ``frame`` (an int64, a float64 and a short string column; Arrow IPC when sealed).

Each dataset is filled into Redis. For a source (redis, then postgres) the values are listed
(``inventory``) and read back with the raw backend's ``get`` in a loop (the baseline: what reading the
data costs without the CLI); ``dash-state export -o X.dsx`` runs against a fresh app on the source (as
a separate CLI process would: nothing cached), then ``dash-state import X.dsx`` into a fresh app on
the same backend kind (a new key prefix / a new table). Between the two, ``dash-state copy --from
redis://… --to postgresql+psycopg://…`` copies the Redis source into a new PostgreSQL table (it also
counts every user's entries on both sides at the end, its verification: that is part of its time);
that table, checked to hold every value and pointer, is the PostgreSQL source (filling PostgreSQL
through set_store as well would add about a minute of untimed writes at 10,000 values). Only the
``CliRunner().invoke`` of each command is timed (in-process, the group of ``load_commands()``, the app
passed as ``obj={"app": app}``); every result is checked (exit code, entry counts, what the target
holds). Rates: values per second (the dataset's values; the CLI's own count, values plus pointers,
is in the "entries" column) and MB/s of sealed value bytes (1 MB = 10^6 bytes, as the .dsx file holds
them).

The near tier is off in every app (``STATE_NEAR_TIER_BYTES = 0``, as ``copy`` sets it for its own
backends): the filling app would otherwise leave every value in a host-shared copy under /dev/shm,
and the export would read it from there instead of from the server.

Redis at ``STATE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``), PostgreSQL at
``STATE_TEST_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Every
key prefix starts with ``dscli-<run>-`` and every table with ``dscli_<run>_``; at the end (and when
the watchdog fires) the Redis keys are removed by SCAN on that prefix, the tables are dropped and the
temporary directory (the .dsx files, copy state) is removed. A watchdog exits with code 3 once the
run takes longer than ``--budget`` seconds (after the same clean-up)::

    .venv/bin/python benchmarks/cli_throughput.py                        # about 3-4 minutes on 2 CPUs
    .venv/bin/python benchmarks/cli_throughput.py \\
        --markdown benchmarks/results/cli_throughput.md --json benchmarks/results/cli_throughput.json
    .venv/bin/python benchmarks/cli_throughput.py --users 50 --frames 2 --rows 10000   # smoke run, ~10 s
"""
from __future__ import annotations

import _thread
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
REDIS_URL = os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASE_URL = os.environ.get("STATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RUN = uuid.uuid4().hex[:8]
REDIS_TAG = f"dscli-{RUN}-"  # every key prefix of this run starts with it
TABLE_TAG = f"dscli_{RUN}_"  # every table of this run starts with it
SECRET = "cli throughput benchmark"
KINDS = ("redis", "postgres")
MB = 1e6


# -- what the run makes, and its removal ------------------------------------------------------------
class Resources:
    """Everything the run creates: apps and raw backends (closed), Redis keys under REDIS_TAG,
    tables starting with TABLE_TAG, the temporary directory. ``cleanup`` may run twice (watchdog)."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"dscli-{RUN}-"))
        self.apps: list[Any] = []
        self.backends: list[Any] = []
        self.lock = threading.Lock()
        self.report: dict | None = None
        self.over_budget = self.cleaning = False
        self.finished = threading.Event()  # the main thread's clean-up is done

    def cleanup(self) -> dict:
        self.cleaning = True
        with self.lock:
            if self.report is not None:
                return self.report
            report: dict[str, Any] = {"errors": []}
            for backend in self.backends + [b for app in self.apps for b in _app_backends(app)]:
                try:
                    backend.close()
                except Exception as exc:  # noqa: BLE001 - keep cleaning
                    report["errors"].append(f"close {backend.name}: {type(exc).__name__}: {exc}")
            try:
                report["redis_keys_removed"], report["redis_keys_left"] = _clean_redis()
            except Exception as exc:  # noqa: BLE001
                report["errors"].append(f"redis: {type(exc).__name__}: {exc}")
            try:
                report["tables_dropped"], report["tables_left"] = _clean_postgres()
            except Exception as exc:  # noqa: BLE001
                report["errors"].append(f"postgres: {type(exc).__name__}: {exc}")
            shutil.rmtree(self.tmp, ignore_errors=True)
            report["temp_dir_removed"] = not self.tmp.exists()
            self.report = report
            return report


def _app_backends(app: Any) -> list[Any]:
    import dash_state

    return list(getattr(dash_state.get_state_manager(app), "_backends", {}).values())


def _clean_redis() -> tuple[int, int]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        removed = 0
        for _ in range(2):  # twice: a write that was under way during the first pass
            batch = []
            for name in client.scan_iter(match=f"{REDIS_TAG}*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    removed += client.unlink(*batch)
                    batch = []
            if batch:
                removed += client.unlink(*batch)
        left = sum(1 for _ in client.scan_iter(match=f"{REDIS_TAG}*", count=1000))
        return removed, left
    finally:
        client.close()


def _tables(conn: Any) -> list[str]:
    import sqlalchemy

    rows = conn.execute(sqlalchemy.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                        "AND left(tablename, :n) = :tag"), {"n": len(TABLE_TAG), "tag": TABLE_TAG})
    return sorted(row[0] for row in rows)


def _clean_postgres() -> tuple[list[str], list[str]]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(DATABASE_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("SET LOCAL lock_timeout = '10s'"))
            dropped = _tables(conn)
            for table in dropped:
                conn.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
        with engine.connect() as conn:
            left = _tables(conn)
        return dropped, left
    finally:
        engine.dispose()


def start_watchdog(budget: float, resources: Resources) -> threading.Timer:
    """Past ``budget`` seconds: stop the measurement (KeyboardInterrupt in the main thread, which then
    cleans up and exits with code 3); if it has not within 60 s, clean up here and exit with code 3."""
    def fire() -> None:
        print(f"cli_throughput: the run took longer than its {budget:.0f} s budget: stopping, cleaning up, "
              "exit code 3", file=sys.stderr, flush=True)
        resources.over_budget = True
        if not resources.cleaning:
            _thread.interrupt_main()
        if not resources.finished.wait(60):
            worker = threading.Thread(target=resources.cleanup, daemon=True)
            worker.start()
            worker.join(60)
            print(f"cli_throughput: clean-up: {resources.report or 'did not finish in 60 s'}", file=sys.stderr,
                  flush=True)
        os._exit(3)

    timer = threading.Timer(budget, fire)
    timer.daemon = True
    timer.start()
    return timer


# -- apps, data ---------------------------------------------------------------------------------------
def make_app(resources: Resources, kind: str, name: str, stores: list[str], **extra: Any) -> Any:
    """A Dash app on ``kind`` under its own prefix or table (``name``); the same ``name`` reaches the
    same data, as another process of the same app would."""
    import dash
    from dash import html

    import dash_state
    from dash_state import ServerStore

    app = dash.Dash(__name__)
    config = {"SECRET_KEY": SECRET, "STATE_NEAR_TIER_BYTES": 0}
    if kind == "redis":
        config.update(STATE_BACKEND="redis", STATE_REDIS_URL=REDIS_URL, STATE_KEY_PREFIX=f"{REDIS_TAG}{name}:")
    else:
        config.update(STATE_BACKEND="database", STATE_DATABASE_URL=DATABASE_URL,
                      STATE_DATABASE_TABLE=f"{TABLE_TAG}{name}")
    config.update(extra)
    app.server.config.update(config)
    app.layout = html.Div([ServerStore(id=store_id) for store_id in stores] + [ServerStore(id="frame")])
    dash_state.get_state_manager(app)  # installed: set_store inside app_context() finds this app
    resources.apps.append(app)
    return app


def raw_backend(resources: Resources, app: Any) -> Any:
    """The app's backend as ``create_backend`` makes it: no near tier, no read cache, the app's keys."""
    import dash_state
    from dash_state.backends import create_backend
    from dash_state.core.seal import Seal

    manager = dash_state.get_state_manager(app)
    config = manager.config
    seal = Seal(manager.keys, config["STATE_ENCRYPTION"], config["STATE_COMPRESSION"], config["STATE_COMPRESSION_MIN_BYTES"])
    backend = create_backend(config["STATE_BACKEND"], config, seal)
    resources.backends.append(backend)
    return backend


def small_value(user: int, store: int) -> dict:
    """A JSON dict of about 200 bytes, different for every user and store."""
    value = {"user": user, "store": store, "region": ("north", "south", "east", "west")[(user + store) % 4],
             "range": [user % 97, user % 97 + store], "sort": "desc" if store % 2 else "asc", "page": store,
             "columns": ["date", "amount", "country"], "note": ""}
    value["note"] = "x" * max(0, 200 - len(json.dumps(value)))
    return value


def make_frame(index: int, rows: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(index)
    codes = np.array([f"k{i:03d}" for i in range(1000)], dtype=object)
    return pd.DataFrame({"n": np.arange(rows, dtype="int64") + index * rows, "x": rng.random(rows),
                         "s": codes[rng.integers(0, 1000, rows)]})


def fill(app: Any, dataset: str, args: argparse.Namespace, stores: list[str]) -> tuple[float, int]:
    """Seconds the set_store calls took, and how many values were written."""
    import dash_state

    frames = [make_frame(i, args.rows) for i in range(args.frames)] if dataset == "frames" else []
    started, written = time.perf_counter(), 0
    with app.server.app_context():
        if dataset == "small":
            for user in range(args.users):
                with dash_state.user_context(f"user-{user:05d}"):
                    for index, store_id in enumerate(stores):
                        dash_state.set_store(store_id, small_value(user, index))
                        written += 1
        else:
            for index, frame in enumerate(frames):
                with dash_state.user_context(f"frame-user-{index:02d}"):
                    dash_state.set_store("frame", frame)
                    written += 1
    return time.perf_counter() - started, written


def held(backend: Any) -> dict:
    """What a backend holds: values (and their stored bytes), pointers."""
    counts = {"values": 0, "value_bytes": 0, "pointers": 0}
    for entry in backend.inventory():
        if entry.kind == "value":
            counts["values"] += 1
            counts["value_bytes"] += entry.bytes
        elif entry.kind == "pointer":
            counts["pointers"] += 1
    return counts


def baseline(backend: Any) -> dict:
    """The raw read: list the values (inventory), then ``backend.get`` each one in a loop."""
    started = time.perf_counter()
    entries = [e for e in backend.inventory() if e.kind == "value"]
    listed = time.perf_counter() - started
    cpu, started = time.process_time(), time.perf_counter()
    for entry in entries:
        if backend.get(entry.user, entry.key) is None:
            raise AssertionError(f"{backend.name}: {entry.user}/{entry.key} listed but not readable")
    seconds = time.perf_counter() - started
    return {"values": len(entries), "value_bytes": sum(e.bytes for e in entries), "inventory_s": listed,
            "get_s": seconds, "cpu_s": time.process_time() - cpu}


def dsx_contents(path: Path) -> dict:
    from dash_state.cli import dsx

    values = pointers = size = 0
    with open(path, "rb") as stream:
        for entry in dsx.read(stream, None, 1 << 31):
            if isinstance(entry, dsx.Value):
                values += 1
                size += len(entry.data)
            else:
                pointers += 1
    return {"values": values, "pointers": pointers, "value_bytes": size, "file_bytes": path.stat().st_size}


def invoke(group: Any, app: Any, *args: str) -> tuple[float, float, str]:
    """Seconds (wall, CPU of this process) one CLI command took, and its output; raises on failure."""
    from click.testing import CliRunner

    runner = CliRunner()
    cpu, started = time.process_time(), time.perf_counter()
    result = runner.invoke(group, list(args), obj={"app": app})
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.exit_code != 0:
        detail = "".join(__import__("traceback").format_exception(result.exception)) if result.exception else ""
        raise RuntimeError(f"dash-state {args[0]} exited with {result.exit_code}: {result.output.strip()}\n{detail}")
    return seconds, cpu, result.output.strip()


def count_in(output: str, verb: str) -> int:
    match = re.search(rf"{verb} ([\d,]+) entries", output)
    if not match:
        raise AssertionError(f"no '{verb} N entries' in {output!r}")
    return int(match.group(1).replace(",", ""))


def op_row(dataset: str, operation: str, seconds: float, cpu: float, values: int, entries: int,
           value_bytes: int, **more: Any) -> dict:
    return {"dataset": dataset, "operation": operation, "seconds": seconds, "cpu_s": cpu, "values": values,
            "entries": entries, "value_bytes": value_bytes, "values_per_s": values / seconds,
            "mb_per_s": value_bytes / MB / seconds, **more}


# -- one dataset --------------------------------------------------------------------------------------
def measure(dataset: str, args: argparse.Namespace, resources: Resources, group: Any, log: Any) -> dict:
    """Redis: fill, raw read, export, import; copy Redis -> PostgreSQL; PostgreSQL (the copy's target
    as the source: the same values and pointers): raw read, export, import."""
    stores = [f"s{i}" for i in range(args.stores)]
    result: dict[str, Any] = {"dataset": dataset, "fill": {}, "baseline": {}, "files": {}, "rows": []}
    source = make_app(resources, "redis", f"src_{dataset}", stores)
    config = __import__("dash_state").get_state_manager(source).config
    result["seal"] = {"encryption": config["STATE_ENCRYPTION"], "compression": config["STATE_COMPRESSION"]}
    seconds, written = fill(source, dataset, args, stores)
    result["fill"]["redis"] = {"seconds": seconds, "values": written, "values_per_s": written / seconds}
    log(f"{dataset}/redis: filled {written:,} values through set_store in {seconds:.1f} s")
    export_import(dataset, "redis", f"src_{dataset}", written, stores, result, resources, group, log)

    # copy: the Redis source into a new PostgreSQL table (copy keeps the app's prefix and table names)
    copier = make_app(resources, "redis", f"src_{dataset}", stores, STATE_DATABASE_TABLE=f"{TABLE_TAG}copy_{dataset}")
    seconds, cpu, output = invoke(group, copier, "copy", "--from", REDIS_URL, "--to", DATABASE_URL,
                                  "--state", str(resources.tmp / f"copy-{dataset}.json"))
    copied = count_in(output, "copied")
    target = make_app(resources, "postgres", f"copy_{dataset}", stores)
    there = held(raw_backend(resources, target))
    if "verified" not in output or there["values"] != written or copied != there["values"] + there["pointers"]:
        raise AssertionError(f"{dataset}: copy {output!r}, target holds {there}")
    result["rows"].append(op_row(dataset, "copy redis → postgres", seconds, cpu, there["values"], copied,
                                 result["baseline"]["redis"]["value_bytes"],
                                 vs_raw_get=seconds / result["baseline"]["redis"]["get_s"]))
    log(f"{dataset}: copy redis -> postgres {seconds:.2f} s")
    export_import(dataset, "postgres", f"copy_{dataset}", written, stores, result, resources, group, log)
    return result


def export_import(dataset: str, kind: str, name: str, written: int, stores: list[str], result: dict,
                  resources: Resources, group: Any, log: Any) -> None:
    """The raw read of the source ``name``, its export, and the import of the file into a new one."""
    reader = make_app(resources, kind, name, stores)  # a fresh app on the data, as a CLI process would be
    base = baseline(raw_backend(resources, reader))
    if base["values"] != written:
        raise AssertionError(f"{dataset}/{kind}: {base['values']} values held, {written} written")
    base.update(values_per_s=base["values"] / base["get_s"], mb_per_s=base["value_bytes"] / MB / base["get_s"])
    result["baseline"][kind] = base
    log(f"{dataset}/{kind}: raw get of {base['values']:,} values ({base['value_bytes'] / MB:.1f} MB) "
        f"in {base['get_s']:.2f} s (inventory {base['inventory_s']:.2f} s)")

    path = resources.tmp / f"{dataset}-{kind}.dsx"
    seconds, cpu, output = invoke(group, reader, "export", "-o", str(path))
    contents = dsx_contents(path)
    exported = count_in(output, "exported")
    if contents["values"] != written or exported != contents["values"] + contents["pointers"]:
        raise AssertionError(f"{dataset}/{kind}: export wrote {contents} ({output!r}), {written} values made")
    result["files"][kind] = contents
    result["rows"].append(op_row(dataset, f"export {kind}", seconds, cpu, contents["values"], exported,
                                 contents["value_bytes"], file_bytes=contents["file_bytes"],
                                 vs_raw_get=seconds / base["get_s"]))
    log(f"{dataset}/{kind}: export {seconds:.2f} s, {contents['file_bytes'] / MB:.1f} MB file")

    target = make_app(resources, kind, f"imp_{dataset}", stores)
    seconds, cpu, output = invoke(group, target, "import", str(path))
    imported = count_in(output, "imported")
    there = held(raw_backend(resources, target))
    if imported != exported or there["values"] != written or there["pointers"] != contents["pointers"]:
        raise AssertionError(f"{dataset}/{kind}: import {output!r}, target holds {there}")
    result["rows"].append(op_row(dataset, f"import {kind}", seconds, cpu, there["values"], imported,
                                 contents["value_bytes"], file_bytes=contents["file_bytes"],
                                 vs_raw_get=seconds / base["get_s"]))
    log(f"{dataset}/{kind}: import {seconds:.2f} s")


# -- report -------------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    meta = report["meta"]
    title = (f"`dash-state export / import / copy` throughput (`benchmarks/cli_throughput.py`), {meta['machine']}, "
             f"{meta['cpus']} CPUs, Python {meta['python']}, commit {meta['commit']}, {meta['date']} "
             f"(load average {meta['load_before'][0]:.2f} before, {meta['load_after'][0]:.2f} after; "
             f"run {meta['total_s']:.0f} s).")
    about = (f"Datasets: **small** = {meta['users']:,} users × {meta['stores']} ServerStores of a ~200-byte JSON "
             f"dict ({meta['users'] * meta['stores']:,} values); **frames** = {meta['frames']} DataFrames of "
             f"{meta['rows']:,} rows (int64, float64, short string; one per user). Each value also has a pointer, "
             "so the CLI's own count (\"entries\") is values + pointers. Filled into Redis through `set_store`; "
             "the PostgreSQL source is the table the copy wrote (checked: every value and pointer). Only the CLI "
             "command is timed (in-process `CliRunner().invoke`, a fresh app, near tier off); every result is "
             "checked (exit code, counts, what the target holds). MB = 10^6 bytes of sealed values "
             f"(encryption {meta.get('encryption')}, compression {meta.get('compression')}) as the .dsx file holds them. \"× raw get\" = the command's time over the raw "
             "`backend.get` loop on its source (redis for copy). CPU s = this process's CPU time during the "
             "command (the rest: waiting for a server, or for a CPU).")
    lines = [title, "", about, "",
             "| dataset | operation | values | entries | value MB | .dsx MB | seconds | values/s | MB/s | CPU s | × raw get |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result in report["datasets"]:
        for kind, base in result["baseline"].items():
            lines.append(f"| {result['dataset']} | raw `backend.get` loop, {kind} | {base['values']:,} | | "
                         f"{base['value_bytes'] / MB:.2f} | | {base['get_s']:.2f} | {base['values_per_s']:,.0f} | "
                         f"{base['mb_per_s']:.1f} | {base['cpu_s']:.2f} | 1.0 |")
        for row in result["rows"]:
            size = f"{row['file_bytes'] / MB:.2f}" if "file_bytes" in row else ""
            lines.append(f"| {result['dataset']} | {row['operation']} | {row['values']:,} | {row['entries']:,} | "
                         f"{row['value_bytes'] / MB:.2f} | {size} | {row['seconds']:.2f} | {row['values_per_s']:,.0f} | "
                         f"{row['mb_per_s']:.1f} | {row['cpu_s']:.2f} | {row['vs_raw_get']:.1f} |")
    lines += ["", "Other times of the same run (not throughput of the CLI):", "",
              "| dataset | backend | fill through set_store s | values/s | inventory (list) s | .dsx file bytes |",
              "|---|---|---:|---:|---:|---:|"]
    for result in report["datasets"]:
        for kind in result["files"]:
            fill_, base, file_ = result["fill"].get(kind), result["baseline"][kind], result["files"][kind]
            filled = (f"{fill_['seconds']:.1f} | {fill_['values_per_s']:,.0f}" if fill_
                      else "(the copy's target) | ")
            lines.append(f"| {result['dataset']} | {kind} | {filled} | {base['inventory_s']:.2f} | {file_['file_bytes']:,} |")
    cleanup = report.get("cleanup") or {}
    lines += ["", f"Clean-up: {cleanup.get('redis_keys_removed', '?'):,} Redis keys removed "
                  f"({cleanup.get('redis_keys_left', '?')} left), {len(cleanup.get('tables_dropped', []))} tables "
                  f"dropped ({len(cleanup.get('tables_left', []))} left), temporary files removed: "
                  f"{cleanup.get('temp_dir_removed')}."
              if "redis_keys_removed" in cleanup else f"Clean-up: {cleanup}"]
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=HERE, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000, help="users of the small dataset")
    parser.add_argument("--stores", type=int, default=10, help="ServerStores per user of the small dataset")
    parser.add_argument("--frames", type=int, default=10, help="DataFrames (one per user)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per DataFrame")
    parser.add_argument("--only", choices=("small", "frames"), action="append", help="only this dataset")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds before the watchdog exits with code 3")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()

    started = time.perf_counter()
    resources = Resources()
    watchdog = start_watchdog(args.budget, resources)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": os.getloadavg(),
            "users": args.users, "stores": args.stores, "frames": args.frames, "rows": args.rows,
            "redis_url": REDIS_URL, "database_url": DATABASE_URL, "run": RUN, "budget_s": args.budget}

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    datasets: list[dict] = []
    failed = None
    try:
        from dash_state.cli.main import load_commands

        group = load_commands()
        for dataset in args.only or ("small", "frames"):
            datasets.append(measure(dataset, args, resources, group, log))
    except BaseException as exc:  # noqa: BLE001 - clean up first, then fail
        failed = exc
    finally:
        watchdog.cancel()
        cleanup = resources.cleanup()
        log(f"clean-up: {cleanup}")
        resources.finished.set()
    if resources.over_budget:
        print(f"cli_throughput: stopped past the {args.budget:.0f} s budget ({type(failed).__name__})",
              file=sys.stderr, flush=True)
        os._exit(3)
    if failed is not None:
        raise failed
    meta.update(load_after=os.getloadavg(), total_s=time.perf_counter() - started, **datasets[0]["seal"])
    report = {"meta": meta, "datasets": datasets, "cleanup": cleanup}
    table = markdown(report)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if cleanup["errors"] or cleanup.get("redis_keys_left") or cleanup.get("tables_left"):
        sys.exit(f"clean-up incomplete: {cleanup}")


if __name__ == "__main__":
    main()
