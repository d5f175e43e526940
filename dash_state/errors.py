"""Exceptions raised by dash-state. Each message names what is wrong so the user can fix it."""


class DashStateError(Exception):
    """Base class for every error dash-state raises."""


class ConfigError(DashStateError, ValueError):
    """Invalid configuration: raised when the app starts, naming the key and where it came from."""


class StoreValueError(DashStateError, TypeError):
    """A callback returned a value that a ServerStore cannot keep; nothing was stored."""


class BackendUnavailable(DashStateError, RuntimeError):
    """A backend's server could not be reached or refused the operation."""


class CorruptValue(DashStateError, ValueError):
    """A stored value failed its integrity check or could not be decoded; it is treated as missing."""


class QuotaExceeded(StoreValueError):
    """A write would take a user past STATE_MAX_USER_BYTES (or a value past STATE_MAX_VALUE_BYTES, or
    the memory backend past STATE_MEMORY_MAX_BYTES); nothing was stored and the previous value stays."""


class PatchUploadMissing(StoreValueError):
    """A callback received a ServerStore value patched in the browser (a clientside ``Patch``), and the
    component's upload of the patch did not arrive in time, or the server had no room to wait for it:
    the callback fails with this (HTTP 422, naming the store) instead of running with a stale value."""


class PointerConflict(DashStateError):
    """A backend refused a conditional write: a pointer did not name what the writer expected (another
    worker wrote first). Nothing was written. Internal: the manager retries or raises VersionConflict."""

    def __init__(self, name: str, found: str | None = None):
        super().__init__(f"pointer {name!r} changed (it names {found!r})")
        self.name = name
        self.found = found


class VersionConflict(DashStateError):
    """``set_store(..., if_version=v)`` found another version: someone wrote the store since ``v`` was
    read. Nothing was written; read the store again (``get_store_version``) and retry."""

    def __init__(self, store_id: str, expected: int, current: int):
        super().__init__(f"ServerStore {store_id!r}: version {current} is current, not {expected} (written since "
                         "it was read); nothing was stored: read it again and retry")
        self.store_id = store_id
        self.expected = expected
        self.current = current


class DashVersionError(DashStateError, RuntimeError):
    """The installed Dash lacks a private name dash-state needs (``dash_state/glue/compat.py``): raised
    when the app is created, naming the name and the Dash version."""
