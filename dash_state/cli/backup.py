"""``dash-state export`` and ``dash-state import``: backup and restore in the ``.dsx`` format
(:mod:`.dsx`), into the same or another backend (redis ↔ database ↔ local).

Import reads the file twice: first every entry is checked (format, sizes, and each value opened
with the app's keys), then written; a problem in the first pass writes nothing (``--partial`` skips
bad entries instead and lists them). A file made under another ``SECRET_KEY`` is refused, or re-sealed
with this app's key when ``--old-secret-env NAME`` names the variable holding the old key."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click

from dash_state.backends import Item, Pointer
from dash_state.cli import dsx
from dash_state.cli.common import backends, console, human_bytes, namespace
from dash_state.cli.context import manager_for
from dash_state.cli.main import Failure, cli, failures
from dash_state.core.keys import Keys, as_bytes
from dash_state.core.seal import Seal
from dash_state.errors import CorruptValue

BATCH = 200  # entries of one user per write (one transaction or MULTI)


def _seal(manager, keys: Keys) -> Seal:
    config = manager.config
    return Seal(keys, config["STATE_ENCRYPTION"], config["STATE_COMPRESSION"], config["STATE_COMPRESSION_MIN_BYTES"])


@cli.command(epilog="\b\nExamples:\n  dash-state --app app:app export -o backup.dsx\n"
                    "  dash-state export --user alice --store filters -o alice.dsx")
@click.option("--user", help="Only this user's entries (a login id, or a namespace such as u.… or a.…).")
@click.option("--store", "store_id", help="Only this store: each user's latest value of it and its pointer.")
@click.option("--backend", "only", help="Only this backend (default: every server backend the app uses).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@failures
def export(obj: dict, user: str | None, store_id: str | None, only: str | None, output: Path) -> None:
    """Back up ServerStore values and pointers (DataFrames included) to a .dsx file."""
    from dash_state.backends import pointer_name

    manager = manager_for(obj)
    seal = _seal(manager, manager.keys)
    wanted = pointer_name(store_id) if store_id else None
    started, out = time.perf_counter(), console()
    partial = output.with_name(output.name + ".part")
    with open(partial, "wb") as stream:
        writer = dsx.Writer(stream, manager.keys)
        for backend in backends(manager, only):
            entries = list(backend.inventory(namespace(user)))
            entries.sort(key=lambda e: (e.user, e.kind != "value"))  # each user's values, then their pointers
            current = _targets(entries, wanted) if wanted else None  # each user's latest value of the store
            for entry in entries:
                if entry.kind == "history":
                    continue  # bookkeeping: rebuilt by the writes of an import
                if entry.kind == "pointer":
                    if wanted is None or entry.key == wanted:
                        writer.pointer(entry.user, entry.key, entry.target, entry.expires_at or time.time() + 3600)
                    continue
                if current is not None and (entry.user, entry.key) not in current:
                    continue
                snapshot = backend.get(entry.user, entry.key)
                if snapshot is not None:  # expired since it was listed: nothing to keep
                    writer.value(entry.user, entry.key, bytes(seal.dump(entry.key, snapshot)),
                                 entry.expires_at or time.time() + 3600)
        writer.close()
    partial.replace(output)
    seconds = time.perf_counter() - started
    out.print(f"exported {writer.count:,} entries ({human_bytes(writer.bytes)} of values) to {output} in {seconds:.1f} s")


def _targets(entries: list, wanted: str) -> set[tuple[str, str]]:
    return {(e.user, e.target) for e in entries if e.kind == "pointer" and e.key == wanted}


@cli.command(name="import", epilog="\b\nExamples:\n  dash-state --app app:app import backup.dsx\n"
                                   "  OLD_KEY=... dash-state import backup.dsx --old-secret-env OLD_KEY --backend redis")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--backend", "target", help="Write into this backend (default: STATE_BACKEND).")
@click.option("--partial", is_flag=True, help="Skip entries that fail their checks (listed) instead of importing nothing.")
@click.option("--old-secret-env", metavar="NAME", help="Environment variable holding the SECRET_KEY the file was made "
                                                      "under: its values are re-sealed with this app's key.")
@click.pass_obj
@failures
def import_(obj: dict, path: Path, target: str | None, partial: bool, old_secret_env: str | None) -> None:
    """Restore a .dsx file (all or nothing unless --partial)."""
    manager = manager_for(obj)
    keys = manager.keys
    if old_secret_env:
        if not os.environ.get(old_secret_env):
            raise Failure(f"--old-secret-env {old_secret_env}: that environment variable is not set")
        keys = Keys(keys.secrets + (as_bytes(os.environ[old_secret_env]),))
    seal = _seal(manager, keys)
    backend = backends(manager, target or manager.config["STATE_BACKEND"])[0]
    limit = manager.config["STATE_MAX_VALUE_BYTES"]
    started, skipped = time.perf_counter(), []
    with open(path, "rb") as stream:  # first pass: check everything, write nothing
        try:
            for number, entry in enumerate(dsx.read(stream, keys, limit), 1):
                if isinstance(entry, dsx.Value):
                    try:
                        seal.load(entry.key, entry.data)
                    except CorruptValue as exc:
                        problem = f"entry {number} ({entry.user}/{entry.key}): {exc}"
                        if not partial:
                            raise dsx.BadFile(problem) from None
                        skipped.append((entry.user, entry.key, problem))
        except dsx.BadFile as exc:
            raise Failure(f"{path}: {exc}; nothing was imported") from None
    bad = {(user, key) for user, key, _ in skipped}
    written, count, size = [], 0, 0
    now = time.time()
    pending: dict[str, tuple[list, list]] = {}  # user -> (items, pointers) not yet written

    def flush(user: str, final: bool = True) -> None:
        """Write the user's values so far (one transaction / MULTI); their pointers once the user is done,
        so a pointer never names a value that is not there yet."""
        items, pointers = pending.pop(user)
        backend.set_many(user, items, pointers if final else [])
        written.extend((user, item.key) for item in items)
        if final:
            written.extend((user, pointer.name) for pointer in pointers)
        else:
            pending[user] = ([], pointers)

    try:
        with open(path, "rb") as stream:
            for entry in dsx.read(stream, keys, limit):
                ttl = entry.expires_at - now
                if ttl <= 0:
                    continue  # expired since the export
                if isinstance(entry, dsx.Value) and (entry.user, entry.key) in bad:
                    continue
                for other in [u for u in pending if u != entry.user]:
                    flush(other)  # entries come user by user: a new user means the last one is complete
                items, pointers = pending.setdefault(entry.user, ([], []))
                if isinstance(entry, dsx.Value):
                    items.append(Item(entry.key, seal.load(entry.key, entry.data), ttl))
                    size += len(entry.data)
                else:
                    pointers.append(Pointer(entry.name, entry.target, ttl))
                count += 1
                if len(items) >= BATCH:
                    flush(entry.user, final=False)
            for user in list(pending):
                flush(user)
    except Exception as exc:
        for user, key in written:  # all or nothing: take back what this import wrote
            try:
                backend.delete(user, key)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        raise Failure(f"{path}: writing to the {backend.name} backend failed ({type(exc).__name__}: {exc}); "
                      "what this import had written was removed") from None
    seconds = time.perf_counter() - started
    out = console()
    out.print(f"imported {count:,} entries ({human_bytes(size)} of values) into {backend.name} in {seconds:.1f} s")
    for _, _, problem in skipped:
        out.print(f"skipped {problem}")
