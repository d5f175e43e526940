"""The backend interface: one small class per place where ServerStore data can live.

A backend maps string keys to :class:`~dash_state.codecs.Snapshot` values with a time to live. Keys
arrive already namespaced per user (``"<user>/<random>"``) by the manager, so a backend needs no
notion of users or stores; ``delete_prefix`` removes one user's data in one call.

Contract every backend keeps (the contract tests check it):

* ``get`` never returns an expired value, and returns ``None`` for unknown keys;
* ``set`` stores the whole value or nothing, replacing any value under the key;
* ``touch`` extends the life of a live value without transferring it;
* methods are safe to call from many threads at once.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..codecs import Snapshot


class Backend(ABC):
    #: name used in configuration (``STATE_BACKEND``, ``[STATE_STORES.<id>] backend``).
    name: ClassVar[str]
    #: False only for the client backend: the data itself travels to the browser, as with dcc.Store.
    server_side: ClassVar[bool] = True
    #: True when other processes (gunicorn workers, other hosts) see the same data.
    shared: ClassVar[bool] = False
    #: True when the backend keeps snapshots as objects (memory); others keep ``snapshot.to_bytes()``.
    keeps_objects: ClassVar[bool] = False

    @abstractmethod
    def get(self, key: str) -> Snapshot | None:
        """The live value under ``key``, or None if it is unknown or expired."""

    @abstractmethod
    def set(self, key: str, value: Snapshot, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; True if a value was there."""

    @abstractmethod
    def touch(self, key: str, ttl: float) -> bool:
        """Restart the TTL of a live value; False if there is none."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every key that starts with ``prefix`` (one user's data); returns how many."""

    def stats(self) -> dict:
        """Backend-specific figures for ``StateManager.stats()``."""
        return {}

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
