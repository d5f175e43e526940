"""Identity resolvers under attack: a resolver may name a user only when the app's auth layer
authenticated this very request (SECURITY.md, "What a resolver may trust").

dash-auth checks the ``Authorization`` header only on the requests it protects: on public routes, on
public callbacks and on callbacks whose ``pathname`` input claims a public path, a header with any
password passes untouched. A resolver that read that header let anyone read, fill and delete anyone's
stores (issue 15, findings 1 and 2)."""
from __future__ import annotations

import base64
import uuid

import pytest
from dash import Input, Output, dcc, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from services import database_url, redis_url

dash_auth = pytest.importorskip("dash_auth")
PASSWORDS = {"alice": "pw-alice", "bob": "pw-bob"}


def auth_app(**config):
    """BasicAuth with a public page: dash-auth then also makes /_dash-layout public."""
    app = new_app(**config)
    app.layout = html.Div([dcc.Location(id="url"), html.Button(id="btn"), ServerStore(id="s"),
                           html.Div(id="out"), html.Div(id="mine")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), Input("url", "pathname"), prevent_initial_call=True)
    def write(n, path):  # public on a public path, as dash-auth decides from the pathname input
        return {"secret": f"{path}-{n}"}

    @app.callback(Output("out", "children"), Input("url", "pathname"))
    def route(path):  # a routing callback: dash-auth lets it through for a public path
        return repr(dash_state.get_store("s"))

    @app.callback(Output("mine", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    dash_auth.BasicAuth(app, PASSWORDS, public_routes=["/public"])
    return app


def client_as(app, name=None, password=None) -> DashClient:
    client = DashClient(app)
    if name is not None:
        credentials = base64.b64encode(f"{name}:{password}".encode()).decode()
        client.http.environ_base["HTTP_AUTHORIZATION"] = f"Basic {credentials}"
    return client


def write(client, path="/", n=1):
    return client.call([("s", "data")], [("btn", "n_clicks", n), ("url", "pathname", path)])["s"]["data"]


def route(client, path):
    return client.raw_call([("out", "children")], [("url", "pathname", path)])


def test_a_wrong_password_on_a_public_callback_reads_nothing_of_alice(backend):
    app = auth_app(**backend)
    alice = client_as(app, "alice", PASSWORDS["alice"])
    alice.layout()
    write(alice, "/private")
    assert route(alice, "/private").get_json()["response"]["out"]["children"] == repr({"secret": "/private-1"})

    for password in ("wrong", ""):
        attacker = client_as(app, "alice", password)
        response = route(attacker, "/public")  # dash-auth lets a public pathname through unchecked
        assert response.status_code == 200
        assert response.get_json()["response"]["out"]["children"] == "None"
        assert "/private-1" not in response.get_data(as_text=True)


def test_the_protected_route_still_checks_and_a_good_password_still_works():
    app = auth_app()
    assert route(client_as(app, "alice", "wrong"), "/private").status_code == 401
    alice, alice_again = client_as(app, "alice", PASSWORDS["alice"]), client_as(app, "alice", PASSWORDS["alice"])
    token = write(alice, "/private")
    assert alice_again.call([("mine", "children")], [("s", "data", token)])["mine"]["children"] == \
        repr({"secret": "/private-1"})
    bob = client_as(app, "bob", PASSWORDS["bob"])
    assert bob.call([("mine", "children")], [("s", "data", token)])["mine"]["children"] == "None"


def fake_login_and_logout(app) -> None:
    """An anonymous attacker writes a value, then claims to be alice on the public layout, then drops
    the header again (which looked like alice logging out)."""
    attacker = client_as(app)
    attacker.layout()
    write(attacker, "/public", n=666)
    attacker.http.environ_base["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(b"alice:wrong").decode()
    assert attacker.http.get("/_dash-layout").status_code == 200  # public: dash-auth checked nothing
    del attacker.http.environ_base["HTTP_AUTHORIZATION"]
    assert attacker.http.get("/_dash-layout").status_code == 200


def backend_config(kind: str) -> dict:
    """The same attacks on every server-side backend (the service tests need Redis and PostgreSQL)."""
    tag = uuid.uuid4().hex[:8]
    if kind == "redis":
        return {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": f"resolver-{tag}:"}
    if kind == "database":
        return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(),
                "STATE_DATABASE_TABLE": f"resolver_{tag}"}
    return {}


BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.service),
            pytest.param("database", marks=pytest.mark.service)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    config = backend_config(request.param)
    yield config
    if request.param == "redis":
        import redis

        server = redis.Redis.from_url(config["STATE_REDIS_URL"])
        for key in server.scan_iter(match=config["STATE_KEY_PREFIX"] + "*"):
            server.delete(key)
    elif request.param == "database":
        import sqlalchemy

        engine = sqlalchemy.create_engine(config["STATE_DATABASE_URL"])
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS {config["STATE_DATABASE_TABLE"]}'))
        engine.dispose()


def test_a_fake_login_does_not_plant_the_attacker_s_values_in_alice_s_namespace(backend):
    app = auth_app(**backend)
    fake_login_and_logout(app)
    alice = client_as(app, "alice", PASSWORDS["alice"])
    assert route(alice, "/private").get_json()["response"]["out"]["children"] == "None"  # not "/public-666"


def test_a_fake_logout_does_not_delete_alice_s_state(backend):
    app = auth_app(STATE_LOGOUT_DELETE=True, **backend)
    alice = client_as(app, "alice", PASSWORDS["alice"])
    token = write(alice, "/private")
    fake_login_and_logout(app)
    assert route(alice, "/private").get_json()["response"]["out"]["children"] == repr({"secret": "/private-1"})
    assert alice.call([("mine", "children")], [("s", "data", token)])["mine"]["children"] == \
        repr({"secret": "/private-1"})


def test_the_user_dash_auth_put_in_the_session_is_still_the_user_on_public_requests():
    """A browser dash-auth let in keeps its user on public pages (dash-auth's signed session entry)."""
    app = auth_app()
    alice = client_as(app, "alice", PASSWORDS["alice"])
    write(alice, "/private")
    del alice.http.environ_base["HTTP_AUTHORIZATION"]
    assert route(alice, "/public").get_json()["response"]["out"]["children"] == repr({"secret": "/private-1"})


def test_basic_auth_without_a_session_trusts_only_the_check_of_this_request(monkeypatch):
    """No SECRET_KEY for the session: the name comes from dash-auth's own check on this request only."""
    app = auth_app()
    app.server.config["SECRET_KEY"] = None
    app.server.secret_key = None
    dash_state.init_app(app, SECRET_KEY="references-only-key-0123456789abcdef")
    alice = client_as(app, "alice", PASSWORDS["alice"])
    token = write(alice, "/private")
    other_alice = client_as(app, "alice", PASSWORDS["alice"])
    assert other_alice.call([("mine", "children")], [("s", "data", token)])["mine"]["children"] == \
        repr({"secret": "/private-1"})
    attacker = client_as(app, "alice", "wrong")
    assert route(attacker, "/public").get_json()["response"]["out"]["children"] == "None"


def test_flask_login_resolver_takes_only_flask_login_s_verified_user():
    """flask-login's user comes from its signed session: a forged session cookie or a header is nobody."""
    from flask_login import LoginManager, UserMixin, login_user

    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("btn", "n_clicks"))
    def show(n):
        return repr(dash_state.get_store("s"))

    class User(UserMixin):
        def __init__(self, user_id):
            self.id = user_id

    LoginManager(app.server).user_loader(User)

    @app.server.route("/login/<name>")
    def login(name):
        login_user(User(name))
        dash_state.on_login()
        return "ok"

    alice = DashClient(app)
    alice.http.get("/login/alice")
    with dash_state.user_context("alice"):
        dash_state.get_state_manager(app).set_store_data("s", {"secret": "alice"})
    assert alice.call([("out", "children")], [("btn", "n_clicks", 1)])["out"]["children"] == repr({"secret": "alice"})
    attacker = DashClient(app)
    attacker.http.set_cookie("session", "eyJfdXNlcl9pZCI6ImFsaWNlIn0.forged.signature")
    attacker.http.environ_base["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(b"alice:x").decode()
    assert attacker.call([("out", "children")], [("btn", "n_clicks", 1)])["out"]["children"] == "None"
