"""Values written in the browser: clientside callbacks, ``running=``, ``dash_clientside.set_props``.

The renderer writes those straight into the store's ``data`` and fires the store's callbacks with
them, before the component can do anything. So the server accepts them as they come, *marked as
written by the browser*, and the component then uploads the value and swaps in a reference without
firing the callbacks again (``putValue``/``patchValue`` in ``src_js/values.js``). Two shapes arrive:

* plain data (``{n: 1}``, ``True``): passed to the callback as it is, unless the store refuses
  browser writes (``client_write = false`` or ``latest_only``), then it is missing (None) and logged;
* a *patched reference*: a clientside ``Patch`` that the renderer applied to the reference string
  (``"dsr2..."`` plus the operations' keys becomes ``{"0": "d", "1": "s", ..., "n": 1}``). The
  component finds the patch that made exactly this (it replays the renderer's semantics on the
  captured patches) and uploads its operations with the reference they apply to; the server applies
  them to the real value and stores the result under a key derived from (user, patched object). :func:`patched_key` lets a callback that received the patched object wait briefly for that
  upload and read the result, so it sees exactly what dcc.Store would have given it. When the patch
  cannot be replayed (the renderer failed on the string, or the patch was not built with
  ``dash_clientside.Patch``), the component uploads no operations: readers get the unchanged value,
  the browser console says why. When no upload arrives in time, or the server has no room to wait,
  the reader fails with :class:`~dash_state.errors.PatchUploadMissing` (never a stale value).

Waiting holds a request thread, so the waits are bounded per user (:data:`MAX_WAITING_PER_USER`: the
readers one Patch fires at once) and per process (:data:`MAX_WAITING`): values crafted to look patched
make one user's own requests fail, not other users' readers.

On FastAPI and Quart a sync callback runs on the event loop, the loop that has to receive the upload:
sleeping there would let nothing in. So the server seam (:mod:`dash_state.glue.web`) awaits the
uploads a callback request needs with :func:`await_uploads` before Dash dispatches it, and
:func:`wait_for` then only looks once.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

import orjson

from dash_state.core import references
from dash_state.core.ids import store_key
from dash_state.core.logs import MissLog
from dash_state.core.references import js_key
from dash_state.errors import PatchUploadMissing
from dash_state.glue import web
from dash_state.glue.calls import MAX_HINTS

if TYPE_CHECKING:
    from dash_state.glue.runtime import AppState

UPLOAD_WAIT = 1.5  # seconds a callback waits for the component's upload of a clientside Patch
MAX_WAITING_PER_USER = 2  # callbacks of one user (identity namespace) waiting at once
MAX_WAITING = 8  # callbacks of this process waiting at once, all users together
_POLL = 0.02


_LOOSE = re.compile(r"dsr2\.|(memory|local|redis|database)\.[A-Za-z0-9_-]{22}\.[scaug][0-9a-z]{7}\.")


def _text(value: Any) -> str | None:
    """A string, or the single characters of a list or of a dict's numeric keys, as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(c if isinstance(c, str) and len(c) == 1 else "\0" for c in value[:1000])
    if isinstance(value, dict):
        digits = sorted((int(k), c) for k, c in value.items() if isinstance(k, str) and k.isascii() and k.isdigit() and len(k) < 5)
        return "".join(c if isinstance(c, str) and len(c) == 1 else "\0" for _, c in digits)
    return None


def looks_patched(value: Any) -> bool:
    """Whether ``value`` is what the renderer makes of a reference string when it applies a clientside
    Patch to it: the whole reference in a longer or reversed string, or its characters in a list or dict
    of single characters, possibly reversed, cut or with characters replaced (what delete/assign at an
    index do). ``src_js/renderer.js`` recognises the same."""
    if isinstance(value, str):  # a string can only be the whole reference with more around it, or reversed
        return patched_reference(value) is not None
    text = _text(value)
    return text is not None and any(_LOOSE.search(t) for t in (text, text[::-1]))


def patched_reference(value: Any) -> str | None:
    """The whole reference a patched value still holds, if any (the store's previous value). In a
    string it must be whole, prefix included (string operations only add around it, or reverse it)."""
    text = _text(value)
    pattern = references.PATTERN if isinstance(value, str) else references.CORE
    for candidate in (text, text[::-1]) if text is not None else ():
        match = pattern.search(candidate)
        if match is not None:
            return match.group(0) if isinstance(value, str) else "dsr2." + match.group(0)
    return None


def patched_key(owner: str, patched: Any) -> str:
    """Where the result of a clientside Patch is stored: derived from the user and what the renderer
    made, so a callback that received that can find the result without knowing the reference."""
    canonical = orjson.dumps(patched, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return references.digest_key(b"clientside patch", owner.encode(), canonical)


_lock = threading.Lock()
_waiting: dict[str, int] = {}  # user namespace -> callbacks of that user waiting now


def waiting(owner: str | None = None) -> int:
    """How many callbacks wait for an upload now: of user ``owner``, or of every user."""
    with _lock:
        return sum(_waiting.values()) if owner is None else _waiting.get(owner, 0)


def wait_for(find: Callable[[], Any], owner: str, store_id: str, timeout: float | None = None) -> Any:
    """What ``find`` returns once it is not None, polling for at most ``timeout`` seconds (default
    :data:`UPLOAD_WAIT`) in one of ``owner``'s waiting slots. Raises :class:`PatchUploadMissing`
    naming the store when the upload does not arrive in time or there is no free slot. When
    :func:`await_uploads` already waited for this request (FastAPI, Quart), it looks once."""
    found = find()
    if found is not None:
        return found
    seconds = UPLOAD_WAIT if timeout is None else timeout
    awaited = web.per_request().get(_AWAITED) if web.has_request() else None
    if awaited is not None:
        raise _missing(store_id, awaited.get(store_id, "late"), seconds)
    if not _take(owner):
        raise _missing(store_id, "full", seconds)
    try:
        deadline = time.monotonic() + seconds
        while found is None and time.monotonic() < deadline:
            time.sleep(_POLL)
            found = find()
    finally:
        _give(owner)
    if found is None:
        raise _missing(store_id, "late", seconds)
    return found


_AWAITED = "clientside_uploads_awaited"  # per_request(): store id -> "late" | "full", set by await_uploads


def _missing(store_id: str, why: str, seconds: float) -> PatchUploadMissing:
    if why == "full":
        return PatchUploadMissing(f"ServerStore {store_id!r}: the server is already waiting for as many "
                                  "clientside Patch uploads as it allows (of this user, or in all), so this "
                                  "callback cannot see the patched value; it was not run with the previous one")
    return PatchUploadMissing(f"ServerStore {store_id!r}: the browser's clientside Patch upload did not "
                              f"arrive within {seconds:g} s, so this callback cannot see the patched value; "
                              "it was not run with the previous one")


async def await_uploads(body: Any) -> None:
    """On the event loop, before Dash dispatches the callback request ``body`` (FastAPI, Quart): wait
    (without blocking the loop) for the uploads of the clientside Patches its inputs and states carry,
    in the same slots and within the same :data:`UPLOAD_WAIT` as :func:`wait_for`. Storage is read in
    the executor. What it could not find, :func:`wait_for` reports without waiting again."""
    from dash_state.glue.web.common import run_blocking

    entries = patched_entries(body)  # no I/O: most requests carry no patched value and stop here
    if not entries:
        return
    awaited: dict[str, str] = {}
    web.per_request()[_AWAITED] = awaited  # from here on, never sleep on the loop
    waits = await run_blocking(upload_waits, body, entries)
    deadline = time.monotonic() + UPLOAD_WAIT
    for find, owner, store_id in waits:
        if await run_blocking(find) is not None:
            continue
        if not _take(owner):
            awaited[store_id] = "full"
            continue
        try:
            found = None
            while found is None and time.monotonic() < deadline:
                await asyncio.sleep(_POLL)
                found = await run_blocking(find)
        finally:
            _give(owner)


def _take(owner: str) -> bool:
    with _lock:
        if _waiting.get(owner, 0) >= MAX_WAITING_PER_USER or sum(_waiting.values()) >= MAX_WAITING:
            return False
        _waiting[owner] = _waiting.get(owner, 0) + 1
        return True


def _give(owner: str) -> None:
    with _lock:
        left = _waiting.get(owner, 0) - 1
        if left > 0:
            _waiting[owner] = left
        else:
            _waiting.pop(owner, None)


# -- what callbacks receive -----------------------------------------------------------------------
def client_value(state: "AppState", sid: str, value: Any, misses: MissLog | None) -> Any:
    """A value the browser wrote into a ServerStore (see :mod:`dash_state.glue.clientside`)."""
    manager = state.manager
    settings = manager.settings(sid)
    if not settings.client_write:
        manager.miss(sid, "refused", misses)
        return manager.latest(sid)  # the store's own (server-written) value stays what callbacks see
    if not looks_patched(value):
        return value
    if settings.shared:  # the route applies a clientside Patch to the shared value; callbacks read that
        return manager.latest(sid)
    who = manager.identity(create=False)
    base = patched_reference(value)
    found = None
    if who is not None and (base is None or manager.owned(sid, base)):
        backend = manager.backend(settings.backend)
        key = patched_key(who.namespace, value)
        # the result, or PatchUploadMissing (a 422 naming the store): never the previous value in its place
        found = wait_for(lambda: backend.get(who.namespace, key), who.namespace, sid)
    if found is not None:
        return found.thaw()
    manager.throttle(logging.WARNING, "clientside-patch", "ServerStore %r: a clientside Patch() reached the server "
                     "without its operations (see the browser console); the store's previous value is used", sid)
    return manager.load(sid, base, misses=misses) if base is not None else manager.latest(sid)


def patched_entries(body: Any) -> list[dict]:
    """The ``data`` entries of a callback request's inputs and states that hold a clientside Patch the
    renderer applied to a reference (see :func:`client_value`); pure, no storage or request access."""
    if not isinstance(body, dict):
        return []
    found = []
    for part in ("inputs", "state"):
        items = body.get(part)
        for item in items if isinstance(items, list) else ():
            for entry in item if isinstance(item, list) else (item,):
                if not isinstance(entry, dict) or entry.get("property") != "data" or not references.id_problem(entry.get("id")) is None:
                    continue
                value = entry.get("value")
                if value is None or (references.looks_like_reference(value) and references.parse(value) is not None):
                    continue
                if looks_patched(value):
                    found.append(entry)
    return found


def upload_waits(body: dict, entries: list[dict]) -> list[tuple[Callable[[], Any], str, str]]:
    """For :func:`await_uploads`: ``(find, owner, store id)`` for each of ``entries``
    (:func:`patched_entries` of the callback request ``body``) that :func:`client_value` would wait
    for, under the same conditions (a store the layouts or the component's hints name as a ServerStore)."""
    from dash_state.glue.runtime import (
        current_state,  # runtime's imports reach this module
    )

    state = current_state()
    if state is None or not entries:
        return []
    state.scan_layouts()
    extra = body.get("dash_state")
    stores = extra.get("stores") if isinstance(extra, dict) else None
    hinted = {s for s in stores[:MAX_HINTS] if isinstance(s, str)} if isinstance(stores, list) else set()
    manager = state.manager
    waits = []
    for entry in entries:
        store_id = entry["id"]
        sid = store_key(store_id)
        if store_id not in state.store_ids and js_key(sid) not in hinted:
            continue
        if not manager.keeps_on_server(sid):
            continue
        settings = manager.settings(sid)
        if not settings.client_write or settings.shared:
            continue
        who = manager.identity(create=False)
        base = patched_reference(entry["value"])
        if who is None or (base is not None and not manager.owned(sid, base)):
            continue
        backend = manager.backend(settings.backend)
        key = patched_key(who.namespace, entry["value"])
        waits.append((partial(backend.get, who.namespace, key), who.namespace, sid))
    return waits
