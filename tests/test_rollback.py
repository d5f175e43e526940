"""The per-store rollback switch (``backend = "client"``) works for every value the server backends take.

A DataFrame, Series or numpy array held in the browser travels in the typed JSON form of
``dash_state/core/browser_form/`` (documented in its ``__init__.py``) and comes back to callbacks with its
type, index and dtypes; the Python API follows the rule in ``dash_state/core/store_api.py``; usage.py runs
with each of its stores rolled back.
"""
from __future__ import annotations

import datetime
import decimal
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from apps import new_app
from dash import Input, Output, State, html
from dash_client import DashClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

import dash_state
from dash_state import (
    ServerStore,
    StoreValueError,
    get_store,
    set_store,
    state_managed_callback,
)
from dash_state.core.browser_form import MARKER, from_browser, to_browser

ROOT = Path(__file__).resolve().parents[1]
CLIENT = {"backend": "client"}


def through_browser(value):
    """What comes back after the browser held the value: JSON.parse, then JSON.stringify (JavaScript
    numbers: an integral float comes back as an integer, and any integer beyond 2**53 is rounded)."""
    def js(x):
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return x
        if isinstance(x, (int, float)):
            f = float(x)
            return int(f) if f.is_integer() else f
        if isinstance(x, list):
            return [js(i) for i in x]
        return {k: js(v) for k, v in x.items()}

    return js(orjson.loads(orjson.dumps(value)))


def round_trip(value):
    return from_browser(through_browser(to_browser(value, "s")), "s")


def assert_same_frame(got, want):
    assert type(got) is type(want)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_freq=False)
    assert list(got.dtypes) == list(want.dtypes)
    assert got.index.dtype == want.index.dtype and got.columns.dtype == want.columns.dtype
    assert list(got.index.names) == list(want.index.names) and got.columns.name == want.columns.name


# -- the typed form: each dtype family comes back exactly -------------------------------------------
FAMILIES = {
    "int": pd.DataFrame({"a": np.array([1, -2, 3], dtype="int64"), "b": np.array([1, 2, 3], dtype="int8"),
                         "c": np.array([0, 7, 255], dtype="uint8"), "d": np.array([1, 2, 3], dtype="int32")}),
    "int beyond 2**53": pd.DataFrame({"a": np.array([2 ** 62, -(2 ** 63), 1]),
                                      "u": np.array([2 ** 64 - 1, 0, 2 ** 53 + 1], dtype="uint64")}),
    "float": pd.DataFrame({"f": [1.0, 0.1, 2.5e-308], "g": np.array([1.5, 3.0, 1e30], dtype="float32"),
                           "h": np.array([0.5, 1.0, 2.0], dtype="float16")}),
    "float NaN inf -0.0": pd.DataFrame({"f": [np.nan, np.inf, -np.inf, -0.0, 0.0, 1 / 3]}),
    "bool": pd.DataFrame({"b": [True, False, True]}),
    "str": pd.DataFrame({"s": ["a", None, "ünï\"cødé\n"]}),
    "object": pd.DataFrame({"o": np.array(["x", None, 1, 2.0, True, np.nan, -0.0, 2 ** 60, pd.NA], dtype=object)}),
    "object of Python objects": pd.DataFrame({
        "dates": [datetime.date(2024, 1, 1), None, datetime.date(1999, 12, 31)],
        "decimals": [decimal.Decimal("1.10"), decimal.Decimal(-3), None],
        "bytes": [b"\x00\xff", b"", None]}),
    "datetime naive": pd.DataFrame({
        "us": pd.to_datetime(["2024-01-01", None, "2024-02-29 13:45:01.123456"], format="ISO8601"),
        "ns": pd.Series(pd.to_datetime(["2024-01-01T00:00:00.000000001", "1677-09-22", None],
                                       format="ISO8601")).astype("datetime64[ns]"),
        "s": pd.Series(pd.to_datetime(["1900-01-01", "2262-04-11", "3000-01-01"])).astype("datetime64[s]")}),
    "datetime tz-aware": pd.DataFrame({
        "paris": pd.date_range("2024-03-30 12:00", periods=3, freq="13h", tz="Europe/Paris"),
        "utc": pd.to_datetime(["2024-01-01 00:00:01.5", None, "2024-01-02"], utc=True, format="ISO8601"),
        "fixed": pd.date_range("2024-01-01", periods=3, tz=datetime.timezone(datetime.timedelta(hours=-3, minutes=-30)))}),
    "timedelta": pd.DataFrame({"t": pd.to_timedelta(["1 day", None, "-3 ns"]),
                               "m": pd.to_timedelta([1, 2, 3], unit="D").astype("timedelta64[ms]")}),
    "category": pd.DataFrame({
        "c": pd.Categorical(["b", None, "a", "b"], categories=["b", "a", "z"], ordered=True),
        "n": pd.Categorical([3, 1, 3, None]),
        "t": pd.Categorical(pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-01"]))}),
    "nullable": pd.DataFrame({
        "I": pd.array([1, None, 2 ** 60, -5], dtype="Int64"), "i8": pd.array([1, None, -128, 127], dtype="Int8"),
        "U": pd.array([None, 2 ** 64 - 1, 0, 1], dtype="UInt64"), "B": pd.array([True, None, False, True], dtype="boolean"),
        "F": pd.array([1.5, None, np.nan, -0.0], dtype="Float64"),
        "S": pd.array(["a", None, "c", ""], dtype="string"),
        "Sp": pd.array(["a", None, "c", ""], dtype=pd.StringDtype("python")),
        "Snan": pd.array(["a", None, "c", ""], dtype=pd.StringDtype("python", na_value=np.nan))}),
    "arrow-backed": pd.DataFrame({"a": pd.array([1, None, 3], dtype="int64[pyarrow]"),
                                  "s": pd.array(["x", None, "z"], dtype=pd.ArrowDtype(__import__("pyarrow").string()))}),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_dtype_family_comes_back_exactly(name):
    frame = FAMILIES[name]
    got = round_trip(frame)
    assert_same_frame(got, frame)
    for column in frame.columns:  # NaN, infinities and -0.0 bit for bit
        want = frame[column].to_numpy()
        if want.dtype.kind == "f":
            assert np.array_equal(np.signbit(got[column].to_numpy()), np.signbit(want))
            assert np.array_equal(np.isnan(got[column].to_numpy()), np.isnan(want))
    if name == "object":
        assert [type(v).__name__ for v in got["o"]] == ["str", "NoneType", "int", "float", "bool", "float", "float",
                                                         "int", "NAType"]
        assert math.copysign(1, got["o"][6]) == -1


def test_indexes_and_labels_come_back():
    frame = pd.DataFrame(np.arange(12).reshape(4, 3), columns=pd.Index([1, 2.5, "a"], name="labels", dtype=object),
                         index=pd.MultiIndex.from_arrays([["x", "x", "y", "y"], pd.to_datetime(["2024-01-01"] * 2 + ["2024-01-02"] * 2)],
                                                         names=["key", None]))
    assert_same_frame(round_trip(frame), frame)
    for index in (pd.RangeIndex(5, 25, 5, name="r"), pd.Index([3, 1, 2], name=2 ** 60),
                  pd.DatetimeIndex(pd.date_range("2024", periods=3, tz="UTC"), name=("a", 1.0)),
                  pd.CategoricalIndex(["a", "b", "a"]), pd.Index([0.5, np.nan, 2.0], name=None)):
        frame = pd.DataFrame({"v": range(len(index))}, index=index)
        assert_same_frame(round_trip(frame), frame)
    columns = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["top", "sub"])
    frame = pd.DataFrame([[1, 2, 3]], columns=columns)
    assert_same_frame(round_trip(frame), frame)
    duplicated = pd.DataFrame([[1, "x"]], columns=["a", "a"])
    assert_same_frame(round_trip(duplicated), duplicated)
    empty = pd.DataFrame({"a": pd.Series([], dtype="float32"), "t": pd.Series([], dtype="datetime64[ns]")})
    assert_same_frame(round_trip(empty), empty)
    assert_same_frame(round_trip(pd.DataFrame(index=range(3))), pd.DataFrame(index=range(3)))


def test_series_and_arrays_come_back():
    series = pd.Series([1.5, None, 3.0], name=("price", 2), index=pd.Index(["a", "b", "c"], name="k"))
    got = round_trip(series)
    assert type(got) is pd.Series
    pd.testing.assert_series_equal(got, series, check_exact=True)
    assert got.name == ("price", 2)
    for array in (np.arange(12, dtype="int16").reshape(3, 4), np.array([[1.5, np.nan], [np.inf, -0.0]], dtype="float32"),
                  np.array(["ab", "c"]), np.array(3.5), np.zeros((0, 5), dtype="int8"), np.array([True, False]),
                  np.array(["2024-01-01", "NaT"], dtype="datetime64[D]"), np.array([1, 2], dtype="timedelta64[h]"),
                  np.array([1, "x", None], dtype=object), np.array([2 ** 64 - 1], dtype="uint64")):
        got = round_trip(array)
        assert type(got) is np.ndarray and got.dtype == array.dtype and got.shape == array.shape
        assert repr(got) == repr(array)  # NaN, NaT and -0.0 included
        if array.dtype.kind == "f":
            assert np.array_equal(np.signbit(got), np.signbit(array))


def test_the_form_is_readable_json():
    frame = pd.DataFrame({"n": [1, 2], "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                          "c": pd.Categorical(["x", "y"])})
    form = to_browser(frame, "s")
    assert form[MARKER] == "DataFrame" and form["version"] == 1
    assert form["columns"] == {"dtype": "str", "data": ["n", "when", "c"], "name": None}
    assert form["index"] == {"dtype": "range", "start": 0, "stop": 2, "step": 1, "name": None}
    assert form["dtypes"][0] == "int64" and form["data"][0] == [1, 2]
    assert form["dtypes"][1] == {"dtype": "datetime64[us]", "unit": "ms"}  # new Date(v) in JavaScript
    assert form["data"][1] == [1704067200000, 1704153600000]
    assert form["dtypes"][2]["categories"]["data"] == ["x", "y"] and form["data"][2] == [0, 1]
    json.dumps(form, allow_nan=False)  # strict JSON: no NaN/Infinity literals anywhere
    json.dumps(to_browser(FAMILIES["float NaN inf -0.0"]), allow_nan=False)


def test_only_whole_values_are_typed_and_plain_dicts_pass_unchanged():
    nested = {"frame": pd.DataFrame({"a": [1]})}
    assert to_browser(nested) is nested  # left to Dash, exactly as a dcc.Store would get it
    plain = {"columns": ["a"], "data": [[1]]}
    assert from_browser(plain) is plain
    assert from_browser([1, 2]) == [1, 2] and from_browser("x") == "x" and from_browser(None) is None


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"c": np.array([1 + 2j, 3j])}),
    pd.DataFrame({"p": pd.period_range("2024-01", periods=2, freq="M")}),
    pd.DataFrame({"mixed": np.array([1, "a", datetime.date(2024, 1, 1)], dtype=object)}),
])
def test_a_dtype_that_cannot_travel_exactly_is_refused_by_name(frame):
    with pytest.raises(StoreValueError, match=rf"ServerStore 's'.*column '{frame.columns[0]}'"):
        to_browser(frame, "s")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hpd.data_frames([
    hpd.column("i", dtype="int64"), hpd.column("u", dtype="uint16"), hpd.column("f", dtype="float64"),
    hpd.column("g", dtype="float32"), hpd.column("b", dtype="bool"),
    hpd.column("s", elements=st.one_of(st.none(), st.text(max_size=5)), dtype=object),
    hpd.column("t", dtype="datetime64[ns]"), hpd.column("d", dtype="timedelta64[ns]"),
], index=hpd.indexes(elements=st.integers(-(2 ** 63), 2 ** 63 - 1), max_size=8)))
def test_random_frames_round_trip(frame):
    got = round_trip(frame)
    assert_same_frame(got, frame)
    for column in ("f", "g"):  # -0.0 stays negative (NaN comes back as the one NaN JSON has: null)
        want, have = frame[column].to_numpy(), got[column].to_numpy()
        assert np.array_equal(np.signbit(have[~np.isnan(want)]), np.signbit(want[~np.isnan(want)]))


# -- hostile input -------------------------------------------------------------------------------------
def _valid():
    return to_browser(pd.DataFrame({"a": [1, 2], "c": pd.Categorical(["x", "y"]), "t": pd.to_datetime(["2024", "2025"])}))


def _with(path, value):
    form = _valid()
    node = form
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return form


HOSTILE = {
    "unknown kind": ({MARKER: "Pickle", "version": 1}, "expected one of DataFrame"),
    "unknown version": ({**_valid(), "version": 2}, "version 2 is not 1"),
    "version as bool": ({**_valid(), "version": True}, "version True"),
    "dtype outside the allow-list": (_with(["dtypes", 0], "O"), "unknown dtype 'O'"),
    "numpy dtype trick": (_with(["dtypes", 0], "object_,i8"), "unknown dtype"),
    "pandas import trick": (_with(["dtypes", 0], "os.system"), "unknown dtype"),
    "ints as strings": (_with(["data", 0], ["1", "2"]), "expected integers"),
    "float strings": (_with(["dtypes", 0], "float64") | {"data": [["1e5", "2"], [0, 1], [0, 1]]}, "expected numbers"),
    "short column": (_with(["data", 0], [1]), "column 0 has 1 values but the index has 2"),
    "labels disagree": (_with(["columns", "data"], ["a"]), "1 column labels for 3 columns"),
    "data not a list": (_with(["data"], {"0": [1, 2]}), "'data' must be lists"),
    "huge range": (_with(["index"], {"dtype": "range", "start": 0, "stop": 10 ** 12, "step": 1, "name": None})
                   | {"dtypes": [], "data": [], "columns": {"dtype": "object", "data": [], "name": None}}, "larger than allowed"),
    "zero step": (_with(["index", "step"], 0), "non-zero step"),
    "category code out of range": (_with(["data", 1], [0, 7]), "category code is outside"),
    "category of categories": (_with(["dtypes", 1, "categories", "dtype"], "category"), "cannot be of dtype category"),
    "integer overflow": (_with(["dtypes", 0], "int8") | {"data": [[1, 300], [0, 1], [0, 1]]}, "does not fit int8"),
    "bad time zone": (_with(["dtypes", 2, "tz"], "dateutil//etc/passwd"), "unknown time zone"),
    "special row out of range": (_with(["dtypes", 0], {"dtype": "float64", "special": {"-0": [5]}}),
                                 "row numbers below 2"),
    "unknown special": (_with(["dtypes", 0], {"dtype": "float64", "special": {"NaN": [0], "Eval": [1]}}),
                        "may only name"),
    "bad name": (_with(["index", "name"], {"call": "os.system"}), "a name must be"),
    "bad big int": (_with(["dtypes", 0], {"dtype": "int64", "strings": True}) | {"data": [["1_0", "2"], [0, 1], [0, 1]]},
                    "decimal integer strings"),
    "ndarray shape lies": ({MARKER: "ndarray", "version": 1, "dtype": "int64", "shape": [10 ** 9, 10 ** 9], "data": [1]},
                           "needs 1000000000000000000 values"),
    "ndarray too many dims": ({MARKER: "ndarray", "version": 1, "dtype": "int64", "shape": [1] * 40, "data": [1]},
                              "at most 32"),
    "wide string dtype": ({MARKER: "ndarray", "version": 1, "dtype": "<U9999999", "shape": [1], "data": ["a"]},
                          "unknown dtype|too wide"),
    "string longer than its dtype": ({MARKER: "ndarray", "version": 1, "dtype": "<U1", "shape": [1], "data": ["ab"]},
                                     "longer than"),
    "arrow not base64": (_with(["dtypes", 0], {"dtype": "object", "arrow": True}) | {"data": ["!!", [0, 1], [0, 1]]},
                         "not valid base64"),
    "arrow garbage": (_with(["dtypes", 0], {"dtype": "object", "arrow": True}) | {"data": ["AAAA", [0, 1], [0, 1]]},
                      "not a valid Arrow IPC stream"),
    "series without index": ({MARKER: "Series", "version": 1, "dtype": "int64", "data": [1], "name": None},
                             "'index' must be an object"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_malformed_typed_values_raise_naming_the_store_and_the_problem(name):
    value, message = HOSTILE[name]
    with pytest.raises(StoreValueError, match=r"ServerStore 'cart': the typed value the browser sent is malformed") as err:
        from_browser(value, "cart", max_bytes=10 ** 8)
    assert re.search(message, str(err.value)), str(err.value)


def test_an_arrow_stream_with_an_extension_type_is_refused():
    import base64

    import pyarrow as pa

    class Evil(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.int64(), "evil.type")

        def __arrow_ext_serialize__(self):
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    pa.register_extension_type(Evil())
    try:
        array = pa.ExtensionArray.from_storage(Evil(), pa.array([1, 2]))
        sink = pa.BufferOutputStream()
        batch = pa.record_batch([array], names=["v"])
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        data = base64.b64encode(sink.getvalue().to_pybytes()).decode()
    finally:
        pa.unregister_extension_type("evil.type")
    pa.register_extension_type(Evil())  # registered while reading: still refused
    try:
        with pytest.raises(StoreValueError, match="one column of a plain data type"):
            from_browser(_with(["dtypes", 0], {"dtype": "object", "arrow": True}) | {"data": [data, [0, 1], [0, 1]]}, "s")
    finally:
        pa.unregister_extension_type("evil.type")


# -- the hook, driven like the renderer -------------------------------------------------------------
def frame_app(value_factory, **config):
    app = new_app(STATE_STORES={"s": CLIENT}, **config)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out"), html.Div(id="side")])
    app.received = []

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return value_factory(n)

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        app.received.append(data)
        return type(data).__name__

    return app


def test_a_frame_returned_to_a_client_store_travels_typed_and_comes_back():
    frame = FAMILIES["category"].assign(when=pd.to_datetime(["2024-01-01"] * 4))
    app = frame_app(lambda n: frame)
    client = DashClient(app)
    client.layout()
    sent = client.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    assert sent[MARKER] == "DataFrame"  # the data itself, in the browser: no reference, nothing on the server
    assert client.call([("out", "children")], [("s", "data", through_browser(sent))])["out"]["children"] == "DataFrame"
    assert_same_frame(app.received[-1], frame)
    assert dash_state.get_state_manager(app).stats()["writes"] == 0


@pytest.mark.parametrize("value", [pd.Series([1, 2], name="n"), np.arange(6).reshape(2, 3), {"plain": [1, 2]}, [1, "a"]])
def test_series_arrays_and_plain_values_on_a_client_store(value):
    app = frame_app(lambda n: value)
    client = DashClient(app)
    client.layout()
    sent = client.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    client.call([("out", "children")], [("s", "data", through_browser(sent))])
    got = app.received[-1]
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(got, value)
    elif isinstance(value, np.ndarray):
        assert got.dtype == value.dtype and np.array_equal(got, value)
    else:
        assert sent == value and got == value  # exactly what a dcc.Store carries


def test_set_props_and_initial_layout_data_are_typed_too():
    frame = pd.DataFrame({"a": [1.5, np.nan]}, index=pd.Index([10, 20], name="k"))
    app = new_app(STATE_STORES={"s": CLIENT, "t": CLIENT})
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s", data=frame), ServerStore(id="t"), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def side(n):
        import dash

        dash.set_props("t", {"data": frame * 2})
        return "ok"

    client = DashClient(app)
    initial = client.layout()["props"]["children"][1]["props"]["data"]
    assert initial[MARKER] == "DataFrame"
    pd.testing.assert_frame_equal(from_browser(through_browser(initial)), frame)
    response = client.raw_call([("out", "children")], [("btn", "n_clicks", 1)])
    assert response.status_code == 200
    side_data = response.get_json()["sideUpdate"]["t"]["data"]
    pd.testing.assert_frame_equal(from_browser(through_browser(side_data)), frame * 2)
    client.index()  # the index page (validation layout) is served
    assert app.layout.children[1].data is frame  # the layout object is untouched


def test_a_layout_function_with_frame_data_serves_the_index_page():
    app = new_app(STATE_STORES={"s": CLIENT})
    app.layout = lambda: html.Div([ServerStore(id="s", data=pd.DataFrame({"a": [1]})), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return f"{type(data).__name__}:{len(data)}"

    client = DashClient(app)
    assert MARKER in client.index()  # the validation layout in the page carries the typed form, not a 500
    data = client.layout()["props"]["children"][0]["props"]["data"]
    assert client.call([("out", "children")], [("s", "data", data)])["out"]["children"] == "DataFrame:1"


def test_a_malformed_value_from_the_browser_is_a_422_naming_the_store():
    app = frame_app(lambda n: None)
    client = DashClient(app)
    client.layout()
    response = client.raw_call([("out", "children")], [("s", "data", {MARKER: "DataFrame", "version": 9})])
    assert response.status_code == 422
    assert "ServerStore 's': the typed value the browser sent is malformed: version 9" in response.get_data(as_text=True)
    assert app.received == []


def test_a_frame_that_cannot_travel_is_a_422_before_anything_is_sent():
    app = frame_app(lambda n: pd.DataFrame({"c": [1j]}))
    client = DashClient(app)
    client.layout()
    response = client.raw_call([("s", "data")], [("btn", "n_clicks", 1)])
    assert response.status_code == 422
    assert "ServerStore 's' (client backend)" in response.get_data(as_text=True)
    assert "column 'c'" in response.get_data(as_text=True)


def test_a_dcc_store_holding_the_marker_is_not_decoded():
    from dash import dcc

    app = new_app(STATE_STORES={"s": CLIENT})
    app.layout = html.Div([dcc.Store(id="d"), ServerStore(id="s"), html.Div(id="out")])
    got = []

    @app.callback(Output("out", "children"), Input("d", "data"))
    def read(data):
        got.append(data)
        return "ok"

    client = DashClient(app)
    client.layout()
    typed = to_browser(pd.DataFrame({"a": [1]}))
    client.call([("out", "children")], [("d", "data", typed)])
    assert got == [typed]


# -- the Python API on a client store -----------------------------------------------------------------
def api_app():
    app = new_app(STATE_STORES={"s": CLIENT}, STATE_MAX_VALUE_BYTES=100_000)
    app.layout = html.Div([html.Button(id="set"), html.Button(id="get"), html.Button(id="del"), html.Button(id="big"),
                           ServerStore(id="s"), html.Div(id="set-out"), html.Div(id="get-out"), html.Div(id="del-out"),
                           html.Div(id="no-input"), html.Div(id="big-out")])
    frame = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["a", "b"], name="k"))

    @app.callback(Output("set-out", "children"), Input("set", "n_clicks"), prevent_initial_call=True)
    def set_it(n):
        set_store("s", frame, ttl=60)  # ttl is ignored: browser data does not expire
        got = get_store("s")  # what set_store wrote in this call
        return f"{type(got).__name__}:{got.index.name}:{got['n'].sum()}"

    @app.callback(Output("get-out", "children"), Input("get", "n_clicks"), State("s", "data"), prevent_initial_call=True)
    def get_it(n, data):
        got = get_store("s", default="empty")
        return "empty" if isinstance(got, str) else f"{type(got).__name__}:{got.equals(data)}"

    @app.callback(Output("no-input", "children"), Input("get", "n_clicks"), prevent_initial_call=True)
    def without_input(n):
        get_store("s")
        return "unreachable"

    @app.callback(Output("del-out", "children"), Input("del", "n_clicks"), State("s", "data"), prevent_initial_call=True)
    def delete_it(n, data):
        return str(dash_state.delete_store("s"))

    @app.callback(Output("big-out", "children"), Input("big", "n_clicks"), prevent_initial_call=True)
    def too_big(n):
        set_store("s", {"rows": list(range(50_000))})
        return "unreachable"

    app.frame = frame
    return app


def test_set_store_in_a_callback_sends_the_value_to_the_page():
    app = api_app()
    client = DashClient(app)
    client.layout()
    body = client.raw_call([("set-out", "children")], [("set", "n_clicks", 1)]).get_json()
    assert body["response"]["set-out"]["children"] == "DataFrame:k:3"
    sent = body["sideUpdate"]["s"]["data"]
    assert sent[MARKER] == "DataFrame"
    pd.testing.assert_frame_equal(from_browser(through_browser(sent)), app.frame)


def test_get_store_returns_what_the_request_carries_and_refuses_otherwise():
    app = api_app()
    client = DashClient(app)
    client.layout()
    typed = through_browser(to_browser(app.frame))
    out = client.call([("get-out", "children")], [("get", "n_clicks", 1)], [("s", "data", typed)])
    assert out["get-out"]["children"] == "DataFrame:True"
    out = client.call([("get-out", "children")], [("get", "n_clicks", 1)], [("s", "data", None)])
    assert out["get-out"]["children"] == "empty"  # the callback has the store as State: it is empty
    response = client.raw_call([("no-input", "children")], [("get", "n_clicks", 1)])
    assert response.status_code == 422
    assert ("ServerStore 's' is on the client backend: its data lives in the browser; in a callback, get_store "
            "returns it only when the callback takes it as Input or State") in response.get_data(as_text=True)


def test_set_store_checks_the_value_as_the_server_backends_do():
    app = api_app()
    client = DashClient(app)
    client.layout()
    response = client.raw_call([("big-out", "children")], [("big", "n_clicks", 1)])
    assert response.status_code == 413
    assert "larger than STATE_MAX_VALUE_BYTES" in response.get_data(as_text=True)
    assert "sideUpdate" not in response.get_data(as_text=True)


def test_delete_store_empties_the_page_store():
    app = api_app()
    client = DashClient(app)
    client.layout()
    body = client.raw_call([("del-out", "children")], [("del", "n_clicks", 1)], [("s", "data", {"a": 1})]).get_json()
    assert body["response"]["del-out"]["children"] == "True"
    assert body["sideUpdate"] == {"s": {"data": None}}


def test_outside_a_request_the_api_says_the_data_is_in_the_browser():
    app = api_app()
    DashClient(app).layout()
    manager = dash_state.get_state_manager(app)
    with app.server.app_context(), manager.user_context("user-1"):
        for call in (lambda: manager.set_store_data("s", {"a": 1}), lambda: manager.get_store_data("s"),
                     lambda: manager.delete_store_data("s")):
            with pytest.raises(StoreValueError, match="ServerStore 's' is on the client backend: its data lives in "
                                                      "the browser.*not in a script or background job"):
                call()
        assert manager.list_stores() == []


@pytest.mark.parametrize("order", ["below", "above"])
def test_state_managed_callback_reads_a_client_store_the_callback_takes(order):
    app = new_app(STATE_STORES={"s": CLIENT})
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    def show(n, data, frame=None):
        return f"{type(frame).__name__}:{frame['a'].tolist()}:{frame is data or frame.equals(data)}"

    if order == "below":
        app.callback(Output("out", "children"), Input("btn", "n_clicks"), State("s", "data"))(
            state_managed_callback(store_mappings={"frame": "s"})(show))
    else:
        state_managed_callback(store_mappings={"frame": "s"})(
            app.callback(Output("out", "children"), Input("btn", "n_clicks"), State("s", "data"))(show))
    client = DashClient(app)
    client.layout()
    typed = through_browser(to_browser(pd.DataFrame({"a": [1, 2]})))
    out = client.call([("out", "children")], [("btn", "n_clicks", 1)], [("s", "data", typed)])
    assert out["out"]["children"] == "DataFrame:[1, 2]:True"


# -- usage.py with each store rolled back -------------------------------------------------------------
USAGE_STORES = ["filters-store", "merged-store"]
LIVE_STORES = ["team-notes", "bookmarks"]  # usage.py's shared, live stores (scope app / user)


def load_usage(rolled_back):
    spec = importlib.util.spec_from_file_location("usage", ROOT / "usage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["usage"] = module
    spec.loader.exec_module(module)
    if rolled_back:
        module.app.server.config["STATE_STORES"] = {sid: CLIENT for sid in rolled_back}
    return module


@pytest.fixture
def usage_module():
    made = []
    yield lambda rolled_back: made.append(load_usage(rolled_back)) or made[-1]
    sys.modules.pop("usage", None)


def test_usage_lists_the_stores_this_file_rolls_back(usage_module):
    usage = usage_module(())
    ids = sorted(s.id for s in dash_state.glue.layout.find_stores(usage.app.layout))
    assert ids == sorted(USAGE_STORES + LIVE_STORES)


def test_usage_live_stores_rolled_back_are_page_stores_in_the_browser(usage_module):
    usage = usage_module(tuple(LIVE_STORES))
    client = DashClient(usage.app)
    layout = json.dumps(client.layout())
    manager = dash_state.get_state_manager(usage.app)
    assert all(manager.settings(sid).backend == "client" and manager.settings(sid).scope == "page"
               for sid in LIVE_STORES)
    assert '"live": false' in layout.replace('"live":false', '"live": false')  # the page does not listen
    pinned = client.call([("team-notes", "data"), ("note-text", "value")], [("pin-note", "n_clicks", 1)],
                         [("note-text", "value", "hello")])
    assert pinned["team-notes"]["data"]["__dash_patch_update"] == "__dash_patch_update"  # the renderer applies it
    assert pinned["team-notes"]["data"]["operations"][0]["params"]["value"] == "hello"


@pytest.mark.parametrize("rolled_back", [(sid,) for sid in USAGE_STORES] + [tuple(USAGE_STORES)], ids=str)
def test_usage_with_stores_rolled_back_shows_the_same(usage_module, rolled_back):
    usage = usage_module(rolled_back)
    client = DashClient(usage.app)
    client.layout()
    filters = {"region": ["North", "East"], "category": ["Tools", "Electrical"], "quantity": [5, 30]}
    f = client.call([("filters-store", "data")], [("region", "value", filters["region"]),
                                                  ("category", "value", filters["category"]),
                                                  ("quantity", "value", filters["quantity"])])["filters-store"]["data"]
    assert isinstance(f, dict) == ("filters-store" in rolled_back)
    response = client.raw_call([("merged-store", "data")], [("filters-store", "data", through_browser(f))])
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    merged = response.get_json()["response"]["merged-store"]["data"]
    assert (isinstance(merged, dict) and merged[MARKER] == "DataFrame") == ("merged-store" in rolled_back)
    merged = through_browser(merged)
    out = client.call([("revenue-graph", "figure"), ("table", "data"), ("table", "columns"), ("row-count", "children")],
                      [("merged-store", "data", merged)])
    expected = usage.merge_sales({"regions": filters["region"], "categories": filters["category"],
                                  "quantity": filters["quantity"]})
    assert out["row-count"]["children"] == f"{len(expected):,} rows after filtering and merging (first 20 shown)"
    want = expected.head(20).assign(date=lambda d: d["date"].dt.strftime("%Y-%m-%d")).round(2).to_dict("records")
    assert out["table"]["data"] == want
    assert sorted(t["name"] for t in out["revenue-graph"]["figure"]["data"]) == sorted(filters["region"])


# -- in the browser -----------------------------------------------------------------------------------
def severe(dash_duo):
    return [entry for entry in dash_duo.get_logs() or [] if entry.get("level") == "SEVERE"]


def record_status(app):
    import flask

    app.statuses = []

    @app.server.after_request
    def record(response):
        if flask.request.path == "/_dash-update-component":
            app.statuses.append(response.status_code)
        return response


@pytest.mark.browser
@pytest.mark.parametrize("rolled_back", [()] + [(sid,) for sid in USAGE_STORES] + [tuple(USAGE_STORES)], ids=str)
def test_usage_in_the_browser_with_stores_rolled_back(dash_duo, usage_module, rolled_back):
    usage = usage_module(rolled_back)
    record_status(usage.app)
    dash_duo.start_server(usage.app)
    everything = usage.merge_sales({"regions": usage.REGIONS, "categories": usage.CATEGORIES, "quantity": [1, 50]})
    dash_duo.wait_for_text_to_equal("#row-count", f"{len(everything):,} rows after filtering and merging "
                                                  "(first 20 shown)", timeout=30)
    assert len(dash_duo.find_elements("#table tbody tr")) == 21  # header row + 20
    dash_duo.wait_for_element("#revenue-graph .main-svg")
    assert len(dash_duo.find_elements("#revenue-graph .scatterlayer .trace")) == len(usage.REGIONS)
    for sid in USAGE_STORES:  # the panel says where each store's data lives
        backend = "client" if sid in rolled_back else "local"
        dash_duo.wait_for_text_to_equal(f"#panel-{sid} td:nth-child(2)", backend, timeout=20)

    tools = next(e for e in dash_duo.find_elements("#category label") if e.text.strip() == "Tools")
    tools.click()  # one category fewer: filters -> merged -> graph and table again
    fewer = usage.merge_sales({"regions": usage.REGIONS, "categories": [c for c in usage.CATEGORIES if c != "Tools"],
                               "quantity": [1, 50]})
    dash_duo.wait_for_text_to_equal("#row-count", f"{len(fewer):,} rows after filtering and merging (first 20 shown)",
                                    timeout=30)
    cells = [c.text for c in dash_duo.find_elements("#table tbody tr:nth-child(2) td")]
    assert "Tools" not in cells and cells  # the first row of the new data
    assert usage.app.statuses and set(usage.app.statuses) == {200}
    assert severe(dash_duo) == []


@pytest.mark.browser
def test_a_frame_written_by_one_callback_is_read_with_its_types_by_another(dash_duo):
    app = new_app(STATE_STORES={"frame": CLIENT})
    app.layout = html.Div([html.Button("write", id="write"), ServerStore(id="frame", storage_type="session"),
                           html.Pre(id="report")])
    record_status(app)

    @app.callback(Output("frame", "data"), Input("write", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return pd.DataFrame({"when": pd.to_datetime(["2024-01-01 10:00", "2024-06-30 23:59:59.123456"], format="ISO8601"),
                             "kind": pd.Categorical(["b", "a"], categories=["b", "a", "c"], ordered=True),
                             "x": [0.1, -0.0]}, index=pd.Index([7, 3], name="id"))

    @app.callback(Output("report", "children"), Input("frame", "data"), prevent_initial_call=True)
    def report(frame):
        if frame is None:
            return "empty"
        return json.dumps({"type": type(frame).__name__, "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
                           "index": [frame.index.name, str(frame.index.dtype), frame.index.tolist()],
                           "categories": frame["kind"].cat.categories.tolist(), "ordered": frame["kind"].cat.ordered,
                           "when": [str(t) for t in frame["when"]], "x": [repr(v) for v in frame["x"]]})

    dash_duo.start_server(app)
    dash_duo.find_element("#write").click()
    dash_duo.wait_for_contains_text("#report", "DataFrame")
    got = json.loads(dash_duo.find_element("#report").text)
    assert got == {"type": "DataFrame", "dtypes": {"when": "datetime64[us]", "kind": "category", "x": "float64"},
                   "index": ["id", "int64", [7, 3]], "categories": ["b", "a", "c"], "ordered": True,
                   "when": ["2024-01-01 10:00:00", "2024-06-30 23:59:59.123456"], "x": ["0.1", "-0.0"]}
    held = dash_duo.driver.execute_script("return window.sessionStorage.getItem('frame')")
    assert json.loads(held)[MARKER] == "DataFrame"  # the browser holds the typed form itself
    assert set(app.statuses) == {200} and severe(dash_duo) == []


@pytest.mark.browser
def test_a_series_and_an_array_come_back_and_a_mirrored_frame_is_read_clientside(dash_duo):
    """A Series and a 2-d array on client stores keep their types; a frame in a store that a clientside
    callback reads (mirrored, no setting) reaches JavaScript as columns and Python as a DataFrame."""
    app = new_app(STATE_STORES={"series": CLIENT, "array": CLIENT})
    app.layout = html.Div([html.Button("write", id="write"), ServerStore(id="series"), ServerStore(id="array"),
                           ServerStore(id="mirrored"), html.Pre(id="report"), html.Div(id="js")])
    record_status(app)

    @app.callback(Output("series", "data"), Output("array", "data"), Output("mirrored", "data"),
                  Input("write", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return (pd.Series([1.5, None, 3.0], index=["a", "b", "c"], name="price"),
                np.arange(6, dtype="int16").reshape(2, 3),
                pd.DataFrame({"city": ["Oslo", "Lima"], "n": [3, 4]}))

    @app.callback(Output("report", "children"), Input("series", "data"), Input("array", "data"),
                  Input("mirrored", "data"), prevent_initial_call=True)
    def report(series, array, frame):
        return json.dumps({"series": [type(series).__name__, series.name, str(series.dtype), series.index.tolist(),
                                      [None if math.isnan(v) else v for v in series]],
                           "array": [type(array).__name__, str(array.dtype), list(array.shape), array.tolist()],
                           "frame": [type(frame).__name__, frame["n"].tolist()]})

    app.clientside_callback("function(d) { return d ? d.columns.data.join(',') + ':' + d.data[1].join(',') : ''; }",
                            Output("js", "children"), Input("mirrored", "data"))
    dash_duo.start_server(app)
    dash_duo.find_element("#write").click()
    dash_duo.wait_for_contains_text("#report", "Series")
    assert json.loads(dash_duo.find_element("#report").text) == {
        "series": ["Series", "price", "float64", ["a", "b", "c"], [1.5, None, 3.0]],
        "array": ["ndarray", "int16", [2, 3], [[0, 1, 2], [3, 4, 5]]],
        "frame": ["DataFrame", [3, 4]]}
    dash_duo.wait_for_text_to_equal("#js", "city,n:3,4")
    assert set(app.statuses) == {200} and severe(dash_duo) == []
