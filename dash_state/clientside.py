"""Values written in the browser: clientside callbacks, ``running=``, ``dash_clientside.set_props``.

The renderer writes those straight into the store's ``data`` and fires the store's callbacks with
them, before the component can do anything. So the server accepts them as they come, *marked as
written by the browser*, and the component then uploads the value and swaps in a reference without
firing the callbacks again (see ``src_js/server.js``). Two shapes arrive:

* plain data (``{n: 1}``, ``True``): passed to the callback as it is, unless the store refuses
  browser writes (``client_write = false`` or ``latest_only``), then it is missing (None) and logged;
* a *patched reference*: a clientside ``Patch`` that the renderer applied to the reference string
  (``"dsr2..."`` plus the operations' keys becomes ``{"0": "d", "1": "s", ..., "n": 1}``). The
  component uploads the operations it captured with the reference they apply to; the server applies
  them to the real value and stores the result under a key derived from (user, reference, patched
  object). :func:`patched_key` lets a callback that received the patched object wait briefly for that
  upload and read the result, so it sees exactly what dcc.Store would have given it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import orjson

from . import references

UPLOAD_WAIT = 5.0  # seconds a callback waits for the component's upload of a clientside Patch
_POLL = 0.02


def patched_reference(value: Any) -> str | None:
    """The reference a clientside Patch was applied to, if ``value`` is what the renderer made of it."""
    if isinstance(value, dict):
        chars = []
        for i in range(references.MAX_LENGTH + 1):
            char = value.get(str(i))
            if not isinstance(char, str) or len(char) != 1:
                break
            chars.append(char)
    elif isinstance(value, list):
        chars = []
        for item in value[:references.MAX_LENGTH + 1]:
            if not isinstance(item, str) or len(item) != 1:
                break
            chars.append(item)
    else:
        return None
    match = references.PATTERN.match("".join(chars))  # an appended 1-character item may follow
    return match.group(0) if match is not None else None


def patched_key(owner: str, base: str, patched: Any) -> str:
    """Where the result of a clientside Patch is stored: the same for the upload and for the callback."""
    canonical = orjson.dumps(patched, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return references.digest_key(b"clientside patch", owner.encode(), base.encode(), canonical)


def wait_for(find: Callable[[], Any], timeout: float = UPLOAD_WAIT) -> Any:
    """Poll ``find`` until it returns something other than None, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(_POLL)
