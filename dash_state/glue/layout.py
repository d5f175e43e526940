"""Finding ServerStores in component trees, and the per-app record of which ids are ServerStores.

Dash's callback requests carry only ``{id, property}`` for outputs, not component types, so the hook
learns which ids are ServerStores from every tree it sees: the layout, the validation layout, page
layouts and components returned by callbacks. Trees are never modified in place: a static layout is
shared by every request, so changed branches are copied.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable, Iterator

from dash.development.base_component import Component

from dash_state.core.ids import store_key
from dash_state.glue import compat

NAMESPACE = "dash_state"
TYPE = "ServerStore"
DECLARED = ("scope", "live", "writable")  # props that are store settings (the config wins over them)


def in_use() -> bool:
    """True once any code in this process has imported the ServerStore component: until then the
    plugin changes nothing."""
    return NAMESPACE in compat.get("dash.development.base_component:ComponentRegistry").registry


def is_server_store(obj: Any) -> bool:
    return isinstance(obj, Component) and obj._namespace == NAMESPACE and obj._type == TYPE


def find_stores(tree: Any) -> Iterator[Component]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Component):
            if is_server_store(node):
                yield node
            else:
                stack.extend(getattr(node, name, None) for name in node._prop_names)
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())


def rewrite_stores(tree: Any, fn: Callable[[Component], Component]) -> Any:
    """Return ``tree`` with each ServerStore replaced by ``fn(store)``, copying only changed branches."""
    if isinstance(tree, Component):
        if is_server_store(tree):
            return fn(tree)
        changed = {}
        for name in tree._prop_names:
            value = getattr(tree, name, None)
            if value is not None and not isinstance(value, (str, int, float)):
                new = rewrite_stores(value, fn)
                if new is not value:
                    changed[name] = new
        if not changed:
            return tree
        clone = copy.copy(tree)
        for name, value in changed.items():
            setattr(clone, name, value)
        return clone
    if isinstance(tree, (list, tuple)):
        items = [rewrite_stores(item, fn) for item in tree]
        if all(a is b for a, b in zip(items, tree)):
            return tree
        return type(tree)(items) if isinstance(tree, tuple) else items
    if isinstance(tree, dict):
        values = {k: rewrite_stores(v, fn) for k, v in tree.items()}
        return tree if all(values[k] is tree[k] for k in tree) else values
    return tree


def declared(store: Component) -> dict[str, Any]:
    """The store settings a ServerStore sets as props (``scope="user"``, ``live=True``...)."""
    return {name: value for name in DECLARED if (value := getattr(store, name, None)) is not None}


def with_data(store: Component, data: Any) -> Component:
    clone = copy.copy(store)
    clone.data = data
    return clone


def contains_component(value: Any) -> bool:
    """Cheap check before walking an output: only component trees can carry new ServerStores."""
    if isinstance(value, Component):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(item, Component) for item in value)
    return False


class StoreIds:
    """The ids of this app's ServerStores.

    String ids match exactly. A dict id (pattern matching) also matches by *family*: the same keys
    and the same string values, any numbers. So ``{"type": "cart", "index": 7}`` is recognised even in
    a worker that only saw ``{"type": "cart", "index": 1}``, as happens when stores are created by
    callbacks in another gunicorn worker.
    """

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._families: set[tuple] = set()
        self._dicts: dict[str, dict] = {}
        self._values: dict[frozenset, dict[str, set[str]]] = {}  # key set -> key -> the string values seen
        self._declared: dict[Any, dict[str, Any]] = {}  # id string or dict family -> scope/live/writable props

    def add(self, store_id: Any, options: dict[str, Any] | None = None) -> None:
        if options:
            self._declared[store_key(store_id)] = options
            if isinstance(store_id, dict):
                self._declared[_family(store_id)] = options
        if isinstance(store_id, dict):
            key = store_key(store_id)
            if key not in self._ids:
                self._ids.add(key)
                self._dicts[key] = dict(store_id)
                self._families.add(_family(store_id))
                values = self._values.setdefault(frozenset(store_id), {k: set() for k in store_id})
                for k, v in store_id.items():
                    if isinstance(v, str):
                        values[k].add(v)
        elif isinstance(store_id, str):
            self._ids.add(store_id)

    def declared(self, sid: str) -> dict[str, Any] | None:
        """The settings the component declared as props (``scope``, ``live``, ``writable``), by the
        id's string; a dict id also by its family (another index of the same pattern)."""
        found = self._declared.get(sid)
        if found is None and self._declared and sid.startswith("{"):
            try:
                parsed = json.loads(sid)
            except ValueError:
                return None
            if isinstance(parsed, dict):
                found = self._declared.get(_family(parsed))
        return found

    def strings(self) -> list[str]:
        """Every known id, stringified as Dash does."""
        return list(self._ids)

    def matches_pattern(self, pattern: dict) -> bool:
        """True if a known ServerStore id fits a callback's wildcard id (MATCH/ALL/ALLSMALLER keys
        free, the others equal): ``{"type": "cart", "name": MATCH}`` covers every cart, whatever its
        name, once any one cart store has been seen."""
        fixed = {k: v for k, v in pattern.items() if not is_wildcard(v)}
        keys = set(pattern)
        return any(set(known) == keys and all(known.get(k) == v for k, v in fixed.items())
                   for known in self._dicts.values())

    def family(self, store_id: dict) -> dict | None:
        """The family a dict id counts under in metrics and the audit log, or None when no known id
        has the same keys: each string value that a known id with these keys has at that key, every
        other value as ``"*"``. ``{"type": "row", "index": 7}`` and a made-up ``{"type": "row",
        "index": "x"}`` both give ``{"index": "*", "type": "row"}``; families come only from known ids."""
        values = self._values.get(frozenset(store_id))
        if values is None:
            return None
        return {k: v if isinstance(v, str) and v in values[k] else "*" for k, v in store_id.items()}

    def add_tree(self, tree: Any) -> None:
        for store in find_stores(tree):
            self.add(getattr(store, "id", None), declared(store))

    def __contains__(self, store_id: Any) -> bool:
        if isinstance(store_id, dict):
            return store_key(store_id) in self._ids or _family(store_id) in self._families
        if isinstance(store_id, str) and store_id.startswith("{") and store_id not in self._ids:
            try:  # set_props keys dict ids as their JSON string
                return json.loads(store_id) in self
            except ValueError:
                return False
        return store_id in self._ids

    def __bool__(self) -> bool:
        return bool(self._ids)


def is_wildcard(value: Any) -> bool:
    import dash

    return isinstance(value, type(dash.ALL))  # ALL, MATCH and ALLSMALLER share Dash's wildcard class


def _family(store_id: dict) -> tuple:
    return (frozenset(store_id), frozenset((k, v) for k, v in store_id.items() if isinstance(v, str)))
