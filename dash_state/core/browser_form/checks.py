"""Limits, allow-lists and shared checks of the typed form: the constants both directions use, and
what :func:`~dash_state.core.browser_form.from_browser` accepts from a browser it treats as hostile (fixed
dtype tables, size limits, the Arrow type allow-list, the time-zone list)."""
from __future__ import annotations

import math
import re
from typing import Any

MARKER = "__dash_state__"
VERSION = 1
KINDS = ("DataFrame", "Series", "ndarray")
SAFE_INT = 2 ** 53 - 1  # the largest integer a JavaScript number holds exactly
MAX_NDIM = 32
MAX_ROWS = 100_000_000  # a declared length no data backs (a RangeIndex of a frame without columns)
MAX_STR_WIDTH = 1 << 20  # characters of a numpy "<U" dtype
MAX_LEVELS = 64  # MultiIndex levels
MAX_LABEL_DEPTH = 8  # tuples inside labels

_INTS = {name: name for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")}
_FLOATS = ("float16", "float32", "float64")
_MASKED = {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64", "boolean"}
_DATETIME_UNITS = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns")
_PANDAS_UNITS = ("s", "ms", "us", "ns")
_NS_PER = {"s": 10 ** 9, "ms": 10 ** 6, "us": 10 ** 3, "ns": 1}
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}
_OFFSET = re.compile(r"[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]")
_DIGITS = re.compile(r"-?[0-9]{1,20}")
_U_DTYPE = re.compile(r"<U([0-9]{1,7})")


class _Bad(Exception):
    """Something in a typed value is malformed (internal: becomes a StoreValueError naming the store)."""


def _brief(x: Any) -> str:
    return repr(x)[:40]


def _desc(dtype: Any, where: str) -> tuple[str, dict]:
    if type(dtype) is str:
        return dtype, {}
    if type(dtype) is dict and type(dtype.get("dtype")) is str:
        return dtype["dtype"], dtype
    raise _Bad(f"{where}: dtype must be a string or an object with a 'dtype' string, got {_brief(dtype)}")


def _expect(data: list, kinds: tuple, where: str, what: str, skipna: bool = True) -> None:
    from pandas.api.types import infer_dtype

    found = infer_dtype(data, skipna=skipna)
    if found not in kinds:
        raise _Bad(f"{where}: expected {what}, found {found} values")


def _rows(desc: dict, key: str, n: int, where: str) -> list:
    special = desc.get("special", {})
    if type(special) is not dict:
        raise _Bad(f"{where}: 'special' must be an object")
    rows = special.get(key, [])
    if type(rows) is not list or not all(type(r) is int and 0 <= r < n for r in rows):
        raise _Bad(f"{where}: special {key!r} must list row numbers below {n}")
    return rows


def _check_special_keys(desc: dict, allowed: tuple, where: str) -> None:
    special = desc.get("special", {})
    if type(special) is not dict or not set(special) <= set(allowed):
        raise _Bad(f"{where}: 'special' may only name {', '.join(allowed)}")


def _time_dtype(name: str) -> tuple[str | None, str]:
    match = re.fullmatch(r"(datetime64|timedelta64)\[([A-Za-z]{1,2})\]", name)
    if match is None or match.group(2) not in _DATETIME_UNITS:
        return None, ""
    return match.group(1), match.group(2)


def _zones() -> frozenset:
    global _ZONES
    if _ZONES is None:
        import zoneinfo

        _ZONES = frozenset(zoneinfo.available_timezones())
    return _ZONES


_ZONES: frozenset | None = None


def _pyarrow(where: str) -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
    except ImportError:
        raise _Bad(f"{where}: needs pyarrow (pip install 'dash-state[arrow]')") from None
    return pyarrow


def _allowed_arrow_type(pa: Any, t: Any, depth: int = 0) -> bool:
    """Plain data only: no extension types (pyarrow's pickle-based one above all), no dictionaries."""
    types = pa.types
    if isinstance(t, pa.ExtensionType) or depth > 4:
        return False
    if types.is_list(t) or types.is_large_list(t):
        return _allowed_arrow_type(pa, t.value_type, depth + 1)
    if types.is_struct(t):
        return all(_allowed_arrow_type(pa, t.field(i).type, depth + 1) for i in range(t.num_fields))
    return any(check(t) for check in (
        types.is_null, types.is_boolean, types.is_integer, types.is_floating, types.is_decimal, types.is_string,
        types.is_large_string, types.is_binary, types.is_large_binary, types.is_fixed_size_binary, types.is_date,
        types.is_time, types.is_timestamp, types.is_duration))
