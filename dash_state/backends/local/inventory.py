"""Listing and cleaning what the local backend holds (``dash-state stores``, ``gc``).

Reads walk the ``values`` (or ``expiry``) database a chunk at a time, each chunk in a read
transaction of its own that resumes after the last key the previous one saw: LMDB cannot reuse the
pages a reader still sees, so one read transaction held across a long listing would make every writer
of the host grow the map instead of reusing freed space. Record keys are ``len(user) + user + key``
(:mod:`.records`), so one user's records are one range and ``users`` jumps from one to the next.

A gc changes things the way a write does: in the host-wide write transaction (:meth:`LocalBackend._change`,
which unlinks the files of dropped values after the commit), a batch at a time. Its expired pass walks
the expiry index as the bounded sweep does (:meth:`.batch.Batch.sweep`) but keeps the tally, then the
sweep itself runs once for the files doomed by earlier commits and the abandoned pending ones. Its
bound pass reads a chunk of live histories and trims them in one write transaction, checking the
pointers and values again there.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dash_state.backends import history
from dash_state.backends.base import Entry, is_key
from dash_state.backends.inventory import Tally, kind_of, pointer_of, trim
from dash_state.backends.local import records
from dash_state.backends.local.batch import Batch
from dash_state.backends.local.records import Record

if TYPE_CHECKING:
    from dash_state.backends.local.local import LocalBackend

CHUNK = 1000  # records per read transaction


def _walk(backend: "LocalBackend", db: str, prefix: bytes = b"",
          chunk: int | None = None) -> Iterator[list[tuple[bytes, bytes]]]:
    """The ``(key, raw)`` pairs of one database whose keys start with ``prefix``, in key order, a read
    transaction per chunk (of ``CHUNK`` records unless told)."""
    env, chunk = backend._env(), chunk or CHUNK
    position: bytes | None = None

    def read(txn: Any) -> tuple[list[tuple[bytes, bytes]], bool]:
        found: list[tuple[bytes, bytes]] = []
        with txn.cursor(db=env.dbs[db]) as cursor:
            start = position if position is not None else prefix
            if not (cursor.set_range(start) if start else cursor.first()):
                return found, True
            for key, raw in cursor:
                if key == position:
                    continue
                if not key.startswith(prefix):
                    return found, True
                found.append((key, raw))
                if len(found) >= chunk:
                    return found, False
        return found, True

    while True:
        found, done = env.read(read)
        if found:
            yield found
        if done or not found:
            return
        position = found[-1][0]


def _entry(raw_key: bytes, record: Record, now: float) -> Entry | None:
    if record.expires <= now:
        return None
    user, key = records.split_key(raw_key)
    kind = kind_of(key)
    if kind == "value":
        return Entry(user, key, kind, record.size, record.expires, None)
    target = record.body.decode("ascii", "replace") if kind == "pointer" else None
    if kind == "pointer" and not is_key(target):
        return None  # reads as no pointer at all
    return Entry(user, key, kind, 0, record.expires, target)


def inventory(backend: "LocalBackend", user: str | None) -> Iterator[Entry]:
    prefix = records.user_prefix(user) if user is not None else b""
    for chunk in _walk(backend, "values", prefix):
        now = backend._clock()
        for raw_key, raw in chunk:
            entry = _entry(raw_key, records.unpack(raw), now)
            if entry is not None:
                yield entry


def _after(prefix: bytes) -> bytes:
    """The first key past every key that starts with ``prefix``."""
    raw = bytearray(prefix)
    while raw and raw[-1] == 0xFF:
        raw.pop()
    raw[-1] += 1
    return bytes(raw)


def users(backend: "LocalBackend") -> Iterator[str]:
    env, position = backend._env(), b""

    def read(txn: Any) -> tuple[list[str], bytes | None]:
        found, steps, now = [], 0, backend._clock()
        with txn.cursor(db=env.dbs["values"]) as cursor:
            if not (cursor.set_range(position) if position else cursor.first()):
                return found, None
            while steps < CHUNK:
                steps += 1
                key = cursor.key()
                if records.unpack(cursor.value()).expires > now:  # a live record: this user is listed
                    user = records.split_key(key)[0]
                    found.append(user)
                    if not cursor.set_range(_after(records.user_prefix(user))):
                        return found, None
                elif not cursor.next():
                    return found, None
            return found, cursor.key()

    while True:
        found, position = env.read(read)
        yield from found
        if position is None:
            return


# -- gc ----------------------------------------------------------------------------------------------
def gc(backend: "LocalBackend", dry_run: bool, batch: int, progress: Callable[[int], None] | None) -> dict:
    tally, batch = Tally(progress), max(int(batch), 1)
    now = backend._clock()
    if dry_run:
        _count_expired(backend, tally, batch, now)
    else:
        while _drop_expired(backend, tally, batch, now) >= batch:
            pass
        backend.sweep(reclaim=True)  # files doomed by earlier commits, abandoned pending files
    _trim_histories(backend, tally, batch, now, dry_run)
    return tally.result()


def _drop_expired(backend: "LocalBackend", tally: Tally, batch: int, now: float) -> int:
    """One write transaction: at most ``batch`` expired records go; returns how many index entries it read."""
    def work(txn_batch: Batch) -> tuple[list[tuple[bytes, Record]], int]:
        expired = txn_batch.expired(now, batch)
        dropped = []
        for entry, key in expired:
            record = txn_batch.get(key)
            if record is None or record.expires > now:  # an index entry without its record: drop it alone
                txn_batch.txn.delete(entry, db=txn_batch.dbs["expiry"])
            else:
                dropped.append((key, txn_batch.drop(key)))
        return dropped, len(expired)

    dropped, read = backend._change(work)
    for key, record in dropped:
        _count(tally, key, record)
    tally.step(len(dropped))
    return read


def _count(tally: Tally, raw_key: bytes, record: Record) -> None:
    user, key = records.split_key(raw_key)
    tally.add(user, expired=1, freed=record.size if kind_of(key) == "value" else 0)


def _count_expired(backend: "LocalBackend", tally: Tally, batch: int, now: float) -> None:
    env = backend._env()
    for chunk in _walk(backend, "expiry", chunk=batch):
        doomed = [key for expires, key in map(records.split_expiry, (entry for entry, _ in chunk)) if expires <= now]

        def read(txn: Any, doomed: list[bytes] = doomed) -> list[tuple[bytes, Record]]:
            found = [(key, txn.get(key, db=env.dbs["values"])) for key in doomed]
            return [(key, records.unpack(raw)) for key, raw in found if raw is not None]

        counted = [(key, record) for key, record in env.read(read) if record.expires <= now]
        for key, record in counted:
            _count(tally, key, record)
        tally.step(len(counted))
        if len(doomed) < len(chunk):  # the index is in time order: the rest are live
            return


def _trim_histories(backend: "LocalBackend", tally: Tally, batch: int, now: float, dry_run: bool) -> None:
    found: list[bytes] = []
    for chunk in _walk(backend, "values"):
        for raw_key, raw in chunk:
            if history.is_history(records.split_key(raw_key)[1]) and records.unpack(raw).expires > now:
                found.append(raw_key)
        while len(found) >= batch:
            _trim(backend, tally, found[:batch], dry_run)
            del found[:batch]
    if found:
        _trim(backend, tally, found, dry_run)


def _trim(backend: "LocalBackend", tally: Tally, keys: list[bytes], dry_run: bool) -> None:
    """Trim these histories in one write transaction (a read one for a dry run)."""
    limit = backend.values_per_store

    def work(txn_batch: Batch) -> list[tuple[str, list[tuple[str, int]]]]:
        now, results = backend._clock(), []
        for hrk in keys:
            stored = txn_batch.get(hrk)
            if stored is None or stored.expires <= now:
                continue
            user, name = records.split_key(hrk)
            target = txn_batch.pointer(user, pointer_of(name), now)

            def live(key: str, user: str = user) -> Record | None:
                record = txn_batch.get(records.record_key(user, key))
                return record if record is not None and not record.is_pointer and record.expires > now else None

            entries = history.parse(stored.body)
            kept, evicted = trim(entries, target, lambda key: live(key) is not None, limit)
            if not evicted:
                continue
            results.append((user, [(key, live(key).size) for key in evicted]))
            if not dry_run:
                for key in evicted:
                    txn_batch.drop(records.record_key(user, key))
                txn_batch.take(hrk)
                txn_batch.put(hrk, records.history_record(kept, stored.expires))
        return results

    if dry_run:
        env = backend._env()
        results = env.read(lambda txn: work(Batch(txn, env.dbs, backend.values_dir)))
    else:
        results = backend._change(work)
    removed = 0
    for user, evicted in results:
        tally.add(user, over_bound=len(evicted), freed=sum(size for _, size in evicted))
        removed += len(evicted)
    tally.step(removed)
