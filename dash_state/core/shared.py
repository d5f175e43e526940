"""User- and app-scoped stores: one value per user, or one for everyone, with a version number.

A ``scope="page"`` store (the default) keeps what each page wrote, as ``dcc.Store`` does. A
``scope="user"`` store has one value per resolved user (the logged-in id, else the browser's
anonymous id), and a ``scope="app"`` store one value for everyone, in the ``@app`` namespace. Either
is held as its store's *pointer* (``latest.<digest>``) naming the current value's key; the key
carries the version (:mod:`dash_state.core.versions`). So:

* reading resolves the pointer, whatever reference the page holds (it only has to be this user's, or
  the app's): every tab, browser and device reads the current value;
* writing is a compare-and-set on the pointer (:meth:`Backend.set_many` with ``expect``): the new
  value goes under a key of version + 1 only if the pointer still names the version read; otherwise
  the write is tried again on the new version. Concurrent writers: the last one wins, and a
  ``Patch()`` is applied to the current value inside the loop, so no update is lost;
* ``set_store(..., if_version=v)`` writes only if ``v`` is still current (:class:`VersionConflict`);
* after each write, :mod:`dash_state.live` tells the open pages that watch the store.

Until a user store is first written, it reads as its layout's initial data (the app-wide copy
``initial.py`` keeps). Deleting a scoped value writes a new version holding None, so versions only
grow and open pages see the change.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from dash_state.backends import Backend, Item, Pointer, pointer_name
from dash_state.core import references
from dash_state.core.missing import Found, Missing
from dash_state.core.references import (
    APP,
    APP_OWNER,
    APP_SCOPED,
    USER_SCOPED,
    Reference,
)
from dash_state.core.versions import version_of, versioned_key
from dash_state.errors import (
    BackendUnavailable,
    PointerConflict,
    StoreValueError,
    VersionConflict,
)

if TYPE_CHECKING:
    from dash_state.config import StoreSettings
    from dash_state.core.manager import Pending, StateManager
    from dash_state.identity import Identity

MAX_ATTEMPTS = 500  # compare-and-set rounds before a write gives up (each lost round means another writer won)


class Current(NamedTuple):
    """Where a scoped store's value is, and which key (version) the pointer names now."""

    backend: Backend
    owner: str
    name: str
    key: str | None

    @property
    def version(self) -> int:
        return version_of(self.key)


def letter(settings: "StoreSettings") -> str:
    return APP_SCOPED if settings.scope == "app" else USER_SCOPED


def current(manager: "StateManager", sid: str, settings: "StoreSettings", who: "Identity | str | None" = None,
            create: bool = False) -> Current | None:
    """The store's pointer for this user (or for the app); None when there is no user to ask for."""
    if settings.scope == "app":
        owner = APP_OWNER
    else:
        ident = manager._who(who, create)
        if ident is None:
            return None
        owner = ident.namespace
    backend = manager.backend(settings.backend)
    name = pointer_name(sid)
    return Current(backend, owner, name, backend.pointer(owner, name))


def token(manager: "StateManager", sid: str, settings: "StoreSettings", at: Current) -> str | None:
    """The reference a page holds for the current value (None when there is none)."""
    if at.key is None:
        return None
    scope = letter(settings)
    if version_of(at.key) == 0:  # written while the store was page-scoped: no version the browser could read
        scope = APP if settings.scope == "app" else references.SERVER
    return references.make(manager._ref_keys[0], at.owner, sid, at.backend.name, at.key, scope)


def locate(manager: "StateManager", sid: str, settings: "StoreSettings", raw: Any,
           who: "Identity | str | None" = None) -> Found | Missing:
    """The current value, if ``raw`` (the page's reference, or None) may read it."""
    ref = None
    if raw is not None:
        owned = manager.owned(sid, raw, who)
        if not owned:
            return owned
        ref = owned.ref
    for _ in range(3):  # the value a pointer named can be replaced and evicted between the two reads
        at = current(manager, sid, settings, who)
        if at is None:
            return Missing("foreign")
        if at.key is None:
            if ref is not None and ref.scope == APP:  # never written: the layout's initial data
                snapshot = manager._read(manager.backend(ref.backend), APP_OWNER, ref.key)
                return snapshot if isinstance(snapshot, Missing) else Found(snapshot, ref, APP_OWNER)
            return Missing("expired")
        snapshot = manager._read(at.backend, at.owner, at.key)
        if not isinstance(snapshot, Missing):
            shown = Reference(at.backend.name, at.key, letter(settings), references.store_tag(sid), b"")
            return Found(snapshot, shown, at.owner)
    return snapshot


def write(manager: "StateManager", sid: str, make: Callable[[Current], "Pending"],
          who: "Identity | str | None" = None, if_version: int | None = None) -> tuple[str, int]:
    """Write the value ``make(current)`` returns as the next version; returns (reference, version).

    ``make`` is called again on each round that lost to another writer (a Patch applies to the
    value that is current then). With ``if_version``, a version other than that raises
    :class:`VersionConflict` instead of writing.
    """
    settings = manager.settings(sid)
    writer = None
    if settings.scope != "app":
        writer = manager._writer(who)
    quota = None if writer is None else manager.config["STATE_MAX_USER_BYTES"]
    for attempt in range(MAX_ATTEMPTS):
        at = current(manager, sid, settings, writer)
        if if_version is not None and at.version != if_version:
            raise VersionConflict(sid, if_version, at.version)
        try:
            pending = make(at)
            key = versioned_key(at.version + 1)
            ttl = pending.settings.ttl
            if writer is not None:
                at.backend.mark_new(at.owner, writer.new)
            started = time.perf_counter()
            at.backend.set_many(at.owner, [Item(key, pending.snapshot, ttl)], [Pointer(at.name, key, ttl)], quota,
                                expect={at.name: at.key})
        except PointerConflict:
            time.sleep(random.random() * min(0.002 * (attempt + 1), 0.05))  # let the winner finish
            continue
        manager.wrote_shared(sid, at, key, pending, time.perf_counter() - started)
        return token(manager, sid, settings, at._replace(key=key)), version_of(key)
    raise BackendUnavailable(f"ServerStore {sid!r}: {MAX_ATTEMPTS} writers in a row changed the value first; "
                             "nothing was stored (too much contention on one value)")


def value_at(manager: "StateManager", sid: str, at: Current, initial: str | None = None) -> Any:
    """The value ``at`` names (a copy), else the layout's initial data (``initial``: its reference), else
    None. Raises PointerConflict when the value went away meanwhile: ``write`` then tries again."""
    if at.key is None:
        owned = manager.owned(sid, initial) if initial is not None else None
        if not owned or owned.ref.scope != APP:  # only the layout's initial data of this very store
            return None
        snapshot = manager._read(manager.backend(owned.ref.backend), APP_OWNER, owned.ref.key)
        return None if isinstance(snapshot, Missing) else snapshot.thaw()
    snapshot = manager._read(at.backend, at.owner, at.key)
    if isinstance(snapshot, Missing):
        raise PointerConflict(at.name, at.key)
    return snapshot.thaw()


def patch(manager: "StateManager", sid: str, operations: list, who: Any = None, initial: str | None = None) -> str:
    """Apply a ``Patch()``'s operations to the current value, atomically (tried again on the new value
    when another writer wins); returns the new reference. Raises StoreValueError when they do not apply."""
    from dash_state.core import patches

    limit = manager.config["STATE_MAX_VALUE_BYTES"]

    def apply(at: Current) -> "Pending":
        base = value_at(manager, sid, at, initial)
        if hasattr(base, "iloc") or (hasattr(base, "dtype") and hasattr(base, "shape")):
            raise StoreValueError(f"ServerStore {sid!r}: Patch() cannot update a {type(base).__name__}; "
                                  "return the new value instead")
        try:
            return manager.prepare(sid, patches.apply(base, operations, limit))
        except patches.PatchError as exc:
            raise StoreValueError(f"ServerStore {sid!r}: Patch() does not apply to the stored value ({exc}); "
                                  "the store keeps its value") from None

    return write(manager, sid, apply, who)[0]


def commit_each(manager: "StateManager", pending: list["Pending"], who: Any, scope: str, stable: bool,
                keys: list[str] | None) -> list[str]:
    """A callback's outputs when some are user/app stores: each of those is its own compare-and-set
    (:func:`write`), then the page stores go in one ``commit`` as before. References in order."""
    tokens: dict[int, str] = {}
    for index, item in enumerate(pending):
        if item.settings.shared:
            tokens[index] = write(manager, item.store_id, lambda _, item=item: item, who)[0]
    rest = [index for index in range(len(pending)) if index not in tokens]
    if rest:
        made = manager.commit([pending[i] for i in rest], who, scope, stable, [keys[i] for i in rest] if keys else None)
        tokens.update(zip(rest, made))
    return [tokens[index] for index in range(len(pending))]


def empty(manager: "StateManager", sid: str, who: Any = None) -> bool:
    """Empty a user/app store for every page: a new version holding None. True if it held a value."""
    pending = manager.prepare(sid, None)
    held = []

    def nothing(at: Current) -> "Pending":
        held[:] = [at.key is not None]
        return pending

    write(manager, sid, nothing, who)
    return bool(held and held[0])


def check_writable(settings: "StoreSettings", sid: str, where: str) -> None:
    """An app store takes writes from callbacks and browsers only when it says ``writable=True``."""
    if settings.scope == "app" and not settings.writable:
        raise StoreValueError(f"ServerStore {sid!r} is app-wide (scope='app'): {where} cannot write it unless the "
                              "store is writable (writable=True, or writable = true in its [STATE_STORES] table); "
                              "the server writes it with set_store() or its layout's data")


def initial_reference(manager: "StateManager", sid: str, settings: "StoreSettings", who: Any) -> str | None:
    """What a page that is being served gets for a scoped store: its current value's reference."""
    at = current(manager, sid, settings, who)
    return None if at is None else token(manager, sid, settings, at)
