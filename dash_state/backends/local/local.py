"""The local backend: one store shared by every process of one host, in LMDB and memory-mapped files.

gunicorn/uWSGI workers, and Celery or Diskcache worker processes on the same host, all open the same
directory (``STATE_LOCAL_PATH``, by default a per-app directory under ``/dev/shm``; see
:mod:`.paths`) and see the same values, with no server to run. Where things live:

* **LMDB** (``data.mdb``, :mod:`.env`): every record (user, key -> flags, expiry, size, and the value
  itself when it is small, or the name of its file), the pointers (``latest.*``), an expiry index and
  the bookkeeping (:mod:`.records`). LMDB has one writer at a time across all processes of the host,
  so a write checks the pointers it expects and the user's quota, and stores all of a callback's
  values and pointers, in one transaction: all or nothing, never over quota. A writer killed with
  SIGKILL leaves the last committed state intact. Reads are lock-free snapshots of memory-mapped pages.
* **Value files** (``values/<name>``, :mod:`.files`) for values of at least 64 KiB: written once and
  renamed into place before their record is committed, unlinked when the value is deleted or expires.
  Readers map them privately, so a DataFrame read by four workers takes the memory of one copy, and
  each reader may modify its frame without anyone else seeing it (:mod:`.frames`).

Values on a memory filesystem (tmpfs, as ``/dev/shm``) are trusted like process memory and stored
unsealed: a frame is then read in place, without a copy. On a disk they are sealed (AES-GCM, as on
redis), and decrypted into each reader's own memory.

Expired values are never served; a bounded sweep on each write removes at most ``sweep_limit`` of
them (and their files), so no daemon is needed. ``STATE_LOCAL_MAX_BYTES`` bounds the LMDB map plus
the value files: the map grows (doubling) until it would pass that, then writes are refused with
QuotaExceeded (HTTP 413), never evicting anyone else. Each store keeps at most
``STATE_VALUES_PER_STORE`` values per user: a write past it evicts that store's oldest ones in its own
transaction (see :mod:`..history`).
"""
from __future__ import annotations

import errno
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from dash_state.backends import history
from dash_state.backends.base import (
    POINTER_PREFIX,
    BytesBackend,
    Entry,
    Item,
    Pointer,
    is_key,
)
from dash_state.backends.local import env as envs
from dash_state.backends.local import files, frames, paths, records
from dash_state.backends.local import inventory as _inventory
from dash_state.backends.local.batch import Batch
from dash_state.backends.local.records import FILE, POINTER, SEALED, Record
from dash_state.core.codecs import FRAME, SERIES, Snapshot
from dash_state.errors import (
    BackendUnavailable,
    ConfigError,
    CorruptValue,
    QuotaExceeded,
)

if TYPE_CHECKING:
    from dash_state.config import Config
    from dash_state.core.seal import Seal

FILE_THRESHOLD = 64 << 10  # values this large live in files of their own
INITIAL_MAP = 32 << 20
SWEEP_LIMIT = 100  # expired records (and doomed files) removed per write, at most
RECLAIM_INTERVAL = 60.0  # seconds between looks for abandoned pending files, per process


class _Payload(NamedTuple):
    """A value on its way in: its size, and its bytes or a way to write them out piece by piece."""
    size: int
    data: Any = None
    produce: Callable[[Callable[[Any], None]], None] | None = None

    def write_to(self, write: Callable[[Any], None]) -> None:
        if self.produce is not None:
            self.produce(write)
        else:
            write(self.data)


class LocalBackend(BytesBackend):
    name = "local"
    shared = True  # by every process of this host

    def __init__(self, seal: "Seal | None", path: str, max_bytes: int = 1 << 30, *, setting: str = "STATE_LOCAL_PATH",
                 clock: Callable[[], float] = time.time, file_threshold: int = FILE_THRESHOLD,
                 initial_map: int = INITIAL_MAP, sweep_limit: int = SWEEP_LIMIT, values_per_store: int = 16):
        super().__init__(seal)  # type: ignore[arg-type]
        self.values_per_store = values_per_store
        self.path = paths.prepare(path, setting)
        self.persistent = not paths.in_memory(self.path)
        self.sealed = self.persistent
        if self.sealed and seal is None:
            raise ConfigError(f"{setting} = {self.path!r} is on a persistent filesystem, where the local backend "
                              "seals values (AES-GCM, a key derived from SECRET_KEY), but no seal was given")
        self.max_bytes, self.file_threshold, self.sweep_limit = max_bytes, file_threshold, sweep_limit
        self._clock = clock
        self.values_dir = files.folder(self.path)
        self.env: envs.Env | None = envs.acquire(self.path, self.persistent, initial_map, max_bytes)
        self.sweeps = self.swept = self.files_removed = self.refused = self.evicted_per_store = 0
        self._next_reclaim = 0.0

    # -- values ----------------------------------------------------------------------------------
    def read(self, user: str, key: str) -> Any:
        found = self._find(user, key)
        return None if found is None else found[1]

    def get(self, user: str, key: str) -> Snapshot | None:
        found = self._find(user, key)
        return None if found is None else self._open(key, *found)

    def alive(self, user: str, key: str) -> bool:
        return self._live(user, key) is not None

    def set_many(self, user: str, items: list[Item], pointers: list[Pointer] = (), quota: int | None = None,
                 expect: Mapping[str, str | None] | None = None) -> None:
        self._write(user, [(item.key, self._payload(item.key, item.value), item.ttl) for item in items],
                    list(pointers), quota, expect)

    def write_many(self, user: str, items: list[tuple[str, Any, float]], pointers: list[Pointer],
                   quota: int | None, expect: Mapping[str, str | None] | None = None) -> None:
        """Store bytes as they are (sealed bytes on a persistent path, encoded values on tmpfs)."""
        self._write(user, [(key, _Payload(len(data), data), ttl) for key, data, ttl in items], list(pointers), quota,
                    expect)

    def pointer(self, user: str, name: str) -> str | None:
        record = self._live(user, name)
        if record is None or not record.is_pointer:
            return None
        target = record.body.decode("ascii", "replace")
        return target if is_key(target) else None

    def delete(self, user: str, key: str) -> bool:
        rk = records.record_key(user, key)
        return self._change(lambda batch: batch.drop(rk) is not None)

    def release(self, user: str, pointer: str, key: str) -> bool:
        rk, prk, now = records.record_key(user, key), records.record_key(user, pointer), self._clock()
        hrk = records.record_key(user, history.history_name(pointer))

        def work(batch: Batch) -> bool:
            named = batch.get(prk)
            if named is not None and named.is_pointer and named.expires > now and named.body == key.encode():
                kept = batch.drop(hrk)
                entries = history.mark(history.parse(kept.body if kept else None), key)
                batch.put(hrk, records.history_record(entries, max(named.expires, kept.expires if kept else 0.0)))
                return False
            return batch.drop(rk) is not None

        return self._change(work)

    def touch(self, user: str, key: str, ttl: float) -> bool:
        rk, now = records.record_key(user, key), self._clock()
        if key.startswith(POINTER_PREFIX):
            return self._change(lambda batch: batch.touch_pointer(user, key, now, ttl))

        def work(batch: Batch) -> bool:
            record = batch.get(rk)
            if record is None or record.expires <= now or record.is_pointer:
                return False
            batch.take(rk)
            batch.put(rk, record._replace(expires=now + ttl))
            return True

        return self._change(work)

    # -- users -----------------------------------------------------------------------------------
    def delete_user(self, user: str) -> int:
        def work(batch: Batch) -> int:
            found = batch.of_user(user)
            for rk, _ in found:
                batch.drop(rk)
            return sum(1 for _, record in found if not record.is_pointer)

        return self._change(work)

    def move_user(self, source: str, target: str) -> int:
        """Re-key each live record of ``source`` that ``target`` lacks (a value's file moves with it:
        values are sealed for their key, not their user); drop the rest of ``source``."""
        now = self._clock()

        def work(batch: Batch) -> int:
            moved = 0
            for rk, record in batch.of_user(source):
                _, key = records.split_key(rk)
                destination = records.record_key(target, key)
                kept = batch.get(destination)
                if history.is_history(key) and record.expires > now and kept is not None and kept.expires > now:
                    merged = history.merge(history.parse(kept.body), history.parse(record.body))
                    batch.drop(rk)
                    batch.drop(destination)
                    batch.put(destination, records.history_record(merged, max(kept.expires, record.expires)))
                    continue
                if record.expires <= now or (kept is not None and kept.expires > now):
                    batch.drop(rk)
                    continue
                batch.drop(destination)  # an expired record of the target is not the target's
                batch.put(destination, batch.take(rk))
                moved += not record.is_pointer
            return moved

        return self._change(work)

    def usage(self, user: str) -> list[tuple[str, int, float]]:
        now = self._clock()
        found = self._env().read(lambda txn: Batch(txn, self._env().dbs, self.values_dir).of_user(user))
        return [(records.split_key(rk)[1], record.size, record.expires) for rk, record in found
                if not record.is_pointer and record.expires > now]

    def inventory(self, user: str | None = None) -> Iterator[Entry]:
        return _inventory.inventory(self, user)  # a read transaction per chunk (.inventory)

    def users(self) -> Iterator[str]:
        return _inventory.users(self)

    def gc(self, dry_run: bool = False, batch: int = 1000, progress: Callable[[int], None] | None = None) -> dict:
        return _inventory.gc(self, dry_run, batch, progress)

    # -- lifecycle -------------------------------------------------------------------------------
    def stats(self) -> dict:
        return {"path": self.path, "sealed": self.sealed, "max_bytes": self.max_bytes, **self._env().info(),
                "map_growths": self._env().growths, "sweeps": self.sweeps, "swept": self.swept,
                "files_removed": self.files_removed, "refused": self.refused,
                "evicted_per_store": self.evicted_per_store}

    def close(self) -> None:
        env, self.env = self.env, None
        if env is not None:
            envs.release(env)

    def sweep(self, reclaim: bool = True) -> int:
        """Run one bounded sweep now; returns how many expired records it removed."""
        return self._change(lambda batch: 0, reclaim=reclaim, sweep=True)

    # -- reading ---------------------------------------------------------------------------------
    def _env(self) -> envs.Env:
        if self.env is None:
            raise BackendUnavailable(f"the local backend for {self.path} is closed")
        return self.env

    def _live(self, user: str, key: str) -> Record | None:
        rk, now = records.record_key(user, key), self._clock()

        def look(txn: Any) -> Record | None:
            raw = txn.get(rk, db=self._env().dbs["values"])
            record = None if raw is None else records.unpack(raw)
            return record if record is not None and record.expires > now else None

        return self._env().read(look)

    def _find(self, user: str, key: str) -> tuple[Record, Any] | None:
        """A live value's record and stored bytes (a private mapping of its file, for large ones)."""
        record = self._live(user, key)
        if record is None or record.is_pointer:
            return None
        if not record.flags & FILE:
            return record, record.body
        data = files.read(self.values_dir, record.file, record.size)
        return None if data is None else (record, data)  # deleted since its record was read

    def _open(self, key: str, record: Record, data: Any) -> Snapshot:
        """The snapshot of stored bytes; a frame or series keeps its columns where they were read."""
        if record.flags & SEALED:
            snapshot = self.seal.load(key, data)
            body = memoryview(snapshot.to_bytes())
        elif self.sealed:
            raise CorruptValue("an unsealed value in a store on a persistent filesystem")
        else:
            body = memoryview(data)
            try:
                snapshot = Snapshot.from_bytes(body)
            except ValueError as exc:
                raise CorruptValue(str(exc)) from None
        if snapshot.kind not in (FRAME, SERIES):
            return snapshot
        try:
            value = frames.decode(snapshot.kind, body[4:])
        except (ValueError, TypeError, KeyError) as exc:  # Arrow's errors on damaged data
            raise CorruptValue(f"the stored frame cannot be decoded: {exc}") from None
        return Snapshot(snapshot.kind, obj=value, nbytes=len(body))

    # -- writing ---------------------------------------------------------------------------------
    def _payload(self, key: str, value: Snapshot) -> _Payload:
        if self.sealed:
            sealed = self.seal.dump(key, value)
            return _Payload(len(sealed), sealed)
        size = value.encoded_size()
        if size < self.file_threshold:
            return _Payload(size, value.to_bytes())
        return _Payload(size, produce=value.write_to)  # streamed into its file, never one buffer

    def _change(self, work: Callable[[Batch], Any], *, reclaim: bool = False, sweep: bool = False) -> Any:
        """``work(batch)`` in one write transaction (after a bounded sweep, when ``sweep``); the files
        of values it dropped are unlinked after the commit."""
        env, now = self._env(), self._clock()
        tally: list[tuple[int, int]] = []

        def transaction(txn: Any) -> Any:
            batch = Batch(txn, env.dbs, self.values_dir)
            tally[:] = [batch.sweep(now, self.sweep_limit, reclaim)] if sweep else []
            result = work(batch)
            batch.finish()
            return result, batch.unlink

        result, unlink = env.write(transaction, freeing=not sweep)
        files.unlink(self.values_dir, unlink)
        if tally:
            self.sweeps += 1
            self.swept += tally[0][0]
            self.files_removed += tally[0][1] + len(unlink)
        return result

    def _write(self, user: str, payloads: list[tuple[str, _Payload, float]], pointers: list[Pointer],
               quota: int | None, expect: Mapping[str, str | None] | None = None) -> None:
        now = self._clock()
        keys = [(records.record_key(user, key), payload, ttl) for key, payload, ttl in payloads]
        pointer_keys = [(records.record_key(user, p.name), p) for p in pointers]
        names = {i: files.new_name() for i, (_, payload, _) in enumerate(keys) if payload.size >= self.file_threshold}
        claimed = list(names.values())
        if claimed:
            self._env().write(lambda txn: Batch(txn, self._env().dbs, self.values_dir).claim(claimed, now), freeing=True)
        try:
            for i, name in names.items():
                payload = keys[i][1]
                files.write(self.values_dir, name, payload.size, payload.write_to, self.persistent)

            def store(batch: Batch) -> None:
                batch.expect(user, expect, self._clock())  # PointerConflict: the whole transaction is undone
                if not batch.settle(claimed):
                    raise BackendUnavailable("the local backend's write of a large value was interrupted: its file was "
                                             "reclaimed as abandoned before the write finished")
                plans = batch.plan_histories(user, pointers, now, self.values_per_store)
                written = {key for key, _, _ in payloads}
                evicting = [records.record_key(user, key) for _, (_, evicted) in plans.items()
                            for key in evicted if key not in written]
                self._check_quota(batch, user, keys, quota, now, evicting)
                evicted[:] = [rk for rk in evicting if batch.drop(rk) is not None]
                for name, ((entries, expires), _) in plans.items():
                    hrk = records.record_key(user, history.history_name(name))
                    batch.drop(hrk)
                    batch.put(hrk, records.history_record(entries, expires))
                for i, (rk, payload, ttl) in enumerate(keys):
                    batch.drop(rk)
                    flags = (SEALED if self.sealed else 0) | (FILE if i in names else 0)
                    body = names[i].encode() if i in names else bytes(payload.data)
                    batch.put(rk, Record(flags, now + ttl, payload.size, body))
                for rk, pointer in pointer_keys:
                    batch.drop(rk)
                    batch.put(rk, Record(POINTER, now + pointer.ttl, 0, pointer.target.encode("ascii", "replace")))
                self._check_budget(batch)

            reclaim = now >= self._next_reclaim
            evicted: list[bytes] = []
            self._change(store, reclaim=reclaim, sweep=True)
            self.evicted_per_store += len(evicted)
            if reclaim:
                self._next_reclaim = now + RECLAIM_INTERVAL
        except BaseException as exc:
            if claimed:
                self._abandon(claimed)
            if isinstance(exc, QuotaExceeded):
                self.refused += 1
            if isinstance(exc, OSError):
                raise self._os_error(exc) from None
            raise

    def _check_quota(self, batch: Batch, user: str, keys: list, quota: int | None, now: float,
                     evicting: list[bytes] = ()) -> None:
        adding = sum(payload.size for _, payload, _ in keys)
        if quota is None or not adding:
            return
        replaced = {rk for rk, _, _ in keys} | set(evicting)  # evicted values free their bytes at once
        used = sum(record.size for rk, record in batch.of_user(user)
                   if rk not in replaced and not record.is_pointer and record.expires > now)
        if used + adding > quota:
            raise QuotaExceeded(f"this user's ServerStore values would take {used + adding:,} bytes, more than "
                                f"STATE_MAX_USER_BYTES = {quota:,}")

    def _check_budget(self, batch: Batch) -> None:
        """Value files and the map together stay within STATE_LOCAL_MAX_BYTES."""
        env = self._env()
        if batch.file_bytes > batch.file_bytes_before and batch.file_bytes + env.map_size() > self.max_bytes:
            raise env.full(batch.file_bytes - batch.file_bytes_before, files=batch.file_bytes_before)

    def _abandon(self, names: list[str]) -> None:
        """A write that failed: its pending claims and files go (best effort; else the sweep reclaims them)."""
        def release(txn: Any) -> None:
            for name in names:
                txn.delete(name.encode(), db=self._env().dbs["pending"])

        try:
            self._env().write(release, freeing=True)
        except Exception:  # noqa: BLE001 - the original error matters more; RECLAIM_AFTER covers this
            pass
        files.unlink(self.values_dir, names)

    def _os_error(self, exc: OSError) -> Exception:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return QuotaExceeded(f"the local backend's directory {self.path} is out of space ({exc.strerror}); "
                                 "nothing was stored and the previous value stays. Lower STATE_LOCAL_MAX_BYTES "
                                 "below the filesystem's free space")
        return BackendUnavailable(f"the local backend cannot write to {self.path}: {exc}")


def from_config(config: "Config", seal: "Seal | None") -> LocalBackend:
    if seal is None and not config["STATE_LOCAL_PATH"]:  # two apps must never share a store by accident
        raise ConfigError("the local backend names its default directory after keys derived from SECRET_KEY, "
                          "and none were given: set STATE_LOCAL_PATH to a directory of this app's own")
    path = config["STATE_LOCAL_PATH"] or paths.default_path(seal, config["STATE_KEY_PREFIX"])
    source = config.sources.get("STATE_LOCAL_PATH", "default")
    return LocalBackend(seal, path, config["STATE_LOCAL_MAX_BYTES"], setting=f"STATE_LOCAL_PATH (from {source})",
                        values_per_store=config["STATE_VALUES_PER_STORE"])

