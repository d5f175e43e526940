"""The backend interface: one small class per place where ServerStore data can live.

A backend maps ``(user, key)`` to a :class:`~dash_state.codecs.Snapshot` with a time to live. The
manager chooses both: ``user`` is the session's anonymous id, ``key`` is random (or a digest of the
value), so a key's value never changes once written. Backends that keep bytes (redis, database)
derive from :class:`BytesBackend`, which seals values with an HMAC and optional compression.

Contract every backend keeps (``tests/test_backend_contract.py`` checks it for each one):

* ``get`` never returns an expired value, and returns ``None`` for unknown keys;
* ``set`` stores the whole value or nothing, replacing any value under the key;
* ``touch`` extends the life of a live value without transferring it;
* ``delete_user`` removes everything of one user in one call;
* methods are safe to call from many threads at once; a server that cannot be reached raises
  :class:`~dash_state.errors.BackendUnavailable` after bounded retries, never half-writes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..codecs import Snapshot
from ..wire import Wire


class Backend(ABC):
    #: name used in configuration (``STATE_BACKEND``, ``[STATE_STORES.<id>] backend``).
    name: ClassVar[str]
    #: False only for the client backend: the data itself travels to the browser, as with dcc.Store.
    server_side: ClassVar[bool] = True
    #: True when other processes (gunicorn workers, other hosts) see the same data.
    shared: ClassVar[bool] = False
    #: True when the backend keeps snapshots as objects (memory); others keep sealed bytes.
    keeps_objects: ClassVar[bool] = False

    @abstractmethod
    def get(self, user: str, key: str) -> Snapshot | None:
        """The live value, or None if it is unknown or expired."""

    @abstractmethod
    def set(self, user: str, key: str, value: Snapshot, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""

    def set_many(self, user: str, items: list[tuple[str, Snapshot, float]]) -> None:
        """Store several ``(key, value, ttl)`` of one user: a callback's outputs. Backends that can
        write them in one round trip, all or nothing, do (Redis: one MULTI/EXEC)."""
        for key, value, ttl in items:
            self.set(user, key, value, ttl)

    @abstractmethod
    def delete(self, user: str, key: str) -> bool:
        """Remove one value; True if it was there."""

    @abstractmethod
    def touch(self, user: str, key: str, ttl: float) -> bool:
        """Restart the TTL of a live value; False if there is none."""

    @abstractmethod
    def delete_user(self, user: str) -> int:
        """Remove every value of ``user``; returns how many."""

    def stats(self) -> dict:
        """Backend-specific figures for ``StateManager.stats()``."""
        return {}

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""


class BytesBackend(Backend):
    """A backend that stores sealed bytes; subclasses implement ``read`` and ``write``.

    Sealing binds each value to its user and key with an HMAC, so a value that was corrupted or
    copied under another key in the server raises :class:`~dash_state.errors.CorruptValue` instead
    of being decoded.
    """

    def __init__(self, wire: Wire):
        self.wire = wire

    @abstractmethod
    def read(self, user: str, key: str) -> bytes | None:
        """The stored bytes of a live value, or None."""

    @abstractmethod
    def write(self, user: str, key: str, data: bytes, ttl: float) -> None:
        """Store ``data`` atomically for ``ttl`` seconds."""

    def alive(self, user: str, key: str) -> bool:
        """Whether a live value exists, without transferring it (validates the read cache)."""
        return self.read(user, key) is not None

    def get(self, user: str, key: str) -> Snapshot | None:
        data = self.read(user, key)
        return None if data is None else self.wire.load(user, key, data)

    def set(self, user: str, key: str, value: Snapshot, ttl: float) -> None:
        self.write(user, key, self.wire.dump(user, key, value), ttl)

    def set_many(self, user: str, items: list[tuple[str, Snapshot, float]]) -> None:
        self.write_many(user, [(key, self.wire.dump(user, key, value), ttl) for key, value, ttl in items])

    def write_many(self, user: str, items: list[tuple[str, bytes, float]]) -> None:
        for key, data, ttl in items:
            self.write(user, key, data, ttl)
