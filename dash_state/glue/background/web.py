"""The web process's side of background callbacks.

:func:`install` wraps the app's ``_prepare_callback``. For a background callback that involves
ServerStores it puts a small JSON-able ``dash_state`` entry into the callback context (the user, and
what the worker must agree on); Dash copies that context into the job. It also tells the
``_inputs_to_vals`` wrapper (through :func:`take_deferred`) to call :func:`keep_references` instead of
resolving everything: references of shared-backend stores stay references for the worker, those of
memory-backend stores are resolved here. What jobs leave for the polls (``set_props`` updates,
progress) is stored here before it is sent, whichever process produced it.
"""
from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable

from dash_state.core import references
from dash_state.core.ids import store_key
from dash_state.glue import compat, hook
from dash_state.glue.background.polling import make_polls_consistent
from dash_state.glue.background.worker import (
    CONTEXT_KEY,
    JOB_MARK,
    PROBE_KEY,
    PROBE_STORE,
    JobCtx,
    flat,
    get,
    patched,
)
from dash_state.glue.layout import in_use

if TYPE_CHECKING:
    from dash_state.glue.runtime import AppState

# Set by the _prepare_callback wrapper, consumed by the _inputs_to_vals wrapper of the same request.
_deferred: ContextVar[bool] = ContextVar("dash_state_background_deferred", default=False)


def install(app: Any, state: "AppState") -> None:
    """Wrap ``app._prepare_callback``, and rebuild job functions registered before the patch."""
    from dash_state.glue.background.worker import reregister

    if not compat.available("background callbacks"):
        return

    def make(original: Callable) -> Callable:
        return functools.partial(_prepare_callback, app, state, original)

    compat.wrap_app(app, "_prepare_callback", make)
    reregister()


def _prepare_callback(app: Any, state: "AppState", original: Callable, g: Any, body: dict) -> Any:
    """Dash's ``_prepare_callback``, and for a background callback that involves ServerStores, the job's
    context entry (its user and references), and a note for ``_inputs_to_vals`` to leave references be."""
    func = original(g, body)
    defer = False
    if in_use():
        callback = app.callback_map.get(body.get("output")) or {}
        if callback.get("background"):
            _guard_side_updates(g.get("background_callback_manager"))
            state.scan_layouts()
            uses_stores = state.store_ids or any(
                references.looks_like_reference(item.get("value"))
                for item in flat(g.get("inputs_list")) + flat(g.get("states_list")))
            if uses_stores and patched(g.get("background_callback_manager")):
                g[CONTEXT_KEY] = job_context(state, g, callback)
                defer = True
    _deferred.set(defer)
    return func


def user_cache_key() -> str | None:
    """For ``cache_by=[user_cache_key]`` on a background callback manager. No longer needed: every
    job key is per user (:mod:`.keys`); kept so existing apps run unchanged."""
    from dash_state.glue.runtime import current_state

    state = current_state()
    return None if state is None else state.manager.user()


def take_deferred() -> bool:
    """True (once) when the current request runs a background callback whose job resolves references."""
    deferred = _deferred.get()
    if deferred:
        _deferred.set(False)
    return deferred


def keep_references(state: "AppState", inputs: list) -> list:
    """Resolve what the job's process cannot: memory-backend stores and values written in the browser.
    References of shared-backend stores stay references; the worker resolves them."""
    manager = state.manager
    call = hook.current_call() or hook.begin_call()

    def entry(item: Any) -> Any:
        if not isinstance(item, dict) or item.get("property") != "data" or item.get("value") is None:
            return item
        value, store_id = item["value"], item.get("id")
        if references.looks_like_reference(value) and store_id is not None:
            if manager.backend(manager.settings(store_key(store_id)).backend).shared:
                return item
        return hook._resolve_entry(state, item, call)

    out = [[entry(x) for x in item] if isinstance(item, list) else entry(item) for item in inputs]
    return out if any(a is not b for a, b in zip(flat(out), flat(inputs))) else inputs


def job_context(state: "AppState", g: Any, callback: dict) -> dict:
    """The plain-JSON ``dash_state`` entry Dash copies into the job's context."""
    manager = state.manager
    who = manager.identity()
    stores = {}
    progress = [dep.to_dict() for dep in (callback.get("background") or {}).get("progress") or []]
    entries = flat(g.get("outputs_list")) + flat(g.get("inputs_list")) + flat(g.get("states_list")) + progress
    for item in entries:
        store_id = item.get("id")
        if store_id is not None and str(item.get("property", "")).split("@")[0] == "data" and store_id in state.store_ids:
            sid = store_key(store_id)
            backend = manager.settings(sid).backend
            stores[sid] = {"id": store_id, "backend": backend,
                           "shared": backend != "client" and manager.backend(backend).shared}
    return {
        "v": 2,
        "user": who.namespace,
        "aliases": list(who.aliases),
        "probe": references.make(manager._ref_keys[0], who.namespace, PROBE_STORE, "probe", PROBE_KEY),
        "stores": stores,
        "schema": callback.get("outputs_indices"),
        "progress": progress or None,
    }


def _guard_side_updates(manager: Any) -> None:
    """Wrap ``manager.get_updated_props`` and ``get_progress`` (what a job's ``set_props`` and
    ``set_progress`` left for the web process; every poll sends them to the browser): ServerStore
    values still in them are stored here and replaced by references. That is the normal path for
    memory-backend stores, and covers jobs whose function was registered without dash-state's wrapper.
    Dash's polling races are closed first (:mod:`.polling`)."""
    make_polls_consistent(manager)
    for name in ("get_updated_props", "get_progress"):
        original = getattr(manager, name, None)
        if original is not None and not getattr(original, JOB_MARK, False):
            guarded = functools.wraps(original)(functools.partial(_guarded, original, name == "get_progress"))
            setattr(guarded, JOB_MARK, True)
            setattr(manager, name, guarded)


def _guarded(original: Callable, progress: bool, key: Any) -> Any:
    found = original(key)
    if not found:
        return found
    from dash_state.glue.runtime import current_state

    state = current_state()
    if state is None or not in_use():
        return found
    ctx = compat.callback_context()
    if not progress:
        if isinstance(found, dict):
            hook.rewrite_outputs(state, None, None, False, None, JobCtx(ctx, found))
        return found
    specs = (get(ctx, CONTEXT_KEY) or {}).get("progress")
    if specs and isinstance(found, list) and len(found) == len(specs):
        found = hook.rewrite_outputs(state, found, specs, True, list(range(len(specs))), JobCtx(ctx))
    return found
