"""Background callbacks (``background=True``): ServerStore values never travel through the job queue.

A background callback runs in another process: a DiskcacheManager subprocess (forked from the web
process) or a Celery worker (which imports the app module and builds the same Dash app). Celery
serializes a job's arguments, context and result as JSON, so DataFrames cannot travel that way, and
whatever travels must not be data the browser may not see. So only references travel:

Web process
  :func:`install` wraps the app's ``_prepare_callback``. For a background callback it puts a small
  JSON-able ``dash_state`` entry into the callback context (the user, and what the worker must agree
  on); Dash copies that context into the job. It also tells the ``_inputs_to_vals`` wrapper (through
  :func:`take_deferred`) to leave references unresolved: the job receives reference strings. When
  the job's result comes back, ``hook._plan`` passes references this user owns through unchanged.
  What jobs leave for the polls (``set_props`` updates, progress) is checked again before it is sent.

Worker
  Dash calls ``BaseBackgroundCallbackManager.register(key, fn, progress)`` for every (manager,
  function); :func:`patch_managers` makes ``fn`` a wrapper (same ``key``, so the job names in web
  and worker still agree) that resolves the references among the arguments with the job's user,
  calls the function, stores ServerStore outputs, ``set_props`` and ``set_progress`` values, and
  hands references back to Dash.

Both ends need the same shared backend (redis or database), the same ``SECRET_KEY`` and the same
``STATE_*`` settings (a worker checks the secret and each store's backend against what the web
process sent); the memory backend lives inside one process, so :func:`check_shared_backend`
refuses it as soon as the app has background callbacks and ServerStores.

Limitations: Dash's managers keep only the last ``set_props`` call of a job between two polls; with
``cache_by``, cached results hold the computing user's references (add :func:`user_cache_key`).
"""
from __future__ import annotations

import functools
import inspect
import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable

from dash._utils import stringify_id
from dash.background_callback._proxy_set_props import ProxySetProps
from dash.background_callback.managers import BaseBackgroundCallbackManager

from . import hook, references
from .errors import ConfigError

if TYPE_CHECKING:
    from .runtime import AppState

log = logging.getLogger("dash_state")

CONTEXT_KEY = "dash_state"  # the entry in Dash's callback context that travels with the job
_JOB_MARK = "__dash_state_job__"
_KEYS_ATTRIBUTE = "_dash_state_job_keys"  # per manager: keys whose job function wraps the user function
_PROBE_KEY = references.digest_key(b"dash-state background secret probe")

# Set by the _prepare_callback wrapper, consumed by the _inputs_to_vals wrapper of the same request.
_deferred: ContextVar[bool] = ContextVar("dash_state_background_deferred", default=False)


# -- web process ---------------------------------------------------------------------------------
def install(app: Any, state: "AppState", in_use: Callable[[], bool]) -> None:
    """Wrap ``app._prepare_callback`` and make job functions registered before the patch use the wrapper."""
    original = app._prepare_callback

    @functools.wraps(original)
    def _prepare_callback(g, body):
        func = original(g, body)
        defer = False
        if in_use():
            callback = app.callback_map.get(body.get("output")) or {}
            if callback.get("background"):
                check_shared_backend(state)
                _guard_side_updates(g.get("background_callback_manager"))
                state.scan_layouts()
                uses_stores = state.store_ids or any(
                    references.looks_like_reference(item.get("value"))
                    for item in _flat(g.get("inputs_list")) + _flat(g.get("states_list")))
                if uses_stores and _patched(g.get("background_callback_manager")):
                    g[CONTEXT_KEY] = job_context(state, g, callback)
                    defer = True
        _deferred.set(defer)
        return func

    app._prepare_callback = _prepare_callback
    reregister()


def user_cache_key() -> str | None:
    """For ``cache_by=[user_cache_key]`` on a background callback manager: cached results hold
    references signed for the user who computed them, so each user needs their own cache entries."""
    import dash

    from .plugin import install

    return install(dash.get_app()).manager.user()


def take_deferred() -> bool:
    """True (once) when the current request runs a background callback whose job resolves references."""
    deferred = _deferred.get()
    if deferred:
        _deferred.set(False)
    return deferred


def keep_references(state: "AppState", inputs: list) -> list:
    """What ``hook.resolve_inputs`` does, minus loading: references stay references for the job, but
    raw data in a server-side ServerStore's entry is still treated as missing, as it would be without
    ``background=True``."""
    def entry(item: Any) -> Any:
        if (isinstance(item, dict) and item.get("property") == "data" and item.get("value") is not None
                and not references.looks_like_reference(item["value"])):
            return hook._resolve_entry(state, item)
        return item

    out = [[entry(x) for x in item] if isinstance(item, list) else entry(item) for item in inputs]
    return out if any(a is not b for a, b in zip(_flat(out), _flat(inputs))) else inputs


def job_context(state: "AppState", g: Any, callback: dict) -> dict:
    """The plain-JSON ``dash_state`` entry Dash copies into the job's context."""
    manager = state.manager
    user = manager.user()
    stores = {}
    progress = [dep.to_dict() for dep in (callback.get("background") or {}).get("progress") or []]
    entries = _flat(g.get("outputs_list")) + _flat(g.get("inputs_list")) + _flat(g.get("states_list")) + progress
    for item in entries:
        store_id = item.get("id")
        if store_id is not None and str(item.get("property", "")).split("@")[0] == "data" and store_id in state.store_ids:
            sid = stringify_id(store_id)
            stores[sid] = {"id": store_id, "backend": manager.settings(sid).backend}
    return {
        "v": 1,
        "user": user,
        "probe": references.make(manager._secret, user, "probe", _PROBE_KEY),
        "stores": stores,
        "schema": callback.get("outputs_indices"),
        "progress": progress or None,
    }


def _guard_side_updates(manager: Any) -> None:
    """Wrap ``manager.get_updated_props`` and ``get_progress`` (what a job's ``set_props`` and
    ``set_progress`` left for the web process; every poll sends them to the browser): ServerStore
    values still in them are stored and replaced by references. The worker normally did that already;
    this covers jobs whose function was registered without dash-state's wrapper (a manager class
    overriding ``register``)."""
    for name in ("get_updated_props", "get_progress"):
        original = getattr(manager, name, None)
        if original is not None and not getattr(original, _JOB_MARK, False):
            guarded = functools.wraps(original)(functools.partial(_guarded, original, name == "get_progress"))
            setattr(guarded, _JOB_MARK, True)
            setattr(manager, name, guarded)


def _guarded(original: Callable, progress: bool, key: Any) -> Any:
    found = original(key)
    if not found:
        return found
    import dash
    from dash._callback_context import context_value

    from .plugin import _in_use
    from .runtime import app_state

    state = app_state(dash.get_app())
    if state is None or not _in_use():
        return found
    ctx = context_value.get()
    if not progress:
        if isinstance(found, dict):
            hook.rewrite_outputs(state, None, None, False, None, _JobCtx(ctx, found))
        return found
    specs = (_get(ctx, CONTEXT_KEY) or {}).get("progress")
    if specs and isinstance(found, list) and len(found) == len(specs):
        found = hook.rewrite_outputs(state, found, specs, True, list(range(len(specs))), _JobCtx(ctx))
    return found


def check_shared_backend(state: "AppState", force: bool = False) -> None:
    """Refuse the memory backend for an app with background callbacks and server-side ServerStores.

    ``force``: the caller knows a background job is running (a worker); otherwise the app's callback
    map is consulted (``dash.callback`` callbacks land in it at the first request).
    """
    callbacks = getattr(state.app, "callback_map", None) or {}
    if not force and not any(cb.get("background") for cb in callbacks.values()):
        return
    state.scan_layouts()
    known = state.store_ids._ids
    marker = (len(callbacks), len(known), id(state._manager))
    if not known or (not force and getattr(state, "_background_checked", None) == marker):
        return
    manager = state.manager
    marker = (len(callbacks), len(known), id(manager))
    local = sorted(sid for sid in known if manager.settings(sid).backend == "memory")
    if local:
        raise ConfigError(
            "dash-state: this app has background callbacks (background=True), which run in other "
            "processes (a DiskcacheManager subprocess or a Celery worker), but ServerStore(s) "
            f"{', '.join(repr(s) for s in local[:5])}{' ...' if len(local) > 5 else ''} use the 'memory' backend, "
            "which lives inside one process: a background job could neither read nor write them. Use a "
            "backend that every process reaches: STATE_BACKEND = 'redis' (with STATE_REDIS_URL) or "
            "'database' (with STATE_DATABASE_URL), for all stores or per store in STATE_STORES; "
            "backend = 'client' also works for stores that may live in the browser. Background workers "
            "need the same SECRET_KEY and STATE_* settings as the web server."
        )
    state._background_checked = marker


# -- both: registering job functions --------------------------------------------------------------
def patch_managers() -> None:
    """Make every job function Dash builds from now on call :func:`wrap_job_function` (once per process)."""
    original = BaseBackgroundCallbackManager.register
    if getattr(original, _JOB_MARK, False):
        return

    @functools.wraps(original)
    def register(self, key, fn, progress):
        original(self, key, wrap_job_function(fn, progress), progress)
        self.__dict__.setdefault(_KEYS_ATTRIBUTE, set()).add(key)

    setattr(register, _JOB_MARK, True)
    BaseBackgroundCallbackManager.register = register


def reregister() -> None:
    """Rebuild job functions registered before :func:`patch_managers` (managers and callbacks created
    before dash-state's plugin was imported)."""
    for manager in list(BaseBackgroundCallbackManager.managers):
        if not _patched(manager):
            continue
        done = manager.__dict__.setdefault(_KEYS_ATTRIBUTE, set())
        for key, fn, progress in list(BaseBackgroundCallbackManager.functions):
            if key in done:
                continue
            tasks = _celery_tasks(manager)
            if tasks is not None:  # Celery keeps the first task of a name: drop the unwrapped one
                tasks.pop(f"background_callback_{key}", None)
            manager.register(key, fn, progress)


def _celery_tasks(manager: Any) -> Any:
    handle = getattr(manager, "handle", None)
    if handle is None or not type(handle).__module__.startswith("celery"):
        return None
    from celery import Celery

    return handle.tasks if isinstance(handle, Celery) else None  # .tasks finalizes, evaluating pending tasks


def _patched(manager: Any) -> bool:
    register = getattr(type(manager), "register", None)
    return isinstance(manager, BaseBackgroundCallbackManager) and getattr(register, _JOB_MARK, False)


# -- worker --------------------------------------------------------------------------------------
def wrap_job_function(fn: Callable, progress: bool) -> Callable:
    """The function a job calls instead of ``fn``: references in, references out.

    Without a ``dash_state`` entry in the job's context (an app without ServerStores, or a job sent
    by a web process without dash-state) it calls ``fn`` unchanged.
    """
    if getattr(fn, _JOB_MARK, False):
        return fn

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def job(*args, **kwargs):
            run = _JobRun.start(progress, args, kwargs)
            if run is None:
                return await fn(*args, **kwargs)
            return run.finish(await fn(*run.args, **run.kwargs))
    else:
        @functools.wraps(fn)
        def job(*args, **kwargs):
            run = _JobRun.start(progress, args, kwargs)
            if run is None:
                return fn(*args, **kwargs)
            return run.finish(fn(*run.args, **run.kwargs))

    setattr(job, _JOB_MARK, True)
    return job


class _JobCtx:
    """What ``hook.rewrite_outputs`` reads from a callback context: the request's entries (a Patch's
    base) and the ``set_props`` updates to rewrite."""

    def __init__(self, ctx: Any, updated_props: dict | None = None):
        self.inputs_list = _get(ctx, "inputs_list") or []
        self.states_list = _get(ctx, "states_list") or []
        self.updated_props = updated_props if updated_props is not None else {}


class _StoringSetProps(ProxySetProps):
    """``ctx.updated_props`` in a job: ``set_props(store_id, {"data": value})`` stores the value and
    forwards only its reference to the manager's own ProxySetProps (which sends it to the browser)."""

    def __init__(self, inner: ProxySetProps, rewrite: Callable[[str, dict], dict]):
        super().__init__(inner.on_change)
        self._inner = inner
        self._rewrite = rewrite

    def __setitem__(self, key, value):
        self._inner[key] = self._rewrite(key, value)

    def get(self, key, default=None):
        return self._inner.get(key, default)


class _JobRun:
    """One call of a background callback in a worker, on behalf of the user who triggered it."""

    def __init__(self, state: "AppState", info: dict, ctx: Any):
        self.state = state
        self.user = info["user"]
        self.info = info
        self.ctx = ctx
        self.args: tuple = ()
        self.kwargs: dict = {}

    @classmethod
    def start(cls, progress: bool, args: tuple, kwargs: dict) -> "_JobRun | None":
        from dash._callback_context import context_value

        try:
            ctx = context_value.get()
        except LookupError:
            return None
        info = _get(ctx, CONTEXT_KEY)
        if not isinstance(info, dict) or not info.get("user"):
            return None
        run = cls(_worker_state(), info, ctx)
        run.check()
        args = list(args)
        if progress and args:
            args[0] = run.wrap_progress(args[0])
        first = 1 if progress else 0
        sources = run.reference_sources()
        run.args = tuple(args[:first]) + tuple(run.resolve(a, sources) for a in args[first:])
        run.kwargs = {k: run.resolve(v, sources) for k, v in kwargs.items()}
        updated = _get(ctx, "updated_props")
        if isinstance(updated, ProxySetProps) and not isinstance(updated, _StoringSetProps):
            ctx["updated_props"] = _StoringSetProps(updated, run.rewrite_set_props)
        return run

    def check(self) -> None:
        """The worker must reach the web process's data: same secret, same (shared) backends."""
        state = self.state
        manager = state.manager
        for entry in (self.info.get("stores") or {}).values():
            state.store_ids.add(entry.get("id"))  # a worker may never have seen a layout with this store
        ref = references.parse(self.info.get("probe"))
        if ref is None or not references.verify(manager._secret, self.user, ref):
            raise ConfigError(
                "dash-state: this background worker signs references with another SECRET_KEY than the web "
                "server that sent the job; give every process the same app.server.config['SECRET_KEY']")
        for sid, entry in (self.info.get("stores") or {}).items():
            mine = manager.settings(sid).backend
            if mine != entry.get("backend"):
                raise ConfigError(
                    f"dash-state: ServerStore {sid!r} uses the {entry.get('backend')!r} backend in the web server "
                    f"but {mine!r} in this background worker; give the worker the same STATE_* settings")
        check_shared_backend(state, force=True)

    # inputs
    def reference_sources(self) -> dict | None:
        """reference -> store id, for the ServerStore ``data`` entries of the request (None: unknown)."""
        entries = _flat(_get(self.ctx, "inputs_list")) + _flat(_get(self.ctx, "states_list"))
        if not entries:
            return None
        sources = {}
        for item in entries:
            value = item.get("value") if isinstance(item, dict) else None
            if item.get("property") == "data" and references.looks_like_reference(value) and item.get("id") is not None:
                sources[value] = stringify_id(item["id"])
        return sources

    def resolve(self, value: Any, sources: dict | None) -> Any:
        if isinstance(value, str):
            if sources is None:
                if references.looks_like_reference(value):
                    return self.state.manager.load("?", value, user=self.user)
            elif value in sources:
                return self.state.manager.load(sources[value], value, user=self.user)
            return value
        if isinstance(value, list):
            return [self.resolve(v, sources) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v, sources) for v in value)
        if isinstance(value, dict):
            return type(value)((k, self.resolve(v, sources)) for k, v in value.items())
        return value

    # outputs
    def finish(self, value: Any) -> Any:
        spec = _get(self.ctx, "outputs_list")
        if not spec:
            return value
        multi = isinstance(spec, list)
        schema = self.info.get("schema") if multi else None
        if multi and schema is None:
            schema = list(range(len(spec)))
        return hook.rewrite_outputs(self.state, value, spec, multi, schema, _JobCtx(self.ctx), user=self.user)

    def rewrite_set_props(self, id_str: str, props: Any) -> Any:
        if not isinstance(props, dict):
            return props
        props = dict(props)
        hook.rewrite_outputs(self.state, None, None, False, None, _JobCtx(self.ctx, {id_str: props}), user=self.user)
        return props

    def wrap_progress(self, set_progress: Callable) -> Callable:
        specs = self.info.get("progress")
        if not specs or not callable(set_progress):
            return set_progress

        @functools.wraps(set_progress)
        def _set_progress(value):
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if len(values) == len(specs):
                values = hook.rewrite_outputs(self.state, values, specs, True, list(range(len(specs))),
                                              _JobCtx(self.ctx), user=self.user)
            return set_progress(values)

        return _set_progress


def _worker_state() -> "AppState":
    import dash

    from .plugin import install

    try:
        app = dash.get_app()
    except Exception as exc:
        raise ConfigError("dash-state: a background job found no Dash app in this worker; the worker must import "
                          "the module that creates the app (celery -A yourapp:celery_app worker)") from exc
    return install(app)


# -- helpers -------------------------------------------------------------------------------------
def _get(ctx: Any, name: str) -> Any:
    if isinstance(ctx, dict):
        return ctx.get(name)
    return getattr(ctx, name, None)


def _flat(items: Any) -> list:
    if isinstance(items, dict):
        return [items]
    flat = []
    for item in items or []:
        if isinstance(item, list):
            flat.extend(x for x in item if isinstance(x, dict))
        elif isinstance(item, dict):
            flat.append(item)
    return flat
