"""The app the multi-worker live tests serve with gunicorn; settings come from the environment.

``cart`` is one list per user (every tab and worker appends to the same one), ``board`` one list for
everyone; both live. Each callback appends with ``Patch()``, which dash-state applies atomically."""
import os

from dash import Dash, Input, Output, Patch, html
from flask import request

from dash_state import ServerStore

app = Dash(__name__)
server = app.server
if os.environ.get("LIVE_SECRET"):
    server.config["SECRET_KEY"] = os.environ["LIVE_SECRET"]
app.layout = html.Div([
    html.Div(id="item"), html.Div(id="note"),
    ServerStore(id="cart", scope="user", live=True, data=[]),
    ServerStore(id="board", scope="app", live=True, writable=True, data=[]),
    html.Div(id="count"),
])


@app.callback(Output("cart", "data"), Input("item", "children"), prevent_initial_call=True)
def add(item):
    patch = Patch()
    patch.append(item)
    return patch


@app.callback(Output("board", "data"), Input("note", "children"), prevent_initial_call=True)
def post(note):
    patch = Patch()
    patch.append(note)
    return patch


@app.callback(Output("count", "children"), Input("cart", "data"), Input("board", "data"))
def count(cart, board):
    return f"{len(cart or [])}:{len(board or [])}:{len(set(cart or []))}"


@server.after_request
def tell_worker(response):
    response.headers["X-Worker-Pid"] = str(os.getpid())
    if os.environ.get("LIVE_PID_FILE") and request.path.endswith("/_dash-state/v1/live"):
        with open(os.environ["LIVE_PID_FILE"], "a") as record:  # which worker holds a browser's stream
            record.write(f"{os.getpid()}\n")
    return response
