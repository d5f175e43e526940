"""Background job keys per user.

Dash keys a job's result by a hash of the callback's source and arguments (plus ``cache_by``). Two
users who send the same arguments get the same key: one user's poll then returns, and deletes, the
other's result (which the other's poll never sees), and with ``cache_by`` one user is served the
other's cached result. In an app with ServerStores the same arguments do not mean the same result: a
job reads the user's own stores (``get_store``, references resolved for that user).

So every manager dash-state guards builds its keys through :func:`user_job_key`: Dash's key, HMAC'd
with the user's namespace under a key derived from ``SECRET_KEY`` (the same in every worker, so
``cache_by`` still caches, per user; the key reveals neither the namespace nor a user id). Apps
without ServerStores keep Dash's keys.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any

from dash_state.glue import web
from dash_state.glue.background.worker import CONTEXT_KEY, get
from dash_state.glue.layout import in_use

_MARK = "_dash_state_user_keys"
PURPOSE = "background job key"


def per_user_keys(manager: Any) -> None:
    """Make one manager's ``build_cache_key`` return :func:`user_job_key` of Dash's key (once)."""
    if manager.__dict__.get(_MARK):
        return
    manager.__dict__[_MARK] = True
    build_cache_key = manager.build_cache_key

    @functools.wraps(build_cache_key)
    def per_user(*args: Any, **kwargs: Any) -> Any:
        return user_job_key(build_cache_key(*args, **kwargs))

    manager.build_cache_key = per_user


def user_job_key(key: Any) -> Any:
    """``key`` made the current user's own, in a request of an app that uses ServerStores."""
    from dash_state.glue.runtime import current_state

    if not isinstance(key, str) or not in_use() or not web.has_request():
        return key
    state = current_state()
    if state is None or not _uses_stores(state):
        return key
    manager = state.manager
    who = manager.identity()
    if who is None:
        return key
    return hmac.new(manager.keys.current(PURPOSE), f"{who.namespace}\0{key}".encode(), hashlib.sha256).hexdigest()


def _uses_stores(state: Any) -> bool:
    """The app's layouts have ServerStores, or this callback's job carries dash-state's entry."""
    from dash_state.glue import compat

    state.scan_layouts()
    if state.store_ids:
        return True
    ctx = compat.callback_context()
    return ctx is not None and bool(get(ctx, CONTEXT_KEY))
