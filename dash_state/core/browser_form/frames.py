"""DataFrame, Series and numpy array to and from the typed form: :func:`to_browser` and
:func:`from_browser`, with the axes (index, columns, MultiIndex levels) and labels (names) around
the per-dtype columns of :mod:`.encode` and :mod:`.decode`."""
from __future__ import annotations

import math
import re
import sys
from typing import Any

from dash_state.core.browser_form.checks import (
    _DIGITS,
    _SPECIAL_FLOATS,
    KINDS,
    MARKER,
    MAX_LABEL_DEPTH,
    MAX_LEVELS,
    MAX_NDIM,
    MAX_ROWS,
    SAFE_INT,
    VERSION,
    _Bad,
    _brief,
)
from dash_state.core.browser_form.decode import _decode
from dash_state.core.browser_form.encode import _encode, _float_name
from dash_state.errors import StoreValueError


def is_typeable(value: Any) -> bool:
    """True for the values that travel in the typed form: a DataFrame, Series or numpy array."""
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    return (pd is not None and isinstance(value, (pd.DataFrame, pd.Series))) or \
        (np is not None and isinstance(value, np.ndarray))


def to_browser(value: Any, store_id: str = "?") -> Any:
    """``value`` as the browser holds it: a DataFrame, Series or numpy array in the typed form, anything
    else unchanged (Dash encodes it, as for a dcc.Store). Raises StoreValueError naming the store and the
    column for a dtype that cannot travel exactly."""
    if not is_typeable(value):
        return value
    import numpy as np
    import pandas as pd

    try:
        if isinstance(value, pd.DataFrame):
            dtypes, data = [], []
            for position in range(value.shape[1]):
                where = f"column {_show(value.columns[position])}"
                dtype, values = _encode(value.iloc[:, position].array, where)
                dtypes.append(dtype)
                data.append(values)
            return {MARKER: "DataFrame", "version": VERSION, "columns": _encode_axis(value.columns, "the column labels"),
                    "index": _encode_axis(value.index, "the index"), "dtypes": dtypes, "data": data}
        if isinstance(value, pd.Series):
            dtype, values = _encode(value.array, "the Series")
            return {MARKER: "Series", "version": VERSION, "name": _label(value.name, "the Series name"),
                    "index": _encode_axis(value.index, "the index"), "dtype": dtype, "data": values}
        if value.dtype.kind == "O" or value.dtype.kind == "U" or value.dtype.kind in "biufmM":
            dtype, values = _encode(np.ascontiguousarray(value).reshape(-1), "the array")
            return {MARKER: "ndarray", "version": VERSION, "dtype": dtype, "shape": list(value.shape), "data": values}
        raise _Bad(f"the array: dtype {value.dtype} cannot travel through the browser exactly")
    except _Bad as exc:
        raise StoreValueError(f"ServerStore {store_id!r} (client backend): cannot send the {type(value).__name__} "
                              f"to the browser: {exc}; convert it, or keep the store on a server backend") from None


def _show(label: Any) -> str:
    return repr(label)[:60]


def _encode_axis(index: Any, where: str) -> dict:
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        return {"dtype": "range", "start": index.start, "stop": index.stop, "step": index.step,
                "name": _label(index.name, where)}
    if isinstance(index, pd.MultiIndex):
        levels = []
        for i in range(index.nlevels):
            dtype, data = _encode(index.get_level_values(i).array, f"{where}, level {i}")
            levels.append({"dtype": dtype, "data": data})
        return {"dtype": "multi", "names": [_label(n, where) for n in index.names], "levels": levels}
    dtype, data = _encode(index.array, where)
    return {"dtype": dtype, "data": data, "name": _label(index.name, where)}


def _label(label: Any, where: str, depth: int = 0) -> Any:
    """A name (of a Series, an index, a level) as JSON that survives JavaScript unchanged."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(label, np.generic):
        label = label.item()
    if label is None or isinstance(label, (str, bool)):
        return label
    if isinstance(label, int):
        return label if abs(label) <= SAFE_INT else {"int": str(label)}
    if isinstance(label, float):
        return {"float": repr(label) if math.isfinite(label) else _float_name(label)}
    if isinstance(label, tuple) and depth < MAX_LABEL_DEPTH:
        return {"tuple": [_label(part, where, depth + 1) for part in label]}
    raise _Bad(f"{where}: a name of type {type(label).__name__} cannot travel (names may be strings, numbers, "
               "booleans, None or tuples of these)")


def is_typed(value: Any) -> bool:
    """Cheap check: a dict carrying the marker (only those are decoded)."""
    return type(value) is dict and MARKER in value


def from_browser(value: Any, store_id: str = "?", max_bytes: int | None = None) -> Any:
    """The value a client-backend store's browser data stands for: the DataFrame, Series or array of a
    typed form, anything else unchanged. Raises StoreValueError naming the store and what is wrong
    for a malformed typed form (see the docstring of :mod:`dash_state.core.browser_form`)."""
    if not is_typed(value):
        return value
    try:
        kind = value.get(MARKER)
        if kind not in KINDS:
            raise _Bad(f"{MARKER} is {_brief(kind)}, expected one of {', '.join(KINDS)}")
        version = value.get("version")
        if type(version) is not int or version != VERSION:
            raise _Bad(f"version {_brief(version)} is not {VERSION} (written by another dash-state version?)")
        if kind == "ndarray":
            return _decode_ndarray(value, max_bytes)
        if kind == "Series":
            data = value.get("data")
            index = _decode_axis(value.get("index"), "index", None)
            values = _decode(value.get("dtype"), data, "the Series", max_bytes)
            if len(values) != len(index):
                raise _Bad(f"the Series has {len(values)} values but the index has {len(index)} entries")
            import pandas as pd

            return pd.Series(values, dtype=values.dtype, index=index, name=_unlabel(value.get("name"), "name"), copy=False)
        return _decode_frame(value, max_bytes)
    except _Bad as exc:
        raise StoreValueError(f"ServerStore {store_id!r}: the typed value the browser sent is malformed: {exc}") from None
    except (ValueError, TypeError, OverflowError, KeyError, IndexError, AttributeError) as exc:
        raise StoreValueError(f"ServerStore {store_id!r}: the typed value the browser sent is malformed: "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _decode_frame(value: dict, max_bytes: int | None) -> Any:
    import pandas as pd

    dtypes, data = value.get("dtypes"), value.get("data")
    if type(dtypes) is not list or type(data) is not list:
        raise _Bad("'dtypes' and 'data' must be lists")
    if len(dtypes) != len(data):
        raise _Bad(f"{len(dtypes)} dtypes for {len(data)} columns")
    columns = _decode_axis(value.get("columns"), "columns", None)
    if len(columns) != len(data):
        raise _Bad(f"{len(columns)} column labels for {len(data)} columns")
    index = _decode_axis(value.get("index"), "index", None if not data else MAX_ROWS)
    arrays = {}
    for position, (dtype, column) in enumerate(zip(dtypes, data)):
        array = _decode(dtype, column, f"column {position}", max_bytes)
        if len(array) != len(index):
            raise _Bad(f"column {position} has {len(array)} values but the index has {len(index)} entries")
        arrays[position] = array
    frame = pd.DataFrame({k: pd.Series(v, dtype=v.dtype, index=index, copy=False) for k, v in arrays.items()},
                         copy=False) if arrays else pd.DataFrame(index=index)  # dtype given: no inference
    frame.columns = columns
    return frame


def _decode_ndarray(value: dict, max_bytes: int | None) -> Any:
    shape = value.get("shape")
    if type(shape) is not list or len(shape) > MAX_NDIM or not all(type(n) is int and n >= 0 for n in shape):
        raise _Bad(f"'shape' must be a list of at most {MAX_NDIM} non-negative integers")
    values = _decode(value.get("dtype"), value.get("data"), "the array", max_bytes, numpy_only=True)
    size = math.prod(shape)
    if size != len(values):
        raise _Bad(f"shape {shape} needs {size} values, 'data' has {len(values)}")
    return values.reshape(shape)


def _decode_axis(axis: Any, where: str, max_declared: int | None) -> Any:
    import pandas as pd

    if type(axis) is not dict:
        raise _Bad(f"'{where}' must be an object")
    kind = axis.get("dtype")
    if kind == "range":
        start, stop, step = axis.get("start"), axis.get("stop"), axis.get("step")
        if not all(type(n) is int for n in (start, stop, step)) or step == 0:
            raise _Bad(f"'{where}': a range needs integer start, stop and a non-zero step")
        length = len(range(start, stop, step))
        if length > (max_declared if max_declared is not None else MAX_ROWS):
            raise _Bad(f"'{where}': a range of {length:,} entries is larger than allowed ({MAX_ROWS:,})")
        return pd.RangeIndex(start, stop, step, name=_unlabel(axis.get("name"), where))
    if kind == "multi":
        names, levels = axis.get("names"), axis.get("levels")
        if type(names) is not list or type(levels) is not list or not 0 < len(levels) <= MAX_LEVELS \
                or len(names) != len(levels):
            raise _Bad(f"'{where}': a MultiIndex needs 1 to {MAX_LEVELS} levels and one name per level")
        arrays = []
        for i, level in enumerate(levels):
            if type(level) is not dict:
                raise _Bad(f"'{where}' level {i} must be an object")
            arrays.append(_decode(level.get("dtype"), level.get("data"), f"{where} level {i}", None))
        if len({len(a) for a in arrays}) > 1:
            raise _Bad(f"'{where}': the levels have different lengths")
        return pd.MultiIndex.from_arrays(arrays, names=[_unlabel(n, where) for n in names])
    values = _decode(kind, axis.get("data"), f"'{where}'", None)
    return pd.Index(values, dtype=values.dtype, name=_unlabel(axis.get("name"), where), copy=False, tupleize_cols=False)


def _unlabel(label: Any, where: str, depth: int = 0) -> Any:
    if label is None or type(label) in (str, bool, int):
        return label
    if type(label) is float:
        return label  # a browser may send a float; accepted as is
    if type(label) is dict and len(label) == 1:
        if type(label.get("int")) is str and _DIGITS.fullmatch(label["int"]):
            return int(label["int"])
        if type(label.get("float")) is str and len(label["float"]) <= 40:
            text = label["float"]
            if text in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[text]
            if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?", text):
                return float(text)
        if type(label.get("tuple")) is list and depth < MAX_LABEL_DEPTH:
            return tuple(_unlabel(part, where, depth + 1) for part in label["tuple"])
    raise _Bad(f"'{where}': a name must be null, a string, a boolean, a number or an object "
               f"{{int|float|tuple}}, got {_brief(label)}")
