"""The near tier: a host-local copy of the values a remote backend (redis, database) holds.

With several hosts the data must live on a shared server, but every worker that reads a value it did
not write used to GET the whole value (and decrypt and decode it) again. The near tier keeps values
this host wrote or read in one store shared by every process of the host, built on the local
backend's storage (LMDB plus memory-mapped value files, :mod:`.store`): another worker's read then
costs a local read and one existence check instead of a transfer (:mod:`.tier` says what is checked
when, and what is served while the server is unreachable).

Where: ``<base>/dash-state-near-<id>``, where ``base`` is ``STATE_NEAR_TIER_PATH``, else
``STATE_LOCAL_PATH``, else ``/dev/shm`` (or the temp dir), and ``id`` is an HMAC, under a key derived
from ``SECRET_KEY``, of the remote backend's identity (Redis URL without password and key prefix;
database URL and table). Two apps, two Redis servers, two prefixes or tables never share a near tier.
On tmpfs values are kept unsealed (like process memory, as the local backend does), anywhere else
sealed with the app's keys.

Size: ``STATE_NEAR_TIER_BYTES`` (default 256 MiB, least recently used out; 0 turns the near tier
off). SQLite databases get none: the database is on this host already.

The per-process read cache (``STATE_READ_CACHE_BYTES``) stays in front of it: a hit there costs the
same existence check but no LMDB read and no Arrow decode (frames are kept decoded), which
``benchmarks/near_tier.py`` measures; the near tier serves the first read of each worker, and values
the process cache dropped.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import tempfile
from typing import TYPE_CHECKING, Any

from dash_state.backends.local import paths
from dash_state.backends.near.store import NearStore
from dash_state.backends.near.tier import NearBackend
from dash_state.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    from dash_state.backends.base import Backend
    from dash_state.config import Config
    from dash_state.core.seal import Seal

log = logging.getLogger("dash_state")
#: Where near tiers go when no setting names a place (None: /dev/shm or the temp dir); the test suite
#: points it at its own temporary directory.
DEFAULT_BASE: str | None = None


def identity(backend: Any) -> str | None:
    """What names the remote store a near tier mirrors, or None when it gets no near tier."""
    if backend.name == "redis":
        return f"redis\0{backend.url}\0{backend.prefix}"
    if backend.name == "database" and backend.url.get_backend_name() != "sqlite":
        return f"database\0{backend.masked_url}\0{backend.table.name}"
    return None


def directory(config: "Config", seal: "Seal", name: str) -> str:
    base = config["STATE_NEAR_TIER_PATH"] or config["STATE_LOCAL_PATH"] or DEFAULT_BASE
    if not base:
        base = paths.SHM if os.path.isdir(paths.SHM) and os.access(paths.SHM, os.W_OK) else tempfile.gettempdir()
    digest = hmac.new(seal._macs[0], b"dash-state near tier\0" + name.encode(), hashlib.sha256).hexdigest()[:16]
    return os.path.join(base, f"dash-state-near-{digest}")


def attach(backend: "Backend", config: "Config", seal: "Seal | None") -> "Backend":
    """``backend`` with a near tier in front, when it is remote and the near tier is on."""
    budget = config["STATE_NEAR_TIER_BYTES"]
    name = identity(backend) if budget and backend.remote and seal is not None else None
    if name is None:
        return backend
    path = directory(config, seal, name)
    explicit = any(config.sources.get(key, "default") != "default"
                   for key in ("STATE_NEAR_TIER_BYTES", "STATE_NEAR_TIER_PATH"))
    try:
        store = NearStore(seal, path, budget)
    except (ConfigError, BackendUnavailable, OSError) as exc:
        if explicit:
            raise ConfigError(f"the near tier of the {backend.name} backend cannot use {path}: {exc}; "
                              "set STATE_NEAR_TIER_PATH to a directory of this app's own, or "
                              "STATE_NEAR_TIER_BYTES = 0 to go without") from None
        log.warning("dash-state: the %s backend runs without its near tier: %s cannot be used (%s); set "
                    "STATE_NEAR_TIER_PATH, or STATE_NEAR_TIER_BYTES = 0 to silence this", backend.name, path, exc)
        return backend
    return NearBackend(backend, store)


__all__ = ["NearBackend", "NearStore", "attach", "directory", "identity"]
