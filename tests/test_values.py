"""What a ServerStore accepts: exactly what Dash's JSON encoder accepts for a dcc.Store, anywhere in the
value, returned as dcc.Store would return it; top-level frames, series and arrays keep their type."""
from __future__ import annotations

import datetime
import decimal
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import Input, Output, html
from dash._utils import to_json
from hypothesis import given, settings, strategies as st

from apps import STORE_CLASSES, new_app
from dash_client import DashClient
from dash_state import StoreValueError
from dash_state.core.values import deep_size, freeze

NESTED = {
    "series": pd.Series([1, 2, 3], name="s"),
    "index": pd.Index(["a", "b"]),
    "ts": pd.Timestamp("2024-01-02 03:04:05"),
    "nat": pd.NaT,
    "np": [np.int16(3), np.float32(1.5), np.bool_(True), np.arange(3)],
    "when": datetime.date(2024, 5, 6),
    "decimal": decimal.Decimal("1.25"),
    "nan": float("nan"),
    "figure": go.Figure(go.Scatter(x=[1, 2], y=[3, 4])),
    "dates": pd.Series(pd.date_range("2024-01-01", periods=2)),
}


def dash_json(value):
    """What a dcc.Store holding ``value`` gives its readers: Dash's encoder, then the browser's JSON."""
    return json.loads(to_json(value))


@pytest.mark.parametrize("key", list(NESTED))
def test_nested_values_are_stored_as_dash_encodes_them(key):
    value = {"a": {"data": NESTED[key]}}
    assert freeze(value).thaw() == dash_json(value)


@pytest.mark.parametrize("name", list(STORE_CLASSES))
def test_layout_and_callbacks_with_a_nested_series_behave_like_dcc_store(name):
    """Once a 500 on /_dash-layout with a message that contradicted itself."""
    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), STORE_CLASSES[name](id="s", data={"a": {"data": pd.Series([1, 2])}}),
                           html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"b": pd.Series([n, n]), "t": pd.Timestamp("2024-01-01")}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return json.dumps(data, sort_keys=True)

    client = DashClient(app)
    layout = client.layout()
    initial = layout["props"]["children"][1]["props"]["data"]
    assert client.call([("out", "children")], [("s", "data", initial)])["out"]["children"] == \
        '{"a": {"data": [1, 2]}}'
    written = client.call([("s", "data")], [("btn", "n_clicks", 7)])["s"]["data"]
    assert client.call([("out", "children")], [("s", "data", written)])["out"]["children"] == \
        '{"b": [7, 7], "t": "2024-01-01T00:00:00"}'


@pytest.mark.parametrize("value, path, type_name", [
    ({"a": {"data": pd.DataFrame({"x": [1]})}}, "a.data", "pandas.DataFrame"),
    ({"rows": [1, 2, {"bad": {1, 2}}]}, "rows[2].bad", "set"),
    ({"weird key": object()}, "'weird key'", "object"),
    ([b"bytes"], "[0]", "bytes"),
])
def test_unstorable_values_name_store_path_and_type(value, path, type_name):
    with pytest.raises(StoreValueError) as info:
        freeze(value, "my-store")
    message = str(info.value)
    assert f"ServerStore 'my-store': cannot store the {type_name} at {path}:" in message
    with pytest.raises(Exception):  # and dcc.Store could not send it either
        to_json(value)


def test_top_level_frames_series_and_arrays_keep_their_type():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert freeze(frame).thaw().equals(frame)
    assert freeze(pd.Series([1.5], name="p")).thaw().name == "p"
    assert freeze(np.arange(6).reshape(2, 3)).thaw().shape == (2, 3)


def test_sizes_are_real_sizes():
    """Once 4 KB for a frame of 1 MB lists and 80 bytes for ten 1 MB strings."""
    lists = pd.DataFrame({"cells": [[0] * 125_000 for _ in range(4)]})
    assert freeze(lists).nbytes > 4 * 1_000_000
    strings = np.array(["x" * 1_000_000 for _ in range(10)], dtype=object)
    assert freeze(strings).nbytes > 10 * 1_000_000
    assert freeze({"a": "x" * 1000}).nbytes >= 1000
    assert deep_size({"k": ["v" * 100] * 3}) >= 100  # the same string counted once


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 53, 2 ** 53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.sampled_from([np.int32(7), np.float64(0.5), pd.Timestamp("2020-02-02")]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_any_value_round_trips_as_dash_would_send_it(value):
    assert freeze(value).thaw() == dash_json(value)
