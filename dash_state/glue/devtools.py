"""The "Stores" panel in Dash's dev tools (``debug=True``): the page's ServerStores, live.

``hooks.devtool`` puts the ``StatePanel`` component (``src_js/devtools/StatePanel.js``) into the dev
tools menu once ServerStore is in use. While its table is open it posts the page's stores and their
references every second to ``_dash-state/v1/devtools``, which answers only when the app runs with dev
tools (404 otherwise) and only about the caller's own values: backend, server-side bytes, bytes in
the browser, TTL left, and the store's hit and miss counts in this process (under the store's metric
label: its family for pattern-matching ids, ``other`` for ids the app never declared).
"""
from __future__ import annotations

import json
import time
from typing import Any

from dash import hooks

from dash_state.core import references
from dash_state.core.ids import store_key
from dash_state.glue import compat
from dash_state.glue.routes import _reply, json_route

_registered = False


def register() -> None:
    """Add the panel to the dev tools (once per process; Dash shows it only with dev tools on)."""
    global _registered
    if not _registered:
        compat.devtool("dash_state", "StatePanel", {}, "right")  # Dash 3.1 has no dev-tools hook: no panel
        _registered = True


@hooks.route("_dash-state/v1/devtools", methods=("POST",))
@json_route  # the routes' checks: JSON from this origin, a bounded body, JSON errors
def devtools(state: Any, manager: Any, body: dict) -> Any:
    if not getattr(getattr(state.app, "_dev_tools", None), "ui", False):
        return _reply({"error": "not found"}, 404)
    stores = body.get("stores")
    rows = [_row(manager, entry) for entry in (stores if isinstance(stores, list) else [])[:200]
            if isinstance(entry, dict) and references.id_problem(entry.get("id")) is None]
    return _reply({"stores": rows})


def browser_bytes(data: Any) -> int:
    """Bytes of a store's ``data`` in the browser, counted as ``StateManager.describe`` counts them: a
    string (a reference) by its UTF-8 length, without the quotes JSON would add; any other value by
    its compact JSON text (a store on the client backend)."""
    if data is None:
        return 0
    if isinstance(data, str):
        return len(data.encode("utf-8"))
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _row(manager: Any, entry: dict) -> dict:
    raw_id, reference = entry["id"], entry.get("reference")
    sid = store_key(raw_id)
    counts: dict[str, Any] = {}
    for per_backend in manager.metrics.for_store(sid).values():
        counts["hits"] = counts.get("hits", 0) + per_backend.get("hits", 0)
        counts["misses"] = counts.get("misses", 0) + sum(per_backend.get("misses", {}).values())
    row = {"key": sid, "label": manager.metrics.label(sid), "backend": manager.settings(sid).backend,
           "server_bytes": None, "browser_bytes": browser_bytes(reference), "ttl_left": None,
           "hits": counts.get("hits", 0), "misses": counts.get("misses", 0)}
    found = manager.locate(sid, reference)
    if found:
        snapshot, ref, owner = found
        row.update(backend=ref.backend, server_bytes=snapshot.nbytes)
        for key, _, expires in manager.backend(ref.backend).usage(owner):
            if key == ref.key:
                row["ttl_left"] = expires - time.time()
    return row
