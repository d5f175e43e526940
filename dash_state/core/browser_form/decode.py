"""Per-dtype column decoders: one column back from its DTYPE and JSON data, every part checked (types,
ranges, special rows, time zones, Arrow streams) and any malformed one refused with :class:`_Bad`."""
from __future__ import annotations

import base64
from typing import Any

from dash_state.core.browser_form.checks import (
    _DIGITS,
    _FLOATS,
    _INTS,
    _MASKED,
    _OFFSET,
    _PANDAS_UNITS,
    _SPECIAL_FLOATS,
    _U_DTYPE,
    MAX_STR_WIDTH,
    _allowed_arrow_type,
    _Bad,
    _brief,
    _check_special_keys,
    _desc,
    _expect,
    _pyarrow,
    _rows,
    _time_dtype,
    _zones,
)


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
