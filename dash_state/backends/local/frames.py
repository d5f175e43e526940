"""Frames and series decoded in place: their numeric columns stay in the buffer they were read from.

Arrow hands pandas zero-copy columns as *read-only* numpy arrays, and pandas' copy-on-write copies a
column before writing only when another frame shares it: a frame that is the only one left on a
read-only column raises "assignment destination is read-only" on ``df.loc[0, "a"] = 1``. So every
read-only column that lies inside the buffer is replaced by a *writable* view of the same bytes.

That is safe because the buffer belongs to this one read: a private mapping of a value file (see
:mod:`.files`; the kernel copies a page the first time it is written, for this reader only, so the
file and every other reader keep the stored value) or a freshly decrypted buffer. Columns Arrow had
to convert (nulls in integers, booleans) are already pandas' own. Anything that cannot be viewed in
place is copied, so a reader can always modify what it got.
"""
from __future__ import annotations

import logging
from typing import Any

from dash_state.core.codecs import FRAME, SERIES, _decode_arrow

log = logging.getLogger("dash_state")


def decode(kind: bytes, payload: memoryview) -> Any:
    """The frame, series or array encoded in ``payload`` (a buffer private to this read)."""
    value = _decode_arrow(kind, payload)
    if kind in (FRAME, SERIES):
        try:
            _make_writable(value, payload.obj)
        except (AttributeError, TypeError, ValueError) as exc:  # pandas internals changed: stay correct
            log.debug("dash-state local backend: columns copied instead of mapped (%s)", exc)
            value = value.copy(deep=True)
    return value


def _make_writable(value: Any, buffer: Any) -> None:
    """Swap each read-only column array inside ``buffer`` for a writable view of the same memory."""
    import numpy as np

    whole = np.frombuffer(buffer, dtype=np.uint8)
    start = whole.ctypes.data
    end = start + whole.nbytes
    writable = whole.flags.writeable
    for block in value._mgr.blocks:
        values = block.values
        array = values if isinstance(values, np.ndarray) else getattr(values, "_ndarray", None)
        if array is None or array.flags.writeable:
            continue  # Arrow-backed strings (immutable: pandas replaces them on write) or pandas' own
        at = array.ctypes.data
        if writable and array.flags.c_contiguous and start <= at and at + array.nbytes <= end:
            view = np.frombuffer(buffer, dtype=array.dtype, count=array.size, offset=at - start).reshape(array.shape)
        else:
            view = array.copy()
        block.values = view if values is array else values._from_backing_data(view)


def shares_buffer(value: Any, buffer: Any) -> bool:
    """Whether some column of ``value`` lies in ``buffer`` (tests and benchmarks check zero-copy)."""
    import numpy as np

    whole = np.frombuffer(buffer, dtype=np.uint8)
    for block in value._mgr.blocks:
        values = block.values
        array = values if isinstance(values, np.ndarray) else getattr(values, "_ndarray", None)
        if array is not None and np.shares_memory(array, whole):
            return True
    return False
