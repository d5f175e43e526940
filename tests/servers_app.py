"""One small app served on Dash's Flask, FastAPI or Quart server, by a real server process.

Environment: ``SERVERS_APP_BACKEND`` (flask | fastapi | quart), ``SERVERS_APP_STORE`` (ServerStore |
dcc.Store, the baseline), ``SERVERS_APP_ROWS`` (rows of the DataFrame, 100,000 by default),
``SERVERS_APP_CACHE`` (DiskcacheManager's folder), ``SERVERS_APP_SECRET``.

    uvicorn servers_app:server               (SERVERS_APP_BACKEND=fastapi)
    hypercorn servers_app:server             (SERVERS_APP_BACKEND=quart)
    gunicorn servers_app:server              (SERVERS_APP_BACKEND=flask, the default)

"go" writes a DataFrame into the store ``frame``, a second callback reads it and shows its row count;
"bg" runs a background callback (DiskcacheManager) that writes ``bgstore``, read back the same way;
"add" writes ``cart``, a live user store.
"""
from __future__ import annotations

import os
import tempfile

import diskcache
import numpy as np
import pandas as pd
from dash import Dash, DiskcacheManager, Input, Output, dcc, html

from dash_state import ServerStore

BACKEND = os.environ.get("SERVERS_APP_BACKEND", "flask")
BASELINE = os.environ.get("SERVERS_APP_STORE", "ServerStore") == "dcc.Store"
ROWS = int(os.environ.get("SERVERS_APP_ROWS", "100000"))
Store = dcc.Store if BASELINE else ServerStore


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"id": np.arange(rows, dtype=np.int64),
                         "region": np.array(["North", "South", "East", "West"])[rng.integers(0, 4, rows)],
                         "quantity": rng.integers(1, 100, rows, dtype=np.int64),
                         "price": np.round(rng.uniform(1.0, 500.0, rows), 2)})


FRAME = make_frame(ROWS)
cache = diskcache.Cache(os.environ.get("SERVERS_APP_CACHE") or tempfile.mkdtemp(prefix="servers-app-"))
app = Dash(__name__, backend=BACKEND, background_callback_manager=DiskcacheManager(cache))
secret = os.environ.get("SERVERS_APP_SECRET", "servers-app-secret")
if BACKEND == "fastapi":
    app.server.state.SECRET_KEY = secret  # where Dash keeps a FastAPI app's config
else:
    app.server.config["SECRET_KEY"] = secret

app.layout = html.Div([
    html.Button("go", id="go"), Store(id="frame"), html.Div("none", id="rows"),
    html.Button("bg", id="bg"), Store(id="bgstore"), html.Div("none", id="bgrows"),
    html.Button("add", id="add"), html.Div(id="cart-holder"),
])
if not BASELINE:  # a live user store: its changes reach the user's open pages (Server-Sent Events)
    app.layout.children[-1].children = ServerStore(id="cart", scope="user", live=True)

    @app.callback(Output("cart", "data"), Input("add", "n_clicks"), prevent_initial_call=True)
    def add(n):
        return {"items": n}


@app.callback(Output("frame", "data"), Input("go", "n_clicks"), prevent_initial_call=True)
def write(n):
    return FRAME.to_dict("records") if BASELINE else FRAME


@app.callback(Output("rows", "children"), Input("frame", "data"), prevent_initial_call=True)
def read(data):
    if data is None:  # an empty store (or a reference that is not this user's)
        return "empty"
    frame = pd.DataFrame(data) if BASELINE else data
    return f"rows: {len(frame)}"


@app.callback(Output("bgstore", "data"), Input("bg", "n_clicks"), background=True, prevent_initial_call=True)
def write_in_background(n):
    small = make_frame(1000)
    return small.to_dict("records") if BASELINE else small


@app.callback(Output("bgrows", "children"), Input("bgstore", "data"), prevent_initial_call=True)
def read_background(data):
    return f"bg rows: {len(pd.DataFrame(data) if BASELINE else data)}"


server = app.server

if __name__ == "__main__":
    app.run(debug=False)
