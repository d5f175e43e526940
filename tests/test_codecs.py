"""Values: JSON-compatible data, frames, series and arrays; safe bytes that never use pickle."""
import datetime
import pickle

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from dash_state.codecs import Snapshot, freeze
from dash_state.errors import StoreValueError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_json_values_round_trip_in_memory_and_as_bytes(value):
    snapshot = freeze(value)
    assert snapshot.thaw() == value
    assert Snapshot.from_bytes(snapshot.to_bytes()).thaw() == value


def frame():
    return pd.DataFrame({
        "id": np.arange(6, dtype="int64"),
        "region": ["n", "s", None, "e", "w", "n"],
        "when": pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC"),
        "price": [1.5, np.nan, 3.0, 4.25, 5.0, 6.0],
        "flag": [True, False, True, True, False, True],
        "cat": pd.Categorical(list("abcabc")),
    }, index=pd.Index(list("uvwxyz"), name="key"))


@pytest.mark.parametrize("through_bytes", [False, True], ids=["memory", "bytes"])
def test_dataframe_keeps_type_dtypes_index_and_content(through_bytes):
    original = frame()
    snapshot = freeze(original)
    back = Snapshot.from_bytes(snapshot.to_bytes()).thaw() if through_bytes else snapshot.thaw()
    pd.testing.assert_frame_equal(back, original)


@pytest.mark.parametrize("through_bytes", [False, True], ids=["memory", "bytes"])
def test_series_keeps_name_and_dtype(through_bytes):
    original = pd.Series([1, 2, 3], name="qty", dtype="int32", index=[10, 20, 30])
    snapshot = freeze(original)
    back = Snapshot.from_bytes(snapshot.to_bytes()).thaw() if through_bytes else snapshot.thaw()
    pd.testing.assert_series_equal(back, original)


@pytest.mark.parametrize("array", [
    np.arange(24, dtype="float32").reshape(2, 3, 4),
    np.array([True, False, True]),
    np.array([["a", "bc"], ["def", ""]]),
    np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]"),
    np.empty((0, 3), dtype="int8"),
])
def test_numpy_arrays_keep_dtype_and_shape(array):
    back = Snapshot.from_bytes(freeze(array).to_bytes()).thaw()
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)


def test_every_thaw_is_a_new_copy():
    original = frame()
    snapshot = freeze(original)
    original.iloc[0, 0] = -1  # the writer changes its frame after storing it
    first = snapshot.thaw()
    first.iloc[1, 0] = -2  # a reader changes its copy
    assert snapshot.thaw()["id"].tolist() == [0, 1, 2, 3, 4, 5]


def test_what_dash_json_accepts_is_accepted():
    value = {"when": datetime.date(2024, 5, 1), "n": np.int64(3), "xs": np.arange(3), 1: "int key"}
    assert freeze(value).thaw() == {"when": "2024-05-01", "n": 3, "xs": [0, 1, 2], "1": "int key"}


@pytest.mark.parametrize("bad, type_name", [
    ({1, 2}, "set"),
    ({"nested": [object()]}, "object"),
    ({"frame": pd.DataFrame({"a": [1]})}, "pandas.DataFrame"),
    (b"raw bytes", "bytes"),
])
def test_unsupported_values_name_the_store_and_the_type(bad, type_name):
    with pytest.raises(StoreValueError) as info:
        freeze(bad, "my-store")
    assert "'my-store'" in str(info.value) and type_name in str(info.value)


def test_bytes_never_hold_pickle_and_pickle_is_refused():
    payload = bytes(freeze({"a": 1}).to_bytes())
    assert payload.startswith(b"DS\x01J")
    for hostile in (pickle.dumps({"a": 1}), b"", b"DS\x01X" + b"{}", b"junk"):
        with pytest.raises(ValueError):
            Snapshot.from_bytes(hostile)


def test_corrupt_arrow_payload_raises_instead_of_returning_garbage():
    good = bytes(freeze(frame()).to_bytes())
    corrupt = good[:4] + good[4:40] + b"\x00" * 50 + good[90:]
    with pytest.raises(Exception):
        Snapshot.from_bytes(corrupt).thaw()


def test_object_column_frames_encode_and_report_a_size():
    mixed = pd.DataFrame({"s": ["x" * 100] * 1000})
    mixed["s"] = mixed["s"].astype(object)
    snapshot = freeze(mixed)
    assert snapshot.nbytes >= 100 * 1000
    assert orjson.loads(orjson.dumps(Snapshot.from_bytes(snapshot.to_bytes()).thaw()["s"].tolist()))[0] == "x" * 100
