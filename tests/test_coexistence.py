"""Apps without ServerStore behave exactly as before; other extensions keep working beside dash-state."""
import json
import subprocess
import sys

import pandas as pd
import pytest
import dash
import dash.dash
from dash import Input, Output, _callback, dcc, html

import dash_state
from apps import new_app, write_read_app
from dash_client import DashClient
from dash_state import ServerStore


def plain_app():
    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), dcc.Store(id="s", data={"init": [1, 2]}), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"))
    def w(n):
        return {"n": n, "rows": list(range(5))}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def r(data):
        return json.dumps(data)

    return app


def exchange(client):
    layout = client.layout()
    written = client.raw_call([("s", "data")], [("btn", "n_clicks", 2)]).data
    token = json.loads(written)["response"]["s"]["data"]
    read = client.raw_call([("out", "children")], [("s", "data", token)]).data
    return json.dumps(layout), written, read


def test_app_without_server_store_gets_byte_identical_responses(monkeypatch):
    with_plugin = exchange(DashClient(plain_app()))
    # The same app with dash-state's wrappers taken off: Dash's own behaviour.
    app = plain_app()
    if hasattr(type(app), "_inputs_to_vals"):
        monkeypatch.setattr(app, "_inputs_to_vals", type(app)._inputs_to_vals.__get__(app))
    else:  # Dash 3.1-4.1: the callback route calls the module function, which dash-state wrapped
        monkeypatch.delitem(vars(app), "_inputs_to_vals")
        monkeypatch.setattr(dash.dash, "inputs_to_vals", dash.dash.inputs_to_vals.__wrapped__)
    monkeypatch.setattr(_callback, "_prepare_response", _callback._prepare_response.__wrapped__)
    without_plugin = exchange(DashClient(app))
    assert with_plugin == without_plugin
    assert dash_state.get_state_manager(app).stats()["writes"] == 0


def test_process_that_never_imports_server_store_loads_no_javascript(tmp_path):
    script = (
        "import dash\nfrom dash import html\n"
        "app = dash.Dash(__name__)\napp.layout = html.Div('hi')\n"
        "html_page = app.server.test_client().get('/').get_data(as_text=True)\n"
        "import sys\nprint('dash_state' in html_page, 'dash_state.glue.plugin' in sys.modules, "
        "'pandas' in sys.modules, 'dash_state.ServerStore' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    # the plugin is loaded (entry point) but stays inert: no bundle, no heavy imports, no component
    assert out.stdout.split() == ["False", "True", "False", "False"]


def test_dash_extensions_serverside_in_the_same_app_and_process(tmp_path):
    from dash_extensions.enrich import (DashProxy, FileSystemBackend, Input as EInput, Output as EOutput,
                                        Serverside, ServersideOutputTransform)

    app = DashProxy(__name__, transforms=[ServersideOutputTransform(backends=[FileSystemBackend(str(tmp_path))])])
    app.server.config["SECRET_KEY"] = "x"
    app.layout = html.Div([html.Button(id="btn"), dcc.Store(id="ext"), ServerStore(id="ours"),
                           html.Div(id="out")])

    @app.callback(EOutput("ext", "data"), EOutput("ours", "data"), EInput("btn", "n_clicks"))
    def w(n):
        frame = pd.DataFrame({"a": [n, n + 1]})
        return Serverside(frame), frame

    @app.callback(EOutput("out", "children"), EInput("ext", "data"), EInput("ours", "data"))
    def r(ext, ours):
        return f"{type(ext).__name__}:{ext['a'].sum()} {type(ours).__name__}:{ours['a'].sum()}"

    client = DashClient(app)
    client.layout()
    written = client.call([("ext", "data"), ("ours", "data")], [("btn", "n_clicks", 1)])
    assert written["ext"]["data"].startswith('"SERVERSIDE_') or "SERVERSIDE" in written["ext"]["data"]
    assert written["ours"]["data"].startswith("dsr2.")
    out = client.call([("out", "children")], [("ext", "data", written["ext"]["data"]),
                                              ("ours", "data", written["ours"]["data"])])
    assert out["out"]["children"] == "DataFrame:3 DataFrame:3"


def test_flask_session_server_side_sessions(tmp_path):
    flask_session = pytest.importorskip("flask_session")
    from cachelib.file import FileSystemCache

    app = write_read_app(SESSION_TYPE="cachelib", SESSION_CACHELIB=FileSystemCache(str(tmp_path / "sessions")))
    flask_session.Session(app.server)
    alice, bob = DashClient(alice_app := app), DashClient(app)
    alice.layout()
    bob.layout()
    token = alice.call([("s", "data")], [("btn", "n_clicks", 2)])["s"]["data"]
    # dash-state keeps its identity in its own cookie, never in the app's (server-side) session
    assert alice.http.get_cookie("dash_state_id") is not None
    for path in (tmp_path / "sessions").iterdir():
        assert b"_dash_state" not in path.read_bytes()
    assert alice.call([("out", "children")], [("s", "data", token)])["out"]["children"] == repr(
        {"clicks": 2, "rows": [0, 1]})
    assert bob.call([("out", "children")], [("s", "data", token)])["out"]["children"] == "None"
    assert alice_app is app


def test_dash_pages_initial_data_is_stored_server_side():
    import dash

    app = dash.Dash(__name__, use_pages=True, pages_folder="")
    app.server.config["SECRET_KEY"] = "x"
    dash.register_page("home", path="/", layout=html.Div([
        ServerStore(id="page-store", data={"marker": "PAGESECRET"}), html.Div(id="page-out")]))

    @app.callback(Output("page-out", "children"), Input("page-store", "data"))
    def r(data):
        return data["marker"]

    app.layout = html.Div([ServerStore(id="shell", storage_type="session"), dash.page_container])
    client = DashClient(app)
    assert "PAGESECRET" not in client.index()
    client.layout()
    (pages_id,) = [k for k in app.callback_map if "_pages_content" in k]
    response = client.raw_call([("_pages_content", "children"), ("_pages_store", "data")],
                               [("_pages_location", "pathname", "/"), ("_pages_location", "search", "")],
                               callback_id=pages_id)
    assert response.status_code == 200, response.data[:300]
    body = response.get_data(as_text=True)
    assert "PAGESECRET" not in body
    token = json.loads(body)["response"]["_pages_content"]["children"]["props"]["children"][0]["props"]["data"]
    assert client.call([("page-out", "children")], [("page-store", "data", token)])["page-out"]["children"] == "PAGESECRET"
    dash._pages.PAGE_REGISTRY.clear()
