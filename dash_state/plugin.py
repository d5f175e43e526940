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
from typing import Any

import dash
from dash import _callback, hooks
from dash.development.base_component import ComponentRegistry

from . import background, hook, routes  # noqa: F401  (importing routes registers the HTTP routes)
from .layout import NAMESPACE
from .runtime import AppState, app_state


def _in_use() -> bool:
    """True once any code in this process has imported the ServerStore component."""
    return NAMESPACE in ComponentRegistry.registry


@hooks.setup()
def setup(app: dash.Dash) -> None:
    install(app)


def install(app: dash.Dash) -> AppState:
    """Attach dash-state to one app (idempotent)."""
    state = app_state(app)
    if state is not None:
        return state
    state = app_state(app, create=True)
    if _in_use():
        state.load_config()  # fail at startup on a bad config.toml or environment
        state.ensure_secret()

    original_inputs = app._inputs_to_vals

    @functools.wraps(original_inputs)
    def _inputs_to_vals(inputs):
        deferred = background.take_deferred()  # a background job resolves the references itself
        if _in_use():
            state.scan_layouts()
            inputs = background.keep_references(state, inputs) if deferred else hook.resolve_inputs(state, inputs)
        return original_inputs(inputs)

    original_config = app._config

    @functools.wraps(original_config)
    def _config():
        config = original_config()
        if _in_use():
            background.check_shared_backend(state)
            if config.get("validation_layout") is not None:  # embedded in the index page: no data there
                config["validation_layout"] = hook.strip_tree(state, config["validation_layout"])
        return config

    app._inputs_to_vals = _inputs_to_vals
    app._config = _config
    background.install(app, state, _in_use)
    _patch_prepare_response()
    return state


@hooks.layout()
def serve_layout(layout: Any) -> Any:
    if not _in_use():
        return layout
    state = app_state(dash.get_app())
    if state is None:
        return layout
    layout = hook.serve_tree(state, layout)
    background.check_shared_backend(state)
    return layout


def _patch_prepare_response() -> None:
    """Route every callback's return value through :func:`hook.rewrite_outputs` before Dash encodes it."""
    original = _callback._prepare_response
    if getattr(original, "__dash_state__", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def _prepare_response(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        arguments = bound.arguments
        state = app_state(arguments.get("app"))
        if state is not None and _in_use():
            state.scan_layouts()
            arguments["output_value"] = hook.rewrite_outputs(
                state,
                arguments["output_value"],
                arguments["output_spec"],
                arguments["multi"],
                arguments["output"],
                arguments["callback_ctx"],
            )
        return original(*bound.args, **bound.kwargs)

    _prepare_response.__dash_state__ = True
    _callback._prepare_response = _prepare_response


background.patch_managers()  # before any app defines background callbacks (see background.py)
