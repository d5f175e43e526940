"""Each user's recent values per store: the bound ``STATE_VALUES_PER_STORE``, kept beside the pointer.

A write that points a store's "latest" pointer at a new key also puts that key at the front of the
store's *history*, kept under :func:`history_name` of the pointer. Its name starts with
``POINTER_PREFIX``, so every backend treats it as bookkeeping (no bytes, no quota, not in ``usage``).
The history lists the user's values of that store, newest first; the write keeps the newest
``limit`` live ones and evicts the others, in the same atomic step as the write itself (each backend
runs :func:`plan` under its lock, in its transaction, or in its Lua script), and the bytes evicted no
longer count against the user's quota, already for the write that evicts them. The newest value,
which the pointer names, is never evicted.

A page that goes away releases its references; the store's latest value cannot be deleted then (the
pointer names it: ``get_store`` and ``latest_only`` stores read it), so :func:`mark` flags it
*released* and the next write to the store evicts it. One browser reloading a page thus keeps one
value per store, not one per reload.

Text form: keys separated by spaces, a released key prefixed with ``~`` (keys are base64url, so
neither character can occur in them).
"""
from __future__ import annotations

from typing import Callable, Iterable

from dash_state.backends.base import is_key

SUFFIX = ".history"
RELEASED = "~"
Entry = tuple[str, bool]  # (key, released)


def history_name(pointer: str) -> str:
    """Where a store's history lives: beside its pointer, under a name no pointer or value has."""
    return pointer + SUFFIX


def is_history(name: str) -> bool:
    return name.endswith(SUFFIX)


def parse(text: str | bytes | None) -> list[Entry]:
    """The entries of a stored history, newest first; anything that is not a key is skipped."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("ascii", "replace")
    entries, seen = [], set()
    for word in (text or "").split():
        released = word.startswith(RELEASED)
        key = word[1:] if released else word
        if is_key(key) and key not in seen:
            seen.add(key)
            entries.append((key, released))
    return entries


def dump(entries: Iterable[Entry]) -> str:
    return " ".join(RELEASED + key if released else key for key, released in entries)


def plan(entries: list[Entry], targets: list[str], alive: Callable[[str], bool],
         limit: int) -> tuple[list[Entry], list[str]]:
    """The history after a write that pointed the store at ``targets`` (in write order, the last one
    newest), and the keys that write evicts: values marked released, and the live ones past the newest
    ``limit``. Entries that are no longer ``alive`` (released, deleted, expired) just leave the list."""
    front: list[Entry] = []
    for key in reversed(targets):
        if is_key(key) and key not in {k for k, _ in front}:
            front.append((key, False))
    written = {key for key, _ in front}
    kept: list[Entry] = []
    evicted: list[str] = []
    for key, released in entries:
        if key in written:
            continue
        if released:
            evicted.append(key)
        elif alive(key):
            kept.append((key, False))
    result = front + kept
    keep = max(limit, 1)
    evicted += [key for key, _ in result[keep:]]
    return result[:keep], evicted


def mark(entries: list[Entry], key: str) -> list[Entry]:
    """The history with ``key`` marked released (added at the front if it was missing)."""
    if any(k == key for k, _ in entries):
        return [(k, released or k == key) for k, released in entries]
    return [(key, True)] + entries


def merge(target: list[Entry], source: list[Entry]) -> list[Entry]:
    """A login's carry-over: the anonymous history (the session just used) before the user's own. The
    next write to the store trims the result to the bound."""
    seen = {key for key, _ in source}
    return source + [(key, released) for key, released in target if key not in seen]
