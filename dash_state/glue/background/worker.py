"""The job's side of background callbacks: runs in the DiskcacheManager subprocess or Celery worker.

Dash calls ``BaseBackgroundCallbackManager.register(key, fn, progress)`` for every (manager,
function); :func:`patch_managers` makes ``fn`` a wrapper (same ``key``, so the job names in web and
worker still agree) that resolves the references among the arguments with the job's user, calls
the function, stores ServerStore outputs, ``set_props`` and ``set_progress`` values of shared-backend
stores, and hands references back to Dash. Values of memory-backend stores pass through unchanged:
the web process resolved them before the job and stores them when the browser polls.
"""
from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Callable

from dash_state.core import references
from dash_state.core.ids import store_key
from dash_state.core.logs import MissLog
from dash_state.errors import ConfigError
from dash_state.glue import compat, hook
from dash_state.identity import Identity, acting_as

if TYPE_CHECKING:
    from dash_state.glue.runtime import AppState

CONTEXT_KEY = "dash_state"  # the entry in Dash's callback context that travels with the job
JOB_MARK = "__dash_state_job__"
_KEYS_ATTRIBUTE = "_dash_state_job_keys"  # per manager: keys whose job function wraps the user function
PROBE_STORE = "@probe"
PROBE_KEY = references.digest_key(b"dash-state background secret probe")


# -- both: registering job functions --------------------------------------------------------------
def patch_managers() -> None:
    """Make every job function Dash builds from now on call :func:`wrap_job_function`, and its manager
    key jobs per user (:mod:`.keys`); once per process."""
    if not compat.available("background callbacks"):
        return
    manager_class = _manager_class()
    original = manager_class.register
    if getattr(original, JOB_MARK, False):
        return

    @functools.wraps(original)
    def register(self, key, fn, progress):
        from dash_state.glue.background.keys import per_user_keys

        original(self, key, wrap_job_function(fn, progress), progress)
        self.__dict__.setdefault(_KEYS_ATTRIBUTE, set()).add(key)
        per_user_keys(self)  # a manager with a job function builds job keys: per user from now on

    setattr(register, JOB_MARK, True)
    setattr(register, compat.MARKER, True)
    manager_class.register = register


def _manager_class() -> Any:
    import importlib

    return importlib.import_module("dash.background_callback.managers").BaseBackgroundCallbackManager


def reregister() -> None:
    """Rebuild job functions registered before :func:`patch_managers` (managers and callbacks created
    before dash-state's plugin was imported)."""
    functions = compat.get("dash.background_callback.managers:BaseBackgroundCallbackManager.functions") \
        if compat.available("background callbacks") else []
    for manager in compat.background_managers():
        if not patched(manager):
            continue
        done = manager.__dict__.setdefault(_KEYS_ATTRIBUTE, set())
        for key, fn, progress in list(functions):
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


def patched(manager: Any) -> bool:
    register = getattr(type(manager), "register", None)
    return compat.available("background callbacks") and isinstance(manager, _manager_class()) and \
        getattr(register, JOB_MARK, False)


# -- worker --------------------------------------------------------------------------------------
def wrap_job_function(fn: Callable, progress: bool) -> Callable:
    """The function a job calls instead of ``fn``: references in, references out.

    Without a ``dash_state`` entry in the job's context (an app without ServerStores, or a job sent
    by a web process without dash-state) it calls ``fn`` unchanged.
    """
    if getattr(fn, JOB_MARK, False):
        return fn

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def job(*args, **kwargs):
            run = JobRun.start(progress, args, kwargs)
            if run is None:
                return await fn(*args, **kwargs)
            with acting_as(run.user):  # get_store/set_store in the job act for the job's user
                return run.finish(await fn(*run.args, **run.kwargs))
    else:
        @functools.wraps(fn)
        def job(*args, **kwargs):
            run = JobRun.start(progress, args, kwargs)
            if run is None:
                return fn(*args, **kwargs)
            with acting_as(run.user):
                return run.finish(fn(*run.args, **run.kwargs))

    setattr(job, JOB_MARK, True)
    return job


class JobCtx:
    """What ``hook.rewrite_outputs`` reads from a callback context: the request's entries (a Patch's
    base) and the ``set_props`` updates to rewrite."""

    def __init__(self, ctx: Any, updated_props: dict | None = None):
        self.inputs_list = get(ctx, "inputs_list") or []
        self.states_list = get(ctx, "states_list") or []
        self.updated_props = updated_props if updated_props is not None else {}


class _StoringSetProps(compat.get("dash.background_callback._proxy_set_props:ProxySetProps")):
    """``ctx.updated_props`` in a job: ``set_props(store_id, {"data": value})`` stores the value and
    forwards only its reference to the manager's own ProxySetProps (which sends it to the browser)."""

    def __init__(self, inner: Any, rewrite: Callable[[str, dict], dict]):
        super().__init__(inner.on_change)
        self._inner = inner
        self._rewrite = rewrite

    def __setitem__(self, key, value):
        self._inner[key] = self._rewrite(key, value)

    def get(self, key, default=None):
        return self._inner.get(key, default)


class JobRun:
    """One call of a background callback in a worker, on behalf of the user who triggered it."""

    def __init__(self, state: "AppState", info: dict, ctx: Any):
        self.state = state
        aliases = tuple(a for a in info.get("aliases") or () if isinstance(a, str))
        self.user = Identity(info["user"], aliases, kind="job")
        self.info = info
        self.ctx = ctx
        self.args: tuple = ()
        self.kwargs: dict = {}
        self.misses = MissLog()  # references the job could not resolve: logged (and audited) once

    @classmethod
    def start(cls, progress: bool, args: tuple, kwargs: dict) -> "JobRun | None":
        ctx = compat.callback_context()
        if ctx is None:
            return None
        info = get(ctx, CONTEXT_KEY)
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
        run.flush_misses()
        updated = get(ctx, "updated_props")
        proxy = compat.get("dash.background_callback._proxy_set_props:ProxySetProps")
        if isinstance(updated, proxy) and not isinstance(updated, _StoringSetProps):
            ctx["updated_props"] = _StoringSetProps(updated, run.rewrite_set_props)
        return run

    def check(self) -> None:
        """The worker must reach the web process's data: same secret, same (shared) backends."""
        state = self.state
        manager = state.manager
        state.scan_layouts()  # set_props may target stores that are not among the callback's outputs
        for entry in (self.info.get("stores") or {}).values():
            state.store_ids.add(entry.get("id"))  # a worker may never have seen a layout with this store
        ref = references.parse(self.info.get("probe"))
        if ref is None or not references.verify(manager._ref_keys, self.user.namespace, PROBE_STORE, ref):
            raise ConfigError(
                "dash-state: this background worker signs references with another SECRET_KEY than the web "
                "server that sent the job; give every process the same app.server.config['SECRET_KEY']")
        for sid, entry in (self.info.get("stores") or {}).items():
            mine = manager.settings(sid).backend
            if mine != entry.get("backend"):
                raise ConfigError(
                    f"dash-state: ServerStore {sid!r} uses the {entry.get('backend')!r} backend in the web server "
                    f"but {mine!r} in this background worker; give the worker the same STATE_* settings")

    # inputs
    def reference_sources(self) -> dict | None:
        """reference -> store id, for the ServerStore ``data`` entries of the request (None: unknown)."""
        entries = flat(get(self.ctx, "inputs_list")) + flat(get(self.ctx, "states_list"))
        if not entries:
            return None
        sources = {}
        for item in entries:
            value = item.get("value") if isinstance(item, dict) else None
            if item.get("property") == "data" and references.looks_like_reference(value) and item.get("id") is not None:
                sources[value] = store_key(item["id"])
        return sources

    def flush_misses(self) -> None:
        from dash_state.core.missing import REASONS as MISS_REASONS

        self.misses.flush(MISS_REASONS)

    def resolve(self, value: Any, sources: dict | None) -> Any:
        if isinstance(value, str):
            if sources is None:
                if references.looks_like_reference(value):
                    return hook._copy_of(self.state, value, self.user)
            elif value in sources:
                return self.state.manager.load(sources[value], value, self.user, misses=self.misses)
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
        spec = get(self.ctx, "outputs_list")
        if not spec:
            return value
        multi = isinstance(spec, list)
        schema = self.info.get("schema") if multi else None
        if multi and schema is None:
            schema = list(range(len(spec)))
        return hook.rewrite_outputs(self.state, value, spec, multi, schema, JobCtx(self.ctx), user=self.user)

    def rewrite_set_props(self, id_str: str, props: Any) -> Any:
        if not isinstance(props, dict):
            return props
        props = dict(props)
        hook.rewrite_outputs(self.state, None, None, False, None, JobCtx(self.ctx, {id_str: props}), user=self.user)
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
                                              JobCtx(self.ctx), user=self.user)
            return set_progress(values)

        return _set_progress


def _worker_state() -> "AppState":
    import dash

    from dash_state.glue.runtime import app_state

    try:
        state = app_state(dash.get_app())
    except Exception:  # noqa: BLE001 - dash raises its own "no app" error types
        state = None
    if state is None:
        raise ConfigError("dash-state: a background job found no Dash app in this worker; the worker must import "
                          "the module that creates the app (celery -A yourapp:celery_app worker)")
    return state


# -- helpers -------------------------------------------------------------------------------------
def get(ctx: Any, name: str) -> Any:
    if isinstance(ctx, dict):
        return ctx.get(name)
    return getattr(ctx, name, None)


def flat(items: Any) -> list:
    if isinstance(items, dict):
        return [items]
    flat = []
    for item in items or []:
        if isinstance(item, list):
            flat.extend(x for x in item if isinstance(x, dict))
        elif isinstance(item, dict):
            flat.append(item)
    return flat
