"""The database backend's pointer operations that must see the latest committed rows: a write's
compare-and-set (``expect``) and the touch of a pointer. Both run inside the caller's transaction,
which holds the user's lock (PostgreSQL advisory lock, MySQL ``GET_LOCK``, SQLite's write lock); the
pointer rows are read ``FOR UPDATE`` where the database has it, so even under MySQL's repeatable read
the check sees the last commit, not the transaction's snapshot."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from dash_state.backends import history
from dash_state.backends.base import is_key
from dash_state.errors import PointerConflict


def targets(conn: Connection, locking: Any, user: str, names: list[str], now: float) -> dict[str, str]:
    """The key each live pointer of ``names`` names (pointers naming anything else are left out)."""
    found = {}
    for name, value, _ in conn.execute(locking, {"u": user, "now": now, "keys": names}):
        target = bytes(value).decode("ascii", "replace")
        if is_key(target):
            found[name] = target
    return found


def check(conn: Connection, locking: Any, user: str, expect: Mapping[str, str | None] | None, now: float) -> None:
    """Raise PointerConflict unless each pointer named in ``expect`` names what it says (None: none)."""
    if not expect:
        return
    found = targets(conn, locking, user, list(expect), now)
    for name, expected in expect.items():
        if found.get(name) != expected:
            raise PointerConflict(name, found.get(name))


def touch(conn: Connection, locking: Any, touch_row: Any, user: str, name: str, ttl: float, now: float) -> bool:
    """Restart a live pointer's TTL and keep its history at least as long; False if it has none."""
    kept = history.history_name(name)
    rows = {key: (bytes(value), float(expires))
            for key, value, expires in conn.execute(locking, {"u": user, "now": now, "keys": [name, kept]})}
    if name not in rows or not is_key(rows[name][0].decode("ascii", "replace")):
        return False
    conn.execute(touch_row, {"u": user, "k": name, "now": now, "until": now + ttl})
    if kept in rows:
        conn.execute(touch_row, {"u": user, "k": kept, "now": now, "until": max(rows[kept][1], now + ttl)})
    return True
