"""Dash's Flask server (the default): ``flask.request``, ``flask.g`` and Flask's own hooks.

Every function takes the ASGI record like its FastAPI and Quart twins; on Flask it is always None
(the request lives in Flask's context).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from dash_state.glue.web.common import BodyError, ResponseView, TooLarge

_CHUNK = 1 << 16
_STORE = "_dash_state"
_APP = "dash_state_app"


def active() -> bool:
    return flask.has_request_context()


def cookies(rec: None) -> Any:
    return flask.request.cookies


def header(rec: None, name: str) -> str | None:
    return flask.request.headers.get(name)


def path(rec: None) -> str:
    return flask.request.path


def scheme(rec: None) -> str:
    return flask.request.scheme


def host(rec: None) -> str:
    return flask.request.host


def mimetype(rec: None) -> str:
    return flask.request.mimetype


def body(rec: None, limit: int) -> bytes:
    """At most ``limit`` bytes from the request stream, announced or chunked; TooLarge past it, unread."""
    request = flask.request
    try:
        if (request.content_length or 0) > limit:
            raise TooLarge(limit)
        data, stream = bytearray(), request.stream
        while True:
            chunk = stream.read(min(_CHUNK, limit + 1 - len(data)))
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > limit:
                raise TooLarge(limit)
    except HTTPException as exc:  # werkzeug's: the app's MAX_CONTENT_LENGTH, a client that hung up
        raise BodyError(exc.code or 400, exc.description or exc.name) from None


def json(rec: None) -> Any:
    return flask.request.get_json(silent=True)


def store(rec: None) -> dict:
    found = flask.g.get(_STORE)
    if found is None:
        found = {}
        setattr(flask.g, _STORE, found)
    return found


def serving_app(rec: None) -> Any:
    return flask.current_app.extensions.get(_APP)


def holds_connections(rec: None) -> bool:
    """A threaded WSGI server (gunicorn gthread, Flask's and waitress' threaded servers)."""
    return bool(flask.request.environ.get("wsgi.multithread"))


def pool(rec: None) -> int | None:
    return None  # the WSGI server's own pool: found from the running thread (live.route._pool_size)


def reply(content: bytes | str, status: int, mimetype: str, headers: dict | None) -> Any:
    if ";" in mimetype:  # a full Content-Type (Prometheus' exposition)
        return flask.Response(content, status=status, content_type=mimetype, headers=headers)
    return flask.Response(content, status=status, mimetype=mimetype, headers=headers)


def stream(chunks: Iterable[bytes], mimetype: str, headers: dict | None) -> Any:
    return flask.Response(chunks, mimetype=mimetype, headers=headers)


def install(app: Any, on_response: Callable[[ResponseView], None] | None, errors: dict,
            before: Callable[[], None] | None, body_limit: Callable[[], int] | None) -> None:
    """Flask's hooks: before_request, after_request (the response hook) and error handlers."""
    server = app.server
    server.extensions[_APP] = app
    if before is not None:
        server.before_request(before)
    if on_response is not None:
        def after_request(response: flask.Response) -> flask.Response:
            on_response(ResponseView(response.status_code, response.headers.get, response.headers.add,
                                     cookie=response.set_cookie, vary=response.vary.add))
            return response
        server.after_request(after_request)
    for exc_type, handler in errors.items():
        server.register_error_handler(exc_type, handler)


def config(server: Any) -> Any:
    return server.config
