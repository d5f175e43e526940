"""Changes inside one LMDB write transaction: records with their expiry index, file accounting, and
the bounded sweep. Nothing here commits: :class:`Batch` only gathers what the caller does after the
commit (unlinking the files of dropped values).

A dropped value's file is first listed in the ``doomed`` database, in the same transaction that drops
the record, and unlinked right after the commit. If the process dies in between, a later sweep finds
the name in ``doomed`` and unlinks it then: no file is ever left behind unreferenced, and no file is
unlinked while a committed record still names it.

Pointers are checked (a write's ``expect``) and touched here too, in the caller's write transaction:
LMDB has one writer at a time across the host, so a check and the write it guards are one step.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Iterator

from dash_state.backends import history
from dash_state.backends.base import is_key
from dash_state.backends.local import files, records
from dash_state.backends.local.records import Record
from dash_state.errors import PointerConflict

RECLAIM_AFTER = 600.0  # seconds: a value file still pending this long belongs to an abandoned write


class Batch:
    def __init__(self, txn: Any, dbs: dict, values_dir: str):
        self.txn, self.dbs, self.values_dir = txn, dbs, values_dir
        self.unlink: list[str] = []  # files of values dropped here: unlink after the commit
        self.file_bytes = records.number(txn.get(b"file_bytes", db=dbs["info"]))
        self.file_bytes_before = self.file_bytes

    # -- records ---------------------------------------------------------------------------------
    def get(self, key: bytes) -> Record | None:
        raw = self.txn.get(key, db=self.dbs["values"])
        return None if raw is None else records.unpack(raw)

    def put(self, key: bytes, record: Record) -> None:
        self.txn.put(key, records.pack(*record), db=self.dbs["values"])
        self.txn.put(records.expiry_key(record.expires, key), b"", db=self.dbs["expiry"])
        if record.file:
            self.file_bytes += record.size

    def take(self, key: bytes) -> Record | None:
        """Remove a record (and its index entry) but keep its file: it moves to another key."""
        record = self.get(key)
        if record is not None:
            self.txn.delete(key, db=self.dbs["values"])
            self.txn.delete(records.expiry_key(record.expires, key), db=self.dbs["expiry"])
            if record.file:
                self.file_bytes -= record.size
        return record

    def drop(self, key: bytes) -> Record | None:
        """Remove a record; its file, if any, is doomed."""
        record = self.take(key)
        if record is not None and record.file:
            self.txn.put(record.file.encode(), b"", db=self.dbs["doomed"])
            self.unlink.append(record.file)
        return record

    def of_user(self, user: str) -> list[tuple[bytes, Record]]:
        """Every record (values and pointers, live or expired) of ``user``: one prefix range."""
        prefix = records.user_prefix(user)
        found = []
        with self.txn.cursor(db=self.dbs["values"]) as cursor:
            if cursor.set_range(prefix):
                for key, raw in cursor:
                    if not key.startswith(prefix):
                        break
                    found.append((key, records.unpack(raw)))
        return found

    def plan_histories(self, user: str, pointers: list, now: float, limit: int) -> dict[str, tuple[tuple, list[str]]]:
        """Per pointer name of a write: ``((entries, expires), evicted)``, the store's history after the
        write and the keys it evicts (:func:`..history.plan`)."""
        targets: dict[str, list[str]] = {}
        expires: dict[str, float] = {}
        for pointer in pointers:
            targets.setdefault(pointer.name, []).append(pointer.target)
            expires[pointer.name] = max(expires.get(pointer.name, 0.0), now + pointer.ttl)

        def alive(key: str) -> bool:
            record = self.get(records.record_key(user, key))
            return record is not None and not record.is_pointer and record.expires > now

        plans = {}
        for name, keys in targets.items():
            stored = self.get(records.record_key(user, history.history_name(name)))
            live = stored.body if stored is not None and stored.expires > now else None
            entries, evicted = history.plan(history.parse(live), keys, alive, limit)
            plans[name] = ((entries, expires[name]), evicted)
        return plans

    # -- pointers --------------------------------------------------------------------------------
    def pointer(self, user: str, name: str, now: float) -> str | None:
        """The key a live pointer names (as :meth:`LocalBackend.pointer` reads it), in this transaction."""
        record = self.get(records.record_key(user, name))
        if record is None or not record.is_pointer or record.expires <= now:
            return None
        target = record.body.decode("ascii", "replace")
        return target if is_key(target) else None

    def expect(self, user: str, expect: Mapping[str, str | None] | None, now: float) -> None:
        """Raise PointerConflict unless each pointer named in ``expect`` names what it says (None: none)."""
        for name, expected in (expect or {}).items():
            found = self.pointer(user, name, now)
            if found != expected:
                raise PointerConflict(name, found)

    def touch_pointer(self, user: str, name: str, now: float, ttl: float) -> bool:
        """Restart a live pointer's TTL, and keep its history at least as long; False if it has none."""
        rk = records.record_key(user, name)
        if self.pointer(user, name, now) is None:
            return False
        self.put(rk, self.take(rk)._replace(expires=now + ttl))
        hrk = records.record_key(user, history.history_name(name))
        kept = self.get(hrk)
        if kept is not None and kept.expires > now:
            self.put(hrk, self.take(hrk)._replace(expires=max(kept.expires, now + ttl)))
        return True

    def finish(self) -> None:
        """Write the file accounting back (call last, inside the transaction)."""
        if self.file_bytes != self.file_bytes_before:
            self.txn.put(b"file_bytes", str(max(self.file_bytes, 0)).encode(), db=self.dbs["info"])

    # -- pending files ---------------------------------------------------------------------------
    def claim(self, names: list[str], now: float) -> None:
        for name in names:
            self.txn.put(name.encode(), records.pending(os.getpid(), now), db=self.dbs["pending"])

    def settle(self, names: list[str]) -> bool:
        """Take this process's pending claims on ``names``; False if one of them was reclaimed."""
        pid = os.getpid()
        for name in names:
            raw = self.txn.get(name.encode(), db=self.dbs["pending"])
            if raw is None or records.unpack_pending(raw)[0] != pid:
                return False
        for name in names:
            self.txn.delete(name.encode(), db=self.dbs["pending"])
        return True

    # -- the sweep -------------------------------------------------------------------------------
    def expired(self, now: float, limit: int) -> list[tuple[bytes, bytes]]:
        """At most ``limit`` (expiry index entry, record key) pairs that expired by ``now``, oldest first."""
        expired = []
        with self.txn.cursor(db=self.dbs["expiry"]) as cursor:
            if cursor.first():
                for entry in cursor.iternext(values=False):
                    expires, key = records.split_expiry(entry)
                    if expires > now or len(expired) >= limit:
                        break
                    expired.append((entry, key))
        return expired

    def sweep(self, now: float, limit: int, reclaim: bool) -> tuple[int, int]:
        """Bounded clean-up: files doomed by earlier commits, then at most ``limit`` expired records,
        then (when ``reclaim``) abandoned pending files. Returns (expired records, files removed)."""
        removed = self._unlink_doomed(limit)
        expired = self.expired(now, limit)
        for entry, key in expired:
            if self.drop(key) is None:  # an index entry without its record: drop it alone
                self.txn.delete(entry, db=self.dbs["expiry"])
        if reclaim:
            removed += self._reclaim(now, limit)
        return len(expired), removed

    def _unlink_doomed(self, limit: int) -> int:
        names = []
        with self.txn.cursor(db=self.dbs["doomed"]) as cursor:
            if cursor.first():
                for name in cursor.iternext(values=False):
                    if len(names) >= limit:
                        break
                    names.append(name)
        for name in names:  # committed before this transaction began: no record names them any more
            files.unlink(self.values_dir, [name.decode("ascii", "replace")])
            self.txn.delete(name, db=self.dbs["doomed"])
        return len(names)

    def _reclaim(self, now: float, limit: int) -> int:
        """Files of writes whose process died (SIGKILL) or that never finished."""
        abandoned = []
        with self.txn.cursor(db=self.dbs["pending"]) as cursor:
            for name, raw in _first(cursor):
                pid, started = records.unpack_pending(raw)
                if started < now - RECLAIM_AFTER or not _alive(pid):
                    abandoned.append(name)
                if len(abandoned) >= limit:
                    break
        for name in abandoned:
            files.unlink(self.values_dir, [name.decode("ascii", "replace")])
            self.txn.delete(name, db=self.dbs["pending"])
        return len(abandoned)


def _first(cursor: Any) -> Iterator[tuple[bytes, bytes]]:
    if cursor.first():
        yield from cursor


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
