"""What every backend's ``inventory`` and ``gc`` share: the sort of an entry by its name, the trimming
of a store's history to its bound, and the tally a gc returns.

A gc trims a store's history (:mod:`.history`) as the store's next write would, without writing: the
values marked released go, and so do the live ones past the newest ``values_per_store``; the value
the store's live pointer names is never evicted (``get_store`` and ``latest_only`` stores read it),
and keeps its released mark for the next write. Entries that are no longer live values leave the list.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from dash_state.backends import history
from dash_state.backends.base import POINTER_PREFIX

T = TypeVar("T")


def kind_of(key: str) -> str:
    """"value", "pointer" or "history", by the name alone."""
    if not key.startswith(POINTER_PREFIX):
        return "value"
    return "history" if history.is_history(key) else "pointer"


def pointer_of(history_key: str) -> str:
    """The pointer a history belongs to."""
    return history_key[:-len(history.SUFFIX)]


def trim(entries: list[history.Entry], target: str | None, alive: Callable[[str], bool],
         limit: int) -> tuple[list[history.Entry], list[str]]:
    """The history as a gc leaves it, and the keys of live values it evicts (module docstring).
    ``target``: the key the store's live pointer names, or None."""
    keep = max(limit, 1)
    reserved = target is not None and any(key == target for key, _ in entries) and alive(target)
    kept: list[history.Entry] = []
    evicted: list[str] = []
    live = 1 if reserved else 0
    for key, released in entries:
        if reserved and key == target:
            kept.append((key, released))
        elif not alive(key):
            continue
        elif released or live >= keep:
            evicted.append(key)
        else:
            kept.append((key, False))
            live += 1
    return kept, evicted


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Tally:
    """What a gc removed (or, dry, would remove), reported batch by batch to ``progress``."""

    def __init__(self, progress: Callable[[int], None] | None):
        self.progress = progress
        self.expired = self.over_bound = self.bytes_freed = 0
        self.users: set[str] = set()

    def add(self, user: str, expired: int = 0, over_bound: int = 0, freed: int = 0) -> None:
        self.expired += expired
        self.over_bound += over_bound
        self.bytes_freed += freed
        if expired or over_bound:
            self.users.add(user)

    def step(self, removed: int) -> None:
        """A batch is done: ``removed`` entries went (or would go)."""
        if self.progress is not None:
            self.progress(removed)

    def result(self) -> dict:
        return {"expired": self.expired, "over_bound": self.over_bound, "bytes_freed": self.bytes_freed,
                "users": len(self.users)}
