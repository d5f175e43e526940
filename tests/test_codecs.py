"""Values: JSON-compatible data, frames, series and arrays; safe bytes that never use pickle; sealed
bytes (dash_state.core.seal) that fail loudly when tampered with, moved, or made with another secret; and
real sizes (dash_state.core.values)."""
import datetime
import pickle
import sys

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dash_state.core.codecs import ARRAY, FRAME, JSON, SERIES, Snapshot, check_encodable, private_copy
from dash_state.errors import ConfigError, CorruptValue, StoreValueError
from dash_state.core.keys import Keys
from dash_state.core.seal import MAGIC, Seal
from dash_state.core.values import array_nbytes, deep_size, frame_nbytes, freeze, json_size_estimate

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
KEY = "k" * 22
OTHER_KEY = "o" * 22


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_json_values_round_trip_in_memory_and_as_bytes(value):
    snapshot = freeze(value)
    assert snapshot.kind == JSON
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
    assert snapshot.kind == FRAME
    back = Snapshot.from_bytes(snapshot.to_bytes()).thaw() if through_bytes else snapshot.thaw()
    pd.testing.assert_frame_equal(back, original)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
def test_common_frames_with_datetimes_and_missing_values_come_back_exactly(unit, tz):
    # The shape most apps store (RangeIndex, string column names) takes a faster encoding path
    # than Table.from_pandas; it must give back the same frame, NaT, NaN and None included.
    when = pd.Series(pd.to_datetime(["2024-01-01 10:00", None, "2024-03-31 04:30"])).astype(f"datetime64[{unit}]")
    original = pd.DataFrame({
        "when": when.dt.tz_localize(tz) if tz else when,
        "id": np.array([1, 2, 3], dtype="int32"),
        "name": pd.array(["a", None, "c"], dtype="str"),
        "price": [1.5, np.nan, 3.0],
        "flag": [True, False, True],
    })
    back = Snapshot.from_bytes(bytes(freeze(original).to_bytes())).thaw()
    pd.testing.assert_frame_equal(back, original)
    assert back["when"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize("through_bytes", [False, True], ids=["memory", "bytes"])
def test_series_keeps_name_and_dtype(through_bytes):
    original = pd.Series([1, 2, 3], name="qty", dtype="int32", index=[10, 20, 30])
    snapshot = freeze(original)
    assert snapshot.kind == SERIES
    back = Snapshot.from_bytes(snapshot.to_bytes()).thaw() if through_bytes else snapshot.thaw()
    pd.testing.assert_series_equal(back, original)


@pytest.mark.parametrize("array", [
    np.arange(24, dtype="float32").reshape(2, 3, 4),
    np.array([True, False, True]),
    np.array([["a", "bc"], ["def", ""]]),
    np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]"),
    np.empty((0, 3), dtype="int8"),
    np.array(["ünï", "🚀", None], dtype=object),
])
def test_numpy_arrays_keep_dtype_and_shape(array):
    snapshot = freeze(array)
    assert snapshot.kind == ARRAY
    back = Snapshot.from_bytes(snapshot.to_bytes()).thaw()
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tolist() == array.tolist()


def test_every_thaw_is_a_new_copy():
    original = frame()
    snapshot = freeze(original)
    original.iloc[0, 0] = -1  # the writer changes its frame after storing it
    first = snapshot.thaw()
    first.iloc[1, 0] = -2  # a reader changes its copy
    assert snapshot.thaw()["id"].tolist() == [0, 1, 2, 3, 4, 5]
    array = np.arange(3)
    frozen = freeze(array)
    array[0] = 99
    frozen.thaw()[1] = 99
    assert frozen.thaw().tolist() == [0, 1, 2]


def test_private_copies_are_independent_both_ways():
    original = frame()
    copy = private_copy(original)
    copy.iloc[0, 0] = 100
    original.iloc[1, 0] = 200
    assert original.iloc[0, 0] == 0 and copy.iloc[1, 0] == 1


def test_for_cache_keeps_value_size_and_json_estimate():
    sealed = Snapshot.from_bytes(freeze(frame()).to_bytes())
    cached = sealed.for_cache()
    pd.testing.assert_frame_equal(cached.thaw(), frame())
    assert cached.nbytes == sealed.nbytes and cached._encoded is None
    text = freeze({"a": [1, 2]})
    assert text.for_cache().thaw() == {"a": [1, 2]} and json_size_estimate(text) == len(b'{"a":[1,2]}')


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


@pytest.mark.parametrize("depth", [300, 5000, 200_000])
def test_absurdly_deep_nesting_is_a_store_value_error_not_a_crash(depth):
    value: list = []
    for _ in range(depth):
        value = [value]
    with pytest.raises(StoreValueError, match="'deep'"):
        freeze(value, "deep")


def test_a_frame_arrow_cannot_encode_is_a_store_value_error_naming_the_store():
    mixed = pd.DataFrame({"m": pd.Series([1, "two", {"three": 3}], dtype=object)})
    snapshot = freeze(mixed, "mixed-store")  # fine in memory
    with pytest.raises(StoreValueError, match="'mixed-store'"):
        check_encodable(snapshot, "mixed-store")


def test_bytes_never_hold_pickle_and_pickle_is_refused():
    payload = bytes(freeze({"a": 1}).to_bytes())
    assert payload.startswith(b"DS\x01J")
    for hostile in (pickle.dumps({"a": 1}), b"", b"DS\x01X" + b"{}", b"junk", b"DS\x01", b"DS\x02J{}"):
        with pytest.raises(ValueError):
            Snapshot.from_bytes(hostile)


def test_corrupt_arrow_payload_raises_instead_of_returning_garbage():
    good = bytes(freeze(frame()).to_bytes())
    corrupt = good[:4] + good[4:40] + b"\x00" * 50 + good[90:]
    with pytest.raises(Exception):
        Snapshot.from_bytes(corrupt).thaw()


# -- sizes --------------------------------------------------------------------------------------------
def test_object_column_frames_encode_and_report_a_size():
    mixed = pd.DataFrame({"s": ["x" * 100] * 1000})
    mixed["s"] = mixed["s"].astype(object)
    snapshot = freeze(mixed)
    assert snapshot.nbytes >= 100 * 1000
    assert orjson.loads(orjson.dumps(Snapshot.from_bytes(snapshot.to_bytes()).thaw()["s"].tolist()))[0] == "x" * 100


def test_a_frame_of_1_mb_lists_counts_at_least_1_mb():
    lists = pd.DataFrame({"id": range(8), "rows": [[f"{c}{r:05d}" + "x" * 122 for r in range(1024)] for c in range(8)]})
    assert lists["rows"].dtype == object and lists.memory_usage(deep=False).sum() < 1000  # pointers only
    assert frame_nbytes(lists) >= 1 << 20
    assert freeze(lists).nbytes >= 1 << 20
    assert freeze(lists["rows"]).nbytes >= 1 << 20  # a Series too


def test_an_object_array_of_ten_1_mb_strings_counts_at_least_10_mb():
    strings = np.array(["s" * (1 << 20) + str(i) for i in range(10)], dtype=object)
    assert strings.nbytes == 80  # numpy counts the pointers
    assert array_nbytes(strings) >= 10 << 20
    assert freeze(strings).nbytes >= 10 << 20
    assert freeze(strings.reshape(2, 5)).nbytes >= 10 << 20  # any shape


def test_sizes_count_shared_objects_and_object_indexes():
    shared = ["z" * 10_000]
    frame_ = pd.DataFrame({"a": [shared, shared]}, index=pd.Index(["i" * 50_000, "j"], dtype=object))
    assert frame_nbytes(frame_) >= 2 * 10_000 + 50_000
    assert deep_size({"k": ["v" * 1000, {"x": b"y" * 1000}]}) >= 2000
    cycle: list = []
    cycle.append(cycle)
    assert deep_size(cycle) > 0  # each object once: a cycle ends


# -- sealing --------------------------------------------------------------------------------------------
def seal(*secrets: bytes, **options) -> Seal:
    return Seal(Keys(secrets or (b"app secret",)), **options)


VALUES = [{"a": [1, "ü", None]}, "", frame(), pd.Series([1.5, 2.5], name="s"), np.arange(12).reshape(3, 4)]


def same(left, right) -> bool:
    if isinstance(left, pd.DataFrame):
        pd.testing.assert_frame_equal(left, right)
    elif isinstance(left, pd.Series):
        pd.testing.assert_series_equal(left, right)
    elif isinstance(left, np.ndarray):
        np.testing.assert_array_equal(left, right)
    else:
        assert left == right
    return True


@pytest.mark.parametrize("options", [{}, {"encryption": "hmac"}, {"compression": "zstd", "compress_min_bytes": 0},
                                     {"encryption": "hmac", "compression": "zstd", "compress_min_bytes": 0}],
                         ids=["aes-gcm", "hmac", "aes-gcm+zstd", "hmac+zstd"])
@pytest.mark.parametrize("value", VALUES, ids=["json", "empty", "frame", "series", "array"])
def test_sealed_values_round_trip(options, value):
    sealer = seal(**options)
    sealed = sealer.dump(KEY, freeze(value))
    assert isinstance(sealed, (bytes, bytearray, memoryview)) and bytes(sealed[:4]) == MAGIC
    assert same(sealer.load(KEY, bytes(sealed)).thaw(), value)
    assert same(sealer.load(KEY, memoryview(sealed)).thaw(), value)


LARGE_VALUES = [
    pd.DataFrame({"id": np.arange(20_000), "name": pd.array([f"n{i}" for i in range(20_000)], dtype="str"),
                  "when": pd.date_range("2024-01-01", periods=20_000, freq="min")}),
    frame().sample(20_000, replace=True, random_state=1),  # categorical, tz-aware, object index: from_pandas
    pd.Series(np.linspace(0, 1, 30_000), name=("a", 1)),
    np.arange(40_000, dtype="int16").reshape(200, 200),
]


@pytest.mark.parametrize("value", LARGE_VALUES, ids=["plain-frame", "other-frame", "series", "array"])
def test_large_values_are_encrypted_piece_by_piece_into_the_same_format(value):
    # Above 64 KiB a value is encrypted straight from its Arrow buffers; the result must be exactly
    # what one AESGCM call over the encoded bytes gives, so any process and version can read it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealer, snapshot = seal(), freeze(value)
    assert snapshot.encoded_size() >= 1 << 16
    sealed = bytes(sealer.dump(KEY, snapshot))
    assert len(sealed) == 5 + 12 + snapshot.encoded_size() + 16
    key = Keys((b"app secret",)).current("values aes-gcm v2")
    plain = AESGCM(key).decrypt(sealed[5:17], sealed[17:], sealed[:5] + KEY.encode())
    assert plain == bytes(freeze(value).to_bytes())
    assert same(sealer.load(KEY, sealed).thaw(), value)
    with pytest.raises(CorruptValue):
        sealer.load(OTHER_KEY, sealed)


def test_aes_gcm_hides_the_value_and_uses_a_fresh_nonce_each_time():
    sealer = seal()
    value = freeze({"card": "4111111111111111"})
    first, second = bytes(sealer.dump(KEY, value)), bytes(sealer.dump(KEY, value))
    assert first != second and first[5:17] != second[5:17]
    assert b"4111" not in first and len(first) == 4 + 1 + 12 + len(value.to_bytes()) + 16
    hmac_sealed = bytes(seal(encryption="hmac").dump(KEY, value))
    assert b"4111111111111111" in hmac_sealed and hmac_sealed[4] & 0x02  # readable at rest, authenticated


@pytest.mark.parametrize("encryption", ["aes-gcm", "hmac"])
def test_every_single_byte_change_is_corrupt(encryption):
    sealer = seal(encryption=encryption)
    sealed = bytes(sealer.dump(KEY, freeze([1, "two"])))
    for position in range(len(sealed)):
        for flip in (0x01, 0x80):
            changed = sealed[:position] + bytes([sealed[position] ^ flip]) + sealed[position + 1:]
            with pytest.raises(CorruptValue):
                sealer.load(KEY, changed)
    for cut in range(len(sealed)):
        with pytest.raises(CorruptValue):
            sealer.load(KEY, sealed[:cut])
    with pytest.raises(CorruptValue):
        sealer.load(KEY, sealed + b"\0")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from(["aes-gcm", "hmac"]))
def test_arbitrary_bytes_are_corrupt_never_decoded_or_a_crash(data, encryption):
    for candidate in (data, MAGIC + data, MAGIC + b"\x00" + data, MAGIC + b"\x02" + data, MAGIC + b"\x01" + data):
        with pytest.raises(CorruptValue):
            seal(encryption=encryption).load(KEY, candidate)


@pytest.mark.parametrize("encryption", ["aes-gcm", "hmac"])
def test_a_value_is_bound_to_its_key(encryption):
    sealer = seal(encryption=encryption)
    sealed = bytes(sealer.dump(KEY, freeze({"role": "admin"})))
    for other in (OTHER_KEY, KEY[:-1], KEY + "k", "", KEY.upper(), "latest." + KEY):
        with pytest.raises(CorruptValue):
            sealer.load(other, sealed)


@pytest.mark.parametrize("encryption", ["aes-gcm", "hmac"])
def test_rotation_reads_old_values_through_fallbacks_and_writes_with_the_current_secret(encryption):
    old, rotated, new_only = (seal(b"old", encryption=encryption), seal(b"new", b"old", encryption=encryption),
                              seal(b"new", encryption=encryption))
    sealed = bytes(old.dump(KEY, freeze("before")))
    assert rotated.load(KEY, sealed).thaw() == "before"
    with pytest.raises(CorruptValue):
        new_only.load(KEY, sealed)
    fresh = bytes(rotated.dump(KEY, freeze("after")))
    assert new_only.load(KEY, fresh).thaw() == "after"
    with pytest.raises(CorruptValue):
        old.load(KEY, fresh)
    with pytest.raises(CorruptValue):
        seal(b"unrelated", b"also unrelated", encryption=encryption).load(KEY, sealed)


def test_the_secret_is_never_the_key_and_purposes_do_not_mix():
    keys = Keys((b"app secret",))
    assert b"app secret" not in keys.all("values aes-gcm v2") + keys.all("values hmac v2")
    assert keys.current("values aes-gcm v2") != keys.current("values hmac v2") != keys.current("references v2")
    assert len(keys.current("values aes-gcm v2")) == 32


def test_hmac_mode_works_without_the_cryptography_package(monkeypatch):
    encrypted = bytes(seal().dump(KEY, freeze("aes")))
    for name in [n for n in sys.modules if n == "cryptography" or n.startswith("cryptography.")] + \
            ["cryptography", "cryptography.exceptions", "cryptography.hazmat.primitives.ciphers.aead"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigError, match="cryptography.*STATE_ENCRYPTION = 'hmac'"):
        seal()
    sealer = seal(encryption="hmac")
    for value in VALUES:
        assert same(sealer.load(KEY, bytes(sealer.dump(KEY, freeze(value)))).thaw(), value)
    with pytest.raises(CorruptValue, match="hmac"):  # an encrypted value is missing, not an ImportError
        sealer.load(KEY, encrypted)


def test_compression_applies_above_the_threshold_and_any_process_reads_it():
    compressing = seal(compression="zstd", compress_min_bytes=1000)
    big, small = freeze({"rows": ["same text"] * 10_000}), freeze("short")
    sealed_big, sealed_small = bytes(compressing.dump(KEY, big)), bytes(compressing.dump(KEY, small))
    assert sealed_big[4] & 0x01 and len(sealed_big) < big.nbytes / 10
    assert not sealed_small[4] & 0x01
    assert seal().load(KEY, sealed_big).thaw() == big.thaw()  # compression off in the reading process
    with pytest.raises(CorruptValue):
        seal().load(KEY, sealed_big[:-1] + bytes([sealed_big[-1] ^ 1]))


def test_an_authentic_value_that_is_not_a_dash_state_value_is_corrupt():
    """Even with the right secret, sealed bytes must still decode as a dash-state value."""
    sealer = seal()
    not_a_value = Snapshot(JSON, payload=b"{}", nbytes=2, encoded=b"NOPE{}")
    with pytest.raises(CorruptValue):
        sealer.load(KEY, bytes(sealer.dump(KEY, not_a_value)))
