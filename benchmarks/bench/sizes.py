"""The values the benchmark moves (10 KB of JSON, frames of N rows) and how sizes are written."""
from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
from benchdata import make_frame, make_json  # make_frame is roundtrip.make_frame


def rows_label(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M rows"
    if rows >= 1000 and rows % 1000 == 0:
        return f"{rows // 1000}k rows"
    return f"{rows:,} rows"


def parse_rows(token: str) -> int:
    """``1k``, ``1m``, ``250000`` -> a row count."""
    token = token.strip().lower()
    factor = 1
    if token.endswith("k"):
        factor, token = 1000, token[:-1]
    elif token.endswith("m"):
        factor, token = 1_000_000, token[:-1]
    return int(float(token) * factor)


def fmt_bytes(n: Any) -> str:
    if n is None:
        return ""
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


class Size:
    """One value of the matrix, built once: ``json`` or a row count; ``expected`` is what R must return."""

    def __init__(self, token: str):
        self.key = token.strip().lower()
        if self.key == "json":
            self.rows = None
            self.label = "10 KB JSON"
            self.value: Any = make_json()
            self.expected = f"{len(self.value['values'])} values"
            self.nbytes = len(orjson.dumps(self.value))
        else:
            self.rows = parse_rows(self.key)
            self.label = rows_label(self.rows)
            self.value = make_frame(self.rows)
            self.expected = f"{self.rows} rows"
            self.nbytes = int(self.value.memory_usage(deep=True).sum())

    def describe(self) -> dict:
        if self.rows is None:
            return {"label": self.label, "kind": "json", "compact_json_bytes": self.nbytes}
        return {"label": self.label, "kind": "frame", "rows": self.rows, "memory_bytes": self.nbytes,
                "columns": {c: str(t) for c, t in self.value.dtypes.items()}}


def summarize(value: Any) -> str:
    """What R returns: proof that R received the whole value."""
    if isinstance(value, pd.DataFrame):
        return f"{len(value)} rows"
    if isinstance(value, dict):
        return f"{len(value['values'])} values"
    raise TypeError(f"R expected a DataFrame or a dict, got {type(value).__name__}")
