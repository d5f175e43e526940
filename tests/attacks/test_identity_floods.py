"""Identities cost nothing to make: every request without a cookie gets a new one. A flood of them must
not fill the server for everyone (issue 15, findings 6 and 14).

* a request without dash-state's cookie may not upload values (403): nobody could ever read them;
* when the memory backend is full, the least recently used values of *new* anonymous visitors (cookie
  younger than STATE_NEW_VISITOR_SECONDS) make room; established and logged-in users are never evicted;
* a cookie-less GET of the layout stores nothing per visitor, also when the layout is a function."""
from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
from dash import Input, Output, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from dash_state.identity import cookie as cookies
from services import redis_url

MB = 1 << 20


def flood_app(**config):
    """A button writes a value of ``n`` MB (usage.py's merge callback, in small), on the memory backend."""
    app = new_app(**{"STATE_BACKEND": "memory", **config})
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"blob": "x" * (n * MB), "n": n}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return "None" if data is None else f"{data['n']}:{len(data['blob'])}"

    return app


def visitor(app) -> DashClient:
    client = DashClient(app)
    client.layout()
    return client


def established(app) -> DashClient:
    """A browser whose identity cookie the server issued an hour ago."""
    client = visitor(app)
    manager = dash_state.get_state_manager(app)
    name = manager.identity_settings.cookie_name
    state = cookies.decode(client.http.get_cookie(name).value, manager.keys.all("identity cookie"), 10 ** 9)
    old = cookies.encode(replace(state, issued=int(time.time()) - 3600), manager.keys.current("identity cookie"))
    client.http.set_cookie(name, old)
    return client


def write(client, megabytes):
    return client.raw_call([("s", "data")], [("btn", "n_clicks", megabytes)])


def read(client, token):
    return client.call([("out", "children")], [("s", "data", token)])["out"]["children"]


def memory(app):
    return dash_state.get_state_manager(app).backend("memory")


def test_an_upload_without_an_identity_cookie_is_refused_and_stores_nothing():
    app = flood_app()
    visitor(app)  # the app has served its page once
    before = memory(app).stats()["bytes"]
    for _ in range(16):
        response = DashClient(app).http.post("/_dash-state/v1/put", json={"id": "s", "data": {"blob": "x" * 1000}})
        assert response.status_code == 403 and "cookie" in response.get_json()["error"]
    assert memory(app).stats()["bytes"] == before


def test_a_flood_of_fresh_uploaders_does_not_lock_out_new_or_established_users():
    app = flood_app(STATE_MEMORY_MAX_BYTES=40 * MB)
    old = established(app)
    old_token = write(old, 8).get_json()["response"]["s"]["data"]
    for _ in range(16):  # the attacker: a new identity per upload, each after a page load
        attacker = visitor(app)
        response = attacker.http.post("/_dash-state/v1/put", json={"id": "s", "data": {"blob": "y" * 4 * MB}})
        assert response.status_code == 200, response.get_data(as_text=True)
    assert memory(app).stats()["bytes"] <= 40 * MB
    newcomer = visitor(app)
    response = write(newcomer, 8)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert read(newcomer, response.get_json()["response"]["s"]["data"]) == f"8:{8 * MB}"
    assert read(old, old_token) == f"8:{8 * MB}"
    assert memory(app).stats()["evicted_new_visitors"] > 0


def test_cookie_less_callback_pairs_do_not_fill_the_cap_for_the_next_user():
    """usage.py's attack: GET /_dash-layout, then the callback that makes a big value, without cookies."""
    app = flood_app(STATE_MEMORY_MAX_BYTES=32 * MB)
    old = established(app)
    old_token = write(old, 4).get_json()["response"]["s"]["data"]
    for _ in range(40):
        crawler = DashClient(app)
        assert crawler.http.get("/_dash-layout").status_code == 200
        assert write(DashClient(app), 2).status_code == 200  # no cookie at all
        assert write(crawler, 2).status_code == 200  # the cookie of its own layout GET
    for _ in range(3):  # new users keep being served
        newcomer = visitor(app)
        response = write(newcomer, 4)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert read(newcomer, response.get_json()["response"]["s"]["data"]) == f"4:{4 * MB}"
    assert read(old, old_token) == f"4:{4 * MB}"


def test_established_users_fill_the_cap_and_new_visitors_are_refused_not_the_other_way_round():
    app = flood_app(STATE_MEMORY_MAX_BYTES=16 * MB)
    users = [established(app) for _ in range(3)]
    tokens = [write(user, 5).get_json()["response"]["s"]["data"] for user in users]
    response = write(visitor(app), 4)
    assert response.status_code == 413 and "STATE_MEMORY_MAX_BYTES" in response.get_data(as_text=True)
    assert [read(user, token) for user, token in zip(users, tokens)] == [f"5:{5 * MB}"] * 3


def layout_function_app(**config):
    app = new_app(**{"STATE_BACKEND": "memory", **config})
    blob = "x" * 65536
    app.layout = lambda: html.Div([ServerStore(id="s", data={"blob": blob}), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return "None" if data is None else str(len(data["blob"]))

    return app


def initial_token(client) -> str:
    return client.layout()["props"]["children"][0]["props"]["data"]


def test_cookie_less_gets_of_a_layout_function_store_one_value_for_everyone():
    app = layout_function_app()
    tokens = set()
    for _ in range(30):
        client = DashClient(app)
        tokens.add(initial_token(client))
        assert client.call([("out", "children")], [("s", "data", next(iter(tokens)))])["out"]["children"] == "65536"
    assert len(tokens) == 1 and memory(app).stats()["entries"] == 1


@pytest.mark.service
def test_cookie_less_gets_of_a_layout_function_make_no_redis_keys_per_visitor():
    import redis

    prefix = f"flood-{uuid.uuid4().hex[:8]}:"
    app = layout_function_app(STATE_BACKEND="redis", STATE_REDIS_URL=redis_url(), STATE_KEY_PREFIX=prefix)
    server = redis.Redis.from_url(redis_url())
    try:
        initial_token(DashClient(app))
        before = len(list(server.scan_iter(match=prefix + "*")))
        for _ in range(30):
            initial_token(DashClient(app))
        assert len(list(server.scan_iter(match=prefix + "*"))) == before <= 3
    finally:
        for key in server.scan_iter(match=prefix + "*"):
            server.delete(key)
