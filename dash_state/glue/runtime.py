"""Per-app state: the ServerStore ids seen so far, settings given to init_app, and the StateManager.

The manager is built on first use rather than when ``Dash()`` runs, so settings placed in
``app.server.config`` (and a ``SECRET_KEY``) after the app is created still count. What can be checked
without connecting to a server is checked early: the configuration and the client libraries it needs
when ``Dash()`` runs (:meth:`AppState.load_config`), and everything, ``SECRET_KEY`` included, when
``app.run()`` starts the server (:meth:`AppState.check_startup`) and when the manager is built.
"""
from __future__ import annotations

import functools
import logging
import secrets
import threading
from typing import Any

from dash_state import identity
from dash_state.config import (
    Config,
    check_requirements,
    describe_backends,
    load_config,
    unknown_store_warnings,
    used_by,
)
from dash_state.core.keys import Keys, as_bytes
from dash_state.core.manager import StateManager
from dash_state.errors import ConfigError
from dash_state.glue import web
from dash_state.glue.layout import StoreIds
from dash_state.glue.mirror import Mirrors, app_callbacks
from dash_state.glue.store_api import AppStateManager
from dash_state.identity import resolvers

log = logging.getLogger("dash_state")
ATTRIBUTE = "_dash_state"
_process_secret = secrets.token_bytes(32)  # used only when the app has no SECRET_KEY (one process)


class AppState:
    def __init__(self, app: Any):
        self.app = app
        self.store_ids = StoreIds()
        self.overrides: dict[str, Any] = {}
        self._manager: StateManager | None = None
        self._scanned_layout: Any = None
        self._lock = threading.Lock()
        # static layouts' initial data, stored once per app: (store id, id(data)) -> (token, data, fresh until)
        self.initial: dict[tuple[str, int], tuple[str, Any, float]] = {}
        self.seeded: dict[str, tuple] = {}  # app store id -> (the layout data this process last wrote,)
        self.initial_tokens: dict[str, str] = {}  # store id -> its initial data's reference (a Patch's last base)
        self._warned: set[str] = set()  # start-up warnings already logged (once per app and process)
        self._stores_checked = False

    @property
    def manager(self) -> StateManager:
        manager = self._manager
        if manager is None:
            with self._lock:
                if self._manager is None:
                    self.check_server()
                    config = self.load_config()
                    keys = self._keys(config)
                    log.info("%s", describe_backends(config, self._local_path(config, keys)))
                    self._manager = AppStateManager(config, keys, self._identity_settings(config), self.store_ids,
                                                 self.scan_layouts, Mirrors(app_callbacks(self.app)))
                manager = self._manager
        return manager

    @property
    def has_manager(self) -> bool:
        return self._manager is not None

    def scan_layouts(self) -> None:
        """Learn the ServerStore ids of the app's layouts before the first callback.

        A gunicorn worker (or a restarted server) may get a callback before it ever served the
        layout; it must still know which outputs are ServerStores. Runs again if the layout changes.
        """
        layout = getattr(self.app, "layout", None)
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
        """ServerStore runs on Dash's Flask, FastAPI and Quart servers (:mod:`dash_state.glue.web`), over HTTP
        and over Dash's websocket (:mod:`dash_state.glue.web.websocket`): refuse another server loudly rather
        than letting data pass through to the browser, and websocket callbacks on a Dash that lacks what
        dash-state needs to see their ``set_props`` and their end."""
        kind = web.server_kind(self.app)
        if kind not in web.SERVERS:
            raise ConfigError(
                f"dash-state's ServerStore needs Dash's flask, fastapi or quart server backend, but this app runs "
                f"on {kind!r} ({type(getattr(self.app, 'server', None)).__name__}): use one of those, or dcc.Store")
        if getattr(getattr(self.app, "backend", None), "websocket_capability", False):
            from dash_state.glue import compat

            if compat.available("ServerStore in websocket callbacks"):
                return
            websocket = _websocket_callbacks(self.app)
            if websocket:
                raise ConfigError(
                    f"dash-state's ServerStore needs Dash's websocket internals that Dash {compat.dash_version()} "
                    f"lacks (see dash_state/glue/compat.py), and this app on Dash's {kind} server has "
                    f"{len(websocket)} websocket callbacks ({', '.join(websocket[:3])}"
                    f"{', ...' if len(websocket) > 3 else ''}): use a Dash that dash-state supports, or drop "
                    "websocket_callbacks=True from Dash(...) and websocket=True from those callbacks (they then "
                    "run over HTTP)")

    def reset(self) -> None:
        """Rebuild the manager from the settings now in force (after init_app changes them)."""
        with self._lock:
            old, self._manager = self._manager, None
        if old is not None:
            old.close()

    def load_config(self) -> Config:
        """The app's settings, validated, with the client libraries they need importable (a ConfigError
        naming the package and the pip extra otherwise). Connects to nothing."""
        config = load_config(web.server_config(self.app), self.overrides)
        resolvers.check_server(config["STATE_USER_RESOLVER"], web.server_kind(self.app))
        for warning in check_requirements(config):
            if warning not in self._warned:
                self._warned.add(warning)
                log.warning("%s", warning)
        return config

    def check_startup(self) -> Config:
        """Everything that can fail without a server connection: the settings, the packages they need and
        a SECRET_KEY for backends shared between hosts. Runs before ``app.run()`` serves any request."""
        config = self.load_config()
        self._check_secret(config)
        return config

    def warn_unknown_stores(self) -> list[str]:
        """Once, after the first layout was served: log a WARNING for each ``[STATE_STORES.<id>]`` that
        names no ServerStore of the app (a misspelt id), with the closest ids. Returns the messages."""
        if self._stores_checked:
            return []
        self._stores_checked = True
        self.scan_layouts()
        config = self._manager.config if self._manager is not None else self.load_config()
        messages = unknown_store_warnings(config, self.store_ids.strings())
        for message in messages:
            log.warning("%s", message)
        return messages

    def _keys(self, config: Config) -> Keys:
        """The app's SECRET_KEY (and SECRET_KEY_FALLBACKS). Without one: a ConfigError for backends shared
        between hosts; else a random key shared by the app's processes on this host (a per-process one
        when that cannot be made and only the memory backend is used)."""
        settings = web.server_config(self.app) or {}
        key = settings.get("SECRET_KEY") or getattr(self.app.server, "secret_key", None)
        fallbacks = [as_bytes(k) for k in settings.get("SECRET_KEY_FALLBACKS") or [] if k]
        if key:
            return Keys((as_bytes(key), *fallbacks))
        self._check_secret(config)
        in_use = config.backends_in_use()
        try:  # every worker of this app on this host: one random key kept beside the local store; with
            # the memory backend too, so a reference from another worker is told apart from a forged one
            from dash_state.backends.local.paths import host_secret

            secret = host_secret(_app_folder(self.app), config["STATE_KEY_PREFIX"])
        except ConfigError:
            if "local" in in_use:
                raise
        else:
            log.info("dash-state: no SECRET_KEY configured; the processes of this app on this host share a random "
                     "key (references and identity cookies end when the host restarts, as the values do)")
            return Keys((secret,), generated=True)
        log.info("dash-state: no SECRET_KEY configured; references and identity cookies use a random key of this "
                 "process (they end when it restarts and are not shared with other processes)")
        return Keys((_process_secret,), generated=True)

    def _check_secret(self, config: Config) -> None:
        server = getattr(self.app, "server", None)
        if server is None or (web.server_config(self.app) or {}).get("SECRET_KEY") or \
                getattr(server, "secret_key", None):
            return
        shared = [name for name in sorted(config.backends_in_use()) if name in ("redis", "database")]
        if shared:
            raise ConfigError(
                f"{used_by(config, shared[0])} keeps values on a server shared between hosts, so every worker "
                "must derive the same keys, and this app has no SECRET_KEY: set app.server.config['SECRET_KEY'] "
                "(a long random string, the same in every worker) before the app starts")

    @staticmethod
    def _local_path(config: Config, keys: Keys) -> str | None:
        """Where the local backend keeps this app's store (for the start-up line), or None."""
        if "local" not in config.backends_in_use() or config["STATE_LOCAL_PATH"]:
            return None
        from dash_state.backends.local.paths import default_path
        from dash_state.core.seal import Seal

        return default_path(Seal(keys, "hmac"), config["STATE_KEY_PREFIX"])  # the same id as the backend's

    def _identity_settings(self, config: Config) -> identity.Settings:
        prefix = self.app.config.get("requests_pathname_prefix") or "/"
        return identity.Settings(
            isolation=config["STATE_ENABLE_USER_ISOLATION"],
            resolver=resolvers.load(config["STATE_USER_RESOLVER"], web.server_kind(self.app)),
            cookie_name=config["STATE_COOKIE_NAME"], secure=config["STATE_COOKIE_SECURE"],
            host_prefix=config["STATE_COOKIE_HOST_PREFIX"], max_age=config["STATE_COOKIE_MAX_AGE"],
            path=prefix if prefix.startswith("/") else "/", carry_over=config["STATE_LOGIN_CARRY_OVER"],
            delete_at_logout=config["STATE_LOGOUT_DELETE"], new_visitor_seconds=config["STATE_NEW_VISITOR_SECONDS"])


def app_state(app: Any, create: bool = False) -> AppState | None:
    state = getattr(app, ATTRIBUTE, None)
    if state is None and create:
        state = AppState(app)
        setattr(app, ATTRIBUTE, state)
        _check_before_run(app, state)
    return state


def _app_folder(app: Any) -> str:
    """The app's folder (Flask's and Quart's ``root_path``; FastAPI's is a URL prefix: Dash's assets'
    parent folder), which names the host secret shared by the app's processes."""
    root = getattr(app.server, "root_path", None)
    if web.server_kind(app) != "fastapi" and isinstance(root, str) and root:
        return root
    import os

    return os.path.dirname(os.path.abspath(app.config.assets_folder))


def _websocket_callbacks(app: Any) -> list[str]:
    """The callbacks of ``app`` that Dash serves over its websocket (all of them with
    ``Dash(websocket_callbacks=True)``)."""
    from dash_state.glue import compat

    every = bool(getattr(app, "_websocket_callbacks", False))
    callbacks = {**compat.get("dash._callback:GLOBAL_CALLBACK_MAP"), **(getattr(app, "callback_map", None) or {})}
    return [str(name) for name, spec in callbacks.items()
            if not spec.get("clientside_function") and (every or spec.get("websocket"))]


def _check_before_run(app: Any, state: AppState) -> None:
    """``app.run()`` checks the configuration, its packages and SECRET_KEY before it serves a request, so
    a missing extra or secret stops the development server at once instead of failing the first page."""
    original = getattr(app, "run", None)
    if original is None or getattr(original, "__dash_state__", False):
        return

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        from dash_state.glue.layout import in_use

        if in_use():
            state.check_startup()
        return original(*args, **kwargs)

    run.__dash_state__ = True  # type: ignore[attr-defined]
    app.run = run


def current_state() -> AppState | None:
    """The state of the app serving this request (recorded by the server seam, which is exact even with
    several Dash apps in one process), else of ``dash.get_app()``."""
    serving = web.serving_app()
    if serving is not None:
        state = app_state(serving)
        if state is not None:
            return state
    import dash

    try:
        return app_state(dash.get_app())
    except Exception:  # noqa: BLE001 - no app yet
        return None
