"""The client backend: no server-side storage at all.

A store on this backend behaves exactly like ``dcc.Store``: the hook lets its data travel to the
browser and back untouched. It exists so one store (``[STATE_STORES.<id>] backend = "client"``) or a
whole app (``STATE_BACKEND = "client"``) can be rolled back without changing code. The manager checks
``server_side`` and never calls the storage methods.
"""
from __future__ import annotations

from typing import Any, NoReturn

from dash_state.backends.base import Backend


class ClientBackend(Backend):
    name = "client"
    server_side = False

    def _never(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise RuntimeError("the client backend keeps nothing on the server; the manager must not call it")

    get = set_many = pointer = delete = touch = delete_user = move_user = usage = _never  # type: ignore[assignment]


def from_config(config, seal) -> ClientBackend:
    return ClientBackend()
