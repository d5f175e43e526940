"""Websocket callbacks (Dash >= 4.2 on FastAPI and Quart: ``<prefix>_dash-ws-callback``).

One websocket connection carries many callback calls, some at the same time. dash-state keeps:

* a **connection record**, set where the handshake (an HTTP request, with the page's cookies) enters
  the app: the FastAPI middleware for ``scope["type"] == "websocket"``, Quart's ``before_websocket``.
  Its :class:`Connection` holds the identity decided once, at the handshake, from the identity
  cookie's signature and the resolver (:func:`dash_state.identity.handshake`); nothing a message
  carries can change it;
* a **call record** per ``callback_request`` message, made by Dash's ``websocket_message`` hook
  (:func:`begin_message`) in the handler's context right before Dash dispatches the call: Dash copies
  that context into the call (``copy_context()`` for a sync callback run in its executor, the task's
  own copy for an async one), so the callback, ``set_props`` and ``_prepare_response`` see the call's
  own record: its own ``per_request()`` storage, and the connection's identity.

One gap: for a sync callback Dash runs ``_prepare_callback`` and ``_inputs_to_vals`` in the executor
thread *outside* the copied context (``dash/backends/ws.py``, ``run_callback_in_executor``). The call
record is therefore also filed under the first ``inputs + state`` entry of its payload (the very object
Dash hands to ``_inputs_to_vals``), and :func:`claimed` finds it there. An entry nobody claimed (a
call Dash dropped) is removed when its connection closes.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dash_state.glue.web.common import RECORD, Record

#: the handshake's identity was not decided (dash-state's websocket_connect hook did not run): no identity
UNRESOLVED = object()
_MAX_PENDING = 10_000


class Connection:
    """One websocket connection: its handshake's record and identity, and its calls not yet claimed."""

    __slots__ = ("identity", "pending", "record")

    def __init__(self, record: Record) -> None:
        self.record = record
        self.identity: Any = UNRESOLVED  # an Identity, or None (no usable identity cookie at the handshake)
        self.pending: set[int] = set()


_pending: dict[int, tuple[Any, Record]] = {}  # id(first inputs+state entry) -> (that entry, call record)
_lock = threading.Lock()


def open_connection(kind: str, app: Any, scope: dict | None = None, request: Any = None) -> Record:
    """The record of a websocket handshake (set in the connection's context by the server module)."""
    record = Record(kind, app, scope=scope, request=request)
    record.connection = Connection(record)
    return record


def close_connection(record: Record | None) -> None:
    """Forget the connection's calls that were never claimed."""
    connection = getattr(record, "connection", None)
    if connection is None:
        return
    with _lock:
        for key in connection.pending:
            _pending.pop(key, None)
        connection.pending.clear()


def is_call(record: Record | None) -> bool:
    """``record`` is one websocket callback call's own record."""
    return record is not None and record.connection is not None and record.json is not None


def begin_message(message: Any) -> None:
    """Dash's ``websocket_message`` hook: a ``callback_request`` gets a call record of its own, in the
    handler's context (which Dash copies into the call); any other message puts back the connection's."""
    current = RECORD.get()
    connection = getattr(current, "connection", None)
    if connection is None:
        return
    base = connection.record
    payload = message.get("payload") if isinstance(message, dict) and message.get("type") == "callback_request" \
        else None
    if not isinstance(payload, dict):
        RECORD.set(base)
        return
    call = Record(base.kind, base.app, scope=base.scope, request=base.request)
    call.connection, call.json = connection, payload  # the payload: the component's hints (calls.begin_call)
    RECORD.set(call)
    first = _first_entry(payload)
    if first is not None:
        key = id(first)
        with _lock:
            if len(_pending) >= _MAX_PENDING:  # calls Dash dropped on connections still open: oldest first
                _pending.pop(next(iter(_pending)))
            _pending[key] = (first, call)
            connection.pending.add(key)


def _first_entry(payload: dict) -> Any:
    for name in ("inputs", "state"):
        entries = payload.get(name)
        if isinstance(entries, list) and entries:
            return entries[0]
    return None


def _claim(inputs: Any) -> Record | None:
    if not _pending or not isinstance(inputs, list) or not inputs:
        return None
    with _lock:
        found = _pending.get(id(inputs[0]))
        if found is None or found[0] is not inputs[0]:
            return None
        del _pending[id(inputs[0])]
        found[1].connection.pending.discard(id(inputs[0]))
    return found[1]


@contextmanager
def claimed(inputs: Any) -> Iterator[None]:
    """Around ``_inputs_to_vals``: a websocket call's record is current, also in the executor thread where
    Dash runs a sync callback's ``_inputs_to_vals`` outside the call's context (and only there)."""
    found = _claim(inputs)
    if found is None or RECORD.get() is found:
        yield
        return
    token = RECORD.set(found)
    try:
        yield
    finally:
        RECORD.reset(token)
