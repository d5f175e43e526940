"""Backends by configuration name. Each module imports its client library only when it is used."""
from __future__ import annotations

import importlib
from typing import Callable

from dash_state.backends.base import (
    POINTER_PREFIX,
    Backend,
    BytesBackend,
    Item,
    Pointer,
    pointer_name,
)
from dash_state.backends.client import ClientBackend
from dash_state.backends.memory import MemoryBackend
from dash_state.config import Config
from dash_state.core.seal import Seal
from dash_state.errors import ConfigError

# name -> (module, factory function name, pip extra that provides its client library)
_MODULES = {
    "memory": ("memory", "from_config", None),
    "client": ("client", "from_config", None),
    "redis": ("redis", "from_config", "redis"),
    "database": ("database", "from_config", "database"),
    "local": ("local", "from_config", None),
}


def create_backend(name: str, config: Config, seal: Seal) -> Backend:
    module_name, factory_name, extra = _MODULES[name]
    try:
        module = importlib.import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as exc:
        if extra and exc.name and not exc.name.startswith("dash_state"):
            raise ConfigError(f"the {name!r} backend needs {exc.name}: pip install 'dash-state[{extra}]'") from None
        raise
    factory: Callable[[Config, Seal], Backend] = getattr(module, factory_name)
    return factory(config, seal)


__all__ = ["POINTER_PREFIX", "Backend", "BytesBackend", "ClientBackend", "Item", "MemoryBackend", "Pointer", "create_backend",
           "pointer_name"]
