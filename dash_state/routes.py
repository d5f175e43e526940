"""HTTP routes the component calls: sliding expiry, clearing, and clientside access to values.

All are POST with a JSON body and answer JSON. They apply the same session check as callbacks: a
reference from another session, or a forged one, is "missing" (404), never an error page.

* ``_dash-state/v1/touch``  ``{"stores": [{"id": ..., "reference": ...}]}`` → ``{"alive": [...], "interval": s}``
* ``_dash-state/v1/delete`` ``{"reference": ...}`` → ``{"deleted": bool}``
* ``_dash-state/v1/get``    ``{"id": ..., "reference": ...}`` → ``{"data": value}``; DataFrames as records
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import dash
import flask
import orjson
from dash import hooks
from dash._utils import stringify_id

from .errors import BackendUnavailable
from .runtime import app_state

log = logging.getLogger("dash_state")
PREFIX = "_dash-state/v1/"
MAX_STORES_PER_TOUCH = 200
_MISSING = object()


def _reply(payload: Any, status: int = 200) -> flask.Response:
    return flask.Response(orjson.dumps(payload, default=_client_json, option=orjson.OPT_SERIALIZE_NUMPY
                                       | orjson.OPT_NON_STR_KEYS), status=status, mimetype="application/json")


def _client_json(value: Any) -> Any:
    """What JavaScript can use: frames as a list of row objects, series and arrays as lists."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame):
        return orjson.Fragment(value.to_json(orient="records", date_format="iso"))
    if pd is not None and isinstance(value, pd.Series):
        return orjson.Fragment(value.to_json(orient="values", date_format="iso"))
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _body() -> dict:
    body = flask.request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _manager():
    state = app_state(dash.get_app())
    return None if state is None else state.manager


def _guarded(handler):
    """Bad input and unreachable backends answer JSON errors, never a 500 page with a traceback."""
    def route():  # no return annotation: FastAPI apps introspect every route Dash hooks register
        manager = _manager()
        if manager is None:
            return _reply({"error": "dash-state is not active in this app"}, 404)
        try:
            return handler(manager, _body())
        except BackendUnavailable as exc:
            log.error("dash-state route %s: %s", handler.__name__, exc)
            return _reply({"error": "storage unavailable"}, 503)
        except (TypeError, ValueError) as exc:
            log.warning("dash-state route %s: bad request (%s)", handler.__name__, exc)
            return _reply({"error": "bad request"}, 400)
    route.__name__ = handler.__name__
    return route


def _store_id(raw: Any) -> str:
    return stringify_id(raw) if isinstance(raw, dict) else str(raw)


@hooks.route(PREFIX + "touch", methods=("POST",))
@_guarded
def touch(manager, body: dict) -> flask.Response:
    stores = body.get("stores")
    if not isinstance(stores, list) or len(stores) > MAX_STORES_PER_TOUCH:
        raise ValueError("'stores' must be a list of at most %d entries" % MAX_STORES_PER_TOUCH)
    alive, ttls = [], []
    for entry in stores:
        entry = entry if isinstance(entry, dict) else {}
        store_id = _store_id(entry.get("id"))
        alive.append(manager.touch(store_id, entry.get("reference")))
        ttls.append(manager.settings(store_id).ttl)
    interval = min(ttls or [manager.config["STATE_TTL_DEFAULT"]]) * manager.config["STATE_TOUCH_FRACTION"]
    return _reply({"alive": alive, "interval": interval})


@hooks.route(PREFIX + "delete", methods=("POST",))
@_guarded
def delete(manager, body: dict) -> flask.Response:
    return _reply({"deleted": manager.delete(body.get("reference"))})


@hooks.route(PREFIX + "get", methods=("POST",))
@_guarded
def get(manager, body: dict) -> flask.Response:
    store_id = _store_id(body.get("id", "?"))
    token = body.get("reference")
    value = manager.load(store_id, token, missing=_MISSING)
    if value is _MISSING:
        return _reply({"error": "missing"}, 404)
    return _reply({"data": value})
