"""What the local backend keeps in LMDB: the byte layout of its keys and records.

Six named databases in one LMDB environment:

* ``values``: record key -> record, for values and pointers (``latest.*``);
* ``expiry``: ``expires_at (8 bytes) + record key`` -> empty, the index the bounded sweep walks;
* ``pending``: file name -> ``pid, started``: value files being written, not yet referenced;
* ``doomed``: file name -> empty: files of dropped values, unlinked after the commit that dropped them;
* ``info``: ``format`` and ``file_bytes`` (bytes in value files, counted against STATE_LOCAL_MAX_BYTES);
* ``used``: empty but in the near tier's stores (:mod:`dash_state.backends.near.store`), where it is
  the least-recently-used index that cache evicts by.

A record key is ``len(user) (2 bytes) + user + key`` (UTF-8), so one user's records are one contiguous
range (a prefix scan) and no user name can run into another's. A record is ``flags (1) + expires_at
(8, epoch seconds as a double) + size (8)`` followed by the value's bytes (small values), the name of
its file (large values) or the pointer's target. Positive doubles packed big-endian sort like the
numbers they encode, so the expiry index is in time order.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from dash_state.backends import history
from dash_state.errors import StoreValueError

FORMAT = b"1"
DATABASES = (b"values", b"expiry", b"pending", b"doomed", b"info", b"used")
POINTER, FILE, SEALED = 1, 2, 4
MAX_KEY = 480  # LMDB's keys stop at 511 bytes; the expiry index adds 8

_HEAD = struct.Struct(">Bdq")
_EXPIRES = struct.Struct(">d")
_LENGTH = struct.Struct(">H")
_PENDING = struct.Struct(">qd")


class Record(NamedTuple):
    flags: int
    expires: float
    size: int  # bytes the value takes (what quotas count); 0 for pointers
    body: bytes  # the value's bytes, its file name, or a pointer's target

    @property
    def is_pointer(self) -> bool:
        return bool(self.flags & POINTER)

    @property
    def file(self) -> str | None:
        """The name of the value's file, for large values."""
        return self.body.decode("ascii") if self.flags & FILE else None


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def user_prefix(user: str) -> bytes:
    """The start of every record key of ``user``."""
    raw = encode(user)
    return _LENGTH.pack(len(raw)) + raw


def record_key(user: str, key: str) -> bytes:
    """The LMDB key of one value or pointer; a user and key too long for LMDB are refused by name."""
    raw = user_prefix(user) + encode(key)
    if len(raw) > MAX_KEY:
        raise StoreValueError(f"the local backend keys (user, key) pairs of at most {MAX_KEY} bytes; "
                              f"this one has {len(raw)}")
    return raw


def split_key(raw: bytes) -> tuple[str, str]:
    """``(user, key)`` back from a record key."""
    length = _LENGTH.unpack_from(raw)[0]
    return (raw[2:2 + length].decode("utf-8", "surrogatepass"),
            raw[2 + length:].decode("utf-8", "surrogatepass"))


def pack(flags: int, expires: float, size: int, body: bytes | memoryview) -> bytes:
    return b"".join((_HEAD.pack(flags, expires, size), body))


def unpack(raw: bytes) -> Record:
    flags, expires, size = _HEAD.unpack_from(raw)
    return Record(flags, expires, size, bytes(raw[_HEAD.size:]))


def expiry_key(expires: float, key: bytes) -> bytes:
    """The expiry index entry of a record expiring at ``expires`` (epoch seconds, positive)."""
    return _EXPIRES.pack(max(expires, 0.0)) + key


def split_expiry(raw: bytes) -> tuple[float, bytes]:
    return _EXPIRES.unpack_from(raw)[0], raw[_EXPIRES.size:]


def pending(pid: int, started: float) -> bytes:
    return _PENDING.pack(pid, started)


def unpack_pending(raw: bytes) -> tuple[int, float]:
    return _PENDING.unpack(raw)


def number(raw: bytes | None) -> int:
    return 0 if raw is None else int(raw)


def history_record(entries: list, expires: float) -> Record:
    """A store's history (:mod:`..history`): bookkeeping flagged as a pointer, so it has no bytes, no
    quota and no place in ``usage``."""
    return Record(POINTER, expires, 0, history.dump(entries).encode("ascii"))
