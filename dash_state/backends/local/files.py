"""Value files: how the local backend keeps large values (at least 64 KiB) outside LMDB.

A large value is written once to ``values/<name>.part`` (a fresh random name, ``O_EXCL``), renamed to
``values/<name>`` when complete, and never changed afterwards; LMDB holds its record (user, key,
name, size, expiry). Deleting or expiring the value unlinks the file. A reader maps the file instead
of reading it: every process that reads the same frame shares the same memory pages (the page cache,
on tmpfs the file itself), and a mapping stays valid after its file is unlinked, so a frame built on
it lives on however long its reader keeps it.

The mapping is *private* (``MAP_PRIVATE``): pages are shared until a reader writes to one, which then
becomes that reader's own copy. Neither the file nor any other reader ever sees the change.

The file starts with a 60-byte header, so that the Arrow stream in an unsealed value (which follows
dash-state's 4-byte value header) starts 64 bytes into the file: aligned, as Arrow needs its buffers
to be for numpy to use them in place.
"""
from __future__ import annotations

import mmap
import os
import secrets
from typing import Any, Callable

from dash_state.errors import CorruptValue

HEADER = b"DSLV1\n".ljust(60, b"\0")
FOLDER = "values"
PART = ".part"


def new_name() -> str:
    return secrets.token_hex(16)


def folder(root: str) -> str:
    path = os.path.join(root, FOLDER)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def write(where: str, name: str, size: int, produce: Callable[[Callable[[Any], None]], None], durable: bool) -> None:
    """Write a value of ``size`` bytes (``produce(write)`` hands over its pieces) to ``<name>.part``,
    then rename it to ``name``. On any failure no file is left behind."""
    part = os.path.join(where, name + PART)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(HEADER)
            produce(out.write)
            out.flush()
            if out.tell() != len(HEADER) + size:  # the encoder wrote other than it measured
                raise CorruptValue(f"value file {name}: wrote {out.tell() - len(HEADER)} bytes, expected {size}")
            if durable:
                os.fsync(out.fileno())
        os.rename(part, os.path.join(where, name))
    except BaseException:
        _unlink(part)
        raise


def read(where: str, name: str, size: int) -> memoryview | None:
    """The value's bytes, mapped privately; None when the file is gone (the value was deleted since
    its record was read). A file of the wrong length or without the header is corrupt."""
    try:
        fd = os.open(os.path.join(where, name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        length = os.fstat(fd).st_size
        if length != len(HEADER) + size:
            raise CorruptValue(f"value file {name} has {length} bytes, its record says {len(HEADER) + size}")
        mapping = mmap.mmap(fd, length, access=mmap.ACCESS_COPY)
    finally:
        os.close(fd)
    view = memoryview(mapping)
    if view[:len(HEADER)] != HEADER:
        raise CorruptValue(f"value file {name} does not start with the local backend's header")
    return view[len(HEADER):]


def unlink(where: str, names: list[str]) -> None:
    """Remove value files (and any unfinished ``.part``); names already gone are fine."""
    for name in names:
        _unlink(os.path.join(where, name))
        _unlink(os.path.join(where, name + PART))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
