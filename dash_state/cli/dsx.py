"""The ``.dsx`` backup format (version 1) that ``dash-state export`` writes and ``import`` reads.

One file, read and written as a stream, never all in memory::

    {"format": "dash-state export", "version": 1, "created": "...", "check": "<b64>"}\\n
    {"type": "value", "user": "u.x", "key": "<22 chars>", "bytes": N, "expires_at": 1.7e9}\\n
    <N bytes: the value, sealed with the app's keys>\\n
    {"type": "pointer", "user": "u.x", "name": "latest.<digest>", "target": "<key>", "expires_at": 1.7e9}\\n
    ...
    {"type": "end", "entries": M, "sha256": "<hex of every byte before this line>"}\\n

* Each header line is JSON of at most :data:`MAX_LINE` bytes; values are the bytes of
  :class:`~dash_state.core.seal.Seal` (AES-GCM or HMAC as the app's ``STATE_ENCRYPTION``, bound to their
  key): DataFrames inside them are Arrow IPC, other values JSON (:mod:`dash_state.core.codecs`). Nothing in
  a file is ever executed or unpickled.
* ``check`` is an HMAC of a fixed text with a key derived from the exporting app's ``SECRET_KEY``: an
  import under another key says so before reading any value (re-seal with ``--old-secret-env``).
* A reader refuses, naming the entry and its byte offset: an unknown version, a line that is not
  JSON or too long, a field of the wrong type, a value larger than ``STATE_MAX_VALUE_BYTES`` (before
  reading it), a file that ends early, a wrong entry count or checksum.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

import orjson

from dash_state.core.keys import Keys
from dash_state.core.tokens import b64

FORMAT, VERSION = "dash-state export", 1
MAX_LINE = 64 * 1024
_CHECK_TEXT = b"dash-state export check v1"


class BadFile(ValueError):
    """A .dsx file that cannot be imported; the message names the entry and its byte offset."""


class Value(NamedTuple):
    user: str
    key: str
    data: bytes  # sealed
    expires_at: float


class PointerEntry(NamedTuple):
    user: str
    name: str
    target: str
    expires_at: float


def check_value(keys: Keys) -> str:
    return b64(hmac.new(keys.current("export check"), _CHECK_TEXT, hashlib.sha256).digest()[:16])


def check_matches(keys: Keys, value: Any) -> bool:
    """Whether a file's ``check`` was made with this app's key (or one of its fallbacks)."""
    if not isinstance(value, str):
        return False
    return any(hmac.compare_digest(value, b64(hmac.new(k, _CHECK_TEXT, hashlib.sha256).digest()[:16]))
               for k in keys.all("export check"))


class Writer:
    """Writes entries to a binary stream, counting them and hashing every byte."""

    def __init__(self, out: IO[bytes], keys: Keys):
        self.out, self.count, self.bytes = out, 0, 0
        self._hash = hashlib.sha256()
        self._line({"format": FORMAT, "version": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "check": check_value(keys)})

    def value(self, user: str, key: str, data: bytes, expires_at: float) -> None:
        self._line({"type": "value", "user": user, "key": key, "bytes": len(data), "expires_at": expires_at})
        self._raw(bytes(data) + b"\n")
        self.count += 1
        self.bytes += len(data)

    def pointer(self, user: str, name: str, target: str, expires_at: float) -> None:
        self._line({"type": "pointer", "user": user, "name": name, "target": target, "expires_at": expires_at})
        self.count += 1

    def close(self) -> None:
        digest = self._hash.hexdigest()
        self.out.write(orjson.dumps({"type": "end", "entries": self.count, "sha256": digest}) + b"\n")
        self.out.flush()

    def _line(self, obj: dict) -> None:
        self._raw(orjson.dumps(obj) + b"\n")

    def _raw(self, data: bytes) -> None:
        self._hash.update(data)
        self.out.write(data)


def read(stream: IO[bytes], keys: Keys | None, max_value: int) -> Iterator[Value | PointerEntry]:
    """Every entry of a file, checked as it is read (:class:`BadFile` at the first problem). With
    ``keys``, a file made under another SECRET_KEY is refused before any entry."""
    digest, offset, count = hashlib.sha256(), 0, 0

    def line(what: str) -> tuple[dict, int]:
        nonlocal offset
        start = offset
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            raise BadFile(f"{what} at byte {start}: the file ends early (truncated?)")
        if len(raw) > MAX_LINE or not raw.endswith(b"\n"):
            raise BadFile(f"{what} at byte {start}: " + ("a line longer than 64 KiB" if len(raw) > MAX_LINE
                                                          else "the file ends early (truncated?)"))
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadFile(f"{what} at byte {start}: not a JSON line") from None
        if not isinstance(obj, dict):
            raise BadFile(f"{what} at byte {start}: not a JSON object")
        offset += len(raw)
        if obj.get("type") != "end":
            digest.update(raw)
        return obj, start

    header, _ = line("the header")
    if header.get("format") != FORMAT:
        raise BadFile("the header at byte 0: not a dash-state export (.dsx) file")
    if header.get("version") != VERSION:
        raise BadFile(f"the header at byte 0: version {header.get('version')!r} of the format; this dash-state "
                      f"reads version {VERSION}")
    if keys is not None and not check_matches(keys, header.get("check")):
        raise BadFile("the file was exported under another SECRET_KEY: give the old key with --old-secret-env NAME "
                      "(its values are then re-sealed with this app's key), or import it where that key is set")
    while True:
        count += 1
        obj, start = line(f"entry {count}")
        kind = obj.get("type")
        where = f"entry {count} at byte {start}"
        if kind == "end":
            if obj.get("entries") != count - 1:
                raise BadFile(f"the end at byte {start}: it counts {obj.get('entries')!r} entries, the file has {count - 1}")
            if obj.get("sha256") != digest.hexdigest():
                raise BadFile(f"the end at byte {start}: the checksum does not match (the file was changed or damaged)")
            return
        user, expires = obj.get("user"), obj.get("expires_at")
        if not isinstance(user, str) or not user or len(user) > 200:
            raise BadFile(f"{where}: 'user' must be a namespace string")
        if not isinstance(expires, (int, float)) or isinstance(expires, bool):
            raise BadFile(f"{where}: 'expires_at' must be a number (epoch seconds)")
        if kind == "pointer":
            name, target = obj.get("name"), obj.get("target")
            if not isinstance(name, str) or not name.startswith("latest.") or not isinstance(target, str):
                raise BadFile(f"{where}: a pointer needs a 'name' starting with 'latest.' and a string 'target'")
            yield PointerEntry(user, name, target, float(expires))
            continue
        if kind != "value":
            raise BadFile(f"{where}: unknown entry type {kind!r}")
        key, size = obj.get("key"), obj.get("bytes")
        if not isinstance(key, str) or len(key) != 22:
            raise BadFile(f"{where}: 'key' must be a 22-character key")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadFile(f"{where}: 'bytes' must be a whole number")
        if size > max_value:
            raise BadFile(f"{where}: a value of {size:,} bytes, more than STATE_MAX_VALUE_BYTES = {max_value:,}; "
                          "refused without reading it")
        data = stream.read(size + 1)
        if len(data) < size + 1 or data[-1:] != b"\n":
            raise BadFile(f"{where}: the value ends early (truncated?)")
        digest.update(data)
        offset += size + 1
        yield Value(user, key, data[:-1], float(expires))
