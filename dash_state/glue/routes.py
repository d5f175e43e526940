"""HTTP routes the component calls. All are POST with a small JSON body and answer JSON.

They apply the same checks as callbacks: a reference is accepted only for the user it was signed for
*and* the store it is bound to; anything else is "missing" (404), never an error page.

* ``touch``   ``{"stores": [{"id", "reference"}]}`` -> ``{"alive": [...], "interval": s}`` (sliding expiry)
* ``release`` ``{"stores": [{"id", "reference"}]}`` -> ``{"released": n}``: references the page replaced
* ``delete``  ``{"id", "reference"}`` -> ``{"deleted": bool}`` (``clear_data``)
* ``put``     ``{"id", "data"}`` -> ``{"reference"}``: a value written in the browser (clientside callback,
  ``running=``), stored as browser-written; refused (403) by stores with ``client_write = false``;
  ``{"client": true}`` for a store on the client backend (its data stays in the browser)
* ``patch``   ``{"id", "base", "patched", "operations"}`` -> ``{"reference"}``: a clientside ``Patch``
  applied on the server to the value ``base`` stands for (see :mod:`dash_state.glue.clientside`)
* ``get``     ``{"id", "reference"}`` -> ``{"data"}``: only for stores with ``client_read = true``, and
  only up to ``STATE_MAX_VALUE_BYTES`` of JSON; DataFrames as row records

Every route takes only ``Content-Type: application/json`` (415 otherwise: an HTML form or a
``text/plain`` fetch from another site cannot send it without a CORS preflight), and refuses (403) a
request whose ``Origin`` is not the app's own or that the browser marks ``Sec-Fetch-Site: cross-site``.
Bodies are read through a bounded stream: more than ``STATE_MAX_VALUE_BYTES`` (announced or chunked)
gets 413 before the rest is read, and so does a body whose parsed objects would be more than
``PARSE_FACTOR`` times that (see :func:`_parsed_estimate`); malformed or hostile JSON (10,000 levels
deep, a nested dict id) gets 400. Every refusal is a JSON answer and one log line, never a 500.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable

import orjson
from dash import hooks

from dash_state.core import patches, references, shared
from dash_state.core.codecs import JSON
from dash_state.core.manager import StateManager
from dash_state.core.references import CLIENT
from dash_state.errors import BackendUnavailable, QuotaExceeded, StoreValueError
from dash_state.glue import clientside, web
from dash_state.glue.initial import initial_token
from dash_state.glue.runtime import AppState, current_state

log = logging.getLogger("dash_state")
PREFIX = "_dash-state/v1/"
MAX_STORES_PER_REQUEST = 200
PARSE_FACTOR = 16  # parsed objects of a body: at most this many times STATE_MAX_VALUE_BYTES (estimated)
_MISSING = object()


class Refused(ValueError):
    """A request the route does not take: answered with ``status`` and the reason, logged in one line."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status or self.status


class BadRequest(Refused):
    """The body is not what the route takes; answered with 400 and the reason."""


class TooLarge(Refused):
    status = 413


def _json(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_client_json, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _reply(payload: Any, status: int = 200) -> Any:
    """A JSON answer (the server's own response object: Flask's, Starlette's or Quart's)."""
    content = payload if isinstance(payload, bytes) else _json(payload)
    return web.reply(content, status, "application/json", {"Cache-Control": "no-store"})


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


def json_route(handler: Callable[[AppState, StateManager, dict], Any]) -> Callable[[], Any]:
    """Bad input, limits and unreachable backends answer JSON errors, never a 500 page with a traceback."""
    def route():  # no return annotation: FastAPI apps introspect every route Dash hooks register
        state = current_state()
        if state is None:
            return _reply({"error": "dash-state is not active in this app"}, 404)
        manager = state.manager
        try:
            _check_sender()
            limit = manager.config["STATE_MAX_VALUE_BYTES"]
            body = _parse(_read_body(limit), limit)
            return handler(state, manager, body)
        except Refused as exc:
            reason = f"bad request: {exc}" if isinstance(exc, BadRequest) else str(exc)
            return _refuse(manager, handler.__name__, exc.status, reason)
        except QuotaExceeded as exc:
            return _refuse(manager, handler.__name__, 413, str(exc))
        except StoreValueError as exc:
            return _refuse(manager, handler.__name__, 422, str(exc))
        except BackendUnavailable:
            return _reply({"error": "storage unavailable"}, 503)
        except web.BodyError as exc:  # the server's: Flask's MAX_CONTENT_LENGTH, a client that hung up
            return _refuse(manager, handler.__name__, exc.status, str(exc))
        except RecursionError:  # a backstop: inputs are checked for depth before they are used
            return _refuse(manager, handler.__name__, 400, "bad request: nested too deeply")
        except (MemoryError, OverflowError) as exc:  # a backstop: sizes are checked before allocating
            return _refuse(manager, handler.__name__, 413, f"too large to handle ({type(exc).__name__})")
    route.__name__ = handler.__name__
    return route


def _refuse(manager: StateManager, route: str, status: int, reason: str) -> Any:
    """A JSON error, and one log line (aggregated per route and status, so a flood is a few lines)."""
    manager.throttle(logging.WARNING, f"route:{route}:{status}", "dash-state %s refused a request (HTTP %d): %.300s",
                     route, status, reason)
    return _reply({"error": reason}, status)


def _check_sender() -> None:
    """Only the component's own fetch calls: JSON, from this origin (CSRF)."""
    mimetype = web.request_mimetype()
    if mimetype != "application/json":
        raise Refused(f"dash-state routes take Content-Type: application/json, not {mimetype or 'none'!r:.80}", 415)
    site = web.request_header("Sec-Fetch-Site")
    if site == "cross-site":
        raise Refused("cross-site request refused (Sec-Fetch-Site: cross-site)", 403)
    origin = web.request_header("Origin")
    own = f"{web.request_scheme()}://{web.request_host()}"
    if origin is not None and site != "same-origin" and origin.lower() != own.lower():
        # the browser's own word (Sec-Fetch-Site: same-origin) wins over a proxy that hides https
        raise Refused(f"cross-origin request refused: Origin {origin!r:.100} is not this app's origin {own!r:.100}"
                      " (behind a proxy, see ProxyFix in SECURITY.md)", 403)


def _read_body(limit: int) -> bytes:
    """At most ``limit`` bytes of the request body, announced or chunked; 413 past it, unread."""
    try:
        return web.request_body(limit)
    except web.TooLarge:
        raise TooLarge(f"request body larger than STATE_MAX_VALUE_BYTES ({limit})") from None


def _parse(body: bytes, limit: int) -> dict:
    estimate = _parsed_estimate(body)
    if estimate > PARSE_FACTOR * limit:
        raise TooLarge(f"the body would make about {estimate >> 20:,} MiB of Python objects once parsed, more than "
                       f"{PARSE_FACTOR} x STATE_MAX_VALUE_BYTES ({limit}): send fewer, larger items")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:  # also what orjson says about nesting deeper than 1024 levels
        raise BadRequest("the body is not JSON (or is nested too deeply)") from None
    if not isinstance(parsed, dict):
        raise BadRequest("the body must be a JSON object")
    return parsed


def _parsed_estimate(body: bytes) -> int:
    """Bytes of the objects orjson makes of ``body``, from byte counts (no parsing): at least what it
    takes for every shape measured (empty dicts 24 x the body, short strings 15 x, records 14 x, floats
    8 x, small integers 4 x), so a body of tiny items cannot turn 64 MiB into gigabytes."""
    containers = body.count(b"{") + body.count(b"[") + body.count(b'"') // 2
    return 64 * containers + 32 * body.count(b",") + len(body)


def _store_id(raw: Any) -> str:
    problem = references.id_problem(raw)
    if problem is not None:
        raise BadRequest(f"'id' is not a store id: {problem}")
    sid = references.id_key(raw)
    if len(sid) > references.MAX_STORE_ID:
        raise BadRequest(f"'id' is longer than {references.MAX_STORE_ID} characters")
    return sid


def _entries(body: dict) -> list[tuple[str, Any]]:
    stores = body.get("stores")
    if not isinstance(stores, list) or len(stores) > MAX_STORES_PER_REQUEST:
        raise BadRequest(f"'stores' must be a list of at most {MAX_STORES_PER_REQUEST} entries")
    return [(_store_id(e.get("id")), e.get("reference")) for e in stores if isinstance(e, dict)]


def _known(state: AppState, raw_id: Any, sid: str) -> None:
    state.scan_layouts()
    if raw_id not in state.store_ids and sid not in state.store_ids:
        raise BadRequest("'id' is not a ServerStore of this app")


def _refuse_browser_write(manager: StateManager, sid: str) -> Any:
    """403 unless this store accepts values written in the browser *and* the browser holds an identity
    cookie from an earlier response: a request without one (curl, a crawler) mints a new identity
    each time, and would store a value nobody can ever read, outside any per-user quota."""
    settings = manager.settings(sid)
    if not settings.client_write or (settings.scope == "app" and not settings.writable):
        return _reply({"error": f"ServerStore {sid!r} does not accept values written in the browser"
                                + (" (an app store that is not writable)" if settings.client_write else "")}, 403)
    who = manager.identity()
    if who is not None and who.minted:
        return _reply({"error": "this request carries no dash-state identity cookie: load the app's page first "
                                "(ServerStore needs cookies)"}, 403)
    return None


@hooks.route(PREFIX + "touch", methods=("POST",))
@json_route
def touch(state: AppState, manager: StateManager, body: dict) -> Any:
    entries = _entries(body)
    alive = [manager.touch(sid, reference) for sid, reference in entries]
    ttls = [manager.settings(sid).ttl for sid, _ in entries] or [manager.config["STATE_TTL_DEFAULT"]]
    return _reply({"alive": alive, "interval": min(ttls) * manager.config["STATE_TOUCH_FRACTION"]})


@hooks.route(PREFIX + "release", methods=("POST",))
@json_route
def release(state: AppState, manager: StateManager, body: dict) -> Any:
    return _reply({"released": sum(manager.release(sid, reference) for sid, reference in _entries(body))})


@hooks.route(PREFIX + "delete", methods=("POST",))
@json_route
def delete(state: AppState, manager: StateManager, body: dict) -> Any:
    sid = _store_id(body.get("id"))
    settings = manager.settings(sid)
    if settings.latest_only or not settings.client_write or (settings.scope == "app" and not settings.writable):
        # the server decides what such a store holds
        raise Refused(f"ServerStore {sid!r} holds server-decided values (latest_only, client_write = false, or an app "
                      "store that is not writable): the browser cannot delete them", 403)
    return _reply({"deleted": manager.delete(sid, body.get("reference"))})


@hooks.route(PREFIX + "put", methods=("POST",))
@json_route
def put(state: AppState, manager: StateManager, body: dict) -> Any:
    sid = _store_id(body.get("id"))
    _known(state, body.get("id"), sid)
    if "data" not in body or body["data"] is None or references.looks_like_reference(body["data"]):
        raise BadRequest("'data' must be the value the browser wrote")
    if not manager.keeps_on_server(sid):  # 200: not an error, the component stops sending
        return _reply({"client": True, "note": f"ServerStore {sid!r} keeps its data in the browser (client backend)"})
    refused = _refuse_browser_write(manager, sid)
    if refused is not None:
        return refused
    return _reply({"reference": manager.save(sid, body["data"], scope=CLIENT)})


@hooks.route(PREFIX + "patch", methods=("POST",))
@json_route
def patch(state: AppState, manager: StateManager, body: dict) -> Any:
    sid = _store_id(body.get("id"))
    base, operations = body.get("base"), body.get("operations")
    if not isinstance(operations, list) or "patched" not in body:
        raise BadRequest("'operations' must be the Patch's operations and 'patched' what the renderer made")
    refused = _refuse_browser_write(manager, sid)
    if refused is not None:
        return refused
    if manager.settings(sid).shared:  # applied to the current value, atomically
        try:
            held = base if isinstance(base, str) else initial_token(state, sid)
            return _reply({"reference": shared.patch(manager, sid, operations, None, held)})
        except StoreValueError as exc:
            raise Refused(str(exc), 422) from None
    found = manager.locate(sid, base)
    if not found:
        return _reply({"error": "missing"}, 404)
    who = manager.identity()  # the result belongs to this user, even when the base is shared layout data
    try:
        key = clientside.patched_key(who.namespace, body["patched"])
    except orjson.JSONEncodeError:  # deeper than 254 levels: nothing the renderer makes of a reference
        raise BadRequest("'patched' is nested too deeply") from None
    if found.snapshot.kind != JSON:
        raise Refused(f"ServerStore {sid!r}: Patch() cannot update a DataFrame, Series or array; write the new "
                      "value instead", 422)
    limit = manager.config["STATE_MAX_VALUE_BYTES"]
    try:
        value = patches.apply(found.snapshot.thaw(), operations, limit, found.snapshot.nbytes)
    except patches.PatchError as exc:
        status = 413 if isinstance(exc, patches.PatchTooLarge) else 422
        raise Refused(f"Patch() does not apply to ServerStore {sid!r}: {exc}", status) from None
    return _reply({"reference": manager.commit_at(manager.prepare(sid, value), who, key, CLIENT)})


@hooks.route(PREFIX + "get", methods=("POST",))
@json_route
def get(state: AppState, manager: StateManager, body: dict) -> Any:
    sid = _store_id(body.get("id"))
    if not manager.settings(sid).client_read:
        return _reply({"error": f"ServerStore {sid!r} does not allow clientside reads: set client_read = true in "
                                f"[STATE_STORES.{sid}]"}, 403)
    found = manager.locate(sid, body.get("reference"))
    if not found:
        manager.miss(sid, found.reason)
        return _reply({"error": "missing"}, 404)
    limit = manager.config["STATE_MAX_VALUE_BYTES"]
    if found.snapshot.nbytes > limit:
        return _reply({"error": f"the value is larger than STATE_MAX_VALUE_BYTES ({limit})"}, 413)
    content = _json({"data": found.snapshot.thaw()})
    if len(content) > limit:
        return _reply({"error": f"the value is larger than STATE_MAX_VALUE_BYTES ({limit}) as JSON"}, 413)
    return _reply(content)


@hooks.route("_dash-state/metrics", methods=("GET",))
def metrics():  # no return annotation: see json_route
    """Prometheus' text format, when ``STATE_PROMETHEUS = true`` (404 otherwise)."""
    state = current_state()
    if state is None or not state.manager.config["STATE_PROMETHEUS"]:
        return _reply({"error": "not found"}, 404)
    from dash_state.metrics import prometheus

    body, content_type = prometheus.exposition()
    return web.reply(body, 200, content_type, {"Cache-Control": "no-store"})
