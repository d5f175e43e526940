"""The request/response seam: everything dash-state needs from the web server, the same on Dash's
three server backends (``Dash(backend="flask" | "fastapi" | "quart")``, Dash >= 4.2).

* Flask (:mod:`.flask`): ``flask.request``, ``flask.g`` and Flask's hooks, as before.
* FastAPI (:mod:`.fastapi`) and Quart (:mod:`.quart`): a per-request :class:`~.common.Record` in a
  ContextVar, set by an outermost ASGI middleware (FastAPI) or an async ``before_request`` (Quart).
  Sync dash-state routes run in the server's thread pool, callbacks on the event loop: both see it.
  A websocket connection gets a record at its handshake and each of its callback calls one of its
  own (:mod:`.websocket`): ``per_request()`` is per call, the identity the handshake's.

All functions are sync and usable from routes, callbacks and the response hook. Outside a request
(scripts, background job processes) :func:`has_request` is False and the readers return empty values.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from dash_state.glue.web import fastapi as _fastapi
from dash_state.glue.web import flask as _flask
from dash_state.glue.web import quart as _quart
from dash_state.glue.web import websocket
from dash_state.glue.web.common import RECORD, BodyError, Record, ResponseView, TooLarge

__all__ = [
    "SERVERS",
    "BodyError",
    "connection",
    "ResponseView",
    "TooLarge",
    "has_request",
    "holds_connections",
    "install",
    "is_secure",
    "per_request",
    "pool_size",
    "reply",
    "request_body",
    "request_cookies",
    "request_header",
    "request_host",
    "request_json",
    "request_mimetype",
    "request_path",
    "request_scheme",
    "server_config",
    "server_kind",
    "serving_app",
    "stream",
    "websocket",
]

SERVERS: dict[str, ModuleType] = {"flask": _flask, "fastapi": _fastapi, "quart": _quart}


def _current() -> tuple[ModuleType | None, Record | None]:
    rec = RECORD.get()
    if rec is not None:
        return SERVERS[rec.kind], rec
    if _flask.active():
        return _flask, None
    return None, None


# -- the request ------------------------------------------------------------------------------------------
def has_request() -> bool:
    """Inside an HTTP request: a callback, a route, the index page or ``_dash-layout``."""
    return _current()[0] is not None


def request_cookies() -> Mapping[str, str]:
    server, rec = _current()
    return server.cookies(rec) if server is not None else {}


def request_header(name: str) -> str | None:
    server, rec = _current()
    return server.header(rec, name) if server is not None else None


def request_path() -> str:
    """The path, without the query string ("" outside requests)."""
    server, rec = _current()
    return server.path(rec) if server is not None else ""


def request_scheme() -> str:
    server, rec = _current()
    return server.scheme(rec) if server is not None else ""


def request_host() -> str:
    server, rec = _current()
    return server.host(rec) if server is not None else ""


def request_mimetype() -> str:
    """The body's Content-Type without parameters, lower case ("" when there is none)."""
    server, rec = _current()
    return server.mimetype(rec) if server is not None else ""


def is_secure() -> bool:
    """https, as the server sees it (behind a proxy: ProxyFix on Flask, ``--proxy-headers`` on uvicorn)."""
    return request_scheme() in ("https", "wss")


def request_body(limit: int) -> bytes:
    """A dash-state route's raw body, at most ``limit`` bytes: :class:`TooLarge` past it (announced or
    streamed), :class:`BodyError` when the server could not read it."""
    server, rec = _current()
    return server.body(rec, limit) if server is not None else b""


def request_json() -> Any:
    """A callback request's parsed JSON body (None when it is not JSON, or outside requests); a
    websocket callback call's payload."""
    server, rec = _current()
    if rec is not None and rec.connection is not None:
        return rec.json
    return server.json(rec) if server is not None else None


def connection() -> websocket.Connection | None:
    """The websocket connection this call (or handshake) belongs to; None over HTTP and outside requests."""
    rec = RECORD.get()
    return rec.connection if rec is not None else None


def per_request() -> dict:
    """Storage for this request only, like ``flask.g`` (a throwaway dict outside requests)."""
    server, rec = _current()
    if rec is not None:
        return rec.store
    return server.store(rec) if server is not None else {}


def serving_app() -> Any:
    """The Dash app serving this request (exact with several apps in a process), else None."""
    server, rec = _current()
    if rec is not None:
        return rec.app
    return server.serving_app(rec) if server is not None else None


def holds_connections() -> bool:
    """The server can hold a streaming response open without blocking other requests."""
    server, rec = _current()
    return server.holds_connections(rec) if server is not None else False


def pool_size() -> int | None:
    """The size of the thread pool that runs this route, when the server says it (FastAPI: anyio's)."""
    server, rec = _current()
    return server.pool(rec) if server is not None else None


# -- responses --------------------------------------------------------------------------------------------
def _responder() -> ModuleType:
    return _current()[0] or _flask


def reply(content: bytes | str, status: int = 200, mimetype: str = "application/json",
          headers: dict | None = None) -> Any:
    """The server's own response object, for a route or an error handler to return."""
    return _responder().reply(content, status, mimetype, headers)


def stream(chunks: Iterable[bytes], mimetype: str = "text/event-stream", headers: dict | None = None) -> Any:
    """A streaming response over a *sync* iterator that may block between chunks (Server-Sent Events):
    Flask iterates it in the WSGI thread, FastAPI in anyio's thread pool, Quart in its executor."""
    return _responder().stream(chunks, mimetype, headers)


# -- the server -------------------------------------------------------------------------------------------
def server_kind(app: Any) -> str:
    """``"flask"``, ``"fastapi"`` or ``"quart"`` (Dash's name for the app's server), or the other name."""
    backend = getattr(app, "backend", None)
    return getattr(backend, "server_type", None) or "flask"


def server_config(app: Any) -> Mapping[str, Any] | None:
    """The server's settings: Flask's and Quart's ``app.server.config``; on FastAPI the attributes of
    ``app.server.state`` (where Dash puts a FastAPI app's config), e.g. ``app.server.state.SECRET_KEY``."""
    server = SERVERS.get(server_kind(app))
    return server.config(app.server) if server is not None and getattr(app, "server", None) is not None else None


def install(app: Any, on_response: Callable[[ResponseView], None] | None = None,
            errors: dict[type, Callable[[BaseException], Any]] | None = None,
            before: Callable[[], None] | None = None, body_limit: Callable[[], int] | None = None) -> str:
    """Wire the seam into ``app``'s server (from ``hooks.setup``, before it serves); returns its kind.

    ``on_response(view)`` runs once per HTTP response before it is sent (it may do storage I/O: on the
    ASGI servers it runs in the executor); ``errors`` maps an exception type to a handler returning a
    response (:func:`reply`); ``before`` runs before every request; ``body_limit()`` bounds the bodies
    of dash-state's routes that the ASGI servers read ahead (Flask reads them as the route asks)."""
    kind = server_kind(app)
    if kind not in SERVERS:
        from dash_state.errors import ConfigError

        raise ConfigError(f"dash-state supports Dash's flask, fastapi and quart servers, not {kind!r}")
    SERVERS[kind].install(app, on_response, errors or {}, before, body_limit)
    return kind
