"""The Dash apps of the scenarios: a write callback W (button -> store ``data``) and a read callback R
(store ``data`` -> a Div) around each kind of store, and the STATE_* settings of each backend."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from .sizes import summarize

if TYPE_CHECKING:
    from .env import Env

SECRET_KEY = "dash-state-run-benchmark"
BUTTON, STORE, OUT = "go", "store", "out"


def layout(store: Any):
    from dash import html

    return html.Div([html.Button("go", id=BUTTON), store, html.Div(id=OUT)])


def new_dash(settings: dict | None = None):
    """A Dash app with the benchmark's secret key and ``settings`` (STATE_*) in its Flask config."""
    import dash

    app = dash.Dash(__name__)
    app.server.config["SECRET_KEY"] = SECRET_KEY
    app.server.config.update(settings or {})
    return app


def dispatch_app(value: Any):
    from dash import Input, Output, dcc

    app = new_dash()
    app.layout = layout(dcc.Store(id=STORE))

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return 1

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(data):
        return str(data)

    return app


def dcc_store_app(value: Any):
    from dash import Input, Output, dcc

    app = new_dash()
    app.layout = layout(dcc.Store(id=STORE))
    is_frame = isinstance(value, pd.DataFrame)

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return value.to_dict("records") if is_frame else value

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(data):
        return summarize(pd.DataFrame(data) if is_frame else data)

    return app


def serverside_app(value: Any, backend: Any):
    from dash import Input, Output, dcc
    from dash_extensions.enrich import DashProxy, Serverside, ServersideOutputTransform

    app = DashProxy(__name__, transforms=[ServersideOutputTransform(backends=[backend])])
    app.server.config["SECRET_KEY"] = SECRET_KEY
    app.layout = layout(dcc.Store(id=STORE))

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return Serverside(value)

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(data):
        return summarize(data)

    return app


def server_store_app(value: Any, settings: dict):
    from dash import Input, Output

    from dash_state import ServerStore

    app = new_dash(settings)
    app.layout = layout(ServerStore(id=STORE))

    @app.callback(Output(STORE, "data"), Input(BUTTON, "n_clicks"))
    def write(n_clicks):
        return value

    @app.callback(Output(OUT, "children"), Input(STORE, "data"))
    def read(data):
        return summarize(data)

    return app


def close_app(app) -> None:
    """Close dash-state's backend connections of an app once its scenario is done."""
    state = getattr(app, "_dash_state", None)
    if state is not None and getattr(state, "_manager", None) is not None:
        try:
            state._manager.close()
        except Exception:
            pass


def state_settings(kind: str, env: Env) -> dict:
    """STATE_* settings of a ServerStore app on one backend (a fresh key prefix / table / file)."""
    if kind == "memory":
        return {"STATE_BACKEND": "memory"}
    if kind == "local":  # the default backend, its store on tmpfs (as its default place, /dev/shm)
        return {"STATE_BACKEND": "local", "STATE_LOCAL_PATH": env.shm_dir("local")}
    # redis and postgres get the near tier (on by default) under the run's tmpfs directory, removed at the end
    if kind == "redis":
        return {"STATE_BACKEND": "redis", "STATE_REDIS_URL": env.redis_url, "STATE_KEY_PREFIX": env.prefix("ss"),
                "STATE_NEAR_TIER_PATH": env.shm_dir("near")}
    if kind == "sqlite":
        return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": env.sqlite_url()}
    if kind == "postgres":
        return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": env.postgres_url,
                "STATE_DATABASE_TABLE": env.pg_table(), "STATE_NEAR_TIER_PATH": env.shm_dir("near")}
    raise ValueError(kind)
