"""The typed JSON form: how a DataFrame, Series or numpy array travels through the browser.

A ServerStore on the ``client`` backend (the per-store rollback switch) keeps its data in the
browser, as ``dcc.Store`` does. The server backends accept a pandas DataFrame or Series or a numpy
array *as the whole value* and give it back with its type (see :mod:`dash_state.core.values`); so that
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
from dash_state.core.browser_form.checks import (
    KINDS,
    MARKER,
    MAX_LABEL_DEPTH,
    MAX_LEVELS,
    MAX_NDIM,
    MAX_ROWS,
    MAX_STR_WIDTH,
    SAFE_INT,
    VERSION,
)
from dash_state.core.browser_form.frames import (
    from_browser,
    is_typeable,
    is_typed,
    to_browser,
)

__all__ = [
    "KINDS",
    "MARKER",
    "MAX_LABEL_DEPTH",
    "MAX_LEVELS",
    "MAX_NDIM",
    "MAX_ROWS",
    "MAX_STR_WIDTH",
    "SAFE_INT",
    "VERSION",
    "from_browser",
    "is_typeable",
    "is_typed",
    "to_browser",
]
