"""Dash's Quart server: an async ``before_request`` sets the record, reads dash-state's route bodies
(bounded) and parses callback bodies, which sync code cannot await later.

Quart runs Dash's callbacks on the event loop in the request task and sync routes (dash-state's) in
its executor with a copy of the context, so both see the record set here.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

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


def cookies(rec: Record) -> Any:
    return rec.request.cookies


def header(rec: Record, name: str) -> str | None:
    return rec.request.headers.get(name)


def path(rec: Record) -> str:
    return rec.request.path


def scheme(rec: Record) -> str:
    return rec.request.scheme


def host(rec: Record) -> str:
    return rec.request.host


def mimetype(rec: Record) -> str:
    return rec.request.mimetype


def body(rec: Record, limit: int) -> bytes:
    if isinstance(rec.body, TooLarge) or len(rec.body or b"") > limit:
        raise TooLarge(limit)
    return rec.body or b""


def json(rec: Record) -> Any:
    return rec.json


def holds_connections(rec: Record) -> bool:
    return True  # a stream's generator runs in the executor, one chunk at a time


def pool(rec: Record) -> int | None:
    return None  # the loop's default executor: found from the running thread (live.route._pool_size)


def reply(content: bytes | str, status: int, mimetype: str, headers: dict | None) -> Any:
    from quart import Response

    if ";" in mimetype:  # a full Content-Type (Prometheus' exposition)
        return Response(content, status=status, content_type=mimetype, headers=headers)
    return Response(content, status=status, mimetype=mimetype, headers=headers)


def stream(chunks: Iterable[bytes], mimetype: str, headers: dict | None) -> Any:
    from quart import Response

    response = Response(chunks, mimetype=mimetype, headers=headers)
    response.timeout = None  # Quart's RESPONSE_TIMEOUT would cut a long stream
    return response


def install(app: Any, on_response: Callable[[ResponseView], None] | None, errors: dict,
            before: Callable[[], None] | None, body_limit: Callable[[], int] | None) -> None:
    import quart

    server, routes, callbacks = app.server, dash_state_prefix(app), callback_path(app)

    @server.before_request
    async def dash_state_begin() -> None:
        request = quart.request._get_current_object()
        rec = Record("quart", app, request=request)
        RECORD.set(rec)  # in the request task's context: the view, callbacks and after_request see it
        if request.method not in ("POST", "PUT", "PATCH"):
            return
        if request.path.startswith(routes):
            if body_limit is not None:
                rec.body = await _read(request, body_limit())
        elif request.is_json:
            try:  # Quart caches it: Dash's own get_json() in the dispatch parses nothing again
                rec.json = await request.get_json()
            except Exception:  # noqa: BLE001 - not JSON: Dash answers it as it would without us
                rec.json = None
            if request.path == callbacks:  # on the loop, before Dash dispatches it
                await before_callback(rec.json)

    @server.before_websocket
    async def dash_state_connect() -> None:  # the handshake: its record (cookies) for the connection's calls
        RECORD.set(websocket.open_connection("quart", app, request=quart.websocket._get_current_object()))

    @server.teardown_websocket
    async def dash_state_disconnect(exc: BaseException | None) -> None:
        websocket.close_connection(RECORD.get())

    if before is not None:
        server.before_request(before)
    if on_response is not None:
        @server.after_request
        async def dash_state_after(response: Any) -> Any:
            view = ResponseView(response.status_code, response.headers.get, response.headers.add)
            await run_blocking(on_response, view)
            return response
    for exc_type, handler in errors.items():
        async def error_handler(exc: BaseException, handler: Callable = handler) -> Any:
            return handler(exc)
        server.register_error_handler(exc_type, error_handler)


async def _read(request: Any, limit: int) -> bytes | TooLarge:
    """The body, or TooLarge as soon as it passes ``limit`` (announced or streamed)."""
    if (request.content_length or 0) > limit:
        return TooLarge(limit)
    data = bytearray()
    async for chunk in request.body:
        data += chunk
        if len(data) > limit:
            return TooLarge(limit)
    return bytes(data)


def config(server: Any) -> Any:
    return server.config
