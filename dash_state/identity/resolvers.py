"""Who is logged in: ``STATE_USER_RESOLVER`` picks a function that returns the user's id, or None.

* ``"auto"`` (default): flask-login's ``current_user`` if the app has a ``LoginManager``, else the
  user dash-auth authenticated (``BasicAuth`` or ``OIDCAuth``), else nobody (anonymous browsers);
* ``"flask_login"``, ``"dash_auth"``, ``"anonymous"``: one of those only;
* ``"package.module:function"`` or, through ``init_app(user_resolver=...)``, any callable taking no
  arguments and returning a string id (or None) for the current request.

Only ids returned here are trusted: nothing the browser sends can name a user.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Optional

import flask

from ..errors import ConfigError

Resolver = Callable[[], Optional[str]]


def flask_login_user() -> str | None:
    """flask-login's authenticated user, if the app uses flask-login."""
    if "flask_login" not in sys.modules or getattr(flask.current_app, "login_manager", None) is None:
        return None
    from flask_login import current_user

    if current_user is None or not getattr(current_user, "is_authenticated", False):
        return None
    user_id = current_user.get_id()
    return None if user_id is None else str(user_id)


def dash_auth_user() -> str | None:
    """The user dash-auth let in: ``session["user"]["email"]`` (BasicAuth and OIDCAuth both set it),
    or the name of the HTTP Basic credentials dash-auth's ``before_request`` accepted."""
    if "dash_auth" not in sys.modules:
        return None
    try:
        user = flask.session.get("user")
    except RuntimeError:  # no secret key: no session
        user = None
    if isinstance(user, dict) and isinstance(user.get("email"), str) and user["email"]:
        return user["email"]
    auth = flask.request.authorization
    if auth is not None and auth.type == "basic" and auth.username and _uses_dash_auth_basic():
        return auth.username
    return None


def _uses_dash_auth_basic() -> bool:
    """dash-auth registers ``Auth._protect``'s ``before_request_auth`` on the app's server."""
    functions = flask.current_app.before_request_funcs.get(None, [])
    return any(getattr(f, "__module__", "").startswith("dash_auth") for f in functions)


def auto_user() -> str | None:
    return flask_login_user() or dash_auth_user()


def anonymous() -> None:
    return None


BUILT_IN: dict[str, Resolver] = {"auto": auto_user, "flask_login": flask_login_user, "dash_auth": dash_auth_user,
                                 "anonymous": anonymous}


def load(setting: object) -> Resolver:
    """The resolver a ``STATE_USER_RESOLVER`` value names; ConfigError if it names nothing callable."""
    if callable(setting):
        return setting  # type: ignore[return-value]
    if isinstance(setting, str) and setting in BUILT_IN:
        return BUILT_IN[setting]
    if not isinstance(setting, str) or ":" not in setting:
        raise ConfigError(f"STATE_USER_RESOLVER must be {', '.join(map(repr, BUILT_IN))}, 'module:function' "
                          f"or a callable, got {setting!r}")
    module_name, _, attribute = setting.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"STATE_USER_RESOLVER {setting!r} cannot be loaded: {exc}") from None
    if not callable(function):
        raise ConfigError(f"STATE_USER_RESOLVER {setting!r} is not callable")
    return function
