"""The app of tests/attacks/test_background_isolation.py: a background job that answers from the user's
own ServerStore (``get_store``), whatever its inputs. Also what its Celery worker imports
(``celery -A attacks.isolation_app:celery_app``, settings from the environment)."""
from __future__ import annotations

import os

import dash
from dash import Input, Output, State, dcc, html

import dash_state
from dash_state import ServerStore

SECRET = "isolation-test-secret"


def isolation_app(manager, **config) -> dash.Dash:
    app = dash.Dash(__name__, background_callback_manager=manager)
    app.server.config.update(SECRET_KEY=SECRET, **config)
    app.layout = html.Div([dcc.Input(id="name"), html.Button(id="save"), html.Button(id="run"),
                           ServerStore(id="mine"), html.Div(id="saved"), html.Div(id="result")])

    @app.callback(Output("mine", "data"), Input("save", "n_clicks"), State("name", "value"),
                  prevent_initial_call=True)
    def save(n, name):
        return {"owner": name}

    @app.callback(Output("result", "children"), Input("run", "n_clicks"), background=True,
                  prevent_initial_call=True)
    def job(n):
        value = dash_state.get_store("mine")
        return f"run {n} for {value['owner'] if value else None}"

    return app


if os.environ.get("BACKGROUND_CELERY_URL"):  # the Celery worker
    from celery import Celery
    from dash import CeleryManager

    url = os.environ["BACKGROUND_CELERY_URL"]  # as background_app.make_celery (not imported: it builds its app)
    celery_app = Celery(__name__, broker=url, backend=url)
    celery_app.conf.update(task_default_queue=os.environ["BACKGROUND_CELERY_QUEUE"], result_expires=600,
                           broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
    app = isolation_app(CeleryManager(celery_app))
    server = app.server
