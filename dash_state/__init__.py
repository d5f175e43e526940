"""dash-state: ``ServerStore``, a drop-in ``dcc.Store`` whose data stays on the server.

Installing the package is the whole setup (a Dash plugin registers itself); ``init_app`` is there for
explicit configuration. The component class is imported lazily, so a process that never uses it
does not even load its JavaScript.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dash_state.errors import (
    BackendUnavailable,
    ConfigError,
    DashStateError,
    QuotaExceeded,
    StoreValueError,
    VersionConflict,
)
from dash_state.glue.decorators import state_managed_callback
from dash_state.identity import set_user_context, user_context

__version__ = "0.2.0"

_js_dist = [
    {"relative_package_path": "dash_state.min.js", "namespace": "dash_state"},
]
_css_dist: list = []

if TYPE_CHECKING:
    import dash

    from dash_state.core.manager import StateManager
    from dash_state.identity import Identity
    from dash_state.ServerStore import ServerStore


def init_app(app: "dash.Dash", **config: Any) -> "StateManager":
    """Set dash-state up for ``app`` with settings that win over config.toml, the environment and
    ``app.server.config`` (``user_resolver=`` sets ``STATE_USER_RESOLVER``); returns the app's
    StateManager. Raises ConfigError on invalid settings."""
    from dash_state.glue.plugin import install

    if "user_resolver" in config:
        config["STATE_USER_RESOLVER"] = config.pop("user_resolver")
    state = install(app)
    state.overrides.update(config)
    state.reset()
    return state.manager


def get_state_manager(app: "dash.Dash | None" = None) -> "StateManager":
    """The StateManager of ``app`` (default: the app serving this request, else ``dash.get_app()``)."""
    import dash

    from dash_state.glue.plugin import install
    from dash_state.glue.runtime import current_state

    if app is None:
        state = current_state()
        if state is not None:
            return state.manager
        app = dash.get_app()
    return install(app).manager


def get_store(store_id: Any, default: Any = None) -> Any:
    """``store_id``'s data, on the current app's manager: in a callback, what the calling page's store
    holds if the callback has it as Input or State, else this user's latest value."""
    return get_state_manager().get_store_data(store_id, default)


def set_store(store_id: Any, value: Any, ttl: float | None = None, *, scope: str | None = None,
              if_version: int | None = None) -> int | None:
    """Store ``value`` as ``store_id``'s data; in a callback the page's store gets it in the same response.

    On a user or app store (``scope=`` checks which one you mean) it returns the new version, and with
    ``if_version=v`` writes only if ``v`` is still the current version (else VersionConflict)."""
    return get_state_manager().set_store_data(store_id, value, ttl, scope, if_version)


def get_store_version(store_id: Any) -> int:
    """The current version of a user or app store's value (0 if never written): pass it to
    ``set_store(..., if_version=...)`` to write only if nobody wrote in between."""
    return get_state_manager().get_store_version(store_id)


def delete_store(store_id: Any) -> bool:
    """Delete this user's latest value of ``store_id`` (in a callback, the page's store is emptied too)."""
    return get_state_manager().delete_store_data(store_id)


def on_login(user_id: str | None = None) -> "Identity | None":
    """Call in your login view, right after the user is authenticated (``login_user(...)``): carries
    this browser's anonymous state over to the user (or drops it, ``STATE_LOGIN_CARRY_OVER = false``)
    and rotates the anonymous id. ``user_id`` defaults to what ``STATE_USER_RESOLVER`` reports."""
    return get_state_manager().login(user_id)


def on_logout(delete: bool | None = None) -> None:
    """Call in your logout view: rotates this browser's id; the user's state is kept for their next
    login, or deleted with ``delete=True`` (default: ``STATE_LOGOUT_DELETE``)."""
    get_state_manager().logout(delete)


def __getattr__(name: str) -> Any:
    if name == "ServerStore":
        import importlib

        # Importing the submodule binds the *module* to this name; bind the class over it.
        component = importlib.import_module(".ServerStore", __name__).ServerStore
        globals()["ServerStore"] = component
        return component
    raise AttributeError(f"module 'dash_state' has no attribute {name!r}")


__all__ = ["ServerStore", "init_app", "get_state_manager", "get_store", "set_store", "get_store_version", "delete_store",
           "state_managed_callback", "on_login", "on_logout", "set_user_context", "user_context",
           "BackendUnavailable", "ConfigError", "DashStateError", "QuotaExceeded", "StoreValueError",
           "VersionConflict"]
