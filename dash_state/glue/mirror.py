"""The mirror: ServerStores that clientside code uses are held in the browser too, as dcc.Store holds them.

A clientside callback reads a store's ``data`` in JavaScript, and a clientside ``Patch`` is applied by
the renderer to what the browser holds. Neither can work on a reference. So a ServerStore whose
``data`` is an Input, State or Output of a clientside callback is *mirrored* by default: the server
treats it like the ``client`` backend (its data travels to the browser and back, exactly as with
dcc.Store), and clientside callbacks and every clientside Patch work unchanged. A store that inline
clientside code (a clientside callback given as a string) names in ``dash_clientside.set_props("id",
...)`` is mirrored too; code in asset files is not read. Swapping the class
stays the whole migration. One INFO line names each mirrored store and the callback that uses it.

``[STATE_STORES.<id>] mirror = false`` keeps the store on the server only (clientside code then gets
the reference; ``client_read = true`` with ``window.dash_state.get`` fetches the value on demand, and
such a store is not mirrored either).

The callbacks are read from the app (and from ``dash.callback``'s global list, for callbacks not yet
moved onto the app) whenever their number changes, so every worker decides the same way, whether or
not it has served the layout. Pattern-matching ids (``{"type": "cart", "index": ALL}``) mirror every
store id they match.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from dash_state.core.references import dict_id

log = logging.getLogger("dash_state")

_WILDCARDS = (["MATCH"], ["ALL"], ["ALLSMALLER"])
_SET_PROPS = re.compile(r"""set_props\(\s*(["'`])([^"'`\\]{1,200})\1\s*,\s*\{[^}]*\bdata\s*:""")


class Mirrors:
    """Which store ids clientside callbacks use, learnt from the app's callback list."""

    def __init__(self, callbacks: Callable[[], tuple[tuple[list, ...], tuple[list, ...]]]):
        self._callbacks = callbacks
        self._lock = threading.Lock()
        self._seen: tuple = ()  # how many callbacks each list had when last read
        self._ids: dict[str, str] = {}  # store id -> the first clientside callback using it (its outputs)
        self._patterns: list[tuple[dict, str]] = []  # wildcard ids -> that callback
        self._matched: dict[str, str | None] = {}  # store id -> callback, for ids checked against patterns
        self._told: set[str] = set()

    def user(self, sid: str) -> str | None:
        """The clientside callback (named by its outputs) that uses store ``sid``'s data, or None."""
        self._refresh()
        found = self._ids.get(sid)
        if found is not None or not self._patterns or not sid.startswith("{"):
            return found
        if sid not in self._matched:
            self._matched[sid] = _match(sid, self._patterns)
        return self._matched[sid]

    def used(self) -> tuple[list[str], list[dict]]:
        """The plain store ids and the wildcard ids clientside callbacks use."""
        self._refresh()
        return list(self._ids), [pattern for pattern, _ in self._patterns]

    def tell(self, sid: str, callback: str) -> None:
        """One INFO line per mirrored store."""
        if sid in self._told:
            return
        self._told.add(sid)
        log.info("dash-state: ServerStore %r is mirrored in the browser, as dcc.Store holds its data, because the "
                 "clientside callback for %s uses it; set mirror = false in [STATE_STORES.%s] to keep only its "
                 "reference there", sid, callback, sid)

    def _refresh(self) -> None:
        lists, scripts = self._callbacks()
        count = tuple(len(part) for part in lists + scripts)  # cheap: this runs on every settings lookup
        if count == self._seen:
            return
        callbacks = [callback for part in lists for callback in part]
        with self._lock:
            ids: dict[str, str] = {}
            patterns: list[tuple[dict, str]] = []
            for callback in callbacks:
                if not isinstance(callback, dict) or not callback.get("clientside_function"):
                    continue
                name = str(callback.get("output"))
                for raw in _data_ids(callback):
                    pattern = _pattern(raw)
                    if pattern is not None:
                        patterns.append((pattern, name))
                    else:
                        ids.setdefault(raw, name)
            for part in scripts:
                for script in part:
                    for match in _SET_PROPS.finditer(script if isinstance(script, str) else ""):
                        ids.setdefault(match.group(2), "a clientside set_props")
            self._ids, self._patterns, self._matched, self._seen = ids, patterns, {}, count


def held_in_browser(manager: Any) -> dict:
    """For the index page's Dash config: the ids of stores whose data the browser holds (client backend,
    or mirrored), so the component knows before it would upload a value written there. ``{"all":
    true}`` when the default backend is ``client``; wildcard ids as Dash writes them (``["ALL"]``)."""
    config = manager.config
    if config["STATE_BACKEND"] == "client":
        return {"all": True}
    ids = {sid for sid, own in config["STATE_STORES"].items() if own.get("backend") == "client"}
    patterns: list[dict] = []
    if manager.mirrors is not None:
        used, patterns = manager.mirrors.used()
        ids.update(sid for sid in used if manager.settings(sid).backend == "client")
    return {"ids": sorted(ids), "patterns": patterns}


def _data_ids(callback: dict) -> list[str]:
    """The ids whose ``data`` the callback takes or sets (inputs, state, outputs incl. allow_duplicate)."""
    found = []
    for dependency in list(callback.get("inputs") or []) + list(callback.get("state") or []):
        if isinstance(dependency, dict) and dependency.get("property") == "data":
            found.append(dependency.get("id"))
    output = callback.get("output")
    if isinstance(output, str):
        parts = output[2:-2].split("...") if output.startswith("..") else [output]
        for part in parts:
            component, _, prop = part.rpartition(".")
            if prop.split("@")[0] == "data":
                found.append(component)
    return [raw for raw in found if isinstance(raw, str) and raw]


def _pattern(raw: str) -> dict | None:
    """A wildcard id as a dict (wildcards as Dash writes them: ``["ALL"]``), or None for a plain id."""
    parsed = dict_id(raw)
    return parsed if parsed is not None and any(v in _WILDCARDS for v in parsed.values()) else None


def _match(sid: str, patterns: list[tuple[dict, str]]) -> str | None:
    concrete = dict_id(sid)
    if concrete is None:
        return None
    for pattern, name in patterns:
        if set(pattern) == set(concrete) and all(v in _WILDCARDS or concrete[k] == v for k, v in pattern.items()):
            return name
    return None


def app_callbacks(app: Any) -> Callable[[], tuple[tuple[list, ...], tuple[list, ...]]]:
    """The app's callbacks and inline clientside scripts, and ``dash.callback``'s global ones not yet
    moved onto an app."""
    from dash_state.glue import compat

    def callbacks() -> tuple[tuple[list, ...], tuple[list, ...]]:
        return ((getattr(app, "_callback_list", None) or [], compat.get("dash._callback:GLOBAL_CALLBACK_LIST")),
                (getattr(app, "_inline_scripts", None) or [], compat.get("dash._callback:GLOBAL_INLINE_SCRIPTS")))
    return callbacks
