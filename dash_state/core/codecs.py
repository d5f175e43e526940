"""Snapshots: the frozen form of a stored value, and its byte encoding (see :mod:`dash_state.core.values`
for what is accepted and how values are measured).

A :class:`Snapshot` is a private, frozen copy of one value. The memory backend keeps the snapshot
itself (a copy in, a copy out: no encoding at all); the other backends keep ``snapshot.to_bytes()``.
The byte format never uses pickle: orjson for JSON values, Arrow IPC for frames, series and arrays,
so a stored value can only ever decode into plain data.

Byte format: ``b"DS" + version (1 byte) + kind (1 byte) + payload``.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import orjson

from dash_state.errors import StoreValueError

MAGIC = b"DS\x01"
JSON, FRAME, SERIES, ARRAY = b"J", b"F", b"S", b"A"
_SERIES_NAME = b"dash_state.series_name"
_ARRAY_META = b"dash_state.array"


class Snapshot:
    """An immutable copy of a stored value. ``thaw()`` gives every reader its own copy."""

    __slots__ = ("kind", "_obj", "_payload", "_encoded", "_encoding", "nbytes", "json_bytes")

    def __init__(self, kind: bytes, obj: Any = None, payload: Any = None, nbytes: int = 0, encoded: Any = None,
                 json_bytes: int | None = None):
        self.kind = kind
        self._obj = obj  # the private copy (memory backend, and values before encoding)
        self._payload = payload  # the encoded body, without the 4-byte header
        self._encoded = encoded  # header + body, built once
        self._encoding: _Encoding | None = None  # frames, series, arrays: the Arrow table, measured
        self.nbytes = nbytes
        self.json_bytes = json_bytes  # what a dcc.Store would have sent, when known (see values.py)

    def thaw(self) -> Any:
        if self.kind == JSON:
            return orjson.loads(self._payload)
        if self._obj is not None:
            return private_copy(self._obj)
        return _decode_arrow(self.kind, self._payload)

    def to_bytes(self) -> Any:
        """The encoded value (bytes or a buffer), built once."""
        if self._encoded is None:
            if self._payload is None:
                out, at = byte_buffer(self.encoded_size()), 0

                def put(chunk: memoryview) -> None:
                    nonlocal at
                    out[at:at + len(chunk)] = chunk
                    at += len(chunk)

                self.write_to(put)
                self._encoded = out
            else:
                self._encoded = MAGIC + self.kind + bytes(self._payload)
        return self._encoded

    def encoded_size(self) -> int:
        """Length of ``to_bytes()``; frames, series and arrays are measured without being written, and
        a value Arrow cannot encode raises here."""
        if self._encoded is not None:
            return len(self._encoded)
        if self._payload is not None:
            return len(MAGIC) + 1 + len(self._payload)
        if self._encoding is None:
            self._encoding = _Encoding(self.kind, self._obj)
        return self._encoding.size

    def write_to(self, write: Callable[[memoryview], Any]) -> None:
        """Pass the encoded value to ``write`` in pieces that add up to ``to_bytes()``."""
        if self._encoded is not None or self._payload is not None:
            write(memoryview(self.to_bytes()))
            return
        self.encoded_size()
        assert self._encoding is not None
        self._encoding.write_to(MAGIC + self.kind, write)

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
    """Check that a byte-storing backend can take the value (its encoded size, measured without writing
    it), turning Arrow's errors into a StoreValueError that names the store."""
    try:
        return snapshot.encoded_size()
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


class _Encoding:
    """A frame, series or array as an Arrow table, measured but not yet written anywhere: writing it
    hands each column buffer to a callback (the sealer encrypts them on the way), so a large value is
    never first copied into one encoded buffer (100k rows: one 6 MB buffer and 2-3 ms less per write)."""

    __slots__ = ("table", "size")

    def __init__(self, kind: bytes, obj: Any):
        pa = _arrow()
        self.table = _arrow_table(pa, kind, obj)
        mock = pa.MockOutputStream()
        _write_stream(pa, mock, self.table)  # raises here, before anything is stored, if Arrow cannot write it
        self.size = len(MAGIC) + 1 + mock.size()

    def write_to(self, header: bytes, write: Callable[[memoryview], Any]) -> None:
        pa = _arrow()
        write(memoryview(header))
        _write_stream(pa, pa.PythonFile(_Chunks(write), mode="w"), self.table)


class _Chunks:
    """The file object Arrow writes to: every chunk (a column buffer, zero-copy) goes to ``write``."""

    closed = False

    def __init__(self, write: Callable[[memoryview], Any]):
        self._write = write

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if view.format != "B":
            view = view.cast("B")  # Arrow's buffers are signed chars
        self._write(view)
        return len(view)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _arrow_table(pa: Any, kind: bytes, obj: Any) -> Any:
    # preserve_index=None keeps a RangeIndex as metadata instead of a column; one thread avoids a
    # thread-pool start that costs more than it saves on 2 cores (100k rows: 2.3 ms instead of 5.6 ms).
    if kind == FRAME:
        table = _plain_table(pa, obj)
        return table if table is not None else pa.Table.from_pandas(obj, preserve_index=None, nthreads=1)
    if kind == SERIES:
        table = pa.Table.from_pandas(obj.to_frame(name="values"), preserve_index=None, nthreads=1)
        meta = dict(table.schema.metadata or {})
        meta[_SERIES_NAME] = orjson.dumps(obj.name, default=str)
        return table.replace_schema_metadata(meta)
    flat = pa.array(obj.reshape(-1))
    meta = orjson.dumps({"shape": list(obj.shape), "dtype": obj.dtype.str})
    return pa.table({"values": flat}).replace_schema_metadata({_ARRAY_META: meta})


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
        series.name = _hashable(orjson.loads(meta[_SERIES_NAME])) if _SERIES_NAME in meta else None
        return series
    import numpy as np

    info = orjson.loads(meta[_ARRAY_META])
    values = table.column("values").to_numpy(zero_copy_only=False)
    return np.array(values, dtype=np.dtype(info["dtype"])).reshape(info["shape"])


def _hashable(name: Any) -> Any:
    """A series name back from JSON: a tuple (a MultiIndex column's name) came back as a list."""
    return tuple(_hashable(part) for part in name) if isinstance(name, list) else name
