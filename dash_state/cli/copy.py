"""``dash-state copy --from URL --to URL``: move an app's values between backends while it runs.

Users are copied one at a time: the user's entries on the target are replaced by the source's (values
first, then their pointers, so a pointer never names a value that is not there yet), with a progress
bar. The users done are written to ``--state`` after each one,
so an interrupted copy resumes where it stopped. At the end the entries of each copied user are
counted on both sides; users whose counts differ (the app wrote meanwhile) are listed: run the copy
again with ``--again`` to bring them over."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from dash_state.backends import Item, Pointer, create_backend
from dash_state.cli.common import console
from dash_state.cli.context import manager_for
from dash_state.cli.main import Failure, cli, failures
from dash_state.config import load_config
from dash_state.config.validate import mask_url
from dash_state.core.seal import Seal


def backend_at(manager: Any, url: str, prefix: str | None = None, table: str | None = None) -> Any:
    """A backend for a URL: redis://, rediss://, unix://, redis+sentinel://, redis+cluster:// (redis);
    sqlite:///, postgresql+psycopg://, mysql+pymysql:// (database); local:/path (the host-local store)."""
    lowered = url.lower()
    if lowered.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")):
        name, overrides = "redis", {"STATE_REDIS_URL": url}
    elif lowered.startswith(("sqlite:", "postgresql", "mysql", "mariadb")):
        name, overrides = "database", {"STATE_DATABASE_URL": url}
    elif lowered.startswith("local:"):
        name, overrides = "local", {"STATE_LOCAL_PATH": url[len("local:"):]}
    else:
        raise Failure(f"{mask_url(url)!r} is not a backend URL (redis://, postgresql+psycopg://, sqlite:///, local:/path)")
    keep = {k: manager.config[k] for k in ("STATE_KEY_PREFIX", "STATE_DATABASE_TABLE", "STATE_ENCRYPTION",
                                            "STATE_COMPRESSION", "STATE_COMPRESSION_MIN_BYTES", "STATE_RETRIES",
                                            "STATE_BACKEND_TIMEOUT", "STATE_VALUES_PER_STORE")}
    if prefix is not None:
        keep["STATE_KEY_PREFIX"] = prefix
    if table is not None:
        keep["STATE_DATABASE_TABLE"] = table
    config = load_config(None, {**keep, **overrides, "STATE_BACKEND": name, "STATE_NEAR_TIER_BYTES": 0})
    seal = Seal(manager.keys, config["STATE_ENCRYPTION"], config["STATE_COMPRESSION"],
                config["STATE_COMPRESSION_MIN_BYTES"])
    try:
        return create_backend(name, config, seal)
    except Exception as exc:
        raise Failure(f"cannot open {mask_url(url)}: {type(exc).__name__}: {exc}") from None


def copy_user(source: Any, target: Any, user: str, now: float, batch: int = 500) -> int:
    """One user's values and pointers, written in few calls (each a transaction / MULTI on the target)."""
    entries = [e for e in source.inventory(user) if e.kind != "history"]
    target.delete_user(user)  # what the source no longer has (evicted, deleted) must not linger there
    items = []
    for entry in (e for e in entries if e.kind == "value"):
        ttl = (entry.expires_at or now + 3600) - now
        snapshot = source.get(user, entry.key)
        if snapshot is not None and ttl > 0:
            items.append(Item(entry.key, snapshot, ttl))
    pointers = [Pointer(e.key, e.target, (e.expires_at or now + 3600) - now) for e in entries
                if e.kind == "pointer" and (e.expires_at or now + 3600) > now]
    for start in range(0, len(items), batch):  # values first: a pointer never names a missing value
        target.set_many(user, items[start:start + batch])
    for start in range(0, len(pointers), batch):
        target.set_many(user, [], pointers[start:start + batch])
    return len(items) + len(pointers)


def _count(backend: Any, user: str) -> int:
    return sum(1 for e in backend.inventory(user) if e.kind != "history")


@cli.command(epilog="\b\nExamples:\n  dash-state --app app:app copy --from redis://127.0.0.1:6379/0 \\\n"
                    "      --to postgresql+psycopg://app@db/app\n  dash-state copy --from local:/dev/shm/app --to redis://cache:6379/0")
@click.option("--from", "source_url", required=True, metavar="URL")
@click.option("--to", "target_url", required=True, metavar="URL")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), default=Path(".dash-state-copy.json"),
              show_default=True, help="Where the users already copied are recorded (resume).")
@click.option("--again", is_flag=True, help="Copy every user again, ignoring --state.")
@click.option("--to-prefix", help="STATE_KEY_PREFIX on the target (default: the app's).")
@click.option("--to-table", help="STATE_DATABASE_TABLE on the target (default: the app's).")
@click.pass_obj
@failures
def copy(obj: dict, source_url: str, target_url: str, state_path: Path, again: bool, to_prefix: str | None,
         to_table: str | None) -> None:
    """Copy every user's values and pointers from one backend to another (resumable, verified)."""
    from rich.progress import Progress

    manager = manager_for(obj)
    source, target = backend_at(manager, source_url), backend_at(manager, target_url, to_prefix, to_table)
    job = f"{mask_url(source_url)} -> {mask_url(target_url)}"
    done: list[str] = []
    if state_path.exists() and not again:
        saved = json.loads(state_path.read_text())
        done = saved.get("done", []) if saved.get("job") == job else []
    users = sorted(set(source.users()) - set(done))
    started, copied, out = time.perf_counter(), 0, console()
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("copying users", total=len(users))
        for user in users:
            copied += copy_user(source, target, user, time.time())
            done.append(user)
            state_path.write_text(json.dumps({"job": job, "done": done}))
            progress.advance(task)
    changed = [user for user in users if _count(source, user) != _count(target, user)]
    seconds = time.perf_counter() - started
    out.print(f"copied {copied:,} entries of {len(users):,} users in {seconds:.1f} s ({job})")
    if changed:
        out.print(f"{len(changed):,} users changed during the copy (counts differ): run it again with --again")
    else:
        out.print("verified: every copied user has the same number of entries on both sides")
        state_path.unlink(missing_ok=True)
    for backend in (source, target):
        backend.close()
