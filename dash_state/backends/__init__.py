"""Backends by configuration name. Redis and database backends import their client libraries lazily."""
from __future__ import annotations

from typing import Any, Callable

from ..config import Config
from ..errors import ConfigError
from .base import Backend
from .client import ClientBackend
from .memory import MemoryBackend


def _memory(config: Config) -> Backend:
    return MemoryBackend(max_bytes=config["STATE_MEMORY_MAX_BYTES"])


def _not_yet(name: str) -> Callable[[Config], Backend]:
    def factory(_config: Config) -> Backend:
        raise ConfigError(f"the {name!r} backend is not available in this version of dash-state")
    return factory


FACTORIES: dict[str, Callable[[Config], Any]] = {
    "memory": _memory,
    "client": lambda _config: ClientBackend(),
    "redis": _not_yet("redis"),
    "database": _not_yet("database"),
}


def create_backend(name: str, config: Config) -> Backend:
    return FACTORIES[name](config)


__all__ = ["Backend", "ClientBackend", "MemoryBackend", "create_backend"]
