"""The benchmark data, in a module that imports neither Dash nor dash-state.

``make_frame`` is the sales-like frame every benchmark uses (``roundtrip.make_frame`` is this same
function); ``make_json`` is the 10 KB JSON value. The load-test app imports this module too, so its
dcc.Store variant never loads the ServerStore component.
"""
from __future__ import annotations

import json
import string
from typing import Any

import numpy as np
import pandas as pd

SEED = 20240601


def make_frame(rows: int, seed: int = SEED) -> pd.DataFrame:
    """A sales-like frame: int id, two string columns, a datetime, an int quantity and a float price
    (62.5 bytes per row in memory with pandas 3: 6.3 MB at 100k rows)."""
    rng = np.random.default_rng(seed)
    regions = np.array(["North", "South", "East", "West"])
    products = np.array([f"product-{i:02d}" for i in range(50)])
    start = np.datetime64("2024-01-01T00:00:00", "s")
    return pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "region": regions[rng.integers(0, len(regions), rows)],
        "product": products[rng.integers(0, len(products), rows)],
        "timestamp": pd.to_datetime(start + rng.integers(0, 365 * 24 * 3600, rows).astype("timedelta64[s]")),
        "quantity": rng.integers(1, 100, rows, dtype=np.int64),
        "price": np.round(rng.uniform(1.0, 500.0, rows), 2),
    })


def make_json(target_bytes: int = 10 * 1024, seed: int = SEED) -> dict:
    """A JSON-compatible dict of lists and strings, about ``target_bytes`` as compact JSON."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(string.ascii_lowercase))
    value: dict[str, Any] = {"title": "Quarterly sales by product", "labels": [], "values": [], "notes": []}
    while len(json.dumps(value, separators=(",", ":"))) < target_bytes:
        i = len(value["labels"])
        value["labels"].append(f"product-{i:03d}")
        value["values"].append(round(float(rng.uniform(0, 1000)), 2))
        value["notes"].append("".join(rng.choice(letters, 12)))
    return value
