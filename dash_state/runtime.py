"""Per-app state: the ServerStore ids seen so far, settings given to init_app, and the StateManager.

The manager is built on first use rather than when ``Dash()`` runs, so settings placed in
``app.server.config`` (and a ``SECRET_KEY``) after the app is created still count.
"""
from __future__ import annotations

import logging
import secrets
import threading

import flask
from typing import Any

from .config import Config, load_config
from .errors import ConfigError
from .layout import StoreIds
from .manager import StateManager

log = logging.getLogger("dash_state")
ATTRIBUTE = "_dash_state"


class AppState:
    def __init__(self, app: Any):
        self.app = app
        self.store_ids = StoreIds()
        self.overrides: dict[str, Any] = {}
        self._manager: StateManager | None = None
        self._generated_secret: str | None = None
        self._scanned_layout: Any = None
        self._lock = threading.Lock()

    @property
    def manager(self) -> StateManager:
        manager = self._manager
        if manager is None:
            with self._lock:
                if self._manager is None:
                    self.check_server()
                    config = self.load_config()
                    self._manager = StateManager(config, self._secret(config))
                manager = self._manager
        return manager

    def scan_layouts(self) -> None:
        """Learn the ServerStore ids of the app's layouts before the first callback.

        A gunicorn worker (or a restarted server) may get a callback before it ever served the
        layout; it must still know which outputs are ServerStores. Runs again if the layout changes.
        """
        layout = getattr(self.app, "_layout", None)
        if layout is self._scanned_layout:
            return
        self._scanned_layout = layout
        if layout is not None and not callable(layout):
            self.store_ids.add_tree(layout)
        if getattr(self.app, "validation_layout", None) is not None:
            self.store_ids.add_tree(self.app.validation_layout)
        import dash

        for page in dash.page_registry.values():
            if not callable(page.get("layout")):
                self.store_ids.add_tree(page.get("layout"))
        if self.store_ids:
            self.check_server()

    def check_server(self) -> None:
        """ServerStore needs Flask's request context (sessions, routes); refuse other servers loudly
        rather than letting data pass through to the browser."""
        server = getattr(self.app, "server", None)
        if not isinstance(server, flask.Flask):
            raise ConfigError(
                f"dash-state's ServerStore needs Dash's Flask server backend, but this app runs on "
                f"{type(server).__name__}: use dash.Dash(backend='flask') (the default), or dcc.Store")

    def reset(self) -> None:
        """Rebuild the manager from the settings now in force (after init_app changes them)."""
        with self._lock:
            old, self._manager = self._manager, None
        if old is not None:
            old.close()

    def load_config(self) -> Config:
        server = getattr(self.app, "server", None)
        return load_config(getattr(server, "config", None), self.overrides)

    def ensure_secret(self) -> None:
        """Give the app a random per-process secret if it has none, before requests open sessions."""
        server = self.app.server
        if isinstance(server, flask.Flask) and not server.secret_key:
            self._generated_secret = server.secret_key = secrets.token_hex(32)
            log.info("dash-state: no SECRET_KEY configured; using a random key for this process "
                     "(sessions end when it restarts and are not shared with other processes)")

    def _secret(self, config: Config) -> bytes:
        server = self.app.server
        key = server.secret_key
        if key and key != self._generated_secret:
            return key.encode() if isinstance(key, str) else bytes(key)
        shared = [name for name in sorted(config.backends_in_use()) if name in ("redis", "database")]
        if shared:
            raise ConfigError(
                f"the {shared[0]!r} backend is shared between processes, so every worker must sign sessions "
                "with the same key: set app.server.config['SECRET_KEY'] (or app.server.secret_key)"
            )
        self.ensure_secret()
        return server.secret_key.encode()


def app_state(app: Any, create: bool = False) -> AppState | None:
    state = getattr(app, ATTRIBUTE, None)
    if state is None and create:
        state = AppState(app)
        setattr(app, ATTRIBUTE, state)
    return state
