"""What a command works on: the app (``--app module:app`` or a ``.py`` path) and its StateManager.

With ``--app``, the app's own settings count (``app.server.config``, ``init_app``) and its layouts name
the stores. Without it, a bare app reads what every app reads: ``config.toml`` in the working
directory (or ``STATE_CONFIG_FILE``), the ``STATE_*`` environment, and ``SECRET_KEY`` from the
environment (needed to read sealed values of redis and database)."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dash_state.cli.main import Failure

if TYPE_CHECKING:
    import dash

    from dash_state.core.manager import StateManager


def load_app(spec: str) -> "dash.Dash":
    """The Dash app named by ``module:attribute`` or ``path/to/app.py[:attribute]`` (default: the
    module's ``app``, else its only Dash instance)."""
    import dash

    target, _, attribute = spec.rpartition(":") if spec.count(":") and not spec.endswith(".py") else (spec, "", "")
    target = target or spec
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            if not path.is_file():
                raise Failure(f"--app {spec!r}: no such file {str(path)!r}")
            sys.path.insert(0, str(path.parent))
            spec_ = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec_)
            sys.modules[path.stem] = module
            spec_.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except Failure:
        raise
    except Exception as exc:  # the app's own import failed: say so, with the cause
        raise Failure(f"--app {spec!r}: importing {target!r} failed: {type(exc).__name__}: {exc}") from None
    if attribute:
        app = getattr(module, attribute, None)
    else:
        app = getattr(module, "app", None)
        if not isinstance(app, dash.Dash):
            found = [value for value in vars(module).values() if isinstance(value, dash.Dash)]
            app = found[0] if len(found) == 1 else None
    if not isinstance(app, dash.Dash):
        named = f" named {attribute!r}" if attribute else " (name it as module:attribute)"
        raise Failure(f"--app {spec!r}: {target!r} has no Dash app{named}")
    return app


def app_for(obj: dict[str, Any]) -> "dash.Dash":
    """The ``--app`` app, or a bare one that reads config.toml and the environment."""
    if obj.get("app") is None:
        if obj.get("app_path"):
            obj["app"] = load_app(obj["app_path"])
        else:
            import dash

            app = dash.Dash("dash_state_cli")
            app.server.config["SECRET_KEY"] = os.environ.get("SECRET_KEY")
            obj["app"] = app
    return obj["app"]


def manager_for(obj: dict[str, Any]) -> "StateManager":
    import dash_state

    return dash_state.get_state_manager(app_for(obj))
