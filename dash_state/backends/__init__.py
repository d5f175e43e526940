"""Backends by configuration name. Each module imports its client library only when it is used."""
from __future__ import annotations

import importlib
from typing import Callable

from ..config import Config
from ..errors import ConfigError
from ..seal import Seal
from .base import POINTER_PREFIX, Backend, BytesBackend, Item, Pointer, pointer_name
from .client import ClientBackend
from .memory import MemoryBackend

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
