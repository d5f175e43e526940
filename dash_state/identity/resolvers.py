"""Who is logged in: ``STATE_USER_RESOLVER`` picks a function that returns the user's id, or None.

* ``"auto"`` (default): flask-login's ``current_user`` if the app has a ``LoginManager``, else the
  user dash-auth authenticated (``BasicAuth`` or ``OIDCAuth``), else nobody (anonymous browsers);
  on Dash's FastAPI and Quart servers, which neither runs on, nobody: anonymous browsers;
* ``"flask_login"``, ``"dash_auth"``, ``"anonymous"``: one of those only (the first two need Dash's
  Flask server: on FastAPI or Quart they are a ConfigError at startup);
* ``"package.module:function"`` or, through ``init_app(user_resolver=...)``, any callable taking no
  arguments and returning a string id (or None) for the current request.

The contract (SECURITY.md): a resolver returns a user only when the app's auth layer authenticated
this very request, from state the browser cannot forge (a signed session, a check that ran on this
request); never from a header, cookie or parameter the auth layer did not verify. Only ids returned
here are trusted: nothing else the browser sends can name a user.
"""
from __future__ import annotations

import base64
import importlib
import sys
from typing import Callable, Optional

import flask

from dash_state.errors import ConfigError

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
    """The user dash-auth authenticated: the name whose password dash-auth's own check accepted on
    this very request (see :func:`watch_dash_auth`), else the user dash-auth put in the app's signed
    session (``session["user"]["email"]``, set by BasicAuth after a check and by OIDCAuth at login).

    Never the raw ``Authorization`` header: dash-auth does not check it on public routes or on
    callbacks it lets through, so anyone could name anyone there."""
    if "dash_auth" not in sys.modules:
        return None
    verified = flask.g.get(_G_VERIFIED)
    if verified:
        return verified
    try:
        user = flask.session.get("user")
    except RuntimeError:  # no secret key: no session
        return None
    if isinstance(user, dict) and isinstance(user.get("email"), str) and user["email"]:
        return user["email"]
    return None


_G_VERIFIED = "_dash_state_dash_auth_user"


def watch_dash_auth() -> None:
    """``before_request``, registered before dash-auth's own: wrap each dash-auth ``Auth`` protecting
    this app so that a successful ``is_authorized()`` records, for this request only, whom it let in.
    dash-auth's check runs right after this function, in the same request."""
    if "dash_auth" not in sys.modules:
        return
    for function in flask.current_app.before_request_funcs.get(None, []):
        if getattr(function, "__module__", "").startswith("dash_auth"):
            for cell in function.__closure__ or ():
                _wrap(cell.cell_contents)


def _wrap(auth: object) -> None:
    from dash_auth.auth import Auth

    if not isinstance(auth, Auth) or getattr(auth, "_dash_state_watched", False):
        return
    check = auth.is_authorized

    def is_authorized(*args, **kwargs):
        authorized = check(*args, **kwargs)
        if authorized and flask.has_request_context():
            name = _basic_name() if _is_basic(auth) else None
            if name:
                setattr(flask.g, _G_VERIFIED, name)
        return authorized

    auth.is_authorized = is_authorized  # type: ignore[method-assign]
    auth._dash_state_watched = True  # type: ignore[attr-defined]


def _is_basic(auth: object) -> bool:
    from dash_auth.basic_auth import BasicAuth

    return isinstance(auth, BasicAuth)


def _basic_name() -> str | None:
    """The user name of the Basic credentials dash-auth has just accepted (parsed as dash-auth does)."""
    header = flask.request.headers.get("Authorization", "")
    try:
        credentials = base64.b64decode(header.split("Basic ")[1]).decode("utf-8")
    except (IndexError, ValueError):
        return None
    name, _, _ = credentials.partition(":")
    return name or None


def auto_user() -> str | None:
    return flask_login_user() or dash_auth_user()


def anonymous() -> None:
    return None


BUILT_IN: dict[str, Resolver] = {"auto": auto_user, "flask_login": flask_login_user, "dash_auth": dash_auth_user,
                                 "anonymous": anonymous}


FLASK_ONLY = ("flask_login", "dash_auth")


def load(setting: object, server: str = "flask") -> Resolver:
    """The resolver a ``STATE_USER_RESOLVER`` value names for an app on Dash's ``server`` ("flask",
    "fastapi", "quart"); ConfigError if it names nothing callable, or a Flask-only resolver elsewhere."""
    if callable(setting):
        return setting  # type: ignore[return-value]
    check_server(setting, server)
    if setting == "auto" and server != "flask":
        return anonymous  # flask-login and dash-auth run on Flask only
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


def check_server(setting: object, server: str) -> None:
    """ConfigError for a Flask-only resolver (flask-login, dash-auth) on Dash's FastAPI or Quart server."""
    if server != "flask" and isinstance(setting, str) and setting in FLASK_ONLY:
        raise ConfigError(
            f"STATE_USER_RESOLVER = {setting!r} needs Dash's Flask server ({setting.replace('_', '-')} is a Flask "
            f"extension), but this app runs on Dash's {server} server: set STATE_USER_RESOLVER to "
            "'package.module:function' (or init_app(user_resolver=...)), a function returning the id of the user "
            f"your {server} authentication verified for this request, or to 'anonymous'")
