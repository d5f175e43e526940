"""Small apps shared by the tests: the same app can be built with dcc.Store or ServerStore."""
from __future__ import annotations

import os

import dash
from dash import Input, Output, dcc, html

from dash_state import ServerStore

STORE_CLASSES = {"dcc.Store": dcc.Store, "ServerStore": ServerStore}


#: Dash's server for the apps built here: "flask" (default), or "fastapi" / "quart" (Dash 4.2+), set by
#: the version matrix (noxfile.py) so the same tests run on each server.
SERVER = os.environ.get("DASH_STATE_TEST_SERVER", "flask")


def new_app(options: dict | None = None, **server_config) -> dash.Dash:
    """A Dash app on SERVER, with ``options`` for ``dash.Dash`` and ``server_config`` as server settings."""
    options = dict(options or {})
    app = dash.Dash(__name__, **options) if SERVER == "flask" else dash.Dash(__name__, backend=SERVER, **options)
    settings = {"SECRET_KEY": "test-secret", **server_config}
    if SERVER == "fastapi":  # FastAPI has no config mapping: Dash and dash-state read app.server.state
        for key, value in settings.items():
            setattr(app.server.state, key, value)
    else:
        app.server.config.update(settings)
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
