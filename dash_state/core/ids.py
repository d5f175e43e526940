"""A store's id as one string: the one place dash-state writes an id out.

A string id is itself; a pattern-matching (dict) id is written the way Dash writes it in callback
requests and in the page (keys sorted, JSON values, no spaces; a wildcard by its ``to_json``), so the
same store has the same key in the layout, in a callback, in the browser (``src_js/references.js``
``idKey``) and in config.toml's ``[STATE_STORES."{...}"]`` sections.
"""
from __future__ import annotations

import json
from typing import Any


def store_key(store_id: Any) -> str:
    """The id as a string: ``"a"`` -> ``"a"``; ``{"type": "s", "index": 1}`` -> ``'{"index":1,"type":"s"}'``."""
    if isinstance(store_id, str):
        return store_id
    if isinstance(store_id, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{_value(store_id[key])}" for key in sorted(store_id)) + "}"
    return str(store_id)


def _value(value: Any) -> str:
    return value.to_json() if hasattr(value, "to_json") else json.dumps(value)
