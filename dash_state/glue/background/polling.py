"""Two races in Dash 4.4's polling of background jobs, closed on the managers dash-state guards.

Found by the Celery test failing once in a full CI run; both lose a finished job's outputs, with
dcc.Store as with ServerStore, and the renderer then treats the callback as cancelled:

1. ``CeleryManager.get_updated_props`` deletes the job's *result* after reading its ``set_props``
   (it clears ``key``, where DiskcacheManager clears the set_props key). A poll that reads the
   set_props just after the job wrote its result, before it finished, deletes that result. Here the
   set_props entry is read and cleared instead, as DiskcacheManager does.
2. A poll reads the result, then asks whether the job still runs. A job that writes its result and
   finishes between the two looks cancelled. Here ``get_result``, finding nothing, asks about the job
   itself; a finished job wrote its result before finishing, so the result is read once more, and
   what was seen is what ``job_running`` answers for the rest of that poll.
"""
from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

_MARK = "_dash_state_consistent_polls"
# job id -> "still running?", as get_result saw it; consumed by job_running in the same poll
_seen: ContextVar[dict | None] = ContextVar("dash_state_job_running_seen", default=None)


def make_polls_consistent(manager: Any) -> None:
    """Wrap one manager's ``get_result`` and ``job_running`` (and Celery's ``get_updated_props``), once."""
    if manager is None or manager.__dict__.get(_MARK):
        return
    manager.__dict__[_MARK] = True
    get_result, job_running, undefined = manager.get_result, manager.job_running, manager.UNDEFINED

    def consistent_get_result(key: Any, job: Any) -> Any:
        result = get_result(key, job)
        if result is undefined and job is not None:
            running = bool(job_running(job))
            if not running:
                result = get_result(key, job)
            if result is undefined:
                _seen.set({job: running})
        return result

    def consistent_job_running(job: Any) -> Any:
        seen = _seen.get()
        if seen and job in seen:
            return seen.pop(job)
        return job_running(job)

    manager.get_result, manager.job_running = consistent_get_result, consistent_job_running
    if _is_dash_celery_manager(manager):
        manager.get_updated_props = lambda key: _celery_updated_props(manager, key)


def _is_dash_celery_manager(manager: Any) -> bool:
    cls = type(manager)
    return cls.__name__ == "CeleryManager" and cls.__module__.startswith("dash.") and \
        hasattr(manager, "_make_set_props_key") and hasattr(getattr(manager, "handle", None), "backend")


def _celery_updated_props(manager: Any, key: Any) -> dict:
    props_key = manager._make_set_props_key(key)
    raw = manager.handle.backend.get(props_key)
    if raw is None:
        return {}
    manager.clear_cache_entry(props_key)
    return json.loads(raw)
