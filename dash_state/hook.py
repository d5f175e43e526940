"""Callback rewriting: references in, real values to the function; values out, references to the browser.

Dash has no hook that rewrites callback arguments or return values, so :mod:`dash_state.plugin`
routes two points of Dash's callback path here, for every transport (HTTP, websocket, background):

* :func:`resolve_inputs` sees the ``inputs + state`` list before Dash turns it into arguments;
* :func:`rewrite_outputs` sees the return value (and ``set_props`` updates) before Dash encodes it.

Both leave anything that is not a ServerStore's ``data`` untouched, and return the very same objects
when there is nothing to do.
"""
from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from dash import Patch
from dash._grouping import flatten_grouping, make_grouping_by_index
from dash._utils import stringify_id
from dash.development.base_component import Component

from . import patches, references
from .errors import StoreValueError
from .layout import contains_component, rewrite_stores, with_data

if TYPE_CHECKING:
    from .runtime import AppState

log = logging.getLogger("dash_state")


def _is_no_update(value: Any) -> bool:
    from dash._callback import NoUpdate

    return NoUpdate.is_no_update(value)


# -- inputs ------------------------------------------------------------------------------------------
def resolve_inputs(state: "AppState", inputs: list) -> list:
    """Replace each ServerStore ``data`` entry's reference by the value it stands for (new dicts; the
    originals stay in ``dash.ctx.inputs_list`` / ``states_list``)."""
    resolved = None
    for index, item in enumerate(inputs):
        if isinstance(item, list):  # ALL / ALLSMALLER pattern: a list of entries
            new = [_resolve_entry(state, entry) for entry in item]
            if any(a is not b for a, b in zip(new, item)):
                resolved = resolved or list(inputs)
                resolved[index] = new
        else:
            new = _resolve_entry(state, item)
            if new is not item:
                resolved = resolved or list(inputs)
                resolved[index] = new
    return inputs if resolved is None else resolved


def _resolve_entry(state: "AppState", entry: Any) -> Any:
    if not isinstance(entry, dict) or entry.get("property") != "data":
        return entry
    value = entry.get("value")
    if value is None:
        return entry
    store_id = entry.get("id")
    is_reference = references.looks_like_reference(value)
    if not is_reference and store_id not in state.store_ids:
        return entry  # not a ServerStore: a dcc.Store or another component's data prop
    manager = state.manager
    sid = stringify_id(store_id)
    if not is_reference and not manager.keeps_on_server(sid):
        return entry  # rolled back to the client backend: the data itself, as with dcc.Store
    # a reference, or raw data where a reference belongs (which load() reports as missing)
    return {**entry, "value": manager.load(sid, value)}


# -- outputs -----------------------------------------------------------------------------------------
def rewrite_outputs(state: "AppState", value: Any, spec: Any, multi: bool, schema: Any, ctx: Any,
                    user: str | None = None) -> Any:
    """Store ServerStore outputs server-side and return the value with references in their place.

    Every value is checked before anything is written, so a callback that returns one bad value
    stores nothing at all. ``user`` is the session's user (default: the current request's); a
    background worker, which has no request, passes the user of the job.
    """
    plan: list[tuple[Callable[[Any], None], str, Any]] = []  # (put the reference back, store id, value)
    rewritten: list[Any] = []  # outputs changed in place: component trees, skipped patches
    for id_str, props in (getattr(ctx, "updated_props", None) or {}).items():  # set_props
        if isinstance(props, dict):
            for prop in list(props):
                _plan(state, partial(props.__setitem__, prop), id_str, prop, props[prop], plan, rewritten, ctx,
                      user)

    flat = None
    if spec and not _is_no_update(value):
        flat, specs = _flatten(value, spec, multi, schema)
        for index, (val, spc) in enumerate(zip(flat or [], specs)):
            if isinstance(spc, list) and isinstance(val, (list, tuple)):  # ALL / ALLSMALLER output
                val = flat[index] = list(val)
                for j, (v, s) in enumerate(zip(val, spc)):
                    _plan(state, partial(val.__setitem__, j), s.get("id"), s.get("property"), v, plan, rewritten, ctx,
                          user)
            elif isinstance(spc, dict):
                _plan(state, partial(flat.__setitem__, index), spc.get("id"), spc.get("property"), val, plan,
                      rewritten, ctx, user)

    if plan:
        _store(state, plan, user)
    if flat is None or not (plan or rewritten):
        return value
    return flat[0] if not multi else make_grouping_by_index(schema, flat)


def _flatten(value: Any, spec: Any, multi: bool, schema: Any) -> tuple[list | None, list]:
    if not multi:
        return [value], [spec]
    try:
        values = list(value) if isinstance(value, tuple) else value
        return list(flatten_grouping(values, schema)), list(spec)
    except Exception:  # a malformed return: leave it to Dash, which reports it properly
        return None, []


def _plan(state: "AppState", put: Callable[[Any], None], store_id: Any, prop: Any, value: Any,
          plan: list, rewritten: list, ctx: Any, user: str | None = None) -> None:
    if value is None or _is_no_update(value):
        return
    if contains_component(value):
        new = _serve_tree(state, value, user)
        if new is not value:
            put(new)
            rewritten.append(new)
        return
    if not isinstance(prop, str) or prop.split("@")[0] != "data" or store_id not in state.store_ids:
        return  # allow_duplicate outputs arrive as "data@<hash>"
    sid = store_id if isinstance(store_id, str) else stringify_id(store_id)
    if not state.manager.keeps_on_server(sid):
        return
    if references.looks_like_reference(value) and state.manager.owns(value, user):
        return  # already stored by a background job: its reference is what the browser gets
    if isinstance(value, Patch):
        value = _patched(state, sid, store_id, value, ctx, user)
        if value is _SKIP:
            put(_no_update())
            rewritten.append(store_id)
            return
    plan.append((put, sid, value))


_SKIP = object()


def _no_update() -> Any:
    from dash import no_update

    return no_update


def _patched(state: "AppState", sid: str, store_id: Any, patch: Patch, ctx: Any, user: str | None = None) -> Any:
    """Apply a Patch to the stored value, as the browser would apply it to dcc.Store's data.

    The base is the reference the browser sent for this store, if the store is an input or state of
    the callback; otherwise the value this user last wrote to it.
    """
    manager = state.manager
    raw = _request_reference(ctx, store_id)
    base = manager.load(sid, raw, user=user) if raw is not None else manager.latest(sid, user=user)
    if _is_frame_like(base):
        raise StoreValueError(f"ServerStore {sid!r}: Patch() cannot update a {type(base).__name__}; "
                              "return the new value instead")
    try:
        return patches.apply(base, patch.to_plotly_json()["operations"])
    except patches.PatchError as exc:
        log.warning("ServerStore %r: Patch() does not apply to the stored value (%s); store left unchanged", sid,
                    exc if base is not None else f"there is no stored value: {exc}")
        return _SKIP


def _request_reference(ctx: Any, store_id: Any) -> Any:
    for entry in _entries(getattr(ctx, "inputs_list", None)) + _entries(getattr(ctx, "states_list", None)):
        if entry.get("property") == "data" and entry.get("id") == store_id:
            return entry.get("value")
    return None


def _entries(items: Any) -> list:
    flat = []
    for item in items or []:
        flat.extend(x for x in (item if isinstance(item, list) else [item]) if isinstance(x, dict))
    return flat


def _is_frame_like(value: Any) -> bool:
    return hasattr(value, "iloc") or (hasattr(value, "dtype") and hasattr(value, "shape"))


def _store(state: "AppState", plan: list, user: str | None = None) -> None:
    manager = state.manager
    pending = [manager.prepare(sid, value) for _, sid, value in plan]  # may raise: nothing written yet
    tokens = manager.commit(pending, user or manager.user())
    for (put, _, _), token in zip(plan, tokens):
        put(token)


# -- component trees (layouts and callback outputs) ----------------------------------------------------
def serve_tree(state: "AppState", tree: Any) -> Any:
    """Register the tree's ServerStores and move their initial ``data`` server-side."""
    return _serve_tree(state, tree)


def _serve_tree(state: "AppState", tree: Any, user: str | None = None) -> Any:
    def replace(store: Component) -> Component:
        store_id = getattr(store, "id", None)
        state.store_ids.add(store_id)
        data = getattr(store, "data", None)
        sid = stringify_id(store_id) if store_id is not None else "?"
        if data is None or references.looks_like_reference(data) or not state.manager.keeps_on_server(sid):
            return store
        manager = state.manager
        token = manager.commit([manager.prepare(sid, data)], user or manager.user(), stable=True)[0]
        return with_data(store, token)

    return rewrite_stores(tree, replace)


def strip_tree(state: "AppState", tree: Any) -> Any:
    """The tree with server-side stores' data removed, for Dash's validation layout in the index page."""
    def strip(store: Component) -> Component:
        store_id = getattr(store, "id", None)
        state.store_ids.add(store_id)
        if getattr(store, "data", None) is None:
            return store
        sid = stringify_id(store_id) if store_id is not None else "?"
        return with_data(store, None) if state.manager.keeps_on_server(sid) else store

    return rewrite_stores(tree, strip)
