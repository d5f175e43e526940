"""Who a request is: anonymous browsers, logged-in users (flask-login, dash-auth, a resolver of the app's
own), logging in and out, session fixation, flask-session on Redis and SQLAlchemy, and the cookie itself."""
from __future__ import annotations

import base64
import json
import uuid

import pytest
from dash import Input, Output, Patch, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from services import database_url, redis_url


def store_app(**config):
    app = new_app(**config)
    app.layout = html.Div([html.Button(id="btn"), html.Button(id="inc"), ServerStore(id="s"),
                           html.Div(id="out"), html.Div(id="n")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"secret": f"value-{n}", "n": 0}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    @app.callback(Output("s", "data", allow_duplicate=True), Input("inc", "n_clicks"), prevent_initial_call=True)
    def inc(_):  # a Patch without the store as input: applies to this user's latest value
        p = Patch()
        p.n += 1
        return p

    return app


def inc(client):
    """The Patch callback (its id carries allow_duplicate's hash)."""
    (callback_id,) = [k for k in client.app.callback_map if k.startswith("s.data@")]
    return client.call([("s", "data")], [("inc", "n_clicks", 1)], callback_id=callback_id)


def inc_response(client):
    """``inc`` without raising on an error status."""
    (callback_id,) = [k for k in client.app.callback_map if k.startswith("s.data@")]
    return client.raw_call([("s", "data")], [("inc", "n_clicks", 1)], callback_id=callback_id)


def write(client, n=1):
    return client.call([("s", "data")], [("btn", "n_clicks", n)])["s"]["data"]


def read(client, token):
    return client.call([("out", "children")], [("s", "data", token)])["out"]["children"]


def with_flask_login(app):
    from flask_login import LoginManager, UserMixin, login_user, logout_user

    class User(UserMixin):
        def __init__(self, user_id):
            self.id = user_id

    manager = LoginManager(app.server)
    manager.user_loader(User)

    @app.server.route("/login/<name>")
    def login(name):
        login_user(User(name))
        dash_state.on_login()  # the first of the two lines an app adds
        return "ok"

    @app.server.route("/logout")
    def logout():
        logout_user()
        dash_state.on_logout()  # the second
        return "ok"

    return app


def browser(app):
    client = DashClient(app)
    client.layout()
    return client


def cookie(client, name="dash_state_id"):
    found = client.http.get_cookie(name)
    return None if found is None else found.value


def test_anonymous_browsers_are_separate():
    app = store_app()
    alice, bob = browser(app), browser(app)
    token = write(alice)
    assert read(alice, token) == repr({"secret": "value-1", "n": 0})
    assert read(bob, token) == "None"


def test_two_browsers_of_one_logged_in_user_share_state_and_other_users_do_not():
    app = with_flask_login(store_app())
    phone, laptop, mallory = browser(app), browser(app), browser(app)
    for client, name in ((phone, "ann"), (laptop, "ann"), (mallory, "mal")):
        assert client.http.get(f"/login/{name}").status_code == 200
    token = write(phone)
    assert read(laptop, token) == repr({"secret": "value-1", "n": 0})
    assert read(mallory, token) == "None"
    inc(laptop)  # Patch() of the user's latest value, from another browser
    latest = dash_state.get_state_manager(app).latest("s", dash_state.identity.user_namespace("ann"))
    assert latest == {"secret": "value-1", "n": 1}


def test_login_carries_the_anonymous_state_over_and_rotates_the_id():
    app = with_flask_login(store_app())
    victim = browser(app)
    anonymous_cookie = cookie(victim)
    token = write(victim)
    victim.http.get("/login/ann")
    assert cookie(victim) != anonymous_cookie  # rotated
    assert read(victim, token) == repr({"secret": "value-1", "n": 0})  # carried over
    attacker = DashClient(app)  # holds the victim's old anonymous cookie (planted, or copied)
    attacker.http.set_cookie("dash_state_id", anonymous_cookie)
    assert read(attacker, token) == "None"
    response = inc_response(attacker)  # "this user's latest": nothing of the victim's, so nothing to patch
    assert response.status_code == 422 and b"there is no stored value" in response.data
    assert dash_state.get_state_manager(app).latest("s", attacker.namespace()) is None


def test_session_fixation_gives_the_attacker_nothing_after_login():
    """The attacker plants their own anonymous cookie in the victim's browser."""
    app = with_flask_login(store_app())
    attacker = browser(app)
    victim = DashClient(app)
    victim.http.set_cookie("dash_state_id", cookie(attacker))
    victim.layout()
    victim.http.get("/login/ann")
    token = write(victim, 5)
    assert read(victim, token) == repr({"secret": "value-5", "n": 0})
    assert read(attacker, token) == "None"
    assert dash_state.get_state_manager(app).latest("s", attacker.namespace()) is None


def test_login_can_drop_the_anonymous_state_instead():
    app = with_flask_login(store_app(STATE_LOGIN_CARRY_OVER=False))
    client = browser(app)
    token = write(client)
    client.http.get("/login/ann")
    assert read(client, token) == "None"


def test_logout_rotates_and_detaches_or_deletes():
    app = with_flask_login(store_app())
    client = browser(app)
    client.http.get("/login/ann")
    token = write(client)
    client.http.get("/logout")
    assert read(client, token) == "None"  # this browser is anonymous again
    client.http.get("/login/ann")
    assert read(client, token) == repr({"secret": "value-1", "n": 0})  # detached, not deleted

    deleting = with_flask_login(store_app(STATE_LOGOUT_DELETE=True))
    client = browser(deleting)
    client.http.get("/login/bob")
    token = write(client)
    client.http.get("/logout")
    client.http.get("/login/bob")
    assert read(client, token) == "None"


def test_logout_is_noticed_without_the_explicit_call():
    """An app that only calls flask-login's logout_user(): the next request sees the user gone."""
    from flask_login import logout_user

    app = with_flask_login(store_app())

    @app.server.route("/plain-logout")
    def plain_logout():
        logout_user()
        return "ok"

    client = browser(app)
    client.http.get("/login/ann")
    token = write(client)
    linked = cookie(client)
    client.http.get("/plain-logout")
    assert read(client, token) == "None" and cookie(client) != linked


def test_dash_auth_basic_auth_users():
    import dash_auth

    app = store_app()
    dash_auth.BasicAuth(app, {"ann": "pw1", "bob": "pw2"})

    def as_user(name, password):
        client = DashClient(app)
        credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
        client.http.environ_base["HTTP_AUTHORIZATION"] = f"Basic {credentials}"
        client.layout()
        return client

    ann1, ann2, bob = as_user("ann", "pw1"), as_user("ann", "pw1"), as_user("bob", "pw2")
    token = write(ann1)
    assert read(ann2, token) == repr({"secret": "value-1", "n": 0})
    assert read(bob, token) == "None"


def test_a_resolver_of_the_app_own():
    import flask

    app = store_app()
    dash_state.init_app(app, user_resolver=lambda: flask.request.headers.get("X-User"))
    first, second = DashClient(app), DashClient(app)
    first.http.environ_base["HTTP_X_USER"] = second.http.environ_base["HTTP_X_USER"] = "carol"
    token = write(first)
    assert read(second, token) == repr({"secret": "value-1", "n": 0})
    with dash_state.user_context("carol"):  # a script acting for the same user
        assert dash_state.get_state_manager(app).latest("s") == {"secret": "value-1", "n": 0}


def test_a_resolver_named_in_config(tmp_path, monkeypatch):
    (tmp_path / "my_auth.py").write_text("import flask\ndef user():\n    return flask.request.args.get('u')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = store_app(STATE_USER_RESOLVER="my_auth:user")
    client = DashClient(app)
    token = client.http.post("/_dash-update-component?u=dave", json={
        "output": "s.data", "outputs": {"id": "s", "property": "data"},
        "inputs": [{"id": "btn", "property": "n_clicks", "value": 1}], "state": [], "changedPropIds": []}
    ).get_json()["response"]["s"]["data"]
    assert dash_state.get_state_manager(app).load("s", token, dash_state.identity.user_namespace("dave")) == \
        {"secret": "value-1", "n": 0}
    with pytest.raises(dash_state.ConfigError, match="cannot be loaded"):
        dash_state.get_state_manager(store_app(STATE_USER_RESOLVER="nowhere:nothing"))


@pytest.mark.service
@pytest.mark.parametrize("kind", ["redis", "sqlalchemy"])
def test_flask_session_on_redis_and_sqlalchemy(kind):
    """The app keeps its own sessions server-side with flask-session; flask-login lives in them;
    dash-state's identity, logins and logouts work the same."""
    import redis
    from flask_session import Session

    if kind == "redis":
        client = redis.Redis.from_url(redis_url())
        config = {"SESSION_TYPE": "redis", "SESSION_REDIS": client,
                  "SESSION_KEY_PREFIX": f"test-session-{uuid.uuid4().hex[:8]}:"}
    else:
        from flask_sqlalchemy import SQLAlchemy  # noqa: F401  (flask-session's SQLAlchemy interface needs it)

        config = {"SESSION_TYPE": "sqlalchemy", "SQLALCHEMY_DATABASE_URI": database_url(),
                  "SESSION_SQLALCHEMY_TABLE": f"sessions_{uuid.uuid4().hex[:8]}"}
    app = with_flask_login(store_app(**config))
    Session(app.server)
    phone, laptop = browser(app), browser(app)
    anonymous = write(phone)
    phone.http.get("/login/ann")
    laptop.http.get("/login/ann")
    assert read(laptop, anonymous) == "None"  # the phone's anonymous state went to ann, not to the laptop
    assert read(phone, anonymous) == repr({"secret": "value-1", "n": 0})
    token = write(laptop, 2)
    assert read(phone, token) == repr({"secret": "value-2", "n": 0})
    session_cookie = phone.http.get_cookie("session")  # flask-session's opaque id; the session is server-side
    assert session_cookie is not None and "." not in session_cookie.value
    phone.http.get("/logout")
    assert read(phone, token) == "None"
    if kind == "redis":
        for key in client.scan_iter(match=config["SESSION_KEY_PREFIX"] + "*"):
            client.delete(key)


def test_cookie_attributes_and_where_it_is_set():
    app = store_app()
    client = DashClient(app)
    page = client.http.get("/")
    header = page.headers.get("Set-Cookie", "")
    assert header.startswith("dash_state_id=") and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header  # plain HTTP here
    assert "Max-Age=2678400" in header
    again = client.http.get("/_dash-layout")
    assert "dash_state_id" not in again.headers.get("Set-Cookie", "")  # not re-sent on every response
    stranger = DashClient(app)
    suite = stranger.http.get(f"/_dash-component-suites/dash_state/dash_state.v{dash_state.__version__.replace('.', '_')}"
                              "m1.min.js")
    assert suite.status_code == 200 and "Set-Cookie" not in suite.headers  # static files: never
    assert "session" not in (page.headers.get("Set-Cookie") or "")  # the app's own session is not touched


def test_cookie_over_https_and_the_host_prefix():
    app = store_app(STATE_COOKIE_HOST_PREFIX=True)
    client = DashClient(app)
    header = client.http.get("/", base_url="https://localhost").headers.get("Set-Cookie", "")
    assert header.startswith("__Host-dash_state_id=") and "Secure" in header and "Path=/;" in header + ";"
    assert "Domain" not in header


def test_a_forged_or_expired_identity_cookie_is_a_new_anonymous_browser():
    app = store_app(STATE_COOKIE_MAX_AGE=60)
    client = browser(app)
    token = write(client)
    value = cookie(client)
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    client.http.set_cookie("dash_state_id", forged)
    assert read(client, token) == "None"
    parts = value.split(".")
    parts[4] = "1"  # issued in 1970: long expired
    client.http.set_cookie("dash_state_id", ".".join(parts))
    assert read(client, token) == "None"


def test_context_outside_requests_is_required_and_works():
    app = store_app()
    manager = dash_state.get_state_manager(app)
    with pytest.raises(dash_state.StoreValueError, match="set_user_context"):
        manager.save("s", {"x": 1})
    dash_state.set_user_context("script-user")
    try:
        token = manager.save("s", {"x": 1})
        assert manager.load("s", token) == {"x": 1}
    finally:
        dash_state.set_user_context(None)
    assert manager.load("s", token) is None
    assert json.dumps(manager.stats())  # plain data
