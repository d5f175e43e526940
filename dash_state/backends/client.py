"""The client backend: no server-side storage at all.

A store on this backend behaves exactly like ``dcc.Store``: the hook lets its data travel to the
browser and back untouched. It exists so one store (``[STATE_STORES.<id>] backend = "client"``) or a
whole app (``STATE_BACKEND = "client"``) can be rolled back without changing code. The manager checks
``server_side`` and never calls the storage methods.
"""
from __future__ import annotations

from ..codecs import Snapshot
from .base import Backend


class ClientBackend(Backend):
    name = "client"
    server_side = False

    def _never(self, *_args: object) -> None:
        raise RuntimeError("the client backend keeps nothing on the server; the manager must not call it")

    def get(self, user: str, key: str) -> Snapshot | None:
        self._never()

    def set(self, user: str, key: str, value: Snapshot, ttl: float) -> None:
        self._never()

    def delete(self, user: str, key: str) -> bool:
        self._never()

    def touch(self, user: str, key: str, ttl: float) -> bool:
        self._never()

    def delete_user(self, user: str) -> int:
        self._never()


def from_config(config, wire) -> ClientBackend:
    return ClientBackend()
