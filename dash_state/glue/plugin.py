"""The Dash plugin: registered through the ``dash_hooks`` entry point, so ``pip install`` is the setup.

Dash imports this module once per process; hooks register at import time and apply to every app.
Where Dash offers no hook (callback arguments and return values, the index page's validation layout)
we wrap the app's own methods on the instance, and Dash's ``_prepare_response`` once per process.
Everything is a no-op until the ServerStore component has been imported: an app without ServerStores
runs exactly as before.
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
import types
from typing import Any

import dash
from dash import hooks

from dash_state import identity
from dash_state.core import logs, references
from dash_state.core.ids import store_key
from dash_state.core.missing import REASONS as MISS_REASONS
from dash_state.errors import (
    BackendUnavailable,
    DashStateError,
    QuotaExceeded,
    StoreValueError,
)
from dash_state.glue import background, compat, devtools, hook, routes, web  # noqa: F401  (importing registers the routes)
from dash_state.glue.calls import MISSES
from dash_state.glue.initial import serve_tree, strip_tree
from dash_state.glue.layout import in_use
from dash_state.glue.mirror import held_in_browser
from dash_state.glue.runtime import AppState, app_state, current_state
from dash_state.identity import resolvers
from dash_state.live import route as _live_route  # noqa: F401  (importing registers the route)

log = logging.getLogger("dash_state")


@hooks.setup()
def setup(app: dash.Dash) -> None:
    install(app)


def install(app: dash.Dash) -> AppState:
    """Attach dash-state to one app (idempotent)."""
    state = app_state(app)
    if state is not None:
        return state
    if in_use():
        compat.check(app)  # a private Dash name missing: fail in Dash(), naming it and the version
    state = app_state(app, create=True)
    if in_use():
        state.load_config()  # fail at startup on a bad config.toml or environment
        logs.install_default_handler()
        devtools.register()

    compat.inputs_to_vals(app, functools.partial(_inputs_to_vals, app, state))
    compat.wrap_app(app, "_config", functools.partial(_config, state))
    server = getattr(app, "server", None)
    if server is not None:  # Flask, FastAPI or Quart: dash_state.glue.web
        on_flask = web.server_kind(app) == "flask"
        web.install(app, on_response=functools.partial(_after_request, state),
                    errors={DashStateError: functools.partial(_error_response, state)},
                    before=resolvers.watch_dash_auth if on_flask else None,  # before dash-auth's own check
                    body_limit=lambda: state.manager.config["STATE_MAX_VALUE_BYTES"])
    background.install(app, state)
    _websocket_calls(app, state)
    _patch_prepare_response()
    _patch_progress()
    if getattr(app, "_enable_mcp", False) or "dash.mcp" in sys.modules:
        _describe_for_mcp()
    return state


def _inputs_to_vals(app: dash.Dash, state: AppState, original: Any) -> Any:
    """Callback arguments: references replaced by their values (the user's own, or missing)."""
    def inputs_to_vals(inputs):
        deferred = background.take_deferred()  # a background job resolves the references itself
        if in_use():
            with web.websocket.claimed(inputs):  # a sync websocket call: its record, in Dash's executor thread
                hook.begin_call(mcp=is_mcp_request(app))
                state.scan_layouts()
                inputs = background.keep_references(state, inputs) if deferred else hook.resolve_inputs(state, inputs)
        return original(inputs)
    return inputs_to_vals


def _config(state: AppState, original: Any) -> Any:
    """The config embedded in the index page: no store data in the validation layout, and the list of
    stores the browser holds (client backend, mirrored), which src_js/held.js reads."""
    def config():
        config = original()
        if in_use() and config.get("validation_layout") is not None:
            config["validation_layout"] = strip_tree(state, config["validation_layout"])
        if in_use():
            config["dash_state"] = held_in_browser(state.manager)
        return config
    return config


def _describe_for_mcp() -> None:
    """Dash's MCP layer describes a dcc.Store's data as "data to be remembered client-side": the same
    words for a ServerStore (what the tool's caller deals with is the same data), and its storage_type
    with dcc.Store's template."""
    if not compat.available("MCP"):
        return
    compat.get("dash.mcp.primitives.tools.prop_roles:STORE_DATA").identifiers.add(("ServerStore", "data"))
    templates = compat.get(PROP_TEMPLATES) if compat.has(PROP_TEMPLATES) else None
    if isinstance(templates, dict) and ("Store", "storage_type") in templates:
        templates.setdefault(("ServerStore", "storage_type"), templates[("Store", "storage_type")])


PROP_TEMPLATES = "dash.mcp.primitives.tools.input_schemas.input_descriptions.description_component_props:_PROP_TEMPLATES"


def is_mcp_request(app: Any) -> bool:
    """True while Dash's MCP layer runs a callback as a tool (its endpoint, or its functions called
    directly, as Dash's own MCP tests do): tool results and descriptions show data, as with dcc.Store."""
    if "dash.mcp" not in sys.modules:  # Dash imports its MCP layer only when an app enables it
        return False
    path = getattr(app, "_mcp_path", None)
    if getattr(app, "_enable_mcp", False) and path and web.has_request() and \
            web.request_path().rstrip("/").endswith("/" + str(path).strip("/")):
        return True
    frame = sys._getframe(1)
    while frame is not None:  # a few dozen frames, only in processes that loaded dash.mcp
        if frame.f_globals.get("__name__", "").startswith("dash.mcp."):
            return True
        frame = frame.f_back
    return False


def _after_request(state: AppState, response: web.ResponseView) -> None:
    """Send a newly minted identity cookie, and log this request's unusable references once."""
    if not state.has_manager or not web.has_request():
        return
    _end_call(state)
    identity.write_cookie(response, state.manager.identity_settings, state.manager.keys)


def _end_call(state: AppState) -> None:
    """After a callback request (a websocket callback call): release what the page let go of, and log its
    unusable references once."""
    manager = state.manager
    call = hook.current_call()
    for raw_id, reference in call.release if call is not None else ():  # what the page let go of
        sid = references.id_key(raw_id)  # None for a list, a nested dict: no ServerStore's id
        if sid is not None and isinstance(reference, str):
            try:
                manager.release(sid, reference)
            except DashStateError:  # an outage: the values expire with their TTL instead
                break
    misses = web.per_request().pop(MISSES, None)
    if misses is not None:
        misses.flush(MISS_REASONS)


def _error_response(state: AppState, exc: DashStateError) -> Any:
    """A callback that dash-state had to fail: one log line (no traceback), a clear message for the browser."""
    if isinstance(exc, BackendUnavailable):  # the breaker has logged it, once per outage
        status, message = 503, "dash-state: the ServerStore storage is unavailable; try again shortly"
    elif isinstance(exc, StoreValueError):  # the caller's value or quota: say exactly what is wrong
        status, message = (413 if isinstance(exc, QuotaExceeded) else 422), str(exc)
        if state.has_manager:  # a full backend refuses every writer: aggregate, don't flood
            state.manager.throttle(logging.WARNING, f"refused:{type(exc).__name__}", "callback refused: %s", exc)
        else:
            log.warning("callback refused: %s", exc)
    else:  # configuration: details are for the operator, not the browser
        status, message = 500, "dash-state is misconfigured; the server log says how to fix it"
        log.error("%s", exc)
    return web.reply(message, status, "text/plain")


# -- websocket callbacks (Dash 4.2+ on FastAPI and Quart; see dash_state/glue/web/websocket.py) ------------
def _websocket_calls(app: dash.Dash, state: AppState) -> None:
    """Each websocket callback call ends like an HTTP callback request (:func:`_end_call`); ServerStore
    data streamed by ``set_props`` is stored and sent as a reference."""
    if not getattr(getattr(app, "backend", None), "websocket_capability", False) or \
            not compat.available(WEBSOCKET_FEATURE):
        return
    compat.wrap_app(app, "_execute_callback", functools.partial(_execute_callback, state))
    compat.patch("dash.backends.ws:DashWebsocketCallback.set_prop_sync", _set_prop_sync)
    compat.patch("dash.backends.ws:DashWebsocketCallback.get_prop", _get_prop)


WEBSOCKET_FEATURE = "ServerStore in websocket callbacks"


def _execute_callback(state: AppState, original: Any) -> Any:
    def execute_callback(*args, **kwargs):
        run = original(*args, **kwargs)

        def run_call(*a, **kw):
            if not web.websocket.is_call(web.common.RECORD.get()):
                return run(*a, **kw)  # HTTP: the response hook ends it
            try:
                result = run(*a, **kw)
            except BaseException:
                _end_websocket_call(state)
                raise
            if inspect.iscoroutine(result):
                return _finish_async(state, result)
            _end_websocket_call(state)
            return result
        return run_call
    return execute_callback


async def _finish_async(state: AppState, result: Any) -> Any:
    try:
        return await result
    finally:
        await web.common.run_blocking(_end_websocket_call, state)  # releases do storage I/O: off the loop


def _end_websocket_call(state: AppState) -> None:
    if state.has_manager and in_use():
        try:
            _end_call(state)
        except Exception:  # noqa: BLE001 - never turn a finished call into an error
            log.debug("dash-state: ending a websocket call failed", exc_info=True)


def _get_prop(original: Any) -> Any:
    """``await ctx.websocket.get_prop(store, "data")`` asks the page for a prop: a ServerStore answers
    with its reference, which is resolved (for the connection's identity) to the value a callback gets."""
    async def get_prop(self, component_id, prop_name, timeout=30.0):
        value = await original(self, component_id, prop_name, timeout)
        state = app_state(web.serving_app()) if in_use() and web.connection() is not None else None
        if state is None or prop_name != "data" or not references.looks_like_reference(value):
            return value
        store_id = component_id
        if isinstance(component_id, str) and component_id.startswith("{"):
            try:
                store_id = json.loads(component_id)
            except ValueError:
                return value
        state.scan_layouts()
        if store_id not in state.store_ids:
            return value
        return await web.common.run_blocking(state.manager.load, store_key(store_id), value)
    return get_prop


def _set_prop_sync(original: Any) -> Any:
    """``set_props`` in a websocket callback streams each prop at once: a ServerStore's data is stored
    (for the connection's identity) and its reference streamed instead, as ``_prepare_response`` does."""
    def set_prop_sync(self, component_id, prop_name, value):
        state = app_state(web.serving_app()) if in_use() and web.connection() is not None else None
        if state is not None:
            ctx = compat.callback_context()
            side = types.SimpleNamespace(updated_props={component_id: {prop_name: value}},
                                         inputs_list=getattr(ctx, "inputs_list", None),
                                         states_list=getattr(ctx, "states_list", None))
            state.scan_layouts()
            hook.rewrite_outputs(state, None, None, False, None, side)
            props = side.updated_props.get(component_id) or {}
            if prop_name not in props:
                return None  # no_update
            value = props[prop_name]
        return original(self, component_id, prop_name, value)
    return set_prop_sync


if hasattr(hooks, "websocket_connect"):  # Dash 4.2+
    @hooks.websocket_connect()
    async def websocket_identity(websocket: Any) -> bool:
        """The handshake: the connection's identity, from the identity cookie's signature and the resolver
        (:func:`dash_state.identity.handshake`). Never refuses a connection: without an identity its calls
        read no ServerStore and write none."""
        connection = web.connection()
        state = app_state(web.serving_app()) if connection is not None and in_use() else None
        if state is None:
            return True
        try:
            manager = state.manager
            connection.identity = await web.common.run_blocking(identity.handshake, manager.identity_settings,
                                                                manager.keys)
        except Exception:  # noqa: BLE001 - no identity: the connection's calls read and write no ServerStore
            connection.identity = None
            log.warning("dash-state: could not decide a websocket connection's identity; its callbacks read and "
                        "write no ServerStore", exc_info=True)
        return True

    @hooks.websocket_message()
    def websocket_call(websocket: Any, message: Any) -> bool:
        """Each callback request gets its own record (per-call state) before Dash dispatches it."""
        web.websocket.begin_message(message)
        return True


@hooks.layout()
def serve_layout(layout: Any) -> Any:
    if not in_use():
        return layout
    state = current_state()
    if state is None or not _serving_layout():  # MCP tools, app.get_layout() in your code: the data itself
        return layout
    state.manager.identity(create=True)  # before the page's first callbacks: they all share this identity
    served = serve_tree(state, layout)
    _warn_about_clientside_readers(state)
    state.warn_unknown_stores()  # once: a [STATE_STORES.<id>] that names no ServerStore (a typo)
    return served


def _warn_about_clientside_readers(state: AppState) -> None:
    """A store that clientside code reads is mirrored in the browser (see :mod:`dash_state.glue.mirror`); one
    with ``mirror = false`` gives clientside code its reference, not the data: say so once."""
    callbacks = getattr(state.app, "_callback_list", None) or []
    if getattr(state, "_clientside_checked", None) == len(callbacks):
        return
    state._clientside_checked = len(callbacks)
    manager = state.manager
    for callback in callbacks:
        if not callback.get("clientside_function"):
            continue
        for dependency in list(callback.get("inputs") or []) + list(callback.get("state") or []):
            store_id = dependency.get("id")
            sid = store_key(store_id)
            if dependency.get("property") != "data" or store_id not in state.store_ids:
                continue
            settings = manager.settings(sid)
            if settings.backend != "client" and not settings.client_read:
                log.warning("ServerStore %r is read by a clientside callback (for %s) but mirror = false: clientside "
                            "code gets its reference, not the data. Remove mirror = false from [STATE_STORES.%s], "
                            "or set client_read = true there and use `await window.dash_state.get(data, %r)`", sid,
                            callback.get("output"), sid, sid)


def _serving_layout() -> bool:
    """True while Dash answers the browser's ``_dash-layout`` request."""
    return web.has_request() and web.request_path().endswith("_dash-layout")


@hooks.index()
def mint_identity(index: str) -> str:
    """The index page gives the browser its identity cookie, before any callback runs."""
    if in_use() and web.has_request():
        state = current_state()
        if state is not None:
            state.manager.identity(create=True)
    return index


def _patch_prepare_response() -> None:
    """Route every callback's return value through :func:`hook.rewrite_outputs` before Dash encodes it."""
    if compat.has("dash._callback:_prepare_response"):  # else Dash 3.0: compat.check refuses ServerStores
        compat.patch("dash._callback:_prepare_response", _prepare_response)


def _prepare_response(original: Any) -> Any:
    signature = inspect.signature(original)
    names = list(signature.parameters)
    at = {name: names.index(name) for name in ("output_value", "output_spec", "multi", "callback_ctx", "app", "output")}

    def prepare_response(*args, **kwargs):
        if kwargs or len(args) != len(names):  # not Dash's own positional call: bind by name (slower)
            bound = signature.bind(*args, **kwargs)
            args, kwargs = tuple(bound.arguments[name] for name in names), {}
        state = app_state(args[at["app"]])
        if state is not None and in_use():
            state.scan_layouts()
            if hook.current_call() is None and is_mcp_request(args[at["app"]]):
                hook.begin_call(mcp=True)  # an MCP task's result: fetched without a callback request
            args = list(args)
            args[at["output_value"]] = hook.rewrite_outputs(
                state, args[at["output_value"]], args[at["output_spec"]], args[at["multi"]], args[at["output"]],
                args[at["callback_ctx"]])
        return original(*args)
    return prepare_response


def _patch_progress() -> None:
    """Drop ``no_update`` from a background callback's progress: the renderer applies progress like a
    side update and would store the placeholder as the prop's value (Dash does not filter it)."""
    if compat.available("background callbacks"):
        compat.patch("dash._callback:_progress_background_callback", _progress_without_no_update)


def _progress_without_no_update(original: Any) -> Any:
    def progress_background_callback(response, *args, **kwargs):
        result = original(response, *args, **kwargs)
        progress = response.get("progress") if in_use() else None
        if isinstance(progress, dict):
            for key in [k for k, v in progress.items() if compat.is_no_update(v)]:
                del progress[key]
            if not progress:
                del response["progress"]
        return result
    return progress_background_callback


background.patch_managers()  # before any app defines background callbacks (see background/worker.py)
