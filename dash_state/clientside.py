"""Values written in the browser: clientside callbacks, ``running=``, ``dash_clientside.set_props``.

The renderer writes those straight into the store's ``data`` and fires the store's callbacks with
them, before the component can do anything. So the server accepts them as they come, *marked as
written by the browser*, and the component then uploads the value and swaps in a reference without
firing the callbacks again (see ``src_js/server.js``). Two shapes arrive:

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
  the browser console says why.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable

import orjson

from . import references

UPLOAD_WAIT = 1.5  # seconds a callback waits for the component's upload of a clientside Patch
MAX_WAITING = 4  # callbacks of this process waiting at once; more get the previous value at once
_POLL = 0.02


_LOOSE = re.compile(r"dsr2\.|(memory|redis|database)\.[A-Za-z0-9_-]{22}\.[sca][0-9a-z]{7}\.")


def _text(value: Any) -> str | None:
    """A string, or the single characters of a list or of a dict's numeric keys, as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(c if isinstance(c, str) and len(c) == 1 else "\0" for c in value[:1000])
    if isinstance(value, dict):
        digits = sorted((int(k), c) for k, c in value.items() if isinstance(k, str) and k.isdigit() and len(k) < 5)
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


_waiting = threading.BoundedSemaphore(MAX_WAITING)


def wait_for(find: Callable[[], Any], timeout: float | None = None) -> Any:
    """Poll ``find`` until it returns something other than None, for at most ``timeout`` seconds
    (default :data:`UPLOAD_WAIT`). At most :data:`MAX_WAITING` callbacks wait at once, so values
    crafted to look patched cannot tie up the process's threads."""
    found = find()
    if found is not None or not _waiting.acquire(blocking=False):
        return found
    try:
        deadline = time.monotonic() + (UPLOAD_WAIT if timeout is None else timeout)
        while found is None and time.monotonic() < deadline:
            time.sleep(_POLL)
            found = find()
        return found
    finally:
        _waiting.release()
