"""A small app whose callbacks run over Dash's websocket (``websocket=True``), served by a real
uvicorn process (tests/test_websocket_callbacks.py): "go" writes a DataFrame into the ServerStore
``frame`` and ``note`` through ``set_props``; "read" shows what they hold; "read-http" reads ``frame``
in an HTTP callback.

    uvicorn websocket_app:server
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
from dash import Dash, Input, Output, State, html, set_props

from dash_state import ServerStore

ROWS = int(os.environ.get("WEBSOCKET_APP_ROWS", "10000"))
FRAME = pd.DataFrame({"id": np.arange(ROWS, dtype=np.int64), "quantity": np.ones(ROWS, dtype=np.int64)})

app = Dash(__name__, backend=os.environ.get("WEBSOCKET_APP_BACKEND", "fastapi"))
if app.backend.server_type == "fastapi":
    app.server.state.SECRET_KEY = "websocket-app-secret"
else:
    app.server.config["SECRET_KEY"] = "websocket-app-secret"
app.layout = html.Div([
    html.Button("go", id="go"), ServerStore(id="frame"), ServerStore(id="note"), html.Div("none", id="rows"),
    html.Button("read over http", id="read-http"), html.Div("none", id="rows-http"),
])


@app.callback(Output("frame", "data"), Input("go", "n_clicks"), prevent_initial_call=True, websocket=True)
def go(n):
    set_props("note", {"data": {"clicks": n}})
    return FRAME.assign(quantity=FRAME["quantity"] * n)


@app.callback(Output("rows", "children"), Input("frame", "data"), Input("note", "data"),
              prevent_initial_call=True, websocket=True)
def read(frame, note):
    if frame is None:
        return f"empty {note!r}"
    return f"rows: {len(frame)} sum: {int(frame['quantity'].sum())} note: {note!r}"


@app.callback(Output("rows-http", "children"), Input("read-http", "n_clicks"), State("frame", "data"),
              prevent_initial_call=True)
def read_http(n, frame):
    return "empty" if frame is None else f"http rows: {len(frame)}"


server = app.server
