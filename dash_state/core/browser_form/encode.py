"""Per-dtype column encoders: one pandas ExtensionArray or 1-D numpy array to its DTYPE and JSON data
(integers beyond JavaScript's range as strings, float specials, times as counts, Arrow for objects)."""
from __future__ import annotations

import base64
import math
from typing import Any

from dash_state.core.browser_form.checks import (
    _DATETIME_UNITS,
    _FLOATS,
    _MASKED,
    SAFE_INT,
    _allowed_arrow_type,
    _Bad,
    _pyarrow,
    _zones,
)


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


def _float_name(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


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


def _arrow_encode(array: Any, where: str) -> str:
    pa = _pyarrow(where)
    sink = pa.BufferOutputStream()
    batch = pa.record_batch([array], names=["v"])
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")
