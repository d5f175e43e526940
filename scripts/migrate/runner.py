"""One migration run, start to finish: copy and migrate, serve and drive ``before``, ``after`` and the
``control`` run of the original, compare, check for leaks, write the report, and decide the exit code."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from .browser import drive
from .compare import compare
from .config import load_config
from .leaks import check_markers, leak_check
from .log import log
from .report import write_report
from .serve import AppServer
from .source import copy_checkout, migrate, prepare


def run(args: argparse.Namespace) -> int:
    """0 if every snapshot is equal (or unstable on its own), nothing leaked and every run worked; else 1."""
    started = time.monotonic()
    deadline = started + args.timeout
    name = args.app_name or args.app_dir.resolve().name
    cfg = load_config(args.config, name, args)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"migrate-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="migrate-real-app-"))
    servers: list[AppServer] = []
    start_watchdog(deadline, servers)

    before, after = work / "before", work / "after"
    removed, migration = make_copies(args, cfg, before, after, out)
    plan = [("before", before), ("after", after)] + ([] if args.no_control else [("control", before)])
    runs, runs_ok, failures = {}, {}, []
    for label, root in plan:
        serve_and_drive(label, root, args, cfg, work, out, deadline, servers, runs, runs_ok, failures)

    rows, leaks = [], {}
    if "before" in runs and "after" in runs:
        rows = compare(runs, cfg, out, args.pixel_threshold)
        markers = cfg.get("markers", [])
        leaks = {"before": leak_check(runs["before"], markers, migrated=False),
                 "after": leak_check(runs["after"], markers, migrated=True)}
        check_markers(leaks, markers, partial=cfg.get("only_scenarios") is not None)
    meta = {"app_name": name, "app_dir": str(args.app_dir), "source": cfg.get("source"), "entry": args.entry,
            "migration": migration, "removed": removed, "control": not args.no_control,
            "duration_s": time.monotonic() - started, "work": str(work), "failures": failures}
    if rows:
        write_report(out, meta, rows, leaks, runs_ok)
    else:
        (out / "report.json").write_text(json.dumps({"meta": meta, "runs": runs_ok}, indent=2, default=str))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return verdict(rows, leaks, runs_ok, failures, out)


def start_watchdog(deadline: float, servers: list[AppServer]) -> None:
    """The run stops by itself, whatever hangs: 60 s past --timeout it stops the servers and exits 3."""

    def watchdog():
        time.sleep(max(1.0, deadline - time.monotonic() + 60))
        log("watchdog: --timeout exceeded by 60 s, stopping")
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()


def make_copies(args: argparse.Namespace, cfg: dict, before: Path, after: Path, out: Path) -> tuple[list, dict]:
    """Both copies prepared alike, ``after`` migrated; the diff is printed and saved as migration.diff."""
    copy_checkout(args.app_dir, before)
    copy_checkout(args.app_dir, after)
    removed = prepare(before, cfg)
    prepare(after, cfg)
    secret = "migrate-real-app-" + secrets.token_hex(16)
    diff, migration = migrate(after, args.entry, secret)
    (out / "migration.diff").write_text(diff)
    print(diff)
    log(f"migrated {len(migration['files'])} files; {migration['secret_key_line']}")
    for warning in migration["not_migrated"]:
        log("warning:", warning)
    return removed, migration


def serve_and_drive(label: str, root: Path, args: argparse.Namespace, cfg: dict, work: Path, out: Path,
                    deadline: float, servers: list, runs: dict, runs_ok: dict, failures: list) -> None:
    """One run (``label``) of one copy; a run that fails is recorded, and the next one still runs."""
    log(f"{label}: starting {root}")
    server = None
    try:
        server = AppServer(work, root, args.entry, cfg.get("app_attr", "app"), label, args.startup)
        servers.append(server)
        runs[label], step_errors = drive(server, cfg, label, out, deadline)
        runs_ok[label] = {"ok": True, "step_errors": step_errors,
                          "tracebacks_in_server_log": server.tracebacks(), "server_log": str(server.log_path)}
    except Exception as exc:  # noqa: BLE001 - a failed run is a result too
        failures.append(f"{label}: {type(exc).__name__}: {exc}")
        runs_ok[label] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        log(f"{label} failed: {exc}")
    finally:
        if server is not None:
            server.stop()
            with contextlib.suppress(OSError):
                shutil.copy(server.log_path, out / server.log_path.name)


def verdict(rows: list[dict], leaks: dict, runs_ok: dict, failures: list, out: Path) -> int:
    """The summary lines, and the exit code: 1 for a difference, a leak, a failed run or no snapshot."""
    different = [r["snapshot"] for r in rows if r["status"] in ("DIFFERENT", "MISSING")]
    equal = [r for r in rows if r["status"].startswith("equal")]
    names = lambda label: {e.split(":")[0] for e in runs_ok.get(label, {}).get("step_errors", [])}  # noqa: E731
    different += [f"steps failed only after the migration: {n}" for n in sorted(names("after") - names("before"))]
    unstable = [r["snapshot"] for r in rows if r["status"].startswith("unstable")]
    log(f"{len(rows)} snapshots: {len(equal)} equal, {len(different)} different, "
        f"{len(unstable)} unstable; leak problems: {len(leaks.get('after', {}).get('problems', []))}; "
        f"failed runs: {len(failures)}")
    log(f"report: {out / 'report.md'}")
    for r in rows:
        if r["status"] != "equal":
            log(f"  {r['status']}: {r['snapshot']}")
    for d in different:
        if d.startswith("steps failed"):
            log(f"  {d}")
    return 1 if (different or failures or leaks.get("after", {}).get("problems") or not rows) else 0
