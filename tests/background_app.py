"""The app of the background-callback tests, for DiskcacheManager (built in the test process) and
CeleryManager (this module is also what the Celery worker imports: ``celery -A background_app:celery_app``).

Settings come from app.server.config / the environment, so the test process and the worker agree.
Values carry MARKER, which must never appear in anything sent to the browser.
"""
from __future__ import annotations

import os

import dash
import pandas as pd
from dash import Input, Output, State, html, set_props

from dash_state import ServerStore

MARKER = "BG-SECRET-ROW-7f3a"
SECRET = os.environ.get("BACKGROUND_SECRET", "background-test-secret")


def source_frame(n: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"a": range(n), "label": [MARKER] * n})


def make_app(manager, frames: bool = True, **server_config) -> dash.Dash:
    """``frames=False``: the same app with JSON values (records lists), as a dcc.Store app has them."""
    app = dash.Dash(__name__, background_callback_manager=manager)
    app.server.config["SECRET_KEY"] = SECRET
    app.server.config.update(server_config)
    app.layout = html.Div([
        html.Button("load", id="load"),
        html.Button("run", id="run"),
        ServerStore(id="source"),
        ServerStore(id="result"),
        ServerStore(id="side"),
        ServerStore(id="progress-store"),
        html.Div(id="status"),
        html.Div(id="out"),
        html.Div(id="side-out"),
    ])
    kind = pd.DataFrame if frames else list

    def value(frame: pd.DataFrame):
        return frame if frames else frame.to_dict("records")

    @app.callback(Output("source", "data"), Input("load", "n_clicks"), prevent_initial_call=True)
    def load(n):
        return value(source_frame())

    @app.callback(
        Output("result", "data"),
        Output("status", "children"),
        Input("run", "n_clicks"),
        State("source", "data"),
        background=True,
        progress=[Output("progress-store", "data")],
        prevent_initial_call=True,
    )
    def compute(set_progress, n, frame):
        if not isinstance(frame, kind):  # the job must get the value, not the reference
            raise TypeError(f"expected a {kind.__name__}, got {type(frame).__name__}: {frame!r}"[:200])
        set_progress(value(pd.DataFrame({"step": [1], "label": [MARKER]})))
        # Dash's managers keep only the last set_props call of a job until the next poll: one call here
        set_props("side", {"data": value(pd.DataFrame({"side": [MARKER] * 3, "n": [1, 2, 3]}))})
        result = pd.DataFrame(frame).assign(total=pd.DataFrame(frame)["a"] * n)
        return value(result), f"done {n}"

    @app.callback(Output("out", "children"), Input("result", "data"), prevent_initial_call=True)
    def read(frame):
        if frame is None:
            return "None"
        table = pd.DataFrame(frame)
        return f"{type(frame).__name__}:{','.join(table.columns)}:{len(table)}:{int(table['total'].sum())}"

    @app.callback(Output("side-out", "children"), Input("side", "data"), prevent_initial_call=True)
    def read_side(frame):
        if frame is None:
            return "None"
        return f"{type(frame).__name__}:{len(frame)}:{int(pd.DataFrame(frame)['n'].sum())}"

    return app


def make_celery(url: str, queue: str):
    from celery import Celery

    celery = Celery(__name__, broker=url, backend=url)
    celery.conf.update(task_default_queue=queue, result_expires=600, broker_connection_retry_on_startup=True,
                       worker_hijack_root_logger=False)
    return celery


if os.environ.get("BACKGROUND_CELERY_URL"):  # the Celery worker (and the test's web side) build it here
    from dash import CeleryManager

    celery_app = make_celery(os.environ["BACKGROUND_CELERY_URL"], os.environ["BACKGROUND_CELERY_QUEUE"])
    app = make_app(CeleryManager(celery_app), frames=os.environ.get("BACKGROUND_FRAMES", "1") == "1")
    server = app.server
