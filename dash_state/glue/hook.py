"""Callback rewriting: references in, real values to the function; values out, references to the browser.

Dash has no hook that rewrites callback arguments or return values, so :mod:`dash_state.glue.plugin`
routes two points of Dash's callback path here, for every transport (HTTP, background, MCP tools):

* :func:`resolve_inputs` sees the ``inputs + state`` list before Dash turns it into arguments;
* :func:`rewrite_outputs` sees the return value (and ``set_props`` updates) before Dash encodes it.

Both leave anything that is not a ServerStore's ``data`` untouched, and return the very same objects
when there is nothing to do. The component adds a ``dash_state`` entry to each callback request
(``request_pre`` in ``src_js/renderer.js``): which outputs are ServerStores, and the reference each of
them holds, so a ``Patch()`` applies to exactly what that tab holds, as the renderer would apply it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from dash import Patch

from dash_state.core import browser_form, patches, references, shared
from dash_state.core.ids import store_key
from dash_state.core.references import js_key
from dash_state.errors import StoreValueError
from dash_state.glue import clientside, compat
from dash_state.glue.calls import (
    Call,
    begin_call,
    carried,
    current_call,
    request_misses,
)
from dash_state.glue.initial import initial_token, serve_tree
from dash_state.glue.layout import contains_component

if TYPE_CHECKING:
    from dash_state.glue.runtime import AppState

log = logging.getLogger("dash_state")


def _is_no_update(value: Any) -> bool:
    return compat.is_no_update(value)


def _is_store_id(store_id: Any) -> bool:
    """A string or a flat dict: anything else in a request (a list, a nested dict) is no ServerStore's
    id, and is left to Dash as it is."""
    return references.id_problem(store_id) is None


# -- inputs ------------------------------------------------------------------------------------------
def resolve_inputs(state: "AppState", inputs: list) -> list:
    """Replace each ServerStore ``data`` entry by the value it stands for (new dicts; the originals
    stay in ``dash.ctx.inputs_list`` / ``states_list``)."""
    call = current_call() or begin_call()
    resolved = None
    for index, item in enumerate(inputs):
        if isinstance(item, list):  # ALL / ALLSMALLER pattern: a list of entries
            new = [_resolve_entry(state, entry, call) for entry in item]
            changed = any(a is not b for a, b in zip(new, item))
        else:
            new = _resolve_entry(state, item, call)
            changed = new is not item
        if changed:
            resolved = resolved or list(inputs)
            resolved[index] = new
    return inputs if resolved is None else resolved


def _resolve_entry(state: "AppState", entry: Any, call: Call) -> Any:
    if not isinstance(entry, dict) or entry.get("property") != "data":
        return entry
    value = entry.get("value")
    store_id = entry.get("id")
    if not _is_store_id(store_id):
        return entry
    if value is None:
        return _resolve_empty(state, entry, store_id, call)
    is_reference = references.looks_like_reference(value) and (  # not a reference string patched clientside
        references.parse(value) is not None or not clientside.looks_patched(value))
    sid = store_key(store_id)
    if not is_reference and store_id not in state.store_ids and js_key(sid) not in call.hinted:
        return entry  # not a ServerStore: a dcc.Store or another component's data prop
    manager = state.manager
    if not is_reference and not manager.keeps_on_server(sid):  # the client backend: the data itself, as with dcc.Store
        if not browser_form.is_typed(value):
            call.values[sid] = value
            return entry
        new = browser_form.from_browser(value, sid, manager.config["STATE_MAX_VALUE_BYTES"])  # a frame, series, array
        call.values[sid] = new
        return {**entry, "value": new}
    misses = request_misses()
    if is_reference:
        new = manager.load(sid, value, misses=misses)
    else:
        new = clientside.client_value(state, sid, value, misses)
    call.values[sid] = new
    return {**entry, "value": new}


def _resolve_empty(state: "AppState", entry: dict, store_id: Any, call: Call) -> Any:
    """A store whose page holds nothing: a user or app store still has its shared value."""
    if store_id not in state.store_ids:
        return entry
    sid = store_key(store_id)
    manager = state.manager
    settings = manager.settings(sid)
    if not settings.shared:
        return entry
    new = manager.latest(sid)
    call.values[sid] = new
    return entry if new is None else {**entry, "value": new}


# -- outputs -----------------------------------------------------------------------------------------
def rewrite_outputs(state: "AppState", value: Any, spec: Any, multi: bool, schema: Any, ctx: Any,
                    user: Any = None) -> Any:
    """Store ServerStore outputs server-side and return the value with references in their place.

    Every value is checked before anything is written, so a callback that returns one bad value
    stores nothing at all. ``user`` is the job's user for a background worker (no request). A
    ``no_update`` inside ``set_props`` is removed from the side update: the renderer would store the
    placeholder as the prop's value. A Patch that cannot apply fails the callback (as it fails in the
    renderer for a dcc.Store) and changes nothing.
    """
    call = current_call()
    plan: list[tuple[Callable[[Any], None], str, Any]] = []  # (put the reference back, store id, value)
    rewritten: list[Any] = []  # outputs changed in place: component trees, MCP values
    updated = getattr(ctx, "updated_props", None)
    for id_str, props in list((updated or {}).items()):  # set_props
        if not isinstance(props, dict):
            continue
        for prop in list(props):
            if _is_no_update(props[prop]):
                del props[prop]
            else:
                _plan(state, Target(partial(props.__setitem__, prop), id_str, prop),
                      props[prop], plan, rewritten, ctx, user, call)
        if not props:
            del updated[id_str]

    flat = None
    if spec and not _is_no_update(value):
        flat, specs, declared = _flatten(value, spec, multi, schema)
        for index, (val, spc) in enumerate(zip(flat or [], specs)):
            pattern = declared[index] if index < len(declared) else None
            if isinstance(spc, list) and isinstance(val, (list, tuple)):  # ALL / ALLSMALLER output
                val = flat[index] = list(val)
                for j, (v, s) in enumerate(zip(val, spc)):
                    target = Target(partial(val.__setitem__, j), s.get("id"), s.get("property"), pattern)
                    _plan(state, target, v, plan, rewritten, ctx, user, call)
            elif isinstance(spc, dict):
                target = Target(partial(flat.__setitem__, index), spc.get("id"), spc.get("property"), pattern)
                _plan(state, target, val, plan, rewritten, ctx, user, call)

    if plan:
        _store(state, plan, user)
    if flat is None or not (plan or rewritten):
        return value
    return flat[0] if not multi else compat.get("dash._grouping:make_grouping_by_index")(schema, flat)


@dataclass
class Target:
    put: Callable[[Any], Any]  # replace the output's value
    store_id: Any
    prop: Any
    pattern: Any = None  # the callback's declared Output, for pattern-matching ids


def _flatten(value: Any, spec: Any, multi: bool, schema: Any) -> tuple[list | None, list, list]:
    if not multi:
        return [value], [spec], [schema] if schema is not None else []
    try:
        values = list(value) if isinstance(value, tuple) else value
        flatten_grouping = compat.get("dash._grouping:flatten_grouping")
        declared = list(flatten_grouping(schema)) if schema is not None else []
        return list(flatten_grouping(values, schema)), list(spec), declared
    except Exception:  # a malformed return: leave it to Dash, which reports it properly
        return None, [], []


def _plan(state: "AppState", target: Target, value: Any, plan: list, rewritten: list, ctx: Any, user: Any,
          call: Call | None) -> None:
    if value is None or _is_no_update(value):
        return
    if contains_component(value):
        new = serve_tree(state, value, user=user or True)
        if new is not value:
            target.put(new)
            rewritten.append(new)
        return
    prop, store_id = target.prop, target.store_id
    if not isinstance(prop, str) or prop.split("@")[0] != "data" or not _is_server_store(state, store_id, target, call):
        return  # allow_duplicate outputs arrive as "data@<hash>"
    sid = store_key(store_id)
    manager = state.manager
    backend = manager.settings(sid).backend
    if backend == "client":  # the data itself goes to the browser (a Patch: the renderer applies it there)
        _to_browser(target, sid, store_id, value, rewritten, call)
        return
    if getattr(user, "kind", None) == "job" and not manager.backend(backend).shared:
        return  # a job's value the web process stores (memory backend)
    if references.looks_like_reference(value):
        if manager.owned(sid, value, user):
            return  # already stored for this store (by a background job, or set_store): sent as it is
        value = _copy_of(state, value, user)  # server code passing another store's reference along
    settings = manager.settings(sid)
    if settings.shared:
        shared.check_writable(settings, sid, "a callback")
    if isinstance(value, Patch) or (isinstance(value, dict) and "__dash_patch_update" in value):
        if settings.shared and not (call is not None and call.mcp):  # applied to the current value, atomically
            held = carried(ctx, store_id)[1]
            if held is None and call is not None:
                held = call.prev.get(js_key(sid))  # what the tab holds: its initial data until a first write
            plan.append((target.put, sid, SharedPatch(value, held if isinstance(held, str) else None)))
            return
        value = _patched(state, sid, store_id, value, ctx, user, call)  # raises when it cannot apply
    if call is not None and call.mcp:  # an MCP tool call sees data, as with dcc.Store
        target.put(_for_json(value))
        rewritten.append(store_id)
        return
    plan.append((target.put, sid, value))


def _to_browser(target: Target, sid: str, store_id: Any, value: Any, rewritten: list, call: Call | None) -> None:
    """A client-backend store's new data: a DataFrame, Series or array in the typed JSON form (see
    :mod:`dash_state.core.browser_form`); anything else exactly as a dcc.Store gets it."""
    if isinstance(value, Patch) or not browser_form.is_typeable(value):
        return
    new = _for_json(value) if call is not None and call.mcp else browser_form.to_browser(value, sid)
    target.put(new)
    rewritten.append(store_id)


def _is_server_store(state: "AppState", store_id: Any, target: Target, call: Call | None) -> bool:
    if not _is_store_id(store_id):
        return False
    if store_id in state.store_ids:
        return True
    if call is not None and js_key(store_key(store_id)) in call.hinted:
        return True  # the browser rendered a ServerStore there (trusted for this output only)
    pattern = getattr(target.pattern, "component_id", None)
    return isinstance(store_id, dict) and isinstance(pattern, dict) and state.store_ids.matches_pattern(pattern)


def _copy_of(state: "AppState", token: str, user: Any) -> Any:
    """The value behind a reference of another of this user's stores (found by its tag), or None."""
    ref = references.parse(token)
    for sid in state.store_ids.strings():
        if ref is not None and references.store_tag(sid) == ref.tag:
            found = state.manager.locate(sid, token, user)
            if found:
                return found.snapshot.thaw()
    return None


_SKIP = object()


def _patched(state: "AppState", sid: str, store_id: Any, patch: Any, ctx: Any, user: Any, call: Call | None) -> Any:
    """Apply a Patch to the value this tab holds, as the renderer would apply it to dcc.Store's data.

    The base is the reference the browser sent for this store: as an input or state of the callback,
    or in the component's ``dash_state`` hint for its outputs. Without either (a ``set_props`` target,
    a script), it is this user's latest value, then the store's initial layout data.
    """
    manager = state.manager
    raw, key = carried(ctx, store_id)[1], js_key(sid)
    if raw is None and call is not None and key in call.prev:
        raw = call.prev[key]  # what the tab holds: a reference, null, or a value written in the browser
        if raw is None:
            base = None
    if raw is not None:
        base = manager.load(sid, raw, user, misses=request_misses()) if references.looks_like_reference(raw) else raw
    elif call is not None and key in call.hinted and key not in call.prev:
        raise StoreValueError(f"ServerStore {sid!r}: Cannot patch undefined: the store has no data (no data= in "
                              "the layout and never written), as the renderer says for a dcc.Store")
    elif call is None or key not in call.prev:
        base = manager.latest(sid, user, missing=_SKIP)
        if base is _SKIP:
            initial = state.initial_tokens.get(sid)
            base = manager.load(sid, initial, user) if initial is not None else None
    if hasattr(base, "iloc") or (hasattr(base, "dtype") and hasattr(base, "shape")):
        raise StoreValueError(f"ServerStore {sid!r}: Patch() cannot update a {type(base).__name__}; "
                              "return the new value instead")
    operations = (patch.to_plotly_json() if isinstance(patch, Patch) else patch).get("operations") or []
    try:
        return patches.apply(base, operations, manager.config["STATE_MAX_VALUE_BYTES"])
    except patches.PatchError as exc:  # the renderer fails such a patch too: the callback errors, nothing changes
        what = exc if base is not None else f"there is no stored value: {exc}"
        raise StoreValueError(f"ServerStore {sid!r}: Patch() does not apply to the stored value ({what}); "
                              "the store keeps its value") from None


def _for_json(value: Any) -> Any:
    """Frames as row records and arrays as lists: what Dash's encoder can send to an MCP client."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict("records")
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


class SharedPatch:
    """A Patch to a user or app store: applied when written, to whatever value is current then."""

    def __init__(self, patch: Any, held: str | None = None):
        self.operations = (patch.to_plotly_json() if isinstance(patch, Patch) else patch).get("operations") or []
        self.held = held  # the page's reference: the layout's initial data while the store has no value


def _store(state: "AppState", plan: list, user: Any = None) -> None:
    manager = state.manager
    patched = [(put, sid, value) for put, sid, value in plan if isinstance(value, SharedPatch)]
    plan = [entry for entry in plan if not isinstance(entry[2], SharedPatch)]
    pending = [manager.prepare(sid, value) for _, sid, value in plan]  # may raise: nothing written yet
    call = current_call()
    for item in pending if call is not None and call.ttl else ():
        if item.store_id in call.ttl:  # set_store(..., ttl=...)
            item.settings = replace(item.settings, ttl=call.ttl[item.store_id])
    tokens = manager.commit(pending, user) if pending else []
    for (put, _, _), token in zip(plan, tokens):
        put(token)
    for put, sid, value in patched:
        held = references.parse(value.held)
        initial = value.held if held is not None and held.scope == references.APP else initial_token(state, sid)
        put(shared.patch(state.manager, sid, value.operations, user, initial))
