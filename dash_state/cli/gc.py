"""``dash-state gc``: remove expired values and values past each store's bound, in batches."""
from __future__ import annotations

import time

import click

from dash_state.cli.common import backends, console, emit_json, human_bytes
from dash_state.cli.context import manager_for
from dash_state.cli.main import cli, failures


@cli.command(epilog="\b\nExamples:\n  dash-state --app app:app gc --dry-run\n  dash-state gc --backend redis")
@click.option("--dry-run", is_flag=True, help="Count what would go, delete nothing.")
@click.option("--backend", "only", help="Only this backend (default: every server backend the app uses).")
@click.option("--batch", default=1000, show_default=True, help="Entries per batch (Redis: per SCAN round).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@failures
def gc(obj: dict, dry_run: bool, only: str | None, batch: int, as_json: bool) -> None:
    """Remove expired entries and values past STATE_VALUES_PER_STORE (Redis: SCAN, never KEYS)."""
    from rich.progress import Progress

    manager = manager_for(obj)
    report, out = {}, console()
    for backend in backends(manager, only):
        started = time.perf_counter()
        with Progress(console=out, transient=True, disable=as_json) as progress:
            task = progress.add_task(f"{backend.name}: {'counting' if dry_run else 'removing'}", total=None)
            result = backend.gc(dry_run=dry_run, batch=batch, progress=lambda n, t=task: progress.advance(t, n))
        report[backend.name] = {**result, "seconds": round(time.perf_counter() - started, 2), "dry_run": dry_run}
    if as_json:
        emit_json(report)
        return
    verb = "would remove" if dry_run else "removed"
    for name, result in report.items():
        out.print(f"{name}: {verb} {result['expired']:,} expired and {result['over_bound']:,} over-bound entries "
                  f"({human_bytes(result['bytes_freed'])}) of {result['users']:,} namespaces in {result['seconds']} s")
