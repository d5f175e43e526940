"""What the three server modules share: the per-request record of the ASGI servers, the errors a body
read raises, and :class:`ResponseView`, the part of a response dash-state may read and change."""
from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

#: the ASGI servers' per-request record, set by dash-state's middleware (FastAPI) or before_request
#: (Quart) in the request's own context: callbacks on the event loop, sync routes in the thread pool
#: (anyio and Quart copy the context) and the response hook all see it. Flask keeps ``flask.g``.
RECORD: contextvars.ContextVar[Record | None] = contextvars.ContextVar("dash_state_request", default=None)


class TooLarge(Exception):
    """The request body is larger than the limit the caller gave."""

    def __init__(self, limit: int):
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class BodyError(Exception):
    """The body could not be read (the client hung up, a server limit): answered with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Record:
    """What one HTTP request on FastAPI or Quart carries for dash-state."""

    __slots__ = ("app", "body", "connection", "json", "kind", "pool", "request", "scope", "store")

    def __init__(self, kind: str, app: Any, scope: dict | None = None, request: Any = None) -> None:
        self.kind, self.app, self.scope, self.request = kind, app, scope, request
        self.body: bytes | TooLarge | None = None  # a dash-state route's body, read (bounded) before the route ran
        self.json: Any = None  # Quart: the callback body, parsed before Dash's dispatch (which caches it)
        self.pool: int | None = None  # FastAPI: the size of anyio's thread pool running sync routes
        self.store: dict = {}  # per_request()
        #: a websocket's :class:`~.websocket.Connection` (its handshake's identity): set on the connection's
        #: record and on each of its callback calls' records (whose ``json`` is the call's payload)
        self.connection: Any = None


class ResponseView:
    """The status and headers of a response about to be sent, the same on every server."""

    def __init__(self, status: int, get: Callable[[str], str | None], add: Callable[[str, str], None],
                 cookie: Callable[..., None] | None = None, vary: Callable[[str], None] | None = None) -> None:
        self.status = status
        self._get, self._add, self._cookie, self._vary = get, add, cookie, vary

    def header(self, name: str) -> str | None:
        return self._get(name)

    def add_header(self, name: str, value: str) -> None:
        self._add(name, value)

    def add_vary(self, value: str) -> None:
        if self._vary is not None:
            self._vary(value)
        else:
            self._add("Vary", value)

    def set_cookie(self, name: str, value: str, *, max_age: int | None = None, path: str = "/",
                   secure: bool = False, httponly: bool = True, samesite: str = "Lax") -> None:
        if self._cookie is not None:  # the framework's own (Flask's adds Expires as well)
            self._cookie(name, value, max_age=max_age, path=path, secure=secure, httponly=httponly, samesite=samesite)
            return
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        morsel["path"] = path
        if max_age is not None:
            morsel["max-age"] = str(max_age)
        morsel["secure"] = secure
        morsel["httponly"] = httponly
        morsel["samesite"] = samesite
        self._add("Set-Cookie", morsel.OutputString())


async def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in the loop's default executor, in a copy of this context (the record): the
    response hook releases references and may wait on storage."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(None, context.run, function, *args)


def dash_state_prefix(app: Any) -> str:
    """The path under which dash-state's routes are served for ``app``."""
    prefix = getattr(getattr(app, "config", None), "routes_pathname_prefix", None) or "/"
    return prefix.rstrip("/") + "/_dash-state/"


def callback_path(app: Any) -> str:
    """The path of Dash's callback requests for ``app``."""
    prefix = getattr(getattr(app, "config", None), "routes_pathname_prefix", None) or "/"
    return prefix.rstrip("/") + "/_dash-update-component"


async def before_callback(body: Any) -> None:
    """On the event loop, before Dash dispatches a callback request (FastAPI, Quart): await what the
    callback would otherwise wait for by blocking the loop, the clientside Patch uploads it reads
    (:func:`dash_state.glue.clientside.await_uploads`). A failure here is left to the callback."""
    from dash_state.glue.clientside import await_uploads

    try:
        await await_uploads(body)
    except Exception:  # noqa: BLE001 - the callback's own path reports it (a 503, a 422)
        logging.getLogger("dash_state").debug("dash-state: waiting for clientside uploads failed", exc_info=True)
