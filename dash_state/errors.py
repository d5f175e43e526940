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
