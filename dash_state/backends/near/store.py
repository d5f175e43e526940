"""The near tier's storage: a local-backend store in *cache mode* (bounded, least recently used out).

The local backend never evicts: a full store refuses writes. A cache must make room instead, so
:class:`NearStore` is a :class:`~dash_state.backends.local.LocalBackend` (same LMDB records, same
memory-mapped value files, same sealing rule: unsealed on tmpfs, sealed anywhere else) whose every
change goes through :class:`NearBatch`. That keeps a least-recently-used index in the store's
``used`` database, in the same LMDB transaction as the records it describes:

* ``k`` + record key -> last use (8-byte big-endian double, epoch seconds) + size (8 bytes);
* ``t`` + last use + record key -> empty: the same entries in order of last use;
* ``bytes`` -> the sum of the indexed sizes.

Every record put is indexed, and every record dropped for whatever reason (a delete, a user's delete,
the bounded sweep of expired records, an eviction) leaves the index in the same transaction, so index
and records never disagree, for all the processes of the host. After each write the least recently
used values go until ``bytes`` is within the budget (``STATE_NEAR_TIER_BYTES``). A read refreshes its
value's last use at most every ``STAMP_EVERY`` seconds (a write transaction, so hot values do not
serialise readers); a value larger than a quarter of the budget is not kept (it would flush the
rest). The underlying local store gets twice the budget plus 64 MiB for LMDB's own overhead; should
that still be full, a value is simply not kept. Nothing here raises to the caller: it is a cache.
"""
from __future__ import annotations

import logging
import struct
import time
from typing import Any, Callable

from dash_state.backends.base import Item
from dash_state.backends.local import LocalBackend, files, records
from dash_state.backends.local.batch import Batch
from dash_state.core.codecs import Snapshot
from dash_state.errors import CorruptValue

log = logging.getLogger("dash_state")
STAMP_EVERY = 2.0  # seconds: a read refreshes its value's last use at most this often
OVERHEAD = 64 << 20  # room the LMDB map needs beyond the values themselves
EVICT_CHUNK = 64  # oldest index entries looked at per step of an eviction
_ENTRY = struct.Struct(">dq")
_STAMP = struct.Struct(">d")


class NearBatch(Batch):
    """A local-backend batch that keeps the LRU index of the records it puts and drops."""

    def __init__(self, txn: Any, dbs: dict, values_dir: str, now: float):
        super().__init__(txn, dbs, values_dir)
        self.now = now
        self.used = dbs["used"]
        self.bytes = records.number(txn.get(b"bytes", db=self.used))
        self.bytes_before = self.bytes
        self.evicted = 0

    def put(self, key: bytes, record: records.Record) -> None:
        super().put(key, record)
        if not record.is_pointer:
            self._unindex(key)
            self.txn.put(b"k" + key, _ENTRY.pack(self.now, record.size), db=self.used)
            self.txn.put(b"t" + _STAMP.pack(self.now) + key, b"", db=self.used)
            self.bytes += record.size

    def take(self, key: bytes) -> records.Record | None:
        record = super().take(key)
        self._unindex(key)
        return record

    def restamp(self, key: bytes) -> None:
        """Mark a value as used now (it keeps its place in the budget)."""
        found = self.txn.get(b"k" + key, db=self.used)
        if found is not None:
            stamp, size = _ENTRY.unpack(found)
            self.txn.delete(b"t" + _STAMP.pack(stamp) + key, db=self.used)
            self.txn.put(b"k" + key, _ENTRY.pack(self.now, size), db=self.used)
            self.txn.put(b"t" + _STAMP.pack(self.now) + key, b"", db=self.used)

    def evict(self, budget: int) -> None:
        """Drop the least recently used values until the indexed bytes are within ``budget``."""
        while self.bytes > budget:
            oldest = []
            with self.txn.cursor(db=self.used) as cursor:
                if cursor.set_range(b"t"):
                    for entry in cursor.iternext(values=False):
                        if not entry.startswith(b"t") or len(oldest) >= EVICT_CHUNK:
                            break
                        oldest.append(entry[1 + _STAMP.size:])
            if not oldest:
                return
            for key in oldest:
                if self.bytes <= budget:
                    return
                if self.drop(key) is None:  # an index entry without its record: drop it alone
                    self._unindex(key)
                self.evicted += 1

    def finish(self) -> None:
        super().finish()
        if self.bytes != self.bytes_before:
            self.txn.put(b"bytes", str(max(self.bytes, 0)).encode(), db=self.used)

    def _unindex(self, key: bytes) -> None:
        found = self.txn.get(b"k" + key, db=self.used)
        if found is not None:
            stamp, size = _ENTRY.unpack(found)
            self.txn.delete(b"k" + key, db=self.used)
            self.txn.delete(b"t" + _STAMP.pack(stamp) + key, db=self.used)
            self.bytes -= size


class NearStore(LocalBackend):
    """A bounded LRU cache of one remote backend's values, shared by every process of the host."""

    def __init__(self, seal: Any, path: str, budget: int, *, setting: str = "STATE_NEAR_TIER_PATH",
                 clock: Callable[[], float] = time.time, **local: Any):
        super().__init__(seal, path, 2 * budget + OVERHEAD, setting=setting, clock=clock, **local)
        self.budget = budget
        self.evicted = self.not_kept = self.failures = 0

    # -- what the near tier uses -------------------------------------------------------------------
    def fetch(self, user: str, key: str) -> tuple[Snapshot, float] | None:
        """A live value and its expiry (epoch seconds), or None. Never raises: a damaged entry is
        dropped and reads as absent."""
        rk = records.record_key(user, key)
        now = self._clock()
        try:
            def look(txn: Any) -> tuple[records.Record, float] | None:
                raw = txn.get(rk, db=self._env().dbs["values"])
                record = None if raw is None else records.unpack(raw)
                if record is None or record.is_pointer or record.expires <= now:
                    return None
                used = txn.get(b"k" + rk, db=self._env().dbs["used"])
                return record, (_ENTRY.unpack(used)[0] if used is not None else 0.0)

            found = self._env().read(look)
            if found is None:
                return None
            record, stamp = found
            data = record.body if not record.flags & records.FILE else files.read(self.values_dir, record.file,
                                                                                   record.size)
            if data is None:  # deleted since its record was read
                return None
            snapshot = self._open(key, record, data)
        except CorruptValue as exc:
            self._trouble("a near-tier entry failed its check and was dropped", exc)
            self.forget(user, key)
            return None
        except Exception as exc:  # noqa: BLE001 - a cache that fails is a cache miss
            self._trouble("the near tier could not be read", exc)
            return None
        if stamp < now - STAMP_EVERY:
            self._quietly(lambda: self._change(lambda batch: batch.restamp(rk)))
        return snapshot, record.expires

    def expires(self, user: str, key: str) -> float | None:
        """The expiry of a live value held here, or None."""
        record = self._quietly(lambda: self._live(user, key))
        return None if not record or record.is_pointer else record.expires

    def keep(self, user: str, key: str, value: Snapshot | Any, expires: float) -> bool:
        """Hold ``value`` until ``expires``: a Snapshot, or bytes already in this store's form (sealed
        bytes when the store is sealed). Values over a quarter of the budget are not kept."""
        ttl = expires - self._clock()
        size = value.nbytes if isinstance(value, Snapshot) else len(value)
        if ttl <= 0 or size > self.budget // 4:
            self.not_kept += 1
            return False
        if isinstance(value, Snapshot):
            done = self._quietly(lambda: self.set_many(user, [Item(key, value, ttl)]), "keep a value")
        else:
            done = self._quietly(lambda: self.write_many(user, [(key, value, ttl)], [], None), "keep a value")
        return done is not False

    def set_expiry(self, user: str, key: str, expires: float) -> None:
        """Move a held value's expiry (a touch, or what the remote backend reported); an expiry in the
        past drops it."""
        rk = records.record_key(user, key)

        def work(batch: NearBatch) -> None:
            record = batch.get(rk)
            if record is None or record.is_pointer:
                return
            if expires <= batch.now:
                batch.drop(rk)
                return
            batch.take(rk)
            batch.put(rk, record._replace(expires=expires))

        self._quietly(lambda: self._change(work), "update an expiry")

    def forget(self, user: str, key: str) -> None:
        """Drop one value (before the remote backend deletes it, so it is never served again)."""
        rk = records.record_key(user, key)
        self._quietly(lambda: self._change(lambda batch: batch.drop(rk)), "drop a value")

    def forget_user(self, user: str) -> None:
        self._quietly(lambda: self.delete_user(user), "drop a user's values")

    def near_stats(self) -> dict:
        def read(txn: Any) -> tuple[int, int]:
            return (records.number(txn.get(b"bytes", db=self._env().dbs["used"])),
                    txn.stat(self._env().dbs["values"])["entries"])

        held, entries = self._quietly(lambda: self._env().read(read)) or (0, 0)
        return {"path": self.path, "sealed": self.sealed, "budget": self.budget, "bytes": held, "entries": entries,
                "evicted": self.evicted, "not_kept": self.not_kept, "failures": self.failures}

    # -- cache mode --------------------------------------------------------------------------------
    def _change(self, work: Callable[[Any], Any], *, reclaim: bool = False, sweep: bool = False) -> Any:
        """LocalBackend._change with a NearBatch: the LRU index changes with the records."""
        env, now = self._env(), self._clock()
        tally: list[tuple[int, int]] = []
        evicted: list[int] = []

        def transaction(txn: Any) -> Any:
            batch = NearBatch(txn, env.dbs, self.values_dir, now)
            tally[:] = [batch.sweep(now, self.sweep_limit, reclaim)] if sweep else []
            result = work(batch)
            batch.finish()
            evicted[:] = [batch.evicted]
            return result, batch.unlink

        result, unlink = env.write(transaction, freeing=not sweep)
        files.unlink(self.values_dir, unlink)
        self.evicted += evicted[0] if evicted else 0
        if tally:
            self.sweeps += 1
            self.swept += tally[0][0]
            self.files_removed += tally[0][1] + len(unlink)
        return result

    def _check_budget(self, batch: Any) -> None:
        """Called by every write, inside its transaction, after the puts: make room, then let the local
        backend check its own (larger) limit on the map and the files."""
        batch.evict(self.budget)
        super()._check_budget(batch)

    def _trouble(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        if self.failures in (1, 10, 100) or self.failures % 1000 == 0:
            log.warning("dash-state near tier at %s: %s (%s: %s); the remote backend serves instead (%d so far)",
                        self.path, what, type(exc).__name__, exc, self.failures)

    def _quietly(self, operation: Callable[[], Any], what: str = "use its store") -> Any:
        """``operation()``, or False after logging (throttled) when it fails."""
        try:
            return operation()
        except Exception as exc:  # noqa: BLE001 - the near tier is a cache: it never fails a request
            self._trouble(f"could not {what}", exc)
            return False
