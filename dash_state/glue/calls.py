"""One callback call's dash-state context: what the component told about its ServerStores, what they
resolved to, and the references that could not be served (logged once per request).

The hook fills it (:func:`begin_call` when inputs are resolved); the Python API reads it, so that
``get_store`` inside a callback returns what the calling page's store holds and ``set_store`` updates
that page's store in the same response.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from dash_state.core import references
from dash_state.core.ids import store_key
from dash_state.core.logs import MissLog
from dash_state.glue import web

MAX_HINTS = 200
_CALL = "_dash_state_call"
MISSES = "_dash_state_misses"  # popped by the response hook (plugin._after_request)


@dataclass
class Call:
    """What one callback request tells about its ServerStores, and what they resolved to."""

    prev: dict[str, str] = field(default_factory=dict)  # js id key -> the reference that tab holds
    hinted: set[str] = field(default_factory=set)  # js id keys the browser says are ServerStores
    values: dict[str, Any] = field(default_factory=dict)  # store id -> the value the callback received
    mcp: bool = False
    ttl: dict[str, float] = field(default_factory=dict)  # store id -> TTL asked for by set_store(ttl=...)
    release: list[tuple[Any, Any]] = field(default_factory=list)  # (store id, reference) the page let go of


def begin_call(mcp: bool = False) -> Call:
    """Start a callback: read the component's hints from the request body (bounded, never trusted
    for more than this request's own outputs)."""
    call = Call(mcp=mcp)
    body = web.request_json()
    extra = body.get("dash_state") if isinstance(body, dict) else None
    if isinstance(extra, dict):
        prev, stores = extra.get("prev"), extra.get("stores")
        if isinstance(prev, dict):
            call.prev = {k: v for k, v in list(prev.items())[:MAX_HINTS] if isinstance(v, str) and len(v) <= 256}
        if isinstance(stores, list):
            call.hinted = {s for s in stores[:MAX_HINTS] if isinstance(s, str) and len(s) <= references.MAX_STORE_ID}
        released = extra.get("release")
        if isinstance(released, list):
            call.release = [(e.get("id"), e.get("reference")) for e in released[:MAX_HINTS] if isinstance(e, dict)]
    if web.has_request():
        web.per_request()[_CALL] = call
    return call


def carried(ctx: Any, store_id: Any) -> tuple[bool, Any]:
    """Whether the callback request carries ``store_id``'s ``data`` as an Input or State (a dict id
    matches its stringified form too), and the raw value it carries (a reference, or browser data)."""
    for item in chain(getattr(ctx, "inputs_list", None) or (), getattr(ctx, "states_list", None) or ()):
        for entry in item if isinstance(item, list) else (item,):
            if isinstance(entry, dict) and entry.get("property") == "data" and _same_id(entry.get("id"), store_id):
                return True, entry.get("value")
    return False, None


def _same_id(a: Any, b: Any) -> bool:
    if a == b:
        return True
    return isinstance(a, (str, dict)) and isinstance(b, (str, dict)) and store_key(a) == store_key(b)


def current_call() -> Call | None:
    """This request's call, if a callback is running in it (kept in the request's own storage, so a
    worker thread's next request never sees it); None outside requests (scripts, background workers)."""
    return web.per_request().get(_CALL) if web.has_request() else None


def request_misses() -> MissLog | None:
    """This request's collector of unusable references (flushed once, after the request)."""
    if not web.has_request():
        return None
    g = web.per_request()
    misses = g.get(MISSES)
    if misses is None:
        misses = g[MISSES] = MissLog()
    return misses
