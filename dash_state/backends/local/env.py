"""The LMDB environment of one store directory, opened once per process, lazily, and again after fork.

LMDB's rules, and how this module keeps them:

* An environment must not be used across ``fork()`` (gunicorn ``--preload`` forks after import) and
  must not be open twice in one process (closing one copy would drop the other's file locks). So
  there is one :class:`Env` per directory per process (:func:`acquire` / :func:`release` count its
  users); it opens on first use. Fork hooks wait until no transaction of this process is running,
  and the child closes the handle it inherited (which touches nothing of the parent's: no
  transaction is open) and opens its own at its first use.
* All processes share one writer lock (a robust mutex in ``lock.mdb``): a write transaction here is
  atomic across every process of the host, and a writer killed with SIGKILL releases it. Readers
  never wait.
* The map (the most the data file may grow to) is fixed per process. When a write finds it full, the
  map grows (doubling) up to the budget, :meth:`Env.limit`, that STATE_LOCAL_MAX_BYTES leaves after
  the value files; beyond it the write is refused (QuotaExceeded, HTTP 413). A process whose
  transactions find that another process grew the file (``MapResizedError``) adopts the new size.
  Changing the map size needs every transaction of this process finished: operations hold the
  :class:`Gate` shared, a resize holds it alone.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import lmdb

from dash_state.backends.local import records
from dash_state.backends.local.records import DATABASES, FORMAT
from dash_state.errors import BackendUnavailable, ConfigError, QuotaExceeded

T = TypeVar("T")
PAGE = 4096
MAX_READERS = 1024  # concurrent read transactions, all processes together
FREEING_SLACK = 8  # deletes may take the map 1/8 past the budget, so a full store can always be emptied

_registry: dict[str, "Env"] = {}
_registry_lock = threading.Lock()


class Gate:
    """A shared/exclusive lock: transactions share it, a map resize takes it alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._resizing = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        """Wait until no transaction runs, and let none start until :meth:`release`."""
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            while self._active:
                self._cond.wait()

    def release(self) -> None:
        with self._cond:
            self._resizing = False
            self._cond.notify_all()


class Env:
    def __init__(self, path: str, durable: bool, initial_map: int, max_bytes: int):
        self.path, self.durable, self.max_bytes = path, durable, max_bytes
        self.initial_map = _pages(min(initial_map, max_bytes))
        self.users = 0
        self.growths = 0
        self._env: Any = None
        self._forked()

    def _forked(self) -> None:
        """Start without a handle, with locks of this process's own (in a forked child: close the
        parent's handle, which had no transaction open at the fork, so LMDB allows opening it again)."""
        inherited, self._env, self.dbs = self._env, None, {}
        self._open_lock, self._gate = threading.Lock(), Gate()
        if inherited is not None:
            try:
                inherited.close()
            except lmdb.Error:
                pass

    # -- opening ---------------------------------------------------------------------------------
    def handle(self) -> Any:
        if self._env is None:
            with self._open_lock:
                if self._env is None:
                    self._open()
        return self._env

    def _open(self) -> None:
        try:
            env = lmdb.open(self.path, map_size=self.initial_map, subdir=True, max_dbs=len(DATABASES),
                            max_readers=MAX_READERS, sync=self.durable, metasync=False, readahead=False,
                            meminit=False, mode=0o600, lock=True)
        except lmdb.Error as exc:
            raise BackendUnavailable(f"the local backend cannot open its store at {self.path}: {exc}") from None
        try:
            size = env.info()["map_size"]
            env.set_mapsize(0)  # the size the file was last grown to, by any process
            if env.info()["map_size"] < size:
                env.set_mapsize(size)
            env.reader_check()  # reader slots of processes that died (SIGKILL) hold old pages
            self.dbs = {name.decode(): env.open_db(name) for name in DATABASES}
            with env.begin(write=True) as txn:
                found = txn.get(b"format", db=self.dbs["info"])
                if found is None:
                    txn.put(b"format", FORMAT, db=self.dbs["info"])
        except lmdb.Error as exc:
            env.close()
            raise BackendUnavailable(f"the local backend cannot open its store at {self.path}: {exc}") from None
        if found not in (None, FORMAT):
            env.close()
            raise ConfigError(f"the local backend's store at {self.path} has format {found!r}, this version of "
                              f"dash-state reads {FORMAT!r}: point STATE_LOCAL_PATH elsewhere or remove it")
        self._env = env

    # -- transactions ----------------------------------------------------------------------------
    def read(self, fn: Callable[[Any], T]) -> T:
        """``fn(txn)`` in a read transaction: a consistent snapshot, never blocked by writers."""
        while True:
            env = self.handle()
            with self._gate.shared():
                try:
                    with env.begin() as txn:
                        return fn(txn)
                except lmdb.MapResizedError:
                    pass
            self._adopt()

    def write(self, fn: Callable[[Any], T], freeing: bool = False) -> T:
        """``fn(txn)`` in the host-wide write transaction, committed, or undone whole if it raises.
        ``fn`` may run again (after the map grew), so it must change nothing outside ``txn``."""
        while True:
            env = self.handle()
            with self._gate.shared():
                try:
                    return _commit(env, fn)
                except lmdb.MapResizedError:
                    full = False
                except lmdb.MapFullError:
                    full = True
            if full:
                self._grow(freeing)
            else:
                self._adopt()

    def _adopt(self) -> None:
        with self._gate.exclusive():
            self._env.set_mapsize(0)

    def _grow(self, freeing: bool) -> None:
        """Double the map, within the budget; raise QuotaExceeded when it has none left."""
        with self._gate.exclusive():
            env = self._env
            env.reader_check()
            before = env.info()["map_size"]
            env.set_mapsize(0)  # another process may have grown it already
            if env.info()["map_size"] > before:
                return
            limit = self.limit(freeing)
            target = _pages(min(2 * before, limit), down=True)
            if target <= before:
                raise self.full(0)
            env.set_mapsize(target)
            self.growths += 1

    def file_bytes(self, txn: Any) -> int:
        return records.number(txn.get(b"file_bytes", db=self.dbs["info"]))

    def limit(self, freeing: bool = False) -> int:
        """The most bytes the map may take: STATE_LOCAL_MAX_BYTES less the value files."""
        with self._env.begin() as txn:
            files = self.file_bytes(txn)
        slack = self.max_bytes // FREEING_SLACK if freeing else 0
        return self.max_bytes + slack - files

    def map_size(self) -> int:
        return self.handle().info()["map_size"]

    def full(self, asked: int, files: int | None = None) -> QuotaExceeded:
        """The refusal of a write that does not fit (``files``: the value files' bytes, when known)."""
        if files is None:
            with self._env.begin() as txn:
                files = self.file_bytes(txn)
        wanted = f" and {asked:,} more were asked for" if asked else ""
        return QuotaExceeded(
            f"the local backend's store at {self.path} is full: STATE_LOCAL_MAX_BYTES = {self.max_bytes:,} bytes, "
            f"of which its LMDB map takes {self.map_size():,} and value files {files:,}{wanted}; nothing was "
            "stored and the previous value stays. Raise STATE_LOCAL_MAX_BYTES, or lower STATE_MAX_USER_BYTES "
            "or STATE_TTL_DEFAULT")

    def info(self) -> dict:
        env = self.handle()
        with self._gate.shared():
            info, stat = env.info(), env.stat()
            with env.begin() as txn:
                entries = txn.stat(self.dbs["values"])["entries"]
                files = self.file_bytes(txn)
        return {"map_size": info["map_size"], "map_used": (info["last_pgno"] + 1) * stat["psize"],
                "readers": info["num_readers"], "entries": entries, "file_bytes": files}

    def close(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            with self._gate.exclusive():
                env.close()


def _commit(env: Any, fn: Callable[[Any], T]) -> T:
    txn = env.begin(write=True)
    try:
        result = fn(txn)
    except BaseException:
        txn.abort()
        raise
    txn.commit()  # on failure LMDB has already dropped the transaction
    return result


def _pages(size: int, down: bool = False) -> int:
    pages = size // PAGE if down else -(-size // PAGE)
    return max(pages, 16) * PAGE


def acquire(path: str, durable: bool, initial_map: int, max_bytes: int) -> Env:
    """This process's environment for ``path`` (opened at first use), shared by every backend on it."""
    with _registry_lock:
        env = _registry.get(path)
        if env is None:
            env = _registry[path] = Env(path, durable, initial_map, max_bytes)
        env.max_bytes = max_bytes
        env.users += 1
        return env


def release(env: Env) -> None:
    with _registry_lock:
        env.users -= 1
        if env.users > 0:
            return
        if _registry.get(env.path) is env:
            del _registry[env.path]
    env.close()


def _before_fork() -> None:
    """No transaction of this process may be running while it forks (the child closes its copy)."""
    _registry_lock.acquire()
    for env in _registry.values():
        env._gate.acquire()


def _after_fork_in_parent() -> None:
    for env in _registry.values():
        env._gate.release()
    _registry_lock.release()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for env in _registry.values():
        env._forked()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
