"""Snapshots: the frozen form of a stored value, and its byte encoding (see :mod:`dash_state.values`
for what is accepted and how values are measured).

A :class:`Snapshot` is a private, frozen copy of one value. The memory backend keeps the snapshot
itself (a copy in, a copy out: no encoding at all); the other backends keep ``snapshot.to_bytes()``.
The byte format never uses pickle: orjson for JSON values, Arrow IPC for frames, series and arrays,
so a stored value can only ever decode into plain data.

Byte format: ``b"DS" + version (1 byte) + kind (1 byte) + payload``.
"""
from __future__ import annotations

import sys
from typing import Any

import orjson

from .errors import StoreValueError

MAGIC = b"DS\x01"
JSON, FRAME, SERIES, ARRAY = b"J", b"F", b"S", b"A"
_SERIES_NAME = b"dash_state.series_name"
_ARRAY_META = b"dash_state.array"


class Snapshot:
    """An immutable copy of a stored value. ``thaw()`` gives every reader its own copy."""

    __slots__ = ("kind", "_obj", "_payload", "_encoded", "nbytes", "json_bytes")

    def __init__(self, kind: bytes, obj: Any = None, payload: Any = None, nbytes: int = 0, encoded: Any = None,
                 json_bytes: int | None = None):
        self.kind = kind
        self._obj = obj  # the private copy (memory backend, and values before encoding)
        self._payload = payload  # the encoded body, without the 4-byte header
        self._encoded = encoded  # header + body, built once
        self.nbytes = nbytes
        self.json_bytes = json_bytes  # what a dcc.Store would have sent, when known (see values.py)

    def thaw(self) -> Any:
        if self.kind == JSON:
            return orjson.loads(self._payload)
        if self._obj is not None:
            return private_copy(self._obj)
        return _decode_arrow(self.kind, self._payload)

    def to_bytes(self) -> Any:
        """The encoded value (bytes or a read-only buffer), built once: large frames are not copied
        again on their way to a backend."""
        if self._encoded is None:
            if self._payload is None:
                self._encoded = _encode_arrow(MAGIC + self.kind, self.kind, self._obj)
            else:
                self._encoded = MAGIC + self.kind + bytes(self._payload)
        return self._encoded

    def for_cache(self) -> "Snapshot":
        """The same value in its cheapest form to thaw again and again: frames decoded once, and
        without the encoded buffer, which a cache would otherwise hold twice."""
        if self.kind == JSON:
            return Snapshot(JSON, payload=self._payload, nbytes=self.nbytes) if self._encoded is not None else self
        obj = self._obj if self._obj is not None else _decode_arrow(self.kind, self._payload)
        return Snapshot(self.kind, obj=obj, nbytes=self.nbytes, json_bytes=self.json_bytes)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Snapshot":
        """Parse stored bytes; raises ValueError on anything that is not a dash-state value."""
        if len(data) < 4 or data[:3] != MAGIC or data[3:4] not in (JSON, FRAME, SERIES, ARRAY):
            raise ValueError("not a dash-state value")
        return cls(bytes(data[3:4]), payload=memoryview(data)[4:], nbytes=len(data), encoded=data)


def private_copy(obj: Any) -> Any:
    """A copy that later writes to either side cannot reach the other.

    With pandas copy-on-write (always on from pandas 3) a shallow copy already guarantees that and
    costs ~0.05 ms instead of ~0.5 ms for 100k rows; numpy arrays and older pandas need a deep copy.
    """
    if hasattr(obj, "iloc") and _pandas_copy_on_write():
        return obj.copy(deep=False)
    return obj.copy()


def _pandas_copy_on_write() -> bool:
    pd = sys.modules["pandas"]
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return pd.options.mode.copy_on_write is True


def check_encodable(snapshot: Snapshot, store_id: str) -> Any:
    """Encode for a byte-storing backend, turning Arrow's errors into a StoreValueError."""
    try:
        return snapshot.to_bytes()
    except StoreValueError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for unsupported data
        raise StoreValueError(f"ServerStore {store_id!r}: cannot encode {type(snapshot._obj).__name__}: {exc}") from None


def _arrow():
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
    except ImportError:
        raise StoreValueError(
            "storing DataFrames, Series or arrays outside the memory backend needs pyarrow: "
            "pip install 'dash-state[arrow]'"
        ) from None
    return pyarrow


def _encode_arrow(header: bytes, kind: bytes, obj: Any) -> memoryview:
    pa = _arrow()
    # preserve_index=None keeps a RangeIndex as metadata instead of a column; one thread avoids a
    # thread-pool start that costs more than it saves on 2 cores (100k rows: 2.3 ms instead of 5.6 ms).
    if kind == FRAME:
        table = _plain_table(pa, obj)
        if table is None:
            table = pa.Table.from_pandas(obj, preserve_index=None, nthreads=1)
    elif kind == SERIES:
        table = pa.Table.from_pandas(obj.to_frame(name="values"), preserve_index=None, nthreads=1)
        meta = dict(table.schema.metadata or {})
        meta[_SERIES_NAME] = orjson.dumps(obj.name, default=str)
        table = table.replace_schema_metadata(meta)
    else:
        flat = pa.array(obj.reshape(-1))
        meta = orjson.dumps({"shape": list(obj.shape), "dtype": obj.dtype.str})
        table = pa.table({"values": flat}).replace_schema_metadata({_ARRAY_META: meta})
    # Measure first, then write once into a buffer of exactly that size from Python's allocator:
    # Arrow's growing BufferOutputStream reallocates, and its pool (mimalloc) hands pages back to the
    # OS within milliseconds, so after a user's pause every write faulted in 6 MB afresh (100k rows:
    # 7.7 ms instead of 4.1 ms after 1 s idle).
    mock = pa.MockOutputStream()
    _write_stream(pa, mock, table)
    out = byte_buffer(len(header) + mock.size())
    out[:len(header)] = header
    _write_stream(pa, pa.FixedSizeBufferWriter(pa.py_buffer(memoryview(out)[len(header):])), table)
    return memoryview(out)


def byte_buffer(size: int) -> memoryview:
    """A writable buffer of ``size`` bytes, not zero-filled when numpy is loaded (as it is whenever a
    frame or array is stored): the caller overwrites all of it, and zero-filling 6 MB costs 0.5 ms."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return memoryview(bytearray(size))
    return memoryview(numpy.empty(size, dtype=numpy.uint8))


def _write_stream(pa: Any, sink: Any, table: Any) -> None:
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


_PLAIN_KINDS = frozenset("biufM")  # bool, integers, floats, naive datetimes: zero-copy into Arrow


def _plain_table(pa: Any, frame: Any) -> Any:
    """The common frame (default RangeIndex, unique string column names, numeric/bool/naive datetime
    columns and pandas' Arrow-backed strings) as an Arrow table without pandas' metadata machinery:
    0.2 ms instead of 0.9-2.5 ms at 100k rows, and ``to_pandas`` rebuilds exactly the same frame from
    it. Anything else returns None and takes ``Table.from_pandas``."""
    import numpy as np

    index, columns = frame.index, frame.columns
    if (type(index).__name__ != "RangeIndex" or index.start != 0 or index.step != 1 or index.name is not None
            or not len(columns) or not columns.is_unique or not all(type(c) is str for c in columns)
            or columns.name is not None):
        return None
    arrays = []
    for array in frame._iter_column_arrays():
        dtype = array.dtype
        if type(array).__name__ == "DatetimeArray" and isinstance(dtype, np.dtype):  # naive (tz: DatetimeTZDtype)
            array = array._ndarray  # the datetime64 values themselves, NaT included
        if isinstance(array, np.ndarray) and dtype.kind in _PLAIN_KINDS and \
                (dtype.kind != "M" or dtype.str.endswith(("[s]", "[ms]", "[us]", "[ns]"))):
            arrays.append(pa.array(array))
        elif getattr(dtype, "storage", None) == "pyarrow" and getattr(dtype, "name", "") == "str":
            arrays.append(array._pa_array)
        else:
            return None
    return pa.table(arrays, names=list(columns))


def _decode_arrow(kind: bytes, payload: Any) -> Any:
    pa = _arrow()
    table = pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
    meta = table.schema.metadata or {}
    if kind == FRAME:
        return table.to_pandas(split_blocks=True)  # no consolidation copy: 0.2 ms instead of 0.5 ms
    if kind == SERIES:
        series = table.to_pandas()["values"]
        series.name = orjson.loads(meta[_SERIES_NAME]) if _SERIES_NAME in meta else None
        return series
    import numpy as np

    info = orjson.loads(meta[_ARRAY_META])
    values = table.column("values").to_numpy(zero_copy_only=False)
    return np.array(values, dtype=np.dtype(info["dtype"])).reshape(info["shape"])
