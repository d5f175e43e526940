"""Dash's FastAPI server: a pure ASGI middleware, outermost, sets the record, reads dash-state's route
bodies (bounded) and calls the response hook as the response headers go out.

Outermost matters: Dash's ``DashMiddleware`` reads every JSON body under ``<prefix>_dash-`` whole,
without a limit, and passes on a drained ``receive``. Ahead of it, dash-state's routes' bodies are
read up to the limit and replayed (an empty body past it: the route answers 413). Starlette builds
the middleware stack on the first request and each ``add_middleware`` lands inside the ones added
before, so the middleware is put first in the list when the stack is built.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from dash_state.glue.web import websocket
from dash_state.glue.web.common import (
    RECORD,
    Record,
    ResponseView,
    TooLarge,
    before_callback,
    callback_path,
    dash_state_prefix,
    run_blocking,
)


def _headers(rec: Record) -> list[tuple[bytes, bytes]]:
    return rec.scope.get("headers") or []


def header(rec: Record, name: str) -> str | None:
    key = name.lower().encode("latin-1")
    for k, v in _headers(rec):
        if k.lower() == key:
            return v.decode("latin-1")
    return None


def cookies(rec: Record) -> Any:
    from starlette.requests import cookie_parser

    return cookie_parser(header(rec, "cookie") or "")


def path(rec: Record) -> str:
    return rec.scope.get("path", "")


def scheme(rec: Record) -> str:
    return rec.scope.get("scheme", "http")  # uvicorn sets https behind --proxy-headers


def host(rec: Record) -> str:
    found = header(rec, "host")
    if found:
        return found
    server = rec.scope.get("server") or ("", None)
    return f"{server[0]}:{server[1]}" if server[1] else str(server[0])


def mimetype(rec: Record) -> str:
    return (header(rec, "content-type") or "").split(";", 1)[0].strip().lower()


def body(rec: Record, limit: int) -> bytes:
    if isinstance(rec.body, TooLarge) or len(rec.body or b"") > limit:
        raise TooLarge(limit)
    return rec.body or b""


def json(rec: Record) -> Any:
    """The callback body Dash's middleware parsed (``request.state.json_body``)."""
    return (rec.scope.get("state") or {}).get("json_body")


def holds_connections(rec: Record) -> bool:
    return True  # a stream's sync generator runs in anyio's thread pool, one chunk at a time


def pool(rec: Record) -> int | None:
    return rec.pool


def reply(content: bytes | str, status: int, mimetype: str, headers: dict | None) -> Any:
    from starlette.responses import Response

    return Response(content, status_code=status, media_type=mimetype, headers=headers)


def stream(chunks: Iterable[bytes], mimetype: str, headers: dict | None) -> Any:
    from starlette.responses import StreamingResponse

    return StreamingResponse(chunks, media_type=mimetype, headers=headers)


def install(app: Any, on_response: Callable[[ResponseView], None] | None, errors: dict,
            before: Callable[[], None] | None, body_limit: Callable[[], int] | None) -> None:
    from starlette.middleware import Middleware

    server = app.server
    build = server.build_middleware_stack
    options = {"dash_app": app, "on_response": on_response, "before": before, "body_limit": body_limit}

    def build_middleware_stack() -> Any:
        if not any(m.cls is Middleware_ for m in server.user_middleware):
            server.user_middleware.insert(0, Middleware(Middleware_, **options))
        return build()

    server.build_middleware_stack = build_middleware_stack
    for exc_type, handler in errors.items():
        async def error_handler(request: Any, exc: BaseException, handler: Callable = handler) -> Any:
            return handler(exc)
        server.add_exception_handler(exc_type, error_handler)


class Middleware_:
    """Pure ASGI (``BaseHTTPMiddleware`` would run the app in another task, and buffer streams)."""

    def __init__(self, app: Any, dash_app: Any, on_response: Callable | None, before: Callable | None,
                 body_limit: Callable[[], int] | None) -> None:
        self.app, self.dash_app, self.on_response, self.before = app, dash_app, on_response, before
        self.body_limit, self.routes = body_limit, dash_state_prefix(dash_app)
        self.callbacks = callback_path(dash_app)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":  # the handshake: its record (cookies) for the connection's calls
            rec = websocket.open_connection("fastapi", self.dash_app, scope=scope)
            token = RECORD.set(rec)
            try:
                await self.app(scope, receive, send)
            finally:
                RECORD.reset(token)
                websocket.close_connection(rec)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rec = Record("fastapi", self.dash_app, scope=scope)
        token = RECORD.set(rec)
        try:
            if scope.get("path", "").startswith(self.routes):
                rec.pool = _thread_pool_size()
                if scope.get("method") in ("POST", "PUT", "PATCH") and self.body_limit is not None:
                    receive = await _preread(rec, receive, self.body_limit())
            elif scope.get("path") == self.callbacks and scope.get("method") == "POST" and mimetype(rec) == "application/json":
                receive = await _preread_callback(receive)  # Dash reads it whole as well
            if self.before is not None:
                await run_blocking(self.before)
            await self.app(scope, receive, self._sender(send) if self.on_response is not None else send)
        finally:
            RECORD.reset(token)

    def _sender(self, send: Any) -> Callable:
        async def send_with_hook(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])

                def get(name: str) -> str | None:
                    key = name.lower().encode("latin-1")
                    return next((v.decode("latin-1") for k, v in headers if k.lower() == key), None)

                def add(name: str, value: str) -> None:
                    headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

                await run_blocking(self.on_response, ResponseView(message["status"], get, add))
                message = {**message, "headers": headers}
            await send(message)
        return send_with_hook


async def _preread(rec: Record, receive: Any, limit: int) -> Callable:
    """Read the body into the record, at most ``limit`` bytes; the returned ``receive`` replays it."""
    declared = header(rec, "content-length")
    data, more = bytearray(), True
    if declared is not None and declared.isdigit() and int(declared) > limit:
        rec.body = TooLarge(limit)
    else:
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            data += message.get("body", b"")
            more = message.get("more_body", False)
            if len(data) > limit:
                rec.body = TooLarge(limit)
                break
        else:
            rec.body = bytes(data)
    return _replaying(b"" if isinstance(rec.body, TooLarge) else bytes(data), receive)


async def _preread_callback(receive: Any) -> Callable:
    """Read a callback request's body (whole, as Dash's middleware does), wait for what the callback
    needs before it runs (:func:`~.common.before_callback`), and return a ``receive`` that replays it."""
    data, more = bytearray(), True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        data += message.get("body", b"")
        more = message.get("more_body", False)
    else:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None  # Dash answers it as it would without dash-state
        await before_callback(body)
    return _replaying(bytes(data), receive)


def _replaying(replay: bytes, receive: Any) -> Callable:
    """A ``receive`` that first hands the app the body already read, then the connection's own messages."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": replay, "more_body": False}
        return await receive()
    return replayed


def _thread_pool_size() -> int | None:
    """anyio's default limiter (40 threads unless the app changed it): it runs sync routes and streams."""
    try:
        from anyio import to_thread

        return int(to_thread.current_default_thread_limiter().total_tokens)
    except Exception:  # noqa: BLE001 - not on an anyio loop
        return None


def config(server: Any) -> Any:
    """Dash puts a FastAPI app's config on ``app.server.state`` (attributes): its dict, like Flask's config."""
    return getattr(server.state, "_state", None)
