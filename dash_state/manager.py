"""StateManager: turns values into references and back, for one app.

It owns the configuration, the backends (created on first use) and the counters. Layers above it
(the callback hook, the layout hook, the public API) only ever hand it a store id, a value or a
reference; layers below it (backends) only ever see namespaced keys and snapshots.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from . import identity, references, wire
from .cache import ReadCache
from .wire import Wire
from .errors import CorruptValue
from .backends import Backend, create_backend
from .codecs import JSON, Snapshot, check_encodable, freeze
from .config import Config, StoreSettings
from .defaults import BACKEND_NAMES

log = logging.getLogger("dash_state")

MISS_REASONS = {
    "malformed": "is not a valid dash-state reference",
    "foreign": "belongs to another session (or the session cookie is gone)",
    "missing": "has expired or is unknown",
    "unknown_backend": "names a backend this app does not use",
    "corrupt": "could not be decoded",
}


@dataclass
class Pending:
    """A value checked and copied, ready to be written: writing can no longer fail on the value."""

    store_id: str
    settings: StoreSettings
    snapshot: Snapshot


class StateManager:
    def __init__(self, config: Config, secret: bytes):
        self.config = config
        self._secret = references.derive_secret(secret)
        self._wire = Wire(wire.derive_secret(secret), config["STATE_COMPRESSION"], config["STATE_COMPRESSION_MIN_BYTES"])
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        cache_bytes = config["STATE_READ_CACHE_BYTES"]
        self._cache = ReadCache(cache_bytes) if cache_bytes else None

    # -- configuration -------------------------------------------------------------------------
    def settings(self, store_id: str) -> StoreSettings:
        return self.config.store(store_id)

    def keeps_on_server(self, store_id: str) -> bool:
        return self.settings(store_id).backend != "client"

    def backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            with self._lock:
                backend = self._backends.get(name)
                if backend is None:
                    backend = self._backends[name] = create_backend(name, self.config, self._wire)
        return backend

    def user(self, create: bool = True) -> str | None:
        return identity.current_user(self.config["STATE_ENABLE_USER_ISOLATION"], create=create)

    # -- writing ---------------------------------------------------------------------------------
    def prepare(self, store_id: str, value: Any) -> Pending:
        """Copy and check a value; raises StoreValueError naming the store, storing nothing."""
        settings = self.settings(store_id)
        snapshot = freeze(value, store_id)
        if not self.backend(settings.backend).keeps_objects:
            check_encodable(snapshot, store_id)
        return Pending(store_id, settings, snapshot)

    def commit(self, pending: Iterable[Pending], user: str, stable: bool = False) -> list[str]:
        """Write every pending value or none of them; returns one reference each.

        Each backend gets one ``set_many`` call with the callback's values and their "latest"
        pointers (one MULTI/EXEC on Redis). ``stable`` derives the key from the value (a layout's
        initial data), so serving the same layout again reuses one entry instead of piling up copies.
        """
        batches: dict[str, list[tuple[str, Snapshot, float]]] = {}
        tokens, cached, superseded = [], [], []
        for item in pending:
            backend = self.backend(item.settings.backend)
            key = self._key(item, stable)
            batch = batches.setdefault(backend.name, [])
            batch.append((key, item.snapshot, item.settings.ttl))
            if not stable:
                versions = [key] + self._versions(backend, user, item.store_id)
                keep = self.config["STATE_VERSIONS_KEPT"]
                batch.append((self._pointer_key(item.store_id), freeze(versions[:keep]), item.settings.ttl))
                superseded.extend((backend, old) for old in versions[keep:])
            cached.append((backend, key, item.snapshot))
            tokens.append(references.make(self._secret, user, backend.name, key))
        written: list[tuple[Backend, list]] = []
        try:
            for name, batch in batches.items():
                backend = self.backend(name)
                backend.set_many(user, batch)
                written.append((backend, batch))
        except Exception:
            for backend, batch in written:  # undo, so no callback leaves half of its outputs stored
                for key, _, _ in batch:
                    try:
                        backend.delete(user, key)
                    except Exception:  # the original error is the one to report
                        log.debug("dash-state: could not undo a partial write", exc_info=True)
            raise
        for backend, key, snapshot in cached:
            if self._cache is not None and not backend.keeps_objects:
                self._cache.put(backend.name, user, key, snapshot.for_cache())
            self._counts["writes"] += 1
            self._counts["bytes_written"] += snapshot.nbytes
        for backend, old in superseded:  # older than the last STATE_VERSIONS_KEPT writes of its store
            try:
                backend.delete(user, old)
                self._counts["superseded"] += 1
            except Exception:  # it expires with its TTL anyway
                log.debug("dash-state: could not delete a superseded value", exc_info=True)
        return tokens

    def _versions(self, backend: Backend, user: str, store_id: str) -> list[str]:
        """This user's recent keys of a store, newest first (the "latest" pointer)."""
        pointer = backend.get(user, self._pointer_key(store_id))
        keys = pointer.thaw() if pointer is not None else []
        return [keys] if isinstance(keys, str) else [k for k in keys if isinstance(k, str)]

    def latest(self, store_id: str, user: str | None = None, missing: Any = None) -> Any:
        """The value last written to ``store_id`` by this user, from any tab or worker.

        Used when a callback returns ``Patch()`` for a store that is not among its inputs: the
        browser's reference is not in the request, so the patch applies to the newest value.
        """
        user = user or self.user(create=False)
        settings = self.settings(store_id)
        if user is None or settings.backend == "client":
            return missing
        backend = self.backend(settings.backend)
        versions = self._versions(backend, user, store_id)
        if not versions:
            return missing
        snapshot = backend.get(user, versions[0])
        return missing if snapshot is None else snapshot.thaw()

    @staticmethod
    def _pointer_key(store_id: str) -> str:
        return "latest." + references.digest_key(store_id.encode())

    def save(self, store_id: str, value: Any, user: str | None = None) -> str:
        user = user or self.user()
        return self.commit([self.prepare(store_id, value)], user)[0]

    # -- reading ---------------------------------------------------------------------------------
    def load(self, store_id: str, token: Any, user: str | None = None, missing: Any = None) -> Any:
        """The value a reference stands for, or ``missing`` (logged and counted) when it cannot be served."""
        self._counts["reads"] += 1
        found = self._locate(token, user)
        if isinstance(found, str):
            self._miss(found, store_id)
            return missing
        try:
            value = found.thaw()
        except Exception:  # a corrupt entry is missing data, never a crash
            self._miss("corrupt", store_id)
            return missing
        self._counts["hits"] += 1
        return value

    def owns(self, token: Any, user: str | None = None) -> bool:
        """True when ``token`` is a well-formed reference signed for this user (whether or not its value
        still exists): a background job's output, already stored, passes through as it is."""
        return self._owned(token, user) is not None

    def delete(self, token: Any, user: str | None = None) -> bool:
        owned = self._owned(token, user)
        if owned is None:
            return False
        ref, user = owned
        if self._cache is not None:
            self._cache.drop(ref.backend, user, ref.key)
        return self.backend(ref.backend).delete(user, ref.key)

    def touch(self, store_id: str, token: Any, user: str | None = None) -> bool:
        """Restart the TTL of a live value without reading it (sliding expiry from an open page)."""
        owned = self._owned(token, user)
        if owned is None:
            return False
        ref, user = owned
        return self.backend(ref.backend).touch(user, ref.key, self.settings(store_id).ttl)

    def describe(self, token: Any, user: str | None = None) -> dict:
        """Sizes for monitoring: what the server holds vs what the browser holds for one store."""
        found = self._locate(token, user)
        server = 0 if isinstance(found, str) else found.nbytes
        ref = references.parse(token)
        return {"backend": ref.backend if ref else None, "server_bytes": server,
                "browser_bytes": len(token.encode()) if isinstance(token, str) else 0}

    def stats(self) -> dict:
        counts = dict(self._counts)
        return {
            "reads": counts.get("reads", 0),
            "hits": counts.get("hits", 0),
            "writes": counts.get("writes", 0),
            "bytes_written": counts.get("bytes_written", 0),
            "superseded": counts.get("superseded", 0),
            "misses": {reason: counts.get(f"miss.{reason}", 0) for reason in MISS_REASONS},
            "backends": {name: backend.stats() for name, backend in self._backends.items()},
            "read_cache": self._cache.stats() if self._cache is not None else None,
        }

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()

    # -- internals -------------------------------------------------------------------------------
    def _locate(self, token: Any, user: str | None) -> Snapshot | str:
        ref = references.parse(token)
        if ref is None:
            return "malformed"
        user = user or self.user(create=False)
        if ref.backend not in BACKEND_NAMES or ref.backend == "client":
            return "unknown_backend"
        if user is None or not references.verify(self._secret, user, ref):
            return "foreign"
        backend = self.backend(ref.backend)
        cache = self._cache if not backend.keeps_objects else None
        if cache is not None:
            cached = cache.get(backend.name, user, ref.key)
            if cached is not None:
                if backend.alive(user, ref.key):  # keys are never rewritten: alive means current
                    return cached
                cache.drop(backend.name, user, ref.key)
                return "missing"
        try:
            snapshot = backend.get(user, ref.key)
        except CorruptValue as exc:
            log.error("dash-state: a stored value failed its check (%s); treating it as missing", exc)
            return "corrupt"
        if snapshot is None:
            return "missing"
        if cache is not None:
            snapshot = snapshot.for_cache()
            cache.put(backend.name, user, ref.key, snapshot)
        return snapshot

    def _owned(self, token: Any, user: str | None) -> tuple[references.Reference, str] | None:
        """The parsed reference and its user, if ``token`` is signed for this user; else None."""
        ref = references.parse(token)
        user = user or self.user(create=False)
        if ref is None or user is None or ref.backend not in BACKEND_NAMES or ref.backend == "client":
            return None
        return (ref, user) if references.verify(self._secret, user, ref) else None

    def _key(self, item: Pending, stable: bool) -> str:
        if stable and item.snapshot.kind == JSON:
            return references.digest_key(item.store_id.encode(), item.snapshot.to_bytes())
        return references.new_key()

    def _miss(self, reason: str, store_id: str) -> None:
        self._counts[f"miss.{reason}"] += 1
        log.warning("ServerStore %r: reference %s; treated as missing (None)", store_id, MISS_REASONS[reason])
