"""StateManager: turns values into references and back, for one app and its users.

It owns the configuration, the derived keys, the backends (created on first use), the read cache
and the counters. Layers above it (the callback hook, the layout hook, the routes, the Python API)
hand it a store id, a value or a reference; layers below it (backends) only see namespaces, keys and
snapshots. Who is asking comes from :mod:`dash_state.identity`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dash_state import identity
from dash_state.backends import (
    Backend,
    Item,
    Pointer,
    create_backend,
    near,
    pointer_name,
)
from dash_state.config import Config, StoreSettings
from dash_state.core import references, shared
from dash_state.core.cache import ReadCache
from dash_state.core.codecs import JSON, Snapshot, check_encodable
from dash_state.core.keys import Keys
from dash_state.core.logs import MissLog, Throttle
from dash_state.core.missing import REASONS, Found, Missing, Owned
from dash_state.core.monitoring import Monitoring
from dash_state.core.references import (
    APP,
    APP_OWNER,
    APP_SCOPED,
    CLIENT,
    SERVER,
    SHARED_SCOPES,
)
from dash_state.core.seal import Seal
from dash_state.core.values import freeze, json_size_estimate
from dash_state.defaults import BACKEND_NAMES
from dash_state.errors import CorruptValue, QuotaExceeded, StoreValueError
from dash_state.identity import Identity, Transition
from dash_state.metrics import Metrics, StoreLabels
from dash_state.metrics.audit import AuditLog

log = logging.getLogger("dash_state")
SEALED_BACKENDS = ("redis", "database", "local")  # backends that keep bytes, sealed with the app's keys

MISS_REASONS = REASONS  # kept under this name for the layers above

if TYPE_CHECKING:
    from dash_state.glue.layout import StoreIds
    from dash_state.glue.mirror import Mirrors


class NoStoreIds:
    """The store ids of a manager that serves no layout (built directly, as tests and benchmarks do):
    none declared, so every store has its config.toml settings and its own metrics label."""

    def declared(self, sid: str) -> None:
        return None

    def family(self, store_id: dict) -> None:
        return None

    def strings(self) -> list[str]:
        return []

    def __contains__(self, store_id: Any) -> bool:
        return False

    def __bool__(self) -> bool:
        return False


@dataclass
class Pending:
    """A value checked and copied, ready to be written: writing can no longer fail on the value."""

    store_id: str
    settings: StoreSettings
    snapshot: Snapshot


class StateManager(Monitoring):
    """One app's ServerStore state: values to references and back, for its users. The Python API of the
    original design (``get_store_data``, ``set_store_data``...) is added in :mod:`dash_state.glue.store_api`,
    whose :class:`~dash_state.glue.store_api.AppStateManager` is what ``get_state_manager()`` returns."""

    def __init__(self, config: Config, keys: Keys, identity_settings: identity.Settings | None = None,
                 store_ids: "StoreIds | None" = None, scan: Any = None, mirrors: "Mirrors | None" = None):
        self.config = config
        self.keys = keys
        self.identity_settings = identity_settings or identity.Settings(isolation=config["STATE_ENABLE_USER_ISOLATION"])
        self.store_ids = store_ids if store_ids is not None else NoStoreIds()  # the layouts' ids (glue/layout.py)
        self._scan = scan or (lambda: None)
        self.mirrors = mirrors  # stores clientside callbacks use: held in the browser too (glue/mirror.py)
        self.metrics = Metrics(config["STATE_METRICS"], StoreLabels(self.store_ids, self._scan))  # declared ids only
        self.audit = AuditLog(config["STATE_AUDIT_LOG"], self.metrics.label)
        if config["STATE_PROMETHEUS"]:
            from dash_state.metrics import prometheus

            prometheus.attach(self.metrics)
        self._ref_keys = keys.all("references v2")
        self._seal: Seal | None = None
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        cache_bytes = config["STATE_READ_CACHE_BYTES"]
        self._cache = ReadCache(cache_bytes) if cache_bytes else None
        self.throttle = Throttle()
        self._told_elsewhere = False
        self._live = None

    @property
    def live(self) -> Any:
        """This process's :class:`~dash_state.live.hub.Hub`: who watches which scoped store."""
        if self._live is None:
            from dash_state.live.hub import Hub

            with self._lock:
                if self._live is None:
                    self._live = Hub(self)
        return self._live

    # -- configuration -----------------------------------------------------------------------------
    def settings(self, store_id: str) -> StoreSettings:
        """The store's settings; a mirrored store (see :mod:`dash_state.glue.mirror`) is on the client backend."""
        own = self.config.store(store_id, self.store_ids.declared(store_id))
        if own.shared:
            # a user/app value lives on the server: rolled back to the browser it is one page's again
            return replace(own, scope="page", live=False) if own.backend == "client" else own
        if own.backend == "client" or not own.mirror or own.client_read or self.mirrors is None:
            return own
        callback = self.mirrors.user(store_id)
        if callback is None:
            return own
        self.mirrors.tell(store_id, callback)
        return replace(own, backend="client", mirrored=True)

    def keeps_on_server(self, store_id: str) -> bool:
        return self.settings(store_id).backend != "client"

    def backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            with self._lock:
                backend = self._backends.get(name)
                if backend is None:
                    if self._seal is None and name in SEALED_BACKENDS:
                        self._seal = Seal(self.keys, self.config["STATE_ENCRYPTION"], self.config["STATE_COMPRESSION"],
                                          self.config["STATE_COMPRESSION_MIN_BYTES"])
                    created = create_backend(name, self.config, self._seal)
                    backend = self._backends[name] = near.attach(created, self.config, self._seal)
        return backend

    # -- identity ----------------------------------------------------------------------------------
    def identity(self, create: bool = True) -> Identity | None:
        return identity.resolve(self.identity_settings, self.keys, create, self._transition)

    def user(self, create: bool = True) -> str | None:
        """The current namespace (a string), or None."""
        who = self.identity(create)
        return None if who is None else who.namespace

    def login(self, user_id: str | None = None) -> Identity | None:
        return identity.login(self.identity_settings, self.keys, user_id, self._transition)

    def logout(self, delete: bool | None = None) -> None:
        identity.logout(self.identity_settings, self.keys, delete, self._transition)

    def _transition(self, transition: Transition) -> None:
        """The storage side of a login or logout, on every server-side backend in use."""
        self.audit.record(transition.kind, user=transition.target or transition.source, carry_over=transition.carry_over,
                          delete=transition.delete)
        for name in sorted(self.config.backends_in_use() - {"client"}):
            backend = self.backend(name)
            if transition.kind == "login" and transition.carry_over:
                moved = backend.move_user(transition.source, transition.target)
                log.info("dash-state: login carried %d anonymous value(s) over to the user (%s backend)", moved, name)
            elif transition.delete and transition.source:
                backend.delete_user(transition.source)
            if self._cache is not None and transition.source:
                self._cache.drop_user(transition.source)

    def _who(self, who: Identity | str | None, create: bool = False) -> Identity | None:
        if isinstance(who, Identity):
            return who
        if isinstance(who, str):
            return Identity(who, kind="context")
        return self.identity(create)

    # -- writing -----------------------------------------------------------------------------------
    def prepare(self, store_id: str, value: Any) -> Pending:
        """Copy and check a value; raises StoreValueError naming the store, storing nothing."""
        settings = self.settings(store_id)
        snapshot = freeze(value, store_id)
        limit = self.config["STATE_MAX_VALUE_BYTES"]
        if snapshot.nbytes > limit:
            raise QuotaExceeded(f"ServerStore {store_id!r}: a value of {snapshot.nbytes:,} bytes is larger than "
                                f"STATE_MAX_VALUE_BYTES = {limit:,}; nothing was stored")
        if not self.backend(settings.backend).keeps_objects:
            check_encodable(snapshot, store_id)
        return Pending(store_id, settings, snapshot)

    def commit(self, pending: list[Pending], who: Identity | str | None = None, scope: str = SERVER,
               stable: bool = False, keys: list[str] | None = None) -> list[str]:
        """Write every pending value or none of them; returns one reference each.

        Each backend gets one ``set_many`` call with the values and this user's "latest" pointers
        (one MULTI/EXEC on Redis, one transaction in SQL). ``scope`` APP stores initial layout data
        once for every visitor; ``stable`` derives keys from the values, so serving the same layout
        again reuses one entry; ``keys`` names the keys instead.
        """
        if scope != APP and any(item.settings.shared for item in pending):
            return shared.commit_each(self, pending, who, scope, stable, keys)
        writer = None if scope == APP else self._writer(who)
        owner = APP_OWNER if writer is None else writer.namespace
        quota = None if owner == APP_OWNER else self.config["STATE_MAX_USER_BYTES"]
        batches: dict[str, tuple[list[Item], list[Pointer]]] = {}
        tokens, written = [], []
        for index, item in enumerate(pending):
            backend = self.backend(item.settings.backend)
            key = keys[index] if keys else self._key(item, owner, stable)
            items, pointers = batches.setdefault(backend.name, ([], []))
            items.append(Item(key, item.snapshot, item.settings.ttl))
            if scope != APP:
                pointers.append(Pointer(pointer_name(item.store_id), key, item.settings.ttl))
            tokens.append(references.make(self._ref_keys[0], owner, item.store_id, backend.name, key, scope))
        try:
            for name, (items, pointers) in batches.items():
                started = time.perf_counter()
                if writer is not None:
                    self.backend(name).mark_new(owner, writer.new)
                self.backend(name).set_many(owner, items, pointers, quota)
                written.append((name, items, time.perf_counter() - started))
        except Exception as exc:
            for name, items, _ in written:  # undo, so no callback leaves half of its outputs stored
                for item in items:
                    try:
                        self.backend(name).delete(owner, item.key)
                    except Exception:  # the original error is the one to report
                        log.debug("dash-state: could not undo a partial write", exc_info=True)
            if isinstance(exc, QuotaExceeded):
                self._counts["refused_writes"] += 1
                self.audit.record("refused", user=owner, stores=[p.store_id for p in pending], reason=str(exc))
            raise
        for (name, items, seconds), item_pending in zip(written, _by_backend(pending, batches)):
            for item, source in zip(items, item_pending):
                if self._cache is not None and self.backend(name).remote:
                    self._cache.put(name, owner, item.key, item.value.for_cache())
                self._counts["writes"] += 1
                self._counts["bytes_written"] += item.value.nbytes
                self._wrote(source.store_id, name, item, seconds, owner, scope)
        return tokens

    def wrote_shared(self, store_id: str, at: "shared.Current", key: str, pending: Pending, seconds: float) -> None:
        """A user/app value was written (see :func:`shared.write`): count it, cache it, tell live pages."""
        item = Item(key, pending.snapshot, pending.settings.ttl)
        if self._cache is not None and at.backend.remote:
            self._cache.put(at.backend.name, at.owner, key, item.value.for_cache())
        self._counts["writes"] += 1
        self._counts["bytes_written"] += item.value.nbytes
        self._wrote(store_id, at.backend.name, item, seconds, at.owner, shared.letter(pending.settings))
        if self._live is not None or at.backend.shared:
            self.live.changed(at.backend, at.owner, at.name, key)

    def _wrote(self, store_id: str, backend: str, item: Item, seconds: float, owner: str, scope: str) -> None:
        metrics = self.metrics
        if metrics.enabled:
            metrics.count(store_id, backend, "writes")
            metrics.count(store_id, backend, "bytes_stored", item.value.nbytes)
            metrics.count(store_id, backend, "bytes_kept_from_browser", json_size_estimate(item.value))
            metrics.observe(store_id, backend, "write", seconds)
        if self.audit.enabled:
            self.audit.record("write", user=owner, store=store_id, bytes=item.value.nbytes, backend=backend,
                              scope=scope, key=item.key[:6])

    def commit_at(self, pending: Pending, who: Identity | str | None, key: str, scope: str = SERVER) -> str:
        """Write one value under a key the caller derived (a clientside Patch's result)."""
        return self.commit([pending], who, scope, keys=[key])[0]

    def save(self, store_id: str, value: Any, who: Identity | str | None = None, scope: str = SERVER) -> str:
        return self.commit([self.prepare(store_id, value)], who, scope)[0]

    def _writer(self, who: Identity | str | None) -> Identity:
        ident = self._who(who, create=True)
        if ident is None:
            raise StoreValueError("dash-state: no user to store this value for: outside a request, call "
                                  "set_user_context(user_id) or use `with user_context(user_id):` first")
        return ident

    def _key(self, item: Pending, owner: str, stable: bool) -> str:
        if stable and item.snapshot.kind == JSON:
            return references.digest_key(owner.encode(), item.store_id.encode("utf-8", "surrogatepass"),
                                         item.snapshot.to_bytes())
        return self.backend(item.settings.backend).new_key()

    # -- reading -----------------------------------------------------------------------------------
    def load(self, store_id: str, token: Any, who: Identity | str | None = None, missing: Any = None,
             misses: MissLog | None = None) -> Any:
        """The value a reference stands for, or ``missing`` (counted, and logged through ``misses`` or
        at once) when it cannot be served."""
        self._counts["reads"] += 1
        started = time.perf_counter()
        found = self.locate(store_id, token, who)
        if not found:
            self.miss(store_id, found.reason, misses, who)
            return missing
        try:
            value = found.snapshot.thaw()
        except Exception:  # a corrupt entry is missing data, never a crash
            self.miss(store_id, "tampered", misses, who)
            return missing
        self._counts["hits"] += 1
        if self.metrics.enabled:
            backend = found.ref.backend
            self.metrics.count(store_id, backend, "reads")
            self.metrics.count(store_id, backend, "hits")
            self.metrics.observe(store_id, backend, "read", time.perf_counter() - started)
        return value

    def locate(self, store_id: str, token: Any, who: Identity | str | None = None) -> Found | Missing:
        """What ``token`` stands for, or why it cannot be served."""
        settings = self.settings(store_id)
        if settings.shared:
            return shared.locate(self, store_id, settings, token, who)
        owned = self.owned(store_id, token, who)
        if not owned:
            return owned
        ref, owner = owned
        if ref.scope == CLIENT and not settings.client_write:
            return Missing("refused")
        backend = self.backend(ref.backend)
        if settings.latest_only and ref.scope != APP and backend.pointer(owner, pointer_name(store_id)) != ref.key:
            return Missing("superseded")
        snapshot = self._read(backend, owner, ref.key)
        return snapshot if isinstance(snapshot, Missing) else Found(snapshot, ref, owner)

    def owned(self, store_id: str, token: Any, who: Identity | str | None = None) -> Owned | Missing:
        """The parsed reference and the namespace it lives in, if ``token`` was signed for this user (or
        for everyone, scope APP) and this store; else why not. No backend call."""
        ref = references.parse(token)
        if ref is None:
            return Missing("malformed")
        if ref.backend not in BACKEND_NAMES or ref.backend == "client":
            return Missing("unknown")
        if ref.scope in (APP, APP_SCOPED):
            ok = references.verify(self._ref_keys, APP_OWNER, store_id, ref)
            return Owned(ref, APP_OWNER) if ok else Missing("foreign")
        ident = self._who(who)
        if ident is None:
            return Missing("foreign")
        if any(references.verify(self._ref_keys, owner, store_id, ref) for owner in ident.owners):
            return Owned(ref, ident.namespace)  # carried-over values were moved into the user's namespace
        return Missing("foreign")

    def _read(self, backend: Backend, owner: str, key: str) -> Snapshot | Missing:
        cache = self._cache if backend.remote else None
        if cache is not None:
            cached = cache.get(backend.name, owner, key)
            if cached is not None:
                if backend.alive(owner, key):  # keys are never rewritten: alive means current
                    return cached
                cache.drop(backend.name, owner, key)
                return Missing("expired")
        try:
            snapshot = backend.get(owner, key)
        except CorruptValue as exc:
            self.throttle(logging.ERROR, "corrupt", "dash-state: a stored value failed its check (%s); treated as missing",
                          exc)
            return Missing("tampered")
        if snapshot is None:
            return Missing("elsewhere" if backend.minted_elsewhere(key) else "expired")
        if cache is not None:
            snapshot = snapshot.for_cache()
            cache.put(backend.name, owner, key, snapshot)
        return snapshot

    def latest(self, store_id: str, who: Identity | str | None = None, missing: Any = None) -> Any:
        """The value this user last wrote to ``store_id``, from any tab, worker or script."""
        ident = self._who(who)
        settings = self.settings(store_id)
        if settings.shared:
            found = shared.locate(self, store_id, settings, None, who)
            return found.snapshot.thaw() if found else missing
        if ident is None or settings.backend == "client":
            return missing
        backend = self.backend(settings.backend)
        key = backend.pointer(ident.namespace, pointer_name(store_id))
        found = self._read(backend, ident.namespace, key) if key is not None else Missing("expired")
        return missing if isinstance(found, Missing) else found.thaw()

    # -- references the browser lets go of ---------------------------------------------------------
    def release(self, store_id: str, token: Any, who: Identity | str | None = None) -> bool:
        """The browser let go of this reference (replaced it, or the page went away): delete its value
        now instead of at its TTL. Initial layout data is kept; so is the store's latest value, until
        the next write to the store evicts it (``Backend.release``, one atomic step)."""
        owned = self.owned(store_id, token, who)
        if not owned or owned.ref.scope == APP or owned.ref.scope in SHARED_SCOPES:  # shared by other pages
            return False
        ref, owner = owned
        backend = self.backend(ref.backend)
        try:
            return self._drop(store_id, backend, owner, ref.key, "released",
                              lambda: backend.release(owner, pointer_name(store_id), ref.key))
        except QuotaExceeded:  # a full Redis refuses even the small mark: the value expires with its TTL
            return False

    def delete(self, store_id: str, token: Any, who: Identity | str | None = None) -> bool:
        """``clear_data``: delete the value behind the reference (never shared initial data)."""
        settings = self.settings(store_id)
        if settings.shared:  # a new version holding None: every page sees the store emptied
            return shared.empty(self, store_id, who)
        owned = self.owned(store_id, token, who)
        if not owned or owned.ref.scope == APP:
            return False
        ref, owner = owned
        return self._drop(store_id, self.backend(ref.backend), owner, ref.key, "deleted")

    def _drop(self, store_id: str, backend: Backend, owner: str, key: str, counter: str,
              remove: Callable[[], bool] | None = None) -> bool:
        done = backend.delete(owner, key) if remove is None else remove()
        if self._cache is not None:
            self._cache.drop(backend.name, owner, key)
        self._counts[counter] += int(done)
        if done:
            self.metrics.count(store_id, backend.name, "deletes")
            self.audit.record("delete", user=owner, store=store_id, backend=backend.name, reason=counter, key=key[:6])
        return done

    def touch(self, store_id: str, token: Any, who: Identity | str | None = None) -> bool:
        """Restart the TTL of a live value without reading it; the TTL is the store the reference is
        bound to, so a reference cannot borrow a longer-lived store's TTL."""
        owned = self.owned(store_id, token, who)
        if not owned:
            return False
        ref, owner = owned
        settings = self.settings(store_id)
        if settings.shared:  # keep the current value and its pointer alive, whichever version the page holds
            at = shared.current(self, store_id, settings, who)
            return at is not None and at.key is not None and at.backend.touch(at.owner, at.name, settings.ttl) \
                and at.backend.touch(at.owner, at.key, settings.ttl)
        backend = self.backend(ref.backend)
        ident = self._who(who)
        if ident is not None and owner == ident.namespace:  # a browser that came back
            backend.mark_new(owner, ident.new)
        return backend.touch(owner, ref.key, self.settings(store_id).ttl)

    def close(self) -> None:
        if self._live is not None:
            self._live.close()
        for backend in self._backends.values():
            backend.close()


def _by_backend(pending: list[Pending], batches: dict) -> list[list[Pending]]:
    """The pending values grouped in the order ``commit`` grouped them into backend batches."""
    groups: dict[str, list[Pending]] = {name: [] for name in batches}
    for item in pending:
        groups[item.settings.backend].append(item)
    return [groups[name] for name in batches]
