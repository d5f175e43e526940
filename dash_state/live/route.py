"""``POST _dash-state/v1/live``: the open page's channel for its live stores.

Body: ``{"stores": [{"id", "reference"}], "wait": bool}``, each a ``live`` user- or app-scoped store
of the page with the reference it holds (or null). Changes are ``{"id", "reference", "version"}``:
the store's current reference, signed for the asking user (or the app's), and its version; never a
value. A page gets only stores it may read: its own user's values (the identity of the request, never
anything the body says) and app values.

* ``"wait": true`` where the server can hold a connection (see :func:`transport`): a Server-Sent
  Events stream (``text/event-stream``). Its first event, ``hello``, carries what changed since the
  page's references were made (the catch-up after a reconnect: the latest version, never an older
  one); then one event per change, a ``: ping`` comment every :data:`PING_SECONDS`, and the end after
  ``STATE_LIVE_STREAM_SECONDS`` (the page reconnects at once).
* otherwise (``"wait": false``, or a server that cannot hold connections): JSON ``{"changes",
  "transport": "poll", "interval"}`` at once; the page asks again ``interval`` seconds later. The
  answer reads only the stores' pointers (the version), never a value.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Iterator, NamedTuple

import orjson
from dash import hooks

from dash_state.backends import pointer_name
from dash_state.config import StoreSettings
from dash_state.core import references, shared
from dash_state.core.manager import StateManager
from dash_state.core.versions import version_of
from dash_state.glue import web
from dash_state.glue.routes import PREFIX, BadRequest, _entries, _reply, json_route
from dash_state.glue.runtime import AppState
from dash_state.live.hub import Subscription, Watch

PING_SECONDS = 15.0


class Entry(NamedTuple):
    raw_id: Any  # the id as the page sent it, echoed back
    sid: str
    settings: StoreSettings
    watch: Watch


class Held:
    """What one page holds per store: the key of its reference (None: no value, or not ours)."""

    def __init__(self, manager: StateManager, who: str | None, entries: list[Entry], refs: list[Any]):
        self.manager, self.who, self.entries = manager, who, entries
        self.keys: dict[str, str | None] = {}
        for entry, raw in zip(entries, refs):
            owned = manager.owned(entry.sid, raw, who) if raw is not None else None
            self.keys[entry.sid] = owned.ref.key if owned and owned.ref.scope in references.SHARED_SCOPES else None

    def changes(self, only: set[Watch] | None = None) -> list[dict]:
        """The stores whose current version is newer than what the page holds (and remember it)."""
        found = []
        for entry in self.entries:
            if only is not None and entry.watch not in only:
                continue
            at = shared.current(self.manager, entry.sid, entry.settings, self.who)
            held = self.keys[entry.sid]
            if at is None or at.key is None or at.key == held or version_of(at.key) < version_of(held):
                continue
            self.keys[entry.sid] = at.key
            found.append({"id": entry.raw_id, "reference": shared.token(self.manager, entry.sid, entry.settings, at),
                          "version": version_of(at.key)})
        return found


@hooks.route(PREFIX + "live", methods=("POST",))
@json_route
def live(state: AppState, manager: StateManager, body: dict) -> Any:
    who = manager.identity(create=False)
    namespace = None if who is None or who.minted else who.namespace
    entries, refs = _watched(state, manager, body, namespace)
    held = Held(manager, namespace, entries, refs)
    chosen = transport(manager)
    if body.get("wait") is not True or chosen == "poll" or not entries or \
            not manager.live.open_stream(stream_limit(manager)):
        return _reply({"changes": held.changes(), "transport": "poll",
                       "interval": manager.config["STATE_LIVE_POLL_SECONDS"]})
    subscription = manager.live.subscribe([entry.watch for entry in entries])  # before the catch-up read
    first = held.changes()
    deadline = time.monotonic() + manager.config["STATE_LIVE_STREAM_SECONDS"]
    stream = _stream(manager, subscription, held, first, deadline)
    return web.stream(stream, "text/event-stream", {"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _watched(state: AppState, manager: StateManager, body: dict, namespace: str | None) -> tuple[list[Entry], list]:
    """The live scoped stores of the body this request may read (others are left out)."""
    state.scan_layouts()
    raw_stores = body.get("stores")
    entries, refs = [], []
    for (sid, reference), raw in zip(_entries(body), [e for e in raw_stores if isinstance(e, dict)]):
        if raw.get("id") not in state.store_ids and sid not in state.store_ids:
            raise BadRequest(f"'id' {sid!r:.80} is not a ServerStore of this app")
        settings = manager.settings(sid)
        if not (settings.shared and settings.live):
            continue  # a page served before the settings changed: it just gets no updates
        owner = references.APP_OWNER if settings.scope == "app" else namespace
        if owner is None:
            continue  # no identity cookie: no user value to watch
        backend = manager.backend(settings.backend)
        entries.append(Entry(raw.get("id"), sid, settings, Watch(backend.name, owner, pointer_name(sid))))
        refs.append(reference)
    return entries, refs


def transport(manager: StateManager) -> str:
    """``sse`` where this server can hold a connection without blocking others, else ``poll``: threaded
    WSGI servers (gunicorn gthread, Flask's, waitress), FastAPI and Quart (a stream's generator runs in
    their thread pool), gevent and eventlet."""
    chosen = manager.config["STATE_LIVE_TRANSPORT"]
    if chosen != "auto":
        return chosen
    if web.holds_connections():
        return "sse"
    for module in ("gevent.monkey", "eventlet.patcher"):
        patched = getattr(sys.modules.get(module), "is_module_patched", None)
        if patched is not None and patched("socket"):
            return "sse"
    return "poll"


def stream_limit(manager: StateManager) -> int:
    """STATE_LIVE_MAX_STREAMS, and at most half of this worker's thread pool when the server runs
    requests in one (gunicorn's gthread: ``--threads``; FastAPI: anyio's, 40 threads by default; Quart:
    the loop's executor), so streams never take every thread."""
    limit = manager.config["STATE_LIVE_MAX_STREAMS"]
    pool = web.pool_size() or _pool_size()
    return limit if pool is None else min(limit, pool // 2)


def _pool_size() -> int | None:
    """The size of the thread pool running this request, if it is a concurrent.futures pool."""
    args = getattr(threading.current_thread(), "_args", None)  # a pool thread runs _worker(executor_ref, ...)
    if not args or not callable(args[0]):
        return None
    try:
        executor = args[0]()
    except TypeError:
        return None
    size = getattr(executor, "_max_workers", None)
    return size if isinstance(size, int) else None


def _event(payload: dict, name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def _stream(manager: StateManager, subscription: Subscription, held: Held, first: list[dict],
            deadline: float) -> Iterator[bytes]:
    try:
        yield _event({"transport": "sse", "changes": first}, "hello")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            changed = subscription.wait(min(PING_SECONDS, left))
            changes = held.changes(changed) if changed else []
            yield _event({"changes": changes}) if changes else b": ping\n\n"
    finally:
        manager.live.unsubscribe(subscription)
        manager.live.close_stream()
