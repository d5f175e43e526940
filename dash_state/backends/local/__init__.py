"""The local backend: one store shared by every process of one host (LMDB and memory-mapped value
files). The design is explained in :mod:`.local`."""
from dash_state.backends.local.local import LocalBackend, from_config

__all__ = ["LocalBackend", "from_config"]
