"""The fence: every private Dash name dash-state touches, in one table, checked when an app is created.

Dash's plugin hooks cover routes, layouts and the index page, but not callback arguments and return
values, the index page's config, or background jobs. For those dash-state reaches into Dash's private
names, and only through this module: :data:`PRIVATE` lists each one, what it is used for, how it is
used (read, called, wrapped on each app, wrapped once per process) and since which Dash version; the
rest of the package asks :func:`get` (a name not in the table is a ``KeyError``, so a new private use
cannot slip in unlisted) or the few helpers below.

:func:`check` runs when an app that uses ServerStore is created (Dash's ``setup`` hook, inside
``Dash()``): a missing required name raises :class:`~dash_state.errors.DashVersionError` naming it
and the Dash version, instead of an ``AttributeError`` inside the first callback request; a missing
optional name turns its feature off with one INFO line. A Dash outside :data:`TESTED` logs one
WARNING naming the tested range.

Wrapping goes through :func:`wrap` with one marker attribute (:data:`MARKER`), so wrapping twice is
a no-op and a wrapped function is recognisable in a traceback.
"""
from __future__ import annotations

import functools
import importlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable

from dash_state.errors import DashVersionError

log = logging.getLogger("dash_state")

#: The Dash versions the test matrix runs (scripts/test.sh --matrix), lowest and highest minor.
TESTED = ((3, 1), (4, 4))
#: Set on every function dash-state puts in Dash's place.
MARKER = "__dash_state__"


@dataclass(frozen=True)
class Private:
    """One private Dash name: ``module:attribute`` (or ``module:Class.attribute``)."""

    name: str
    use: str
    how: str  # "read", "called", "wrapped on each app", "wrapped once per process"
    since: str = "3.0"
    feature: str | None = None  # None: required; else the feature that is off without it
    instead_of: str | None = None  # an older Dash's name used when this Dash lacks ``instead_of``


PRIVATE: tuple[Private, ...] = (
    Private("dash.dash:Dash._inputs_to_vals", "replace references by values in callback arguments",
            "wrapped on each app", since="4.2"),
    Private("dash.dash:inputs_to_vals", "replace references by values in callback arguments (Dash 3.1-4.1 "
            "call this module function, not an app method)", "wrapped once per process: calls the app's own "
            "_inputs_to_vals, which dash-state sets", since="3.1", instead_of="dash.dash:Dash._inputs_to_vals"),
    Private("dash._callback:_prepare_response", "store ServerStore outputs and set_props, send references",
            "wrapped once per process", since="3.1"),
    Private("dash.dash:Dash._config", "keep store data out of the index page's validation layout",
            "wrapped on each app"),
    Private("dash.dash:Dash._prepare_callback", "hand a background job its user and references",
            "wrapped on each app", since="3.1", feature="background callbacks"),
    Private("dash._callback:_progress_background_callback", "drop no_update from background progress",
            "wrapped once per process", since="3.1", feature="background callbacks"),
    Private("dash._callback:NoUpdate", "recognise no_update (also its JSON form) in outputs", "called"),
    Private("dash._callback:GLOBAL_CALLBACK_LIST", "dash.callback callbacks not yet on an app", "read"),
    Private("dash._callback:GLOBAL_CALLBACK_MAP", "state_managed_callback finds its registration", "read"),
    Private("dash._callback:GLOBAL_INLINE_SCRIPTS", "clientside callbacks that read stores (mirror)", "read"),
    Private("dash.dash:Dash._callback_list", "the app's callbacks: which read stores clientside", "read"),
    Private("dash.dash:Dash._inline_scripts", "the app's clientside scripts (mirror)", "read"),
    Private("dash.dash:Dash._dev_tools", "the dev-tools panel answers only in debug mode", "read",
            feature="the dev-tools panel"),
    Private("dash.development.base_component:ComponentRegistry", "is ServerStore imported (else stay inert)",
            "read"),
    Private("dash._grouping:flatten_grouping", "callback outputs as a flat list", "called"),
    Private("dash._grouping:make_grouping_by_index", "rebuild a callback's output shape", "called"),
    Private("dash._callback_context:context_value", "the callback context inside a background job", "read",
            feature="background callbacks"),
    Private("dash.background_callback.managers:BaseBackgroundCallbackManager.register", "wrap each job function "
            "(references in, references out)", "wrapped once per process", feature="background callbacks"),
    Private("dash.background_callback.managers:BaseBackgroundCallbackManager.managers", "the managers to "
            "patch", "read", feature="background callbacks"),
    Private("dash.background_callback.managers:BaseBackgroundCallbackManager.functions", "job functions "
            "registered before the plugin", "read", feature="background callbacks"),
    Private("dash.background_callback._proxy_set_props:ProxySetProps", "set_props inside a background job",
            "read", feature="background callbacks"),
    Private("dash.dash:Dash._enable_mcp", "MCP tool calls see data, as with dcc.Store", "read", since="4.3",
            feature="MCP"),
    Private("dash.dash:Dash._mcp_path", "recognise the MCP endpoint", "read", since="4.3", feature="MCP"),
    Private("dash.dash:Dash._websocket_callbacks", "which callbacks Dash serves over its websocket",
            "read", since="4.2", feature="websocket callbacks"),
    Private("dash.dash:Dash._execute_callback", "end each websocket callback call as the response hook ends an "
            "HTTP one (release what the page let go of, log unusable references)", "wrapped on each app",
            since="3.1", feature="ServerStore in websocket callbacks"),
    Private("dash.backends.ws:DashWebsocketCallback.get_prop", "a ServerStore's data asked of the page over "
            "the websocket comes back as its value, not its reference", "wrapped once per process", since="4.2",
            feature="ServerStore in websocket callbacks"),
    Private("dash.backends.ws:DashWebsocketCallback.set_prop_sync", "store a ServerStore's data that set_props "
            "streams over a websocket and stream its reference", "wrapped once per process", since="4.4",
            feature="ServerStore in websocket callbacks"),
    Private("dash.mcp.primitives.tools.prop_roles:STORE_DATA", "MCP describes a ServerStore's data as a "
            "dcc.Store's", "read", since="4.3", feature="MCP"),
    Private("dash.mcp.primitives.tools.input_schemas.input_descriptions.description_component_props:"
            "_PROP_TEMPLATES", "MCP describes a ServerStore's storage_type as a dcc.Store's", "read", since="4.3",
            feature="MCP description of storage_type"),
)
_BY_NAME = {private.name: private for private in PRIVATE}
_missing_features: set[str] = set()
_warned_version = False


def dash_version() -> str:
    import dash

    return dash.__version__


def version_tuple(version: str) -> tuple[int, int]:
    numbers = re.findall(r"\d+", version)[:2]
    return (int(numbers[0]), int(numbers[1]) if len(numbers) > 1 else 0) if numbers else (0, 0)


def get(name: str) -> Any:
    """The Dash object named in :data:`PRIVATE`; :class:`DashVersionError` if this Dash lacks it."""
    private = _BY_NAME[name]  # a KeyError here: add the name to PRIVATE first
    found = _resolve(private.name)  # looked up each time: tests (and wrappers) replace these names
    if found is _ABSENT:
        raise DashVersionError(_missing_message([private]))
    return found


def has(name: str) -> bool:
    return _resolve(_BY_NAME[name].name) is not _ABSENT


def available(feature: str, app: Any = None) -> bool:
    """False when this Dash lacks a name that ``feature`` needs (see :func:`check`). Attributes that
    ``Dash.__init__`` sets on each app are checked only on ``app``: without one, the other names decide."""
    names = [p for p in PRIVATE if p.feature == feature and (app is not None or not _instance_only(p.name))]
    present = {p.name for p in names if _resolve(p.name, app) is not _ABSENT}
    # a name with an older or newer stand-in (instead_of) is covered when either one is present
    covered = present | {p.instead_of for p in names if p.name in present and p.instead_of} | \
        {p.name for p in names if p.instead_of in present}
    return all(p.name in covered for p in names)


def _instance_only(name: str) -> bool:
    module_name, _, path = name.partition(":")
    if not path.startswith("Dash."):
        return False
    cls = getattr(importlib.import_module(module_name), "Dash", None)
    return cls is None or not hasattr(cls, path[5:])


_ABSENT = object()


def _resolve(name: str, app: Any = None) -> Any:
    """The object, or _ABSENT. ``Dash.x`` names an attribute of the class, or else of the app instance
    (``app``; attributes that ``Dash.__init__`` sets)."""
    module_name, _, path = name.partition(":")
    if app is not None and path.startswith("Dash.") and hasattr(app, path[5:]):
        return getattr(app, path[5:])
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        return _ABSENT
    for part in path.split("."):
        found = getattr(found, part, _ABSENT)
        if found is _ABSENT:
            return _ABSENT
    return found


def check(app: Any = None) -> None:
    """Every required private name exists in this Dash (else :class:`DashVersionError`, naming them and
    the version); optional ones missing turn their feature off with one INFO line; a version outside
    :data:`TESTED` gets one WARNING."""
    global _warned_version
    missing = [private for private in PRIVATE if _resolve(private.name, app) is _ABSENT
               and (app is not None or not private.name.startswith("dash.dash:Dash."))]
    absent = {private.name for private in missing}
    # a name and its stand-in (instead_of: another Dash release's name for the same thing) cover each other
    covered = {p.instead_of for p in PRIVATE if p.instead_of and p.name not in absent} | \
        {p.name for p in PRIVATE if p.instead_of and p.instead_of not in absent}
    missing = [private for private in missing if private.name not in covered]
    required = [private for private in missing if private.feature is None]
    if required:
        raise DashVersionError(_missing_message(required))
    for private in missing:
        if private.feature not in _missing_features:
            _missing_features.add(private.feature)
            log.info("dash-state: Dash %s has no %s: %s are off (see the README's table of supported versions)",
                     dash_version(), private.name.replace(":", "."), private.feature)
    version = version_tuple(dash_version())
    if not _warned_version and not TESTED[0] <= version <= TESTED[1]:
        _warned_version = True
        low, high = TESTED
        log.warning("dash-state is tested with Dash %d.%d to %d.%d; this is Dash %s: it may work, but "
                    "nothing has checked it (dash-state checked the private Dash names it uses and found them)",
                    *low, *high, dash_version())


def _missing_message(missing: list[Private]) -> str:
    names = "; ".join(f"{p.name.replace(':', '.')} (to {p.use})" for p in missing)
    low, high = TESTED
    return (f"dash-state cannot run on Dash {dash_version()}: it lacks {names}. dash-state works with Dash "
            f"{low[0]}.{low[1]} to {high[0]}.{high[1]}: install one of those, or a dash-state release made for "
            f"this Dash; until then use dcc.Store.")


def patch(name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Wrap the module function or class attribute ``name`` of :data:`PRIVATE` once per process."""
    get(name)
    module_name, _, path = name.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attribute = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return wrap(owner, attribute, make)


def wrap_app(app: Any, attribute: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Wrap the method ``attribute`` of one app (``dash.dash:Dash.<attribute>`` in :data:`PRIVATE`)."""
    get(f"dash.dash:Dash.{attribute}")
    return wrap(app, attribute, make)


def wrap(owner: Any, attribute: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Put ``make(original)`` in place of ``owner.attribute`` (a module, class or app), once: False if it
    is already dash-state's."""
    original = getattr(owner, attribute)
    if getattr(original, MARKER, False):
        return False
    wrapper = functools.wraps(original)(make(original))
    setattr(wrapper, MARKER, True)
    setattr(owner, attribute, wrapper)
    return True


def background_managers() -> list:
    """Every background callback manager created so far (none when this Dash has no background callbacks)."""
    if not available("background callbacks"):
        return []
    return list(get("dash.background_callback.managers:BaseBackgroundCallbackManager.managers"))


def inputs_to_vals(app: Any, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Put ``make(original)`` where Dash turns a callback's inputs and states into its arguments: the
    app's ``_inputs_to_vals`` (Dash 4.2+), else (3.1-4.1, where the callback route calls the module
    function ``dash.dash.inputs_to_vals``) an app attribute of that name, which the module function,
    wrapped once per process, calls for the app serving the request."""
    if any("_inputs_to_vals" in vars(cls) for cls in type(app).__mro__) or "_inputs_to_vals" in vars(app):
        wrap(app, "_inputs_to_vals", make)
        return
    module = importlib.import_module("dash.dash")
    original = getattr(module.inputs_to_vals, "__wrapped__", module.inputs_to_vals)
    if getattr(module.inputs_to_vals, MARKER, False):
        original = module.inputs_to_vals.__wrapped__
    app.__dict__["_inputs_to_vals"] = make(original)
    wrap(module, "inputs_to_vals", _route_to_app)


def _route_to_app(original: Callable[..., Any]) -> Callable[..., Any]:
    def inputs_to_vals(inputs):
        from dash_state.glue.runtime import current_state

        state = current_state()
        own = vars(state.app).get("_inputs_to_vals") if state is not None else None
        return own(inputs) if own is not None else original(inputs)
    return inputs_to_vals


def devtool(namespace: str, component: str, props: dict, position: str) -> bool:
    """``dash.hooks.devtool`` where this Dash has it (3.2+; ``position`` from 3.3): False when not."""
    import inspect

    from dash import hooks

    register = getattr(hooks, "devtool", None)
    if register is None:
        return False
    if "position" in inspect.signature(register).parameters:
        register(namespace, component, props, position)
    else:
        register(namespace, component, props)
    return True


def is_no_update(value: Any) -> bool:
    return get("dash._callback:NoUpdate").is_no_update(value)


def callback_context() -> Any:
    """Dash's callback context of this call (a background job's too), or None outside a callback."""
    try:
        return get("dash._callback_context:context_value").get()
    except LookupError:
        return None
