"""The validated configuration: :class:`Config` (settings and where each came from) and the
per-store :class:`StoreSettings` it resolves."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dash_state.defaults import STORE_CHOICES, STORE_DEFAULTS


@dataclass(frozen=True)
class StoreSettings:
    backend: str
    ttl: float
    latest_only: bool = False
    client_read: bool = False
    client_write: bool = True
    mirror: bool = True  # the setting: clientside users make it held in the browser too
    mirrored: bool = False  # the outcome (set by the manager): held in the browser because of them
    scope: str = "page"  # "page", "user" or "app" (see dash_state/core/shared.py)
    live: bool = False
    writable: bool = False

    @property
    def shared(self) -> bool:
        """A user- or app-scoped store: one value read through the store's pointer, with versions."""
        return self.scope != "page"


@dataclass(frozen=True)
class Config:
    """Validated settings. ``sources`` tells, per key, where the value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def store(self, store_id: str, declared: Mapping[str, Any] | None = None) -> StoreSettings:
        """Backend and TTL for one store id (stringified as Dash does for dict ids). ``declared`` are the
        component's own props (``scope``, ``live``, ``writable``): the config wins over them."""
        own = self.values["STATE_STORES"].get(store_id, {})
        if declared:
            own = {**declared, **own}
        flags = {name: own.get(name, default) for name, default in STORE_DEFAULTS.items()}
        flags.update((name, own.get(name, choices[0])) for name, choices in STORE_CHOICES.items())
        if flags["latest_only"]:
            flags["client_write"] = False  # server-decided facts are never taken from the browser
        return StoreSettings(backend=own.get("backend", self.values["STATE_BACKEND"]),
                             ttl=own.get("ttl", self.values["STATE_TTL_DEFAULT"]), **flags)

    def backends_in_use(self) -> set[str]:
        used = {self.values["STATE_BACKEND"]}
        used.update(s["backend"] for s in self.values["STATE_STORES"].values() if "backend" in s)
        return used
