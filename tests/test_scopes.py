"""User- and app-scoped stores through Dash's callback path (Flask's test client): who shares a value,
what a write does, versions and compare-and-set, and what a page may read. Run on the in-process
backends here; tests/test_scopes_services.py runs the sharing rules on Redis and PostgreSQL."""
from __future__ import annotations

import json

import pytest
from apps import new_app
from dash import Input, Output, Patch, State, html
from dash_client import DashClient

import dash_state
from dash_state import ServerStore, VersionConflict

BACKENDS = ["memory", "local"]


def scoped_app(**config):
    app = new_app(**config)
    app.layout = html.Div([
        html.Button(id="btn"), html.Button(id="add"), html.Button(id="board-btn"),
        ServerStore(id="prefs", scope="user", live=True, data={"theme": "light"}),
        ServerStore(id="tables", scope="app", data=["sales", "stock"]),
        ServerStore(id="board", scope="app", writable=True, live=True),
        ServerStore(id="page"),
        html.Div(id="out"),
    ])

    @app.callback(Output("prefs", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def choose(n):
        return {"theme": f"dark-{n}"}

    @app.callback(Output("prefs", "data", allow_duplicate=True), Input("add", "n_clicks"), prevent_initial_call=True)
    def add(n):
        patch = Patch()
        patch["seen"] = n
        return patch

    @app.callback(Output("tables", "data"), Input("board-btn", "n_clicks"), prevent_initial_call=True)
    def overwrite_tables(n):
        return ["hacked"]

    @app.callback(Output("out", "children"), Input("prefs", "data"), State("tables", "data"))
    def show(prefs, tables):
        return json.dumps([prefs, tables])

    return app


def store_props(layout, store_id):
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "ServerStore" and node["props"].get("id") == store_id:
                return node["props"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError(f"no ServerStore {store_id!r} in the layout")


def show(client, prefs=None, tables=None):
    out = client.call([("out", "children")], [("prefs", "data", prefs)], [("tables", "data", tables)])
    return json.loads(out["out"]["children"])


def same_browser(first: DashClient) -> DashClient:
    """Another tab of the same browser: the same cookies, its own page."""
    tab = DashClient(first.app)
    tab.http._cookies = first.http._cookies
    return tab


@pytest.fixture(params=BACKENDS)
def app(request):
    return scoped_app(STATE_BACKEND=request.param)


def test_the_layout_sends_the_effective_settings_and_the_current_value(app):
    tab = DashClient(app)
    props = store_props(tab.layout(), "prefs")
    assert (props["scope"], props["live"], props["writable"]) == ("user", True, False)
    assert show(tab, props["data"])[0] == {"theme": "light"}  # never written: the layout's initial data
    tab.call([("prefs", "data")], [("btn", "n_clicks", 1)])
    again = store_props(tab.layout(), "prefs")  # a new tab (or a reload) gets the user's value
    assert again["data"] != props["data"] and ".u" in again["data"]
    assert show(tab, again["data"])[0] == {"theme": "dark-1"}


def test_every_tab_of_a_user_reads_the_last_write_and_other_users_do_not(app):
    first = DashClient(app)
    held = store_props(first.layout(), "prefs")["data"]
    second = same_browser(first)
    first.call([("prefs", "data")], [("btn", "n_clicks", 7)])
    assert show(second, held)[0] == {"theme": "dark-7"}  # still holding the old reference
    assert show(second, None)[0] == {"theme": "dark-7"}  # holding nothing at all
    other = DashClient(app)
    assert show(other, store_props(other.layout(), "prefs")["data"])[0] == {"theme": "light"}
    other.call([("prefs", "data")], [("btn", "n_clicks", 2)])
    assert show(first, None)[0] == {"theme": "dark-7"}
    assert show(other, None)[0] == {"theme": "dark-2"}


def test_another_users_reference_reads_nothing(app):
    alice, mallory = DashClient(app), DashClient(app)
    alice.layout()
    token = alice.call([("prefs", "data")], [("btn", "n_clicks", 3)])["prefs"]["data"]
    mallory.layout()
    assert show(mallory, token)[0] is None  # signed for alice: refused, not alice's value nor mallory's


def test_a_patch_applies_to_the_current_value_not_to_what_the_page_held(app):
    first = DashClient(app)
    first.layout()
    second = same_browser(first)
    first.call([("prefs", "data")], [("btn", "n_clicks", 4)])
    patch_callback = "prefs.data@" + [k.split("@")[1] for k in app.callback_map if k.startswith("prefs.data@")][0]
    response = second.raw_call([("prefs", "data")], [("add", "n_clicks", 1)], callback_id=patch_callback)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert show(first, None)[0] == {"theme": "dark-4", "seen": 1}


def test_an_app_value_is_the_same_for_everyone_and_callbacks_cannot_write_it_unless_writable(app):
    users = [DashClient(app) for _ in range(5)]
    tokens = {store_props(user.layout(), "tables")["data"] for user in users}
    assert len(tokens) == 1  # one value, one reference
    assert all(show(user, None, tokens.pop() if not i else None)[1] == ["sales", "stock"] for i, user in enumerate(users))
    response = users[0].raw_call([("tables", "data")], [("board-btn", "n_clicks", 1)])
    assert response.status_code == 422 and "writable" in response.get_data(as_text=True)
    assert show(users[1])[1] == ["sales", "stock"]


def test_an_app_value_is_held_once_whatever_the_number_of_readers(app):
    manager = dash_state.get_state_manager(app)
    backend = manager.backend(manager.settings("tables").backend)

    def read(readers):
        for _ in range(readers):
            client = DashClient(app)
            assert show(client, None, store_props(client.layout(), "tables")["data"])[1] == ["sales", "stock"]
        return sorted(entry[:2] for entry in backend.usage("@app")), sorted(key for user in _users(backend) for key, *_ in backend.usage(user))

    held_by_one = read(1)
    assert read(30) == held_by_one  # nothing more in @app, and no reader holds a copy of its own


def _users(backend):
    return [user for user, _ in getattr(backend, "_entries", {})] if hasattr(backend, "_entries") else []


def test_set_store_from_a_script_writes_versions_and_if_version_refuses_a_stale_write(app):
    client = DashClient(app)
    client.layout()
    with app.server.app_context():
        first = dash_state.get_store_version("tables")
        assert first >= 1
        assert dash_state.set_store("tables", ["sales", "stock", "hr"], scope="app") == first + 1
        assert dash_state.set_store("tables", ["x"], if_version=first + 1) == first + 2
        with pytest.raises(VersionConflict, match="version 3 is current, not 2|is current, not") as caught:
            dash_state.set_store("tables", ["lost"], if_version=first + 1)
        assert (caught.value.expected, caught.value.current) == (first + 1, first + 2)
        assert dash_state.get_store("tables") == ["x"]
        with pytest.raises(dash_state.StoreValueError, match="scope='app', not 'user'"):
            dash_state.set_store("tables", [], scope="user")
        with pytest.raises(dash_state.StoreValueError, match="versions are kept"):
            dash_state.set_store("page", 1, if_version=0)
    assert show(client)[1] == ["x"]  # pages read the new version at once


def test_a_static_layout_writes_its_app_data_once_not_at_every_page_load(app):
    client = DashClient(app)
    client.layout()
    with app.server.app_context():
        dash_state.set_store("tables", ["changed by the server"])
        version = dash_state.get_store_version("tables")
    for _ in range(3):
        DashClient(app).layout()
    with app.server.app_context():
        assert dash_state.get_store_version("tables") == version
        assert dash_state.get_store("tables") == ["changed by the server"]


def test_a_layout_function_writes_new_app_data_when_it_changes():
    state = {"tables": ["a"]}
    app = new_app(STATE_BACKEND="memory")
    app.layout = lambda: html.Div([ServerStore(id="tables", scope="app", data=list(state["tables"])),
                                   html.Div(id="out")])
    client = DashClient(app)
    client.layout()
    with app.server.app_context():
        version = dash_state.get_store_version("tables")
    client.layout()
    with app.server.app_context():
        assert dash_state.get_store_version("tables") == version  # the same data: no new version
    state["tables"] = ["a", "b"]
    client.layout()
    with app.server.app_context():
        assert dash_state.get_store_version("tables") == version + 1
        assert dash_state.get_store("tables") == ["a", "b"]


def test_delete_store_empties_the_value_for_every_tab_with_a_new_version(app):
    first = DashClient(app)
    first.layout()
    first.call([("prefs", "data")], [("btn", "n_clicks", 1)])
    manager = dash_state.get_state_manager(app)
    with app.server.app_context(), _as(manager, first.namespace()):
        version = dash_state.get_store_version("prefs")
        assert dash_state.delete_store("prefs") is True
        assert dash_state.get_store_version("prefs") == version + 1
        assert dash_state.get_store("prefs") is None
    assert show(same_browser(first), None)[0] is None


def _as(manager, namespace):
    """Act as an anonymous browser's namespace outside a request (what set_user_context does for users)."""
    from contextlib import contextmanager

    from dash_state.identity import Identity

    @contextmanager
    def acting():
        original = manager.identity
        manager.identity = lambda create=True: Identity(namespace)
        try:
            yield
        finally:
            manager.identity = original
    return acting()


def test_the_config_sets_the_scope_without_code_changes():
    app = new_app(STATE_BACKEND="memory", STATE_STORES={"page": {"scope": "user", "live": True}})
    app.layout = html.Div([ServerStore(id="page"), html.Div(id="out")])
    props = store_props(DashClient(app).layout(), "page")
    assert (props["scope"], props["live"]) == ("user", True)


def test_a_scope_rolled_back_to_the_browser_is_a_page_store_again():
    app = new_app(STATE_BACKEND="client")
    app.layout = html.Div([ServerStore(id="prefs", scope="user", live=True, data={"a": 1})])
    props = store_props(DashClient(app).layout(), "prefs")
    assert props["data"] == {"a": 1}  # the data itself, as dcc.Store holds it
    assert (props["scope"], props["live"]) == ("page", False)  # the page neither shares nor listens
    assert dash_state.get_state_manager(app).settings("prefs").scope == "page"


def test_a_misspelt_scope_in_the_config_names_the_key():
    app = new_app(STATE_STORES={"prefs": {"scope": "users"}})
    app.layout = html.Div([ServerStore(id="prefs")])
    with pytest.raises(dash_state.ConfigError, match=r"STATE_STORES.prefs.scope .*did you mean 'user'"):
        dash_state.get_state_manager(app)
