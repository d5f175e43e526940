"""The original design's Python API on ServerStore's namespace: one store id means one store.

The rule (the README says it too, and ``tests/test_store_api.py`` checks each sentence):

* Inside a callback, ``set_store(id, value)`` changes what the calling page's ``ServerStore(id=id)``
  holds: the value is stored and the page gets its new reference in the same response (as
  ``set_props`` would send it), so the next callback that takes the store as Input or State gets the
  value. ``get_store(id)`` returns what that page's store holds if the callback has it as Input or
  State (after a ``set_store`` in the same call: that value), else this user's latest value.
* Outside a request (scripts, jobs, tests), the calls act for the user set with ``set_user_context``
  (or ``with user_context(...)``) and address that user's latest value of the store.
* An id that is not a ServerStore of the app, a value the store cannot hold, or a call outside a
  request without a user context (with user isolation on) raises an exception that says which and
  what is wrong; nothing is stored partially.

A user- or app-scoped store (``scope="user"`` / ``"app"``, see :mod:`dash_state.core.shared`) has one value
for the user, or for everyone, in every tab: ``set_store`` writes the next version at once (in a
callback too; the page gets the new reference in the same response, live pages theirs) and returns
the version; ``set_store(..., if_version=v)`` writes only if ``v`` is still current, else raises
VersionConflict; ``get_store_version(id)`` is the current version (0: never written). An app store
needs no user: the calls work outside a request without a user context. ``delete_store`` writes a
new version holding None.

A store on the ``client`` backend (rolled back, or held in the browser for clientside callbacks) keeps
its data in the browser, as a ``dcc.Store`` does, so the server has no copy to read or write:

* Inside a callback, ``set_store(id, value)`` checks the value as the server backends do (storable
  types, ``STATE_MAX_VALUE_BYTES``) and sends it to the calling page with ``dash.set_props`` in the same
  response (a DataFrame, Series or array in the typed JSON form); ``ttl`` is ignored (browser data does
  not expire). ``get_store(id)`` returns the value this request carries for the store: when the
  callback takes the store as Input or State (``default`` if that is empty), or what ``set_store`` wrote
  earlier in the same call; otherwise it raises StoreValueError. ``delete_store(id)`` empties the
  page's store (``data=None`` via ``set_props``) and returns True if the request carried a value.
* Outside a request (scripts, background jobs, tests) the three raise StoreValueError: the data is in
  a browser. ``list_stores`` and ``clear_user`` skip client stores.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from dash_state import identity
from dash_state.backends import pointer_name
from dash_state.core import browser_form, shared
from dash_state.core.ids import store_key
from dash_state.core.manager import StateManager
from dash_state.core.values import freeze
from dash_state.errors import QuotaExceeded, StoreValueError
from dash_state.glue import web
from dash_state.glue.calls import carried, current_call

_MISSING = object()


class StoreAPI:
    """Mixed into :class:`~dash_state.core.manager.StateManager` (:class:`AppStateManager`)."""

    # -- who -------------------------------------------------------------------------------------------
    def set_user_context(self: "StateManager", user_id: str | None) -> None:
        """Act as ``user_id`` (the id your login system uses; None: back to the request's own user).
        Inside a request it lasts for that request, outside for the current thread or task."""
        identity.set_user_context(user_id)

    def user_context(self: "StateManager", user_id: str) -> AbstractContextManager[None]:
        """``with sm.user_context("user-123"): ...``: the calls inside act for that user."""
        return identity.user_context(user_id)

    # -- stores ----------------------------------------------------------------------------------------
    def set_store_data(self: "StateManager", store_id: Any, value: Any, ttl: float | None = None,
                       scope: str | None = None, if_version: int | None = None) -> int | None:
        """Store ``value`` as ``store_id``'s data (see the module docstring for which user and page).
        Returns the new version of a user or app store (None for a page store)."""
        sid = self._known_store(store_id)
        if ttl is not None and not (isinstance(ttl, (int, float)) and ttl > 0):
            raise StoreValueError(f"ServerStore {sid!r}: ttl must be a positive number of seconds, got {ttl!r}")
        settings = self._scoped(sid, scope, if_version)
        if settings.shared:
            return self._set_shared(store_id, sid, value, ttl, if_version)
        if not self.keeps_on_server(sid):
            return self._set_in_browser(store_id, sid, value)
        pending = self.prepare(sid, value)  # checks the value (and its size) before anything happens
        if ttl is not None:
            pending.settings = replace(pending.settings, ttl=float(ttl))
        call = current_call()
        if call is not None:  # in a callback: the page's store gets the new reference in this response
            import dash

            call.values[sid] = pending.snapshot.thaw()
            if ttl is not None:
                call.ttl[sid] = float(ttl)
            dash.set_props(store_id, {"data": value})
            return
        self.commit([pending], self._acting_user(sid))

    def get_store_version(self: "StateManager", store_id: Any) -> int:
        """The current version of a user or app store's value (0 if it was never written)."""
        sid = self._known_store(store_id)
        settings = self._scoped(sid, None, 0)
        who = None if settings.scope == "app" or current_call() is not None else self._acting_user(sid)
        at = shared.current(self, sid, settings, who)
        return 0 if at is None else at.version

    def get_store_data(self: "StateManager", store_id: Any, default: Any = None) -> Any:
        """``store_id``'s data: the calling page's value in a callback that has it as Input or State,
        else this user's latest value; ``default`` when there is none."""
        sid = self._known_store(store_id)
        call = current_call()
        if call is not None and sid in call.values:
            value = call.values[sid]
            return default if value is None else value
        if not self.keeps_on_server(sid):
            value = self._carried(store_id, sid, "get_store")
            return default if value is None else value
        if self.settings(sid).scope == "app":
            return self.latest(sid, missing=default)
        who = self._acting_user(sid) if call is None else None
        return self.latest(sid, who, missing=default)

    def delete_store_data(self: "StateManager", store_id: Any) -> bool:
        """Delete this user's latest value of ``store_id`` (in a callback, the page's store is emptied in
        the same response). True if there was a value."""
        sid = self._known_store(store_id)
        call = current_call()
        if self.settings(sid).shared:
            had = shared.empty(self, sid, None if call is not None or self.settings(sid).scope == "app"
                               else self._acting_user(sid))
            if call is not None:
                import dash

                call.values[sid] = None
                dash.set_props(store_id, {"data": None})
            return had
        if not self.keeps_on_server(sid):
            had = call.values[sid] if call is not None and sid in call.values else \
                self._carried(store_id, sid, "delete_store", required=False)
            import dash

            call.values[sid] = None
            dash.set_props(store_id, {"data": None})
            return had is not None
        who = self.identity(create=False) if call is not None else self._acting_user(sid)
        if who is None:
            return False
        backend = self.backend(self.settings(sid).backend)
        name = pointer_name(sid)
        key = backend.pointer(who.namespace, name)
        if call is not None:
            import dash

            call.values[sid] = None
            dash.set_props(store_id, {"data": None})
        if key is None:
            return False
        backend.delete(who.namespace, name)
        return self._drop(sid, backend, who.namespace, key, "deleted")

    def list_stores(self: "StateManager") -> list[dict]:
        """This user's stores that hold a value: ``{"id", "backend", "bytes", "expires_at"}`` each
        (``expires_at`` in epoch seconds)."""
        who = self._acting_user(None) if current_call() is None else self.identity(create=False)
        if who is None:
            return []
        self._scan()
        found, usage = [], {}
        for sid in sorted(self.store_ids.strings()):
            settings = self.settings(sid)
            if settings.backend == "client":
                continue
            backend = self.backend(settings.backend)
            key = backend.pointer(who.namespace, pointer_name(sid))
            if key is None:
                continue
            if backend.name not in usage:
                usage[backend.name] = {k: (size, expires) for k, size, expires in backend.usage(who.namespace)}
            if key in usage[backend.name]:
                size, expires = usage[backend.name][key]
                found.append({"id": sid, "backend": backend.name, "bytes": size, "expires_at": expires})
        return found

    def clear_user(self: "StateManager", user_id: str) -> int:
        """Delete everything of one user (``user_id`` as your login system knows it) on every backend in
        use, in one call per backend (no KEYS or SCAN on Redis). Returns how many entries went."""
        namespace = identity.user_namespace(user_id)
        removed = 0
        for name in sorted(self.config.backends_in_use() - {"client"}):
            removed += self.backend(name).delete_user(namespace)
        if self._cache is not None:
            self._cache.drop_user(namespace)
        self.audit.record("clear_user", user=namespace, removed=removed)
        return removed

    # -- helpers ---------------------------------------------------------------------------------------
    def _known_store(self: "StateManager", store_id: Any) -> str:

        if not isinstance(store_id, (str, dict)):
            raise StoreValueError(f"a store id is a string or a dict, got {type(store_id).__name__}")
        sid = store_key(store_id)
        self._scan()
        if store_id not in self.store_ids:
            raise StoreValueError(f"ServerStore {sid!r}: there is no ServerStore with this id in the app's layouts "
                                  "(dcc.Store ids and other components do not count)")
        return sid

    # -- user and app stores: one value, versions ----------------------------------------------------
    def _scoped(self: "StateManager", sid: str, scope: str | None, if_version: int | None) -> Any:
        settings = self.settings(sid)
        if scope is not None and scope != settings.scope:
            raise StoreValueError(f"ServerStore {sid!r} is scope={settings.scope!r}, not {scope!r} (set its scope on the "
                                  "component or in [STATE_STORES])")
        if if_version is not None and not settings.shared:
            raise StoreValueError(f"ServerStore {sid!r}: versions are kept for scope='user' and scope='app' stores; "
                                  f"this one is scope={settings.scope!r}")
        if if_version is not None and (isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 0):
            raise StoreValueError(f"ServerStore {sid!r}: if_version must be a version number (an int >= 0), "
                                  f"got {if_version!r}")
        return settings

    def _set_shared(self: "StateManager", store_id: Any, sid: str, value: Any, ttl: float | None,
                    if_version: int | None) -> int:
        pending = self.prepare(sid, value)
        if ttl is not None:
            pending.settings = replace(pending.settings, ttl=float(ttl))
        call = current_call()
        who = None if call is not None or pending.settings.scope == "app" else self._acting_user(sid)
        token, version = shared.write(self, sid, lambda _: pending, who, if_version)
        if call is not None:  # the calling page gets the new reference in this response
            import dash

            call.values[sid] = pending.snapshot.thaw()
            dash.set_props(store_id, {"data": token})
        return version

    # -- client-backend stores: the data is in the browser ----------------------------------------------
    def _set_in_browser(self: "StateManager", store_id: Any, sid: str, value: Any) -> None:
        call = self._client_call(sid, "set_store")
        snapshot = freeze(value, sid)  # the server backends' rules: storable types, and the size limit
        limit = self.config["STATE_MAX_VALUE_BYTES"]
        if snapshot.nbytes > limit:
            raise QuotaExceeded(f"ServerStore {sid!r}: a value of {snapshot.nbytes:,} bytes is larger than "
                                f"STATE_MAX_VALUE_BYTES = {limit:,}; nothing was sent")
        if browser_form.is_typeable(value) and not call.mcp:  # raises now, naming the column, if it cannot
            value = browser_form.to_browser(value, sid)  # travel exactly; the hook passes the typed form on
        import dash

        call.values[sid] = snapshot.thaw()  # what get_store returns later in this call
        dash.set_props(store_id, {"data": value})

    def _client_call(self: "StateManager", sid: str, what: str) -> Any:
        call = current_call()
        if call is None:
            raise StoreValueError(f"ServerStore {sid!r} is on the client backend: its data lives in the browser, so "
                                  f"{what}() works only inside a callback of the page that holds it, not in a script "
                                  "or background job")
        return call

    def _carried(self: "StateManager", store_id: Any, sid: str, what: str, required: bool = True) -> Any:
        """The value the current request carries for a client store (Input or State), decoded."""
        self._client_call(sid, what)
        import dash

        found, value = carried(dash.callback_context, store_id)
        if found:
            return browser_form.from_browser(value, sid, self.config["STATE_MAX_VALUE_BYTES"])
        if not required:
            return None
        raise StoreValueError(f"ServerStore {sid!r} is on the client backend: its data lives in the browser; in a "
                              "callback, get_store returns it only when the callback takes it as Input or State")

    def _acting_user(self: "StateManager", sid: str | None) -> "identity.Identity":
        who = self.identity(create=web.has_request())
        if who is None:
            what = f"ServerStore {sid!r}: " if sid else ""
            raise StoreValueError(f"{what}no user to act for: outside a request, call set_user_context(user_id) "
                                  "or use `with user_context(user_id):` first (or turn STATE_ENABLE_USER_ISOLATION off)")
        return who


class AppStateManager(StoreAPI, StateManager):
    """What ``get_state_manager()`` returns: the app's :class:`~dash_state.core.manager.StateManager` with the
    Python API above."""
