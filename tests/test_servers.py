"""Dash 4 server backends other than Flask, and websocket callbacks."""
import pytest
from dash import Dash, Input, Output, html

from dash_client import DashClient
from dash_state import ConfigError, ServerStore


@pytest.mark.parametrize("backend", ["fastapi", "quart"])
def test_other_server_backends_refuse_server_stores_clearly(backend):
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"))
    def write(n):
        return {"secret": n}

    from dash_state.glue.plugin import install

    state = install(app)
    with pytest.raises(ConfigError, match=f"Flask server backend.*{type(app.server).__name__}"):
        state.scan_layouts()  # what the first callback does: no output can pass through unnoticed
    with pytest.raises(ConfigError, match="backend='flask'"):
        state.manager  # what serving the layout does


@pytest.mark.parametrize("backend", ["fastapi", "quart"])
def test_other_server_backends_without_server_stores_are_untouched(backend):
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend)  # dash-state's hooks and routes must not break construction
    app.layout = html.Div("plain")
    from dash_state.glue.plugin import install

    install(app).scan_layouts()  # no ServerStore: nothing to refuse


def test_websocket_callbacks_flag_on_flask_uses_http_and_server_stores_work():
    """Dash serves websocket callbacks only on FastAPI/Quart; on Flask the flag leaves callbacks on
    HTTP, where the hook applies as usual."""
    app = Dash(__name__, websocket_callbacks=True)
    app.server.config["SECRET_KEY"] = "x"
    assert not app.backend.websocket_capability
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"))
    def write(n):
        return {"clicks": n}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    client = DashClient(app)
    client.layout()
    token = client.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    assert token.startswith("dsr2.")
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] == repr({"clicks": 1})
