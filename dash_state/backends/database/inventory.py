"""Listing and cleaning what the database backend holds (``dash-state stores``, ``gc``).

Everything is read in keyset pages: ``... WHERE (user_id, key) > (last page's last) ORDER BY user_id,
key LIMIT n``, each page one short statement on the primary key's index, so no transaction or cursor
stays open while the caller works through the entries, and no page costs more than the one before.
Only this backend's table is ever named.

A gc first deletes the expired rows the way the write path's bounded :meth:`sweep` does (the same
``DELETE ... WHERE (user_id, key) IN (SELECT ... WHERE expires_at <= now LIMIT n) AND expires_at <=
now``, with ``RETURNING`` for the tally where the dialect has it), a batch per statement until one comes
back short. Then it reads the live histories a page at a time, with the pointers and the values they
name (two batched lookups per page), and for each user with something to evict runs one transaction
under that user's lock, as a write does (:meth:`DatabaseBackend._transaction`): it reads them again,
deletes the evicted values and rewrites the histories, so the bound and the quota a concurrent write
checks stay exact.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, delete, null, select, tuple_
from sqlalchemy.engine import Connection

from dash_state.backends import history
from dash_state.backends.base import POINTER_PREFIX, Entry, is_key
from dash_state.backends.database import histories
from dash_state.backends.database.engines import MYSQL
from dash_state.backends.inventory import Tally, chunks, kind_of, pointer_of, trim

if TYPE_CHECKING:
    from dash_state.backends.database import DatabaseBackend

PAGE = 1000  # rows per keyset page
PAIRS = 400  # (user, key) pairs per IN list


def _keyset(query: Any, t: Any, user: str | None, last: tuple | None) -> Any:
    """``query`` from after ``last`` (user, key), for one user or all of them."""
    if user is not None:
        query = query.where(t.c.user_id == user)
        return query if last is None else query.where(t.c.key > last[1])
    return query if last is None else query.where(tuple_(t.c.user_id, t.c.key) > tuple_(*last))


def inventory(backend: "DatabaseBackend", user: str | None) -> Iterator[Entry]:
    t = backend.table
    small = case((t.c.key.like(POINTER_PREFIX + "%"), t.c.value), else_=null())  # never a value's bytes
    query = select(t.c.user_id, t.c.key, t.c.size, t.c.expires_at, small).order_by(t.c.user_id, t.c.key).limit(PAGE)
    last = None
    while True:
        page = _keyset(query.where(t.c.expires_at > backend._clock()), t, user, last)
        rows = backend._run(lambda conn, page=page: conn.execute(page).all())
        for owner, key, size, expires, body in rows:
            kind = kind_of(key)
            target = bytes(body).decode("ascii", "replace") if kind == "pointer" and body is not None else None
            if kind == "pointer" and not is_key(target):
                continue  # reads as no pointer at all
            yield Entry(owner, key, kind, int(size) if kind == "value" else 0, float(expires), target)
        if len(rows) < PAGE:
            return
        last = tuple(rows[-1][:2])


def users(backend: "DatabaseBackend") -> Iterator[str]:
    t = backend.table
    query = select(t.c.user_id).group_by(t.c.user_id).order_by(t.c.user_id).limit(PAGE)
    last = None
    while True:
        page = query.where(t.c.expires_at > backend._clock())
        if last is not None:
            page = page.where(t.c.user_id > last)
        found = [row[0] for row in backend._run(lambda conn, page=page: conn.execute(page).all())]
        yield from found
        if len(found) < PAGE:
            return
        last = found[-1]


# -- gc ----------------------------------------------------------------------------------------------
def gc(backend: "DatabaseBackend", dry_run: bool, batch: int, progress: Callable[[int], None] | None) -> dict:
    tally, batch = Tally(progress), max(int(batch), 1)
    now = backend._clock()
    (_count_expired if dry_run else _delete_expired)(backend, tally, batch, now)
    _trim_histories(backend, tally, batch, now, dry_run)
    return tally.result()


def _delete_expired(backend: "DatabaseBackend", tally: Tally, batch: int, now: float) -> None:
    t = backend.table
    doomed = select(t.c.user_id, t.c.key).where(t.c.expires_at <= now).limit(batch)
    # the sweep's statement, telling what it deleted (a row rewritten since the subquery read it survives)
    sweep = (delete(t).where(tuple_(t.c.user_id, t.c.key).in_(doomed), t.c.expires_at <= now)
             .returning(t.c.user_id, t.c.size))
    returning = backend.engine.dialect.delete_returning and backend.engine.dialect.name not in MYSQL

    def read_then_delete(conn: Connection) -> list:
        """MySQL cannot select from the table it deletes from: read the batch, then delete it."""
        rows = conn.execute(select(t.c.user_id, t.c.key, t.c.size).where(t.c.expires_at <= now).limit(batch)).all()
        if rows:
            pairs = [(user, key) for user, key, _ in rows]
            conn.execute(delete(t).where(tuple_(t.c.user_id, t.c.key).in_(pairs), t.c.expires_at <= now))
        return [(user, size) for user, _, size in rows]

    while True:
        gone = backend._run(lambda conn: conn.execute(sweep).all() if returning else read_then_delete(conn))
        for user, size in gone:
            tally.add(user, expired=1, freed=int(size))
        tally.step(len(gone))
        if len(gone) < batch:
            return


def _count_expired(backend: "DatabaseBackend", tally: Tally, batch: int, now: float) -> None:
    t = backend.table
    query = select(t.c.user_id, t.c.key, t.c.size).where(t.c.expires_at <= now).order_by(t.c.user_id, t.c.key)
    last = None
    while True:
        page = _keyset(query.limit(batch), t, None, last)
        rows = backend._run(lambda conn, page=page: conn.execute(page).all())
        for user, _, size in rows:
            tally.add(user, expired=1, freed=int(size))
        tally.step(len(rows))
        if len(rows) < batch:
            return
        last = tuple(rows[-1][:2])


def _trim_histories(backend: "DatabaseBackend", tally: Tally, batch: int, now: float, dry_run: bool) -> None:
    t = backend.table
    query = (select(t.c.user_id, t.c.key, t.c.value, t.c.expires_at)
             .where(t.c.key.like(POINTER_PREFIX + "%" + history.SUFFIX), t.c.expires_at > now)
             .order_by(t.c.user_id, t.c.key))
    last = None
    while True:
        page = _keyset(query.limit(batch), t, None, last)
        rows = backend._run(lambda conn, page=page: conn.execute(page).all())
        plans, sizes = backend._run(lambda conn, rows=rows: _plan(conn, t, rows, now, backend.values_per_store))
        removed = 0
        for user, stores in plans.items():
            if not any(evicted for _, _, _, evicted in stores):
                continue
            if dry_run:
                evicted = {key for _, _, _, keys in stores for key in keys}
                count, freed = len(evicted), sum(sizes[(user, key)] for key in evicted)
            else:
                names = [name for name, _, _, _ in stores]
                count, freed = backend._transaction(user, lambda conn, u=user, n=names: _evict(backend, conn, u, n))
            tally.add(user, over_bound=count, freed=freed)
            removed += count
        tally.step(removed)
        if len(rows) < batch:
            return
        last = tuple(rows[-1][:2])


def _pairs(conn: Connection, query: Any, t: Any, pairs: set, now: float) -> list:
    """``query``'s live rows among ``(user, key)`` pairs, a bounded IN list at a time."""
    found = []
    for chunk in chunks(sorted(pairs), PAIRS):
        found += conn.execute(query.where(tuple_(t.c.user_id, t.c.key).in_(chunk), t.c.expires_at > now)).all()
    return found


def _plan(conn: Connection, t: Any, rows: list, now: float,
          limit: int) -> tuple[dict[str, list], dict[tuple[str, str], int]]:
    """Per user, the histories (of ``rows``: user, name, text, expiry) a gc changes: ``(name, expiry,
    entries kept, keys evicted)``; and the sizes of the live values they list."""
    parsed = [(user, name, history.parse(bytes(text)), float(expires)) for user, name, text, expires in rows]
    pointers = {(user, key): bytes(body).decode("ascii", "replace") for user, key, body in
                _pairs(conn, select(t.c.user_id, t.c.key, t.c.value), t,
                       {(user, pointer_of(name)) for user, name, _, _ in parsed}, now)}
    listed = {(user, key) for user, _, entries, _ in parsed for key, _ in entries}
    sizes = {(user, key): int(size) for user, key, size in
             _pairs(conn, select(t.c.user_id, t.c.key, t.c.size), t, listed, now)}
    plans: dict[str, list] = defaultdict(list)
    for user, name, entries, expires in parsed:
        target = pointers.get((user, pointer_of(name)))
        kept, evicted = trim(entries, target if is_key(target) else None, lambda key, u=user: (u, key) in sizes, limit)
        if evicted or kept != entries:
            plans[user].append((name, expires, kept, evicted))
    return plans, sizes


def _evict(backend: "DatabaseBackend", conn: Connection, user: str, names: list[str]) -> tuple[int, int]:
    """In the user's locked transaction: plan again, delete the evicted values, rewrite the histories."""
    t, now = backend.table, backend._clock()
    rows = conn.execute(select(t.c.user_id, t.c.key, t.c.value, t.c.expires_at)
                        .where(t.c.user_id == user, t.c.key.in_(names), t.c.expires_at > now)).all()
    plans, sizes = _plan(conn, t, rows, now, backend.values_per_store)
    stores = plans.get(user, [])
    evicted = sorted({key for _, _, _, keys in stores for key in keys})
    if evicted:
        conn.execute(backend._evict, {"u": user, "keys": evicted})
    rewritten = [histories.row(user, pointer_of(name), kept, expires) for name, expires, kept, _ in stores]
    if rewritten:
        conn.execute(backend._upsert, rewritten)
    return len(evicted), sum(sizes[(user, key)] for key in evicted)
