"""The typed JSON form: how a DataFrame, Series or numpy array travels through the browser.

A ServerStore on the ``client`` backend (the per-store rollback switch) keeps its data in the
browser, as ``dcc.Store`` does. The server backends accept a pandas DataFrame or Series or a numpy
array *as the whole value* and give it back with its type (see :mod:`dash_state.values`); so that
rolling a store back changes nothing for the app's callbacks, such a value is sent to the browser in
the typed form below and decoded when a callback receives it. Values nested inside dicts or lists are
sent as Dash encodes them, exactly as a ``dcc.Store`` would: only the whole value is typed.

Form, version 1 (plain JSON; clientside JavaScript can read it)::

    {"__dash_state__": "DataFrame", "version": 1,
     "columns": AXIS, "index": AXIS,
     "dtypes": [DTYPE, ...],          # one per column
     "data": [[...], [...], ...]}     # one array per column, one entry per row
    {"__dash_state__": "Series", "version": 1, "name": LABEL, "index": AXIS, "dtype": DTYPE, "data": [...]}
    {"__dash_state__": "ndarray", "version": 1, "dtype": DTYPE, "shape": [2, 3], "data": [...]}  # flat, C order

    AXIS  = {"dtype": "range", "start": 0, "stop": 5, "step": 1, "name": LABEL}
          | {"dtype": DTYPE, "data": [...], "name": LABEL}
          | {"dtype": "multi", "names": [LABEL, ...], "levels": [{"dtype": DTYPE, "data": [...]}, ...]}
    LABEL = null | string | bool | int | {"int": "<digits>"} | {"float": "<repr>"} | {"tuple": [LABEL, ...]}

A DTYPE is a string when it needs no parameters, else an object ``{"dtype": name, ...}``. Values:

==============================  ============================================================================
``bool``, ``int8`` ...          JSON booleans / integers. Integers beyond +-(2**53 - 1), which JavaScript
``uint64``                      cannot hold exactly, make the column ``{"dtype": "int64", "strings": true}``
                                with decimal strings.
``float16/32/64``               numbers, ``null`` for NaN; ``{"dtype": "float64", "special": {"Infinity":
                                [rows], "-Infinity": [rows], "-0": [rows]}}`` lists the rows that JSON
                                cannot hold (their entries are ``null``).
``datetime64[unit]``            ``{"dtype": "datetime64[us]", "unit": "ms", "tz": "Europe/Paris"}``: integers
                                counted in ``unit`` since 1970-01-01 UTC (``ms`` whenever every value is a
                                whole millisecond, so ``new Date(v)`` works), ``null`` for NaT; ``tz``
                                only for tz-aware columns (an IANA name, ``UTC`` or ``+HH:MM``).
``timedelta64[unit]``           ``{"dtype": "timedelta64[us]", "unit": "ms"}``: integers, ``null`` for NaT.
``category``                    ``{"dtype": "category", "ordered": false, "categories": {"dtype": DTYPE,
                                "data": [...]}}``; the values are codes into ``categories.data``, ``null``
                                for missing.
``Int64`` ... ``UInt64``,       pandas' nullable dtypes: values, ``null`` for ``pd.NA``; nullable floats
``Float32/64``, ``boolean``     list NaN (distinct from NA) as ``special.NaN``.
``string``                      ``{"dtype": "string", "storage": "pyarrow"|"python", "na": "NA"|"NaN"}``
                                (``"str"``: pandas 3's default string dtype): strings, ``null`` for missing.
``object``                      strings, booleans, numbers and ``null`` (None); ``special`` lists the rows
                                holding NaN, infinities, -0.0, ``pd.NA`` (entries ``null``), floats with an
                                integral value (``"float"``) and big integers (``"int"``, as strings).
                                An object column holding other Python objects (dates, Decimals, bytes,
                                lists) is sent as ``{"dtype": "object", "arrow": true}`` with the data a
                                base64 Arrow IPC stream of one column, decoded back to Python objects.
``<U8`` (numpy arrays)          strings.
``arrow`` (``pd.ArrowDtype``)   ``{"dtype": "arrow", "arrow": true}``: base64 Arrow IPC, decoded with
                                ``pd.ArrowDtype``.
==============================  ============================================================================

Other dtypes (complex, period, interval, sparse, numpy bytes and structured arrays) cannot travel
exactly: :func:`to_browser` raises a StoreValueError naming the column. A DatetimeIndex's ``freq``
is not kept (it is derived data; pandas' ``equals`` ignores it), nor the sign or payload of a NaN (JSON
has one NaN: ``null``).

:func:`from_browser` treats its input as hostile: only a dict carrying the ``__dash_state__`` marker is
decoded; any malformed part (wrong types, lengths that disagree, a dtype outside the allow-list, an
unknown version, sizes beyond the limits) raises StoreValueError naming the store and the part. Dtype
strings are looked up in fixed tables, never passed to ``np.dtype`` or ``astype``; nothing is
unpickled or evaluated, and Arrow streams are limited to plain data types (no extension types).
"""
from __future__ import annotations

import base64
import math
import re
import sys
from typing import Any

from .errors import StoreValueError

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


# -- encoding ------------------------------------------------------------------------------------------
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


def _float_name(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def _encode(array: Any, where: str) -> tuple[Any, list | str]:
    """(DTYPE, data) of one pandas ExtensionArray or 1-D numpy array."""
    import numpy as np
    import pandas as pd

    if type(array) is pd.arrays.NumpyExtensionArray:  # not its subclasses (python-storage strings)
        array = array.to_numpy()
    dtype = array.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cat_dtype, cat_data = _encode(dtype.categories.array, f"{where} (categories)")
        codes = np.asarray(array.codes)
        return ({"dtype": "category", "ordered": bool(dtype.ordered), "categories": {"dtype": cat_dtype, "data": cat_data}},
                _with_nulls(codes.astype(np.int64), codes < 0))
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc = np.asarray(array.tz_convert("UTC").tz_localize(None))
        return _encode_times(utc, dtype.unit, "datetime64", {"tz": _tz_name(dtype.tz, where)})
    if isinstance(dtype, pd.StringDtype):
        desc = _string_desc(dtype)
        return desc, array.to_numpy(dtype=object, na_value=None).tolist()
    if getattr(dtype, "name", None) in _MASKED and type(dtype).__module__.startswith("pandas"):
        return _encode_masked(array, dtype.name)
    if isinstance(dtype, pd.ArrowDtype):
        return {"dtype": "arrow", "arrow": True}, _arrow_encode(array._pa_array.combine_chunks(), where)
    if not isinstance(dtype, np.dtype):
        raise _Bad(f"{where}: dtype {dtype} cannot travel through the browser exactly")
    values = np.asarray(array)
    kind = dtype.kind
    if kind == "b":
        return "bool", values.tolist()
    if kind in "iu":
        return _encode_ints(values, dtype.name)
    if kind == "f" and dtype.name in _FLOATS:
        return _encode_floats(values, dtype.name)
    if kind in "mM":
        unit = np.datetime_data(dtype)[0]
        if unit not in _DATETIME_UNITS or np.datetime_data(dtype)[1] != 1:
            raise _Bad(f"{where}: dtype {dtype} cannot travel through the browser exactly")
        return _encode_times(values, unit, "datetime64" if kind == "M" else "timedelta64", {})
    if kind == "U":
        return f"<U{dtype.itemsize // 4}", values.tolist()
    if kind == "O":
        return _encode_objects(values, where)
    raise _Bad(f"{where}: dtype {dtype} cannot travel through the browser exactly")


def _with_nulls(values: Any, missing: Any) -> list:
    if not missing.any():
        return values.tolist()
    out = values.astype(object)
    out[missing] = None
    return out.tolist()


def _encode_ints(values: Any, name: str) -> tuple[Any, list]:
    import numpy as np

    if values.size and values.dtype.itemsize == 8 and (
            int(values.max()) > SAFE_INT or (values.dtype.kind == "i" and int(values.min()) < -SAFE_INT)):
        return {"dtype": name, "strings": True}, [str(v) for v in values.tolist()]
    return name, values.astype(np.int64 if values.dtype.kind == "i" else np.uint64, copy=False).tolist()


def _specials(values: Any, nan_is_null: bool) -> tuple[dict, Any]:
    """Rows of a float array that JSON cannot hold: {name: [rows]}, and the mask of all of them."""
    import numpy as np

    finite = np.isfinite(values)
    negative_zero = (values == 0) & np.signbit(values)
    special, mask = {}, ~finite | negative_zero
    if not mask.any():
        return special, mask
    for name, rows in (("NaN", np.isnan(values)), ("Infinity", values == np.inf),
                       ("-Infinity", values == -np.inf), ("-0", negative_zero)):
        if name == "NaN" and nan_is_null:
            continue
        found = np.flatnonzero(rows)
        if found.size:
            special[name] = found.tolist()
    return special, mask


def _encode_floats(values: Any, name: str) -> tuple[Any, list]:
    special, mask = _specials(values, nan_is_null=True)
    data = _with_nulls(values, mask)
    return ({"dtype": name, "special": special} if special else name), data


def _encode_masked(array: Any, name: str) -> tuple[Any, list]:
    import numpy as np

    data, na = array._data, np.asarray(array._mask)
    if name == "boolean":
        return name, _with_nulls(data, na)
    if name.startswith("Float"):
        special, mask = _specials(np.where(na, 0, data), nan_is_null=False)
        out = _with_nulls(data, mask | na)
        return ({"dtype": name, "special": special} if special else name), out
    if data.size and ((data[~na].max() if (~na).any() else 0) > SAFE_INT or
                      (data.dtype.kind == "i" and (~na).any() and data[~na].min() < -SAFE_INT)):
        return {"dtype": name, "strings": True}, [None if m else str(v) for v, m in zip(data.tolist(), na.tolist())]
    return name, _with_nulls(data, na)


def _encode_times(values: Any, unit: str, family: str, extra: dict) -> tuple[dict, list]:
    """datetime64 / timedelta64 values as integer counts (``ms`` when exact), null for NaT."""
    import numpy as np

    ints = values.view(np.int64)
    missing = np.isnat(values)
    present = ints[~missing]
    count_unit = unit
    if unit in ("us", "ns") and present.size and not (present % (1000 if unit == "us" else 1_000_000)).any():
        count_unit = "ms"
        ints = ints // (1000 if unit == "us" else 1_000_000)
    desc = {"dtype": f"{family}[{unit}]", "unit": count_unit, **extra}
    if present.size and int(np.abs(ints[~missing]).max()) > SAFE_INT:
        desc["strings"] = True
        return desc, [None if m else str(v) for v, m in zip(ints.tolist(), missing.tolist())]
    return desc, _with_nulls(ints, missing)


def _tz_name(tz: Any, where: str) -> str:
    import datetime

    if tz is datetime.timezone.utc or str(tz) == "UTC":
        return "UTC"
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # zoneinfo, pytz
    if isinstance(key, str) and key in _zones():
        return key
    if isinstance(tz, datetime.timezone):
        offset = tz.utcoffset(None)
        minutes = int(offset.total_seconds() // 60)
        if offset.total_seconds() % 60 == 0 and abs(minutes) < 24 * 60:
            sign = "+" if minutes >= 0 else "-"
            return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    raise _Bad(f"{where}: time zone {tz!r} cannot travel (use an IANA name, UTC or a fixed offset)")


def _zones() -> frozenset:
    global _ZONES
    if _ZONES is None:
        import zoneinfo

        _ZONES = frozenset(zoneinfo.available_timezones())
    return _ZONES


_ZONES: frozenset | None = None


def _string_desc(dtype: Any) -> Any:
    import pandas as pd

    na = "NA" if dtype.na_value is pd.NA else "NaN"
    if dtype == pd.StringDtype(na_value=float("nan")) and dtype.storage == pd.StringDtype(na_value=float("nan")).storage:
        return "str"
    return {"dtype": "string", "storage": dtype.storage, "na": na}


def _encode_objects(values: Any, where: str) -> tuple[Any, list | str]:
    from pandas.api.types import infer_dtype

    if infer_dtype(values, skipna=False) in ("string", "empty"):
        return "object", values.tolist()
    import pandas as pd

    data, special = values.tolist(), {}
    for row, item in enumerate(data):
        kind = type(item)
        if item is None or kind is str or kind is bool:
            continue
        if kind is int or (isinstance(item, int) and not isinstance(item, bool) and type(item).__module__ == "numpy"):
            if abs(item) > SAFE_INT:
                special.setdefault("int", []).append(row)
                data[row] = str(int(item))
            continue
        if isinstance(item, float) and (kind is float or type(item).__module__ == "numpy"):
            if not math.isfinite(item) or (item == 0 and math.copysign(1, item) < 0):
                special.setdefault("-0" if item == 0 else _float_name(item), []).append(row)
                data[row] = None
            elif item.is_integer():
                special.setdefault("float", []).append(row)
            continue
        if item is pd.NA:
            special.setdefault("NA", []).append(row)
            data[row] = None
            continue
        return {"dtype": "object", "arrow": True}, _arrow_encode(_arrow_objects(values, where), where)
    return ({"dtype": "object", "special": special} if special else "object"), data


def _arrow_objects(values: Any, where: str) -> Any:
    pa = _pyarrow(where)
    try:
        array = pa.array(values, from_pandas=False)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for mixed objects
        raise _Bad(f"{where}: an object column of mixed or unsupported Python objects cannot travel "
                   f"exactly ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not _allowed_arrow_type(pa, array.type):
        raise _Bad(f"{where}: an object column of {array.type} values cannot travel exactly")
    return array


def _pyarrow(where: str) -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
    except ImportError:
        raise _Bad(f"{where}: needs pyarrow (pip install 'dash-state[arrow]')") from None
    return pyarrow


def _arrow_encode(array: Any, where: str) -> str:
    pa = _pyarrow(where)
    sink = pa.BufferOutputStream()
    batch = pa.record_batch([array], names=["v"])
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


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


# -- decoding ------------------------------------------------------------------------------------------
def is_typed(value: Any) -> bool:
    """Cheap check: a dict carrying the marker (only those are decoded)."""
    return type(value) is dict and MARKER in value


def from_browser(value: Any, store_id: str = "?", max_bytes: int | None = None) -> Any:
    """The value a client-backend store's browser data stands for: the DataFrame, Series or array of a
    typed form, anything else unchanged. Raises StoreValueError naming the store and what is wrong
    for a malformed typed form (see the module docstring)."""
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


def _brief(x: Any) -> str:
    return repr(x)[:40]


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


def _desc(dtype: Any, where: str) -> tuple[str, dict]:
    if type(dtype) is str:
        return dtype, {}
    if type(dtype) is dict and type(dtype.get("dtype")) is str:
        return dtype["dtype"], dtype
    raise _Bad(f"{where}: dtype must be a string or an object with a 'dtype' string, got {_brief(dtype)}")


def _decode(dtype: Any, data: Any, where: str, max_bytes: int | None, numpy_only: bool = False) -> Any:
    """One column (an ExtensionArray or a 1-D numpy array) from its DTYPE and data."""
    import numpy as np

    name, desc = _desc(dtype, where)
    if desc.get("arrow") is True:
        if name not in ("object", "arrow") or (numpy_only and name != "object"):
            raise _Bad(f"{where}: only object and arrow columns may carry Arrow data")
        return _arrow_decode(data, name, where, max_bytes)
    if type(data) is not list:
        raise _Bad(f"{where}: 'data' must be a list")
    if name == "bool":
        _expect(data, ("boolean", "empty"), where, "booleans", skipna=False)
        return np.array(data, dtype=bool)
    if name in _INTS:
        return _decode_ints(data, desc, np.dtype(_INTS[name]), where)
    if name in _FLOATS:
        _expect(data, ("floating", "integer", "mixed-integer-float", "empty"), where, "numbers or null")
        values = np.array(data, dtype=np.float64)
        _apply_special(values, desc, where, ("Infinity", "-Infinity", "-0"))
        return values.astype(name, copy=False)
    family, unit = _time_dtype(name)
    if family is not None:
        return _decode_times(data, desc, family, unit, where, numpy_only)
    if _U_DTYPE.fullmatch(name) and numpy_only:
        width = int(_U_DTYPE.fullmatch(name).group(1))
        if not 0 < width <= MAX_STR_WIDTH or (max_bytes is not None and width * 4 * len(data) > max_bytes):
            raise _Bad(f"{where}: dtype {name} is too wide for {len(data)} values")
        _expect(data, ("string", "empty"), where, "strings", skipna=False)
        if any(len(s) > width for s in data):
            raise _Bad(f"{where}: a string is longer than {name} allows")
        return np.array(data, dtype=f"<U{width}")
    if name == "object":
        return _decode_objects(data, desc, where)
    if numpy_only:
        raise _Bad(f"{where}: unknown dtype {_brief(name)} for an array")
    if name == "category":
        return _decode_category(data, desc, where, max_bytes)
    if name in _MASKED:
        return _decode_masked(data, desc, name, where)
    if name in ("str", "string"):
        return _decode_strings(data, desc, name, where)
    raise _Bad(f"{where}: unknown dtype {_brief(name)}")


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


def _apply_special(values: Any, desc: dict, where: str, allowed: tuple) -> None:
    _check_special_keys(desc, allowed, where)
    for key in allowed:
        rows = _rows(desc, key, len(values), where)
        if rows:
            values[rows] = _SPECIAL_FLOATS[key]


def _int_values(data: list, desc: dict, where: str) -> tuple[Any, Any]:
    """(int64 or uint64 numpy values, missing mask) from JSON integers or decimal strings, null = missing."""
    import numpy as np

    if desc.get("strings") is True:
        if not all(s is None or (type(s) is str and _DIGITS.fullmatch(s)) for s in data):
            raise _Bad(f"{where}: expected decimal integer strings or null")
        ints = [None if s is None else int(s) for s in data]
    else:
        from pandas.api.types import infer_dtype

        if infer_dtype(data, skipna=False) not in ("integer", "empty"):  # the common case: no null
            _expect(data, ("integer", "empty"), where, "integers or null")
        ints = data
    missing = np.array(ints, dtype=object) == None  # elementwise
    present = [v for v in ints if v is not None] if missing.any() else ints
    low, high = (min(present), max(present)) if present else (0, 0)
    if low < -(2 ** 63) or high >= 2 ** 64 or (low < 0 and high >= 2 ** 63):
        raise _Bad(f"{where}: an integer is out of the 64-bit range")
    kind = np.uint64 if high >= 2 ** 63 else np.int64
    if missing.any():
        values = np.zeros(len(ints), dtype=kind)
        values[~missing] = np.array(present, dtype=kind)
    else:
        values = np.array(ints, dtype=kind)
    return values, missing


def _fits(values: Any, missing: Any, target: Any, where: str) -> Any:
    import numpy as np

    info = np.iinfo(target)
    present = values[~missing]
    if present.size and (int(present.min()) < info.min or int(present.max()) > info.max):
        raise _Bad(f"{where}: a value does not fit {target}")
    return values.astype(target)


def _decode_ints(data: list, desc: dict, target: Any, where: str) -> Any:
    values, missing = _int_values(data, desc, where)
    if missing.any():
        raise _Bad(f"{where}: {target} has no missing values, found null")
    return _fits(values, missing, target, where)


def _time_dtype(name: str) -> tuple[str | None, str]:
    match = re.fullmatch(r"(datetime64|timedelta64)\[([A-Za-z]{1,2})\]", name)
    if match is None or match.group(2) not in _DATETIME_UNITS:
        return None, ""
    return match.group(1), match.group(2)


def _decode_times(data: list, desc: dict, family: str, unit: str, where: str, numpy_only: bool) -> Any:
    import numpy as np
    import pandas as pd

    count_unit = desc.get("unit", unit)
    if count_unit != unit and not (count_unit == "ms" and unit in ("us", "ns")):
        raise _Bad(f"{where}: values counted in {_brief(count_unit)} cannot make {family}[{unit}]")
    tz = desc.get("tz")
    if (tz is not None or not numpy_only) and unit not in _PANDAS_UNITS:
        raise _Bad(f"{where}: pandas has no {family}[{unit}]")
    values, missing = _int_values(data, desc, where)
    values = _fits(values, missing, np.int64, where)
    if count_unit != unit:
        factor = 1000 if unit == "us" else 1_000_000
        if values.size and np.abs(values).max() > np.iinfo(np.int64).max // factor:
            raise _Bad(f"{where}: a value is out of range")
        values = values * factor
    values[missing] = np.iinfo(np.int64).min  # NaT
    if values.size and (values[~missing] == np.iinfo(np.int64).min).any():
        raise _Bad(f"{where}: a value is out of range")
    times = values.view(np.dtype(f"{family}[{unit}]"))  # family and unit come from fixed tables
    if tz is None:
        return times if numpy_only else pd.array(times)
    if family != "datetime64":
        raise _Bad(f"{where}: only datetimes take a time zone")
    zone = _decode_tz(tz, where)
    return pd.array(pd.DatetimeIndex(times).tz_localize("UTC").tz_convert(zone))


def _decode_tz(tz: Any, where: str) -> Any:
    import datetime

    if tz == "UTC":
        return datetime.timezone.utc
    if type(tz) is str and _OFFSET.fullmatch(tz):
        sign = 1 if tz[0] == "+" else -1
        return datetime.timezone(sign * datetime.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    if type(tz) is str and tz in _zones():
        import zoneinfo

        return zoneinfo.ZoneInfo(tz)
    raise _Bad(f"{where}: unknown time zone {_brief(tz)}")


def _decode_category(data: list, desc: dict, where: str, max_bytes: int | None) -> Any:
    import pandas as pd

    categories, ordered = desc.get("categories"), desc.get("ordered", False)
    if type(categories) is not dict or type(ordered) is not bool:
        raise _Bad(f"{where}: a category dtype needs 'categories' {{dtype, data}} and a boolean 'ordered'")
    inner, _ = _desc(categories.get("dtype"), where)
    if inner in ("category", "range", "multi"):
        raise _Bad(f"{where}: categories cannot be of dtype {inner}")
    values = _decode(categories.get("dtype"), categories.get("data"), f"{where} (categories)", max_bytes)
    cats = pd.Index(values, dtype=values.dtype, copy=False, tupleize_cols=False)
    codes, missing = _int_values(data, {}, where)
    codes[missing] = -1
    if codes.size and (int(codes.max()) >= len(cats) or int(codes.min()) < -1):
        raise _Bad(f"{where}: a category code is outside 0..{len(cats) - 1}")
    return pd.Categorical.from_codes(codes.astype("int64"), dtype=pd.CategoricalDtype(cats, ordered=ordered))


def _decode_masked(data: list, desc: dict, name: str, where: str) -> Any:
    import numpy as np
    import pandas as pd

    if name == "boolean":
        _expect(data, ("boolean", "empty"), where, "booleans or null")
        return pd.array(data, dtype="boolean")
    if name.startswith("Float"):
        _expect(data, ("floating", "integer", "mixed-integer-float", "empty"), where, "numbers or null")
        missing = np.fromiter((v is None for v in data), dtype=bool, count=len(data))
        values = np.array([0.0 if v is None else v for v in data], dtype=np.float64) if missing.any() \
            else np.array(data, dtype=np.float64)
        _apply_special(values, desc, where, ("NaN", "Infinity", "-Infinity", "-0"))
        for key in ("NaN", "Infinity", "-Infinity", "-0"):  # null there stands for the special value, not NA
            missing[_rows(desc, key, len(values), where)] = False
        return pd.arrays.FloatingArray(values.astype(name.lower()), missing)
    values, missing = _int_values(data, desc, where)
    values = _fits(values, missing, np.dtype(name.lower()), where)
    return pd.arrays.IntegerArray(values, missing)


def _decode_strings(data: list, desc: dict, name: str, where: str) -> Any:
    import pandas as pd

    if name == "str":
        dtype = pd.StringDtype(na_value=float("nan"))
    else:
        storage, na = desc.get("storage"), desc.get("na")
        if storage not in ("python", "pyarrow") or na not in ("NA", "NaN"):
            raise _Bad(f"{where}: a string dtype needs storage 'python' or 'pyarrow' and na 'NA' or 'NaN'")
        dtype = pd.StringDtype(storage=storage, na_value=pd.NA if na == "NA" else float("nan"))
    if dtype.storage == "pyarrow":
        import pyarrow as pa

        try:  # Arrow checks the types itself, faster than pandas from a list
            return pd.array(pa.array(data, type=pa.large_string()), dtype=dtype)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            raise _Bad(f"{where}: expected strings or null") from None
    _expect(data, ("string", "empty"), where, "strings or null")
    return pd.array(data, dtype=dtype)


def _decode_objects(data: list, desc: dict, where: str) -> Any:
    import numpy as np
    import pandas as pd

    allowed = ("NaN", "Infinity", "-Infinity", "-0", "NA", "float", "int")
    _check_special_keys(desc, allowed, where)
    values = np.empty(len(data), dtype=object)
    values[:] = data
    if not desc.get("special"):
        _expect(data, ("string", "empty", "boolean", "integer", "floating", "mixed-integer-float", "mixed",
                       "mixed-integer"), where, "JSON scalars", skipna=True)
    if not all(v is None or type(v) in (str, bool, int, float) for v in data):
        raise _Bad(f"{where}: an object column holds strings, numbers, booleans and null only")
    n = len(data)
    for key in ("NaN", "Infinity", "-Infinity", "-0"):
        for row in _rows(desc, key, n, where):
            values[row] = _SPECIAL_FLOATS[key]
    for row in _rows(desc, "NA", n, where):
        values[row] = pd.NA
    for row in _rows(desc, "float", n, where):
        if type(values[row]) not in (int, float):
            raise _Bad(f"{where}: special 'float' names a row that holds no number")
        values[row] = float(values[row])
    for row in _rows(desc, "int", n, where):
        text = values[row]
        if type(text) is not str or not _DIGITS.fullmatch(text):
            raise _Bad(f"{where}: special 'int' names a row that holds no decimal string")
        values[row] = int(text)
    return values


def _arrow_decode(data: Any, name: str, where: str, max_bytes: int | None) -> Any:
    import numpy as np
    import pandas as pd

    if type(data) is not str:
        raise _Bad(f"{where}: Arrow data must be a base64 string")
    if max_bytes is not None and len(data) * 3 // 4 > max_bytes:
        raise _Bad(f"{where}: Arrow data is larger than STATE_MAX_VALUE_BYTES")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise _Bad(f"{where}: Arrow data is not valid base64") from None
    pa = _pyarrow(where)
    try:
        table = pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
        table.validate(full=True)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a malformed stream vary
        raise _Bad(f"{where}: not a valid Arrow IPC stream ({type(exc).__name__})") from None
    if table.num_columns != 1 or not _allowed_arrow_type(pa, table.schema.field(0).type):
        raise _Bad(f"{where}: the Arrow stream must hold one column of a plain data type")
    column = table.column(0).combine_chunks()
    if name == "object":
        values = np.empty(len(column), dtype=object)
        values[:] = column.to_pylist()
        return values
    return pd.array(column, dtype=pd.ArrowDtype(column.type))
