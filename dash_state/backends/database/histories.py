"""The database backend's per-store histories (:mod:`..history`): one pointer-like row per user and
store, ``latest.<store digest>.history``, with size 0 (no quota, not in ``usage``). Every function here
runs inside the caller's transaction, which holds the user's lock."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from dash_state.backends import history
from dash_state.backends.base import Pointer


def plan(conn: Connection, rows_in: Any, user: str, pointers: list[Pointer], now: float,
         limit: int) -> list[tuple[str, tuple[list, float], list[str]]]:
    """Per store a write points at: ``(pointer name, (history after the write, its expiry), evicted
    keys)``. Two reads: the histories, then which of their keys are still live values."""
    targets: dict[str, list[str]] = {}
    expires: dict[str, float] = {}
    for pointer in pointers:
        targets.setdefault(pointer.name, []).append(pointer.target)
        expires[pointer.name] = max(expires.get(pointer.name, 0.0), now + pointer.ttl)
    if not targets:
        return []
    names = [history.history_name(name) for name in targets]
    stored = {k: history.parse(bytes(v)) for k, v, _ in conn.execute(rows_in, {"u": user, "now": now, "keys": names})}
    listed = sorted({key for entries in stored.values() for key, _ in entries})
    live = set()
    if listed:
        live = {k for k, _, _ in conn.execute(rows_in, {"u": user, "now": now, "keys": listed})}
    plans = []
    for name, keys in targets.items():
        entries, evicted = history.plan(stored.get(history.history_name(name), []), keys, live.__contains__, limit)
        plans.append((name, (entries, expires[name]), evicted))
    return plans


def merge(conn: Connection, histories_of: Any, upsert: Any, source: str, target: str, now: float) -> None:
    """A login's carry-over: a store both namespaces have a history for keeps one, merged (the other
    histories move with the pointers)."""
    found = {}
    for user in (source, target):
        rows = conn.execute(histories_of, {"u": user, "now": now})
        found[user] = {k: (history.parse(bytes(v)), e) for k, v, e in rows}
    rows = [row(target, name[:-len(history.SUFFIX)], history.merge(found[target][name][0], entries),
                max(expires, found[target][name][1]))
            for name, (entries, expires) in found[source].items() if name in found[target]]
    if rows:
        conn.execute(upsert, rows)


def row(user: str, pointer: str, entries: list, expires: float) -> dict:
    """The row of ``pointer``'s history."""
    return {"user_id": user, "key": history.history_name(pointer), "value": history.dump(entries).encode("ascii"),
            "expires_at": expires, "size": 0}
