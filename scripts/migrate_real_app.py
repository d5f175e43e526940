#!/usr/bin/env python3
"""Migrate a real Dash app to ServerStore exactly as the README says, and compare it with the original
in headless Chromium.

    .venv/bin/python scripts/migrate_real_app.py --app-dir /tmp/checkout --entry app.py \
        [--app-name NAME] [--pages / /grid ...] [--out DIR] [--timeout 900] [--no-control]

1. Copies the checkout twice (``before`` and ``after``), applies the app's offline preparation from
   ``scripts/real_apps.toml`` to both (e.g. drop pages that download data at import time).
2. Migrates ``after`` mechanically, as the README's "Migration guide" says: ``dcc.Store(`` becomes
   ``ServerStore(``, ``from dash_state import ServerStore`` is added to each file that now uses it, and
   ``<app>.server.config["SECRET_KEY"] = ...`` goes right after the statement that creates the Dash app
   in the entry file. The diff is printed and saved.
3. Serves each copy on a free 127.0.0.1 port in a subprocess (a small WSGI middleware counts the bytes
   of ``/_dash-layout`` and ``/_dash-update-component`` and keeps their bodies), drives both with the
   same steps (``scripts/real_apps.toml``: every registered page and/or scripted scenarios) in
   headless Chromium, and compares the visible text and the screenshots of every snapshot. A second run
   of the original (``control``) tells a difference caused by the migration from a page that is not
   deterministic on its own.
4. Checks that with ServerStore no store data reached the browser: every store component in the
   renderer's state and every store value in the ``/_dash-*`` responses and in session/local storage
   is a reference (or empty), and the app's marker strings appear in none of them.

Writes ``report.json`` and ``report.md`` (plus screenshots and the diff) to ``--out`` and exits 1 if a
snapshot differs (and the control run does not explain it), a store leaked data, or a run failed.
Stops by itself: every wait is bounded and ``--timeout`` ends the whole run.
"""
from __future__ import annotations

# The work is done by the package next to this file, scripts/migrate/ (one module per step, runner.py
# calls them in order); this file is only the command line. (The docstring above is --help's text.)

import argparse
import sys
from pathlib import Path

from migrate.config import DEFAULT_CONFIG
from migrate.runner import run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--app-dir", required=True, type=Path, help="a checkout of the app")
    p.add_argument("--entry", required=True, help="entry module or file, relative to --app-dir (app.py)")
    p.add_argument("--app-name", help="key in the steps file (default: the --app-dir folder name)")
    p.add_argument("--pages", nargs="*", help="paths to visit (default: the steps file's, else every registered page)")
    p.add_argument("--scenarios", nargs="*", help="run only these scenarios of the steps file (with --pages: "
                   "these pages and these scenarios)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the steps file (TOML)")
    p.add_argument("--out", type=Path, help="report folder (default: a new folder under /tmp)")
    p.add_argument("--timeout", type=float, default=1200, help="seconds for the whole run")
    p.add_argument("--startup", type=float, default=120, help="seconds for an app to start")
    p.add_argument("--pixel-threshold", type=float, default=0.002, help="fraction of pixels that may differ")
    p.add_argument("--no-control", action="store_true", help="skip the second run of the original")
    p.add_argument("--keep", action="store_true", help="keep the two copies")
    args = p.parse_args()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
