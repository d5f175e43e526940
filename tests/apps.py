"""Small apps shared by the tests: the same app can be built with dcc.Store or ServerStore."""
from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from dash_state import ServerStore

STORE_CLASSES = {"dcc.Store": dcc.Store, "ServerStore": ServerStore}


def new_app(**server_config) -> dash.Dash:
    app = dash.Dash(__name__)
    app.server.config["SECRET_KEY"] = "test-secret"
    app.server.config.update(server_config)
    return app


def write_read_app(store_class=ServerStore, value_factory=None, **server_config) -> dash.Dash:
    """A button writes ``value_factory(n)`` into store 's'; 'out' shows what a reader receives."""
    app = new_app(**server_config)
    app.layout = html.Div([html.Button("write", id="btn"), store_class(id="s"), html.Div(id="out")])
    make = value_factory or (lambda n: {"clicks": n, "rows": list(range(n or 0))})

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return make(n)

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    return app
