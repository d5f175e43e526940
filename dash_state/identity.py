"""Who is asking: an anonymous id per browser session, kept in the Flask session.

``flask.session`` is Flask's signed cookie, or flask-session's server-side session when the app set
it up; either way the id is 192 random bits that the browser cannot choose. Everything a user stores
lives under their id, so one user's references are worthless to another.
"""
from __future__ import annotations

import secrets

import flask
from flask.globals import request_ctx
from flask.sessions import NullSession

SESSION_KEY = "_dash_state_user"
SHARED_USER = "shared"


def current_user(isolation: bool, create: bool = True) -> str | None:
    """The caller's id; None outside a request or when ``create`` is False and the session has none."""
    if not isolation:
        return SHARED_USER
    if not flask.has_request_context():
        return None
    if isinstance(flask.session, NullSession):
        _reopen_session()
    user = flask.session.get(SESSION_KEY)
    if isinstance(user, str) and len(user) == 32:
        return user
    if not create:
        return None
    user = secrets.token_urlsafe(24)
    flask.session[SESSION_KEY] = user
    # A browser-session cookie would orphan storage_type="local" stores at the next browser restart;
    # a permanent session lives PERMANENT_SESSION_LIFETIME (Flask's default: 31 days).
    flask.session.permanent = True
    return user


def _reopen_session() -> None:
    """The request started before dash-state gave the app a secret key: open the real session now."""
    app = flask.current_app
    session = app.session_interface.open_session(app, flask.request)
    if session is None:
        raise RuntimeError("dash-state needs a Flask session: set app.server.config['SECRET_KEY']")
    request_ctx.session = session
