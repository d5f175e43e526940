"""The original design's Python API, one test per sentence of the rule in dash_state/core/store_api.py:
get_state_manager / set_user_context / set_store_data / get_store_data, get_store / set_store,
state_managed_callback (both decorator orders), delete, list, clear_user, stats."""
from __future__ import annotations

import json
import time

import flask
import pytest
from dash import Input, Output, State, callback, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import (ServerStore, StoreValueError, get_state_manager, get_store, set_store,
                        state_managed_callback)
from services import redis_url

FILTERS = {"age": [18, 65]}


def api_app(**config):
    app = new_app(**config)
    app.layout = html.Div([
        html.Button(id="set"), html.Button(id="read"), html.Button(id="read-latest"),
        ServerStore(id="filters"), ServerStore(id="other"),
        html.Div(id="set-out"), html.Div(id="via-input"), html.Div(id="state-read"), html.Div(id="latest-read"),
    ])

    @app.callback(Output("set-out", "children"), Input("set", "n_clicks"), prevent_initial_call=True)
    def set_it(n):
        set_store("filters", {**FILTERS, "n": n})
        return json.dumps(get_store("filters"), sort_keys=True)  # the new value, in the same call

    @app.callback(Output("via-input", "children"), Input("filters", "data"))
    def via_input(data):
        return json.dumps(data, sort_keys=True)

    @app.callback(Output("state-read", "children"), Input("read", "n_clicks"), State("filters", "data"),
                  prevent_initial_call=True)
    def state_read(n, data):
        assert get_store("filters") == data  # the page's value, which the callback has as State
        return json.dumps(get_store("filters"), sort_keys=True)

    @app.callback(Output("latest-read", "children"), Input("read-latest", "n_clicks"), prevent_initial_call=True)
    def latest_read(n):
        return json.dumps(get_store("filters", default="none"), sort_keys=True)  # not an input: the latest

    return app


def test_the_design_examples_run_as_written():
    app = api_app()
    with app.server.app_context():  # outside a request, as a script would
        sm = get_state_manager(app)
        sm.set_user_context("user-123")
        try:
            sm.set_store_data("filters", {"key": "value"}, ttl=None)
            assert sm.get_store_data("filters", default=None) == {"key": "value"}
            set_store("filters", FILTERS)
            assert get_store("filters") == FILTERS
        finally:
            sm.set_user_context(None)
        with sm.user_context("user-123"):
            assert sm.get_store_data("filters") == FILTERS


def test_set_store_in_a_callback_updates_the_page_in_the_same_response():
    app = api_app()
    client = DashClient(app)
    client.layout()
    response = client.raw_call([("set-out", "children")], [("set", "n_clicks", 1)]).get_json()
    assert json.loads(response["response"]["set-out"]["children"]) == {**FILTERS, "n": 1}
    token = response["sideUpdate"]["filters"]["data"]
    assert token.startswith("dsr2.") and "age" not in json.dumps(response["sideUpdate"])
    out = client.call([("state-read", "children")], [("read", "n_clicks", 1)], [("filters", "data", token)])
    assert json.loads(out["state-read"]["children"]) == {**FILTERS, "n": 1}
    latest = client.call([("latest-read", "children")], [("read-latest", "n_clicks", 1)])
    assert json.loads(latest["latest-read"]["children"]) == {**FILTERS, "n": 1}


def test_get_store_is_the_page_value_when_an_input_else_the_latest():
    app = api_app()
    client = DashClient(app)
    client.layout()
    first = client.raw_call([("set-out", "children")], [("set", "n_clicks", 1)]).get_json()["sideUpdate"]
    client.raw_call([("set-out", "children")], [("set", "n_clicks", 2)])  # another tab writes later
    old_page_value = first["filters"]["data"]
    out = client.call([("state-read", "children")], [("read", "n_clicks", 1)], [("filters", "data", old_page_value)])
    assert json.loads(out["state-read"]["children"])["n"] == 1  # this page's value
    latest = client.call([("latest-read", "children")], [("read-latest", "n_clicks", 1)])
    assert json.loads(latest["latest-read"]["children"])["n"] == 2  # this user's latest


def test_outside_a_request_the_calls_need_a_user_context_and_address_the_latest():
    import flask as _flask

    app = api_app()
    dash_state.init_app(app, user_resolver=lambda: _flask.request.headers.get("X-User"))
    with app.server.app_context():
        with pytest.raises(StoreValueError, match=r"'filters'.*set_user_context"):
            set_store("filters", FILTERS)
        with pytest.raises(StoreValueError, match="set_user_context"):
            get_store("filters")
        with dash_state.user_context("ann"):
            set_store("filters", {"from": "script"})
    client = DashClient(app)
    client.http.environ_base["HTTP_X_USER"] = "ann"  # the same user, logged in, in a browser
    latest = client.call([("latest-read", "children")], [("read-latest", "n_clicks", 1)])
    assert json.loads(latest["latest-read"]["children"]) == {"from": "script"}


def test_bad_input_raises_clearly_and_stores_nothing():
    app = api_app()
    with app.server.app_context(), dash_state.user_context("ann"):
        with pytest.raises(StoreValueError, match="'nope': there is no ServerStore with this id"):
            set_store("nope", 1)
        with pytest.raises(StoreValueError, match=r"'filters': cannot store the set at bad"):
            set_store("filters", {"bad": {1, 2}})
        with pytest.raises(StoreValueError, match="ttl must be a positive number"):
            set_store("filters", 1, ttl=-1)
        assert get_store("filters", default="empty") == "empty"
        assert get_state_manager(app).stats()["writes"] == 0


def test_a_bad_value_in_a_callback_fails_that_callback_naming_the_store():
    app = new_app()
    app.layout = html.Div([html.Button(id="b"), ServerStore(id="s"), html.Div(id="o")])

    @app.callback(Output("o", "children"), Input("b", "n_clicks"))
    def bad(n):
        set_store("s", {"x": object()})
        return "unreachable"

    response = DashClient(app).raw_call([("o", "children")], [("b", "n_clicks", 1)])
    assert response.status_code == 422 and "ServerStore 's': cannot store the object at x" in response.get_data(as_text=True)


def test_ttl_is_honoured_inside_and_outside_callbacks():
    app = api_app(STATE_BACKEND="memory")
    manager = get_state_manager(app)
    with app.server.app_context(), dash_state.user_context("ann"):
        set_store("filters", FILTERS, ttl=1)
        backend = manager.backend("memory")
        now = backend._clock()
        backend._clock = lambda: now + 2
        assert get_store("filters") is None


def managed_app(order: str, use_dash_callback: bool):
    app = new_app()
    app.layout = html.Div([html.Button(id="go"), ServerStore(id="phenotypic-filters-store"), html.Div(id="table"),
                           html.Div(id="plain")])
    register = callback if use_dash_callback else app.callback
    decorators = {
        "below": lambda f: register(Output("table", "children"), Input("go", "n_clicks"))(
            state_managed_callback(store_mappings={"filters": "phenotypic-filters-store"})(f)),
        "above": lambda f: state_managed_callback(store_mappings={"filters": "phenotypic-filters-store"})(
            register(Output("table", "children"), Input("go", "n_clicks"))(f)),
    }

    def my_callback(n, filters, user_session_id):
        return json.dumps({"n": n, "filters": filters, "user": user_session_id})

    decorators[order](my_callback)

    @register(Output("plain", "children"), Input("go", "n_clicks"))
    @state_managed_callback(store_mappings={"filters": "phenotypic-filters-store"})
    def without_user(n, filters):
        return json.dumps({"n": n, "filters": filters})

    return app


@pytest.mark.parametrize("order", ["below", "above"])
@pytest.mark.parametrize("use_dash_callback", [False, True], ids=["app.callback", "dash.callback"])
def test_state_managed_callback_in_both_orders(order, use_dash_callback):
    app = managed_app(order, use_dash_callback)
    dash_state.init_app(app, user_resolver=lambda: flask.request.headers.get("X-User"))
    client = DashClient(app)
    client.http.environ_base["HTTP_X_USER"] = "user-123"
    client.layout()
    with app.server.app_context(), dash_state.user_context("user-123"):
        set_store("phenotypic-filters-store", FILTERS)
    out = client.call([("table", "children")], [("go", "n_clicks", 4)])
    assert json.loads(out["table"]["children"]) == {"n": 4, "filters": FILTERS, "user": "user-123"}
    plain = client.call([("plain", "children")], [("go", "n_clicks", 5)])
    assert json.loads(plain["plain"]["children"]) == {"n": 5, "filters": FILTERS}


def test_state_managed_callback_refuses_a_mapping_without_a_parameter():
    with pytest.raises(TypeError, match="has no parameter filters"):
        @state_managed_callback(store_mappings={"filters": "x"})
        def f(n):
            return n


def test_anonymous_user_session_id_is_the_browser_namespace():
    app = managed_app("below", False)
    client = DashClient(app)
    client.layout()
    out = json.loads(client.call([("table", "children")], [("go", "n_clicks", 1)])["table"]["children"])
    assert out["user"] == client.namespace() and out["filters"] is None


def test_delete_list_and_stats():
    app = api_app()
    manager = get_state_manager(app)
    with app.server.app_context(), dash_state.user_context("ann"):
        set_store("filters", FILTERS)
        set_store("other", {"rows": list(range(100))})
        listed = {entry["id"]: entry for entry in manager.list_stores()}
        assert set(listed) == {"filters", "other"}
        assert listed["other"]["backend"] == "local" and listed["other"]["bytes"] >= 290
        assert listed["other"]["expires_at"] > time.time() + 3000
        assert dash_state.delete_store("filters") is True
        assert get_store("filters") is None and dash_state.delete_store("filters") is False
        assert [entry["id"] for entry in manager.list_stores()] == ["other"]
    stats = manager.stats()
    assert stats["stores"]["other"]["local"]["writes"] == 1
    assert json.dumps(stats)


@pytest.mark.service
def test_clear_user_removes_everything_of_one_user_on_every_backend_without_scans(monkeypatch):
    import redis
    import uuid

    sent = []  # the commands this process sends (the server's own statistics also count other clients)
    for client_class in (redis.Redis, redis.client.Pipeline):
        original = client_class.execute_command

        def record(self, *args, _original=original, **kwargs):
            sent.append(str(args[0]).upper())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(client_class, "execute_command", record)
    prefix = f"api-{uuid.uuid4().hex[:8]}:"
    app = api_app(STATE_REDIS_URL=redis_url(), STATE_KEY_PREFIX=prefix, STATE_STORES={"other": {"backend": "redis"}})
    manager = get_state_manager(app)
    server = redis.Redis.from_url(redis_url())
    with app.server.app_context():
        for user in ("ann", "bob"):
            with dash_state.user_context(user):
                set_store("filters", {"who": user})
                set_store("other", {"who": user})
        assert manager.clear_user("ann") >= 2
        with dash_state.user_context("ann"):
            assert get_store("filters") is None and get_store("other") is None
        with dash_state.user_context("bob"):
            assert get_store("filters") == {"who": "bob"} and get_store("other") == {"who": "bob"}
    assert "EVALSHA" in sent or "EVAL" in sent or "DEL" in sent, sent  # the recording sees the backend's calls
    assert not {"KEYS", "SCAN"} & set(sent), sent
    manager.clear_user("bob")
    assert not list(server.scan_iter(match=prefix + "*"))


@pytest.mark.browser
def test_set_store_reaches_the_page_in_the_browser(dash_duo):
    app = api_app()
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#via-input", "null")
    dash_duo.find_element("#set").click()
    expected = json.dumps({**FILTERS, "n": 1}, sort_keys=True)
    dash_duo.wait_for_text_to_equal("#set-out", expected)
    dash_duo.wait_for_text_to_equal("#via-input", expected)  # the page's store fired with the new value
    dash_duo.find_element("#read").click()
    dash_duo.wait_for_text_to_equal("#state-read", expected)  # the next callback gets it as State
    held = dash_duo.driver.execute_script(
        "const s = window.dash_stores[0].getState(); const p = s.paths.strs['filters'];"
        "let n = s.layout; for (const k of p) { n = n[k]; } return n.props.data;")
    assert held.startswith("dsr2.")
    assert dash_duo.get_logs() == []
