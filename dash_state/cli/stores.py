"""``dash-state stats``, ``inspect`` and ``erase``: what a backend holds, per store and per user."""
from __future__ import annotations

import getpass
import logging
import time
from collections import defaultdict
from typing import Any

import click

from dash_state.backends import pointer_name
from dash_state.cli.common import backends, console, emit_json, human_bytes, namespace
from dash_state.cli.context import app_for, manager_for
from dash_state.cli.main import Failure, cli, failures
from dash_state.core.versions import version_of

log = logging.getLogger("dash_state")


def store_names(obj: dict, manager: Any) -> dict[str, str]:
    """``latest.<digest>`` -> store id, for the app's stores (layouts scanned) and those in STATE_STORES."""
    from dash_state.glue.runtime import app_state

    state = app_state(app_for(obj), create=True)
    state.scan_layouts()
    ids = set(state.store_ids.strings()) | set(manager.config["STATE_STORES"])
    return {pointer_name(sid): sid for sid in ids}


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


@cli.command(epilog="\b\nExamples:\n  dash-state --app app:app stats\n  dash-state stats --json")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
@failures
def stats(obj: dict, as_json: bool) -> None:
    """Entries, bytes, users and expiries per backend and per store."""
    from rich.table import Table

    manager = manager_for(obj)
    names = store_names(obj, manager)
    report: dict[str, Any] = {}
    for backend in backends(manager):
        totals = {"entries": 0, "bytes": 0, "users": 0, "oldest_expiry": None, "newest_expiry": None}
        sizes, users, per_store = {}, set(), defaultdict(lambda: {"users": 0, "bytes": 0})
        pointers = []
        for entry in backend.inventory():
            users.add(entry.user)
            if entry.kind == "value":
                totals["entries"] += 1
                totals["bytes"] += entry.bytes
                sizes[(entry.user, entry.key)] = entry.bytes
                if entry.expires_at is not None:
                    oldest, newest = totals["oldest_expiry"], totals["newest_expiry"]
                    totals["oldest_expiry"] = entry.expires_at if oldest is None else min(oldest, entry.expires_at)
                    totals["newest_expiry"] = entry.expires_at if newest is None else max(newest, entry.expires_at)
            elif entry.kind == "pointer":
                pointers.append(entry)
        for pointer in pointers:
            store = per_store[names.get(pointer.key, pointer.key)]
            store["users"] += 1
            store["bytes"] += sizes.get((pointer.user, pointer.target), 0)
        totals["users"] = len(users)
        report[backend.name] = {**totals, "stores": dict(sorted(per_store.items()))}
    if as_json:
        emit_json(report)
        return
    out = console()
    for name, totals in report.items():
        table = Table(title=f"{name}: {totals['entries']:,} values, {human_bytes(totals['bytes'])}, {totals['users']:,} "
                            f"namespaces; expiries {_when(totals['oldest_expiry'])} .. {_when(totals['newest_expiry'])}")
        for column in ("store", "users", "latest values"):
            table.add_column(column, justify="left" if column == "store" else "right")
        for store, figures in totals["stores"].items():
            table.add_row(store, f"{figures['users']:,}", human_bytes(figures["bytes"]))
        out.print(table)


@cli.command(epilog="\b\nExamples:\n  dash-state --app app:app inspect --user alice\n"
                    "  dash-state inspect --user a.Xy3... --store merged-store --show")
@click.option("--user", required=True, help="A login id, or a namespace (u.…, a.…, @app).")
@click.option("--store", "store_id", help="Only this store.")
@click.option("--show", is_flag=True, help="Also decode the values (a frame's shape, dtypes and head). Audited.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@failures
def inspect(obj: dict, user: str, store_id: str | None, show: bool, as_json: bool) -> None:
    """One user's stores: backend, bytes, type, expiry, version (and with --show, the values)."""
    manager = manager_for(obj)
    names = store_names(obj, manager)
    ns = namespace(user)
    rows = []
    for backend in backends(manager):
        listed = list(backend.inventory(ns))
        values = {e.key: e for e in listed if e.kind == "value"}
        for pointer in (e for e in listed if e.kind == "pointer"):
            sid = names.get(pointer.key, pointer.key)
            if store_id is not None and sid != store_id:
                continue
            value = values.get(pointer.target)
            row = {"store": sid, "backend": backend.name, "key": pointer.target, "version": version_of(pointer.target),
                   "bytes": value.bytes if value else None, "expires_at": value.expires_at if value else None}
            snapshot = backend.get(ns, pointer.target) if value else None
            row["type"] = _type(snapshot)
            if show and snapshot is not None:
                row["value"] = _describe(snapshot.thaw())
            rows.append(row)
    manager.audit.record("cli_inspect", user=ns, store=store_id, show=show, by=getpass.getuser())
    if show and not manager.audit.enabled:
        click.echo("note: STATE_AUDIT_LOG is off, so this reading of a user's values is not recorded", err=True)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        raise Failure(f"no stores hold a value for {user!r} ({ns})")
    from rich.table import Table

    table = Table(title=f"{ns}" + (f" ({user})" if user != ns else ""))
    for column in ("store", "backend", "bytes", "type", "expires", "version"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["store"], row["backend"], "-" if row["bytes"] is None else f"{row['bytes']:,}",
                      row["type"], _when(row["expires_at"]), str(row["version"]))
    out = console()
    out.print(table)
    for row in rows if show else ():
        out.print(f"[bold]{row['store']}[/bold]:\n{row.get('value', '(expired)')}")


def _type(snapshot: Any) -> str:
    if snapshot is None:
        return "-"
    from dash_state.core.codecs import ARRAY, FRAME, JSON, SERIES

    return {JSON: "json", FRAME: "DataFrame", SERIES: "Series", ARRAY: "ndarray"}.get(snapshot.kind, "?")


def _describe(value: Any) -> str:
    if hasattr(value, "dtypes") and hasattr(value, "head") and hasattr(value, "columns"):
        return f"DataFrame {value.shape[0]:,} x {value.shape[1]}\n{value.dtypes.to_string()}\n{value.head().to_string()}"
    text = repr(value)
    return text if len(text) <= 2000 else text[:2000] + f"... ({len(text):,} characters)"


@cli.command(epilog="\b\nExamples:\n  dash-state --app app:app erase --user alice\n  dash-state erase --user a.Xy3... --yes")
@click.option("--user", required=True, help="A login id, or a namespace (u.…, a.…).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@failures
def erase(obj: dict, user: str, yes: bool) -> None:
    """Delete everything of one user on every backend the app uses (a GDPR erasure request)."""
    manager = manager_for(obj)
    ns = namespace(user)
    if ns == "@app":
        raise Failure("@app holds app-wide values, not a person's: erase a user's namespace")
    if not yes:
        click.confirm(f"Delete everything of {user!r} ({ns})?", abort=True)
    removed = {backend.name: backend.delete_user(ns) for backend in backends(manager)}
    manager.audit.record("cli_erase", user=ns, removed=sum(removed.values()), by=getpass.getuser())
    log.warning("dash-state erase: %s erased %s (%d entries)", getpass.getuser(), ns, sum(removed.values()))
    console().print(f"erased {sum(removed.values()):,} entries of {ns} ("
                    + ", ".join(f"{name}: {count:,}" for name, count in removed.items()) + ")")
