"""The app the multi-worker test serves with gunicorn; settings come from the environment."""
import os

import dash
import pandas as pd
from dash import Input, Output, html

from dash_state import ServerStore

app = dash.Dash(__name__)
server = app.server
if os.environ.get("MULTIWORKER_SECRET"):  # shared by every worker; without one (local) the host's key
    server.config["SECRET_KEY"] = os.environ["MULTIWORKER_SECRET"]
app.layout = html.Div([html.Div(id="who"), ServerStore(id="s", storage_type="local"), html.Div(id="out")])


@app.callback(Output("s", "data"), Input("who", "children"))
def write(who):
    # a frame, so the value crosses workers as Arrow IPC, not JSON
    return pd.DataFrame({"owner": [who] * 1000, "n": range(1000)})


@app.callback(Output("out", "children"), Input("s", "data"))
def read(frame):
    return None if frame is None else f"{frame['owner'].iloc[0]}:{int(frame['n'].sum())}"


@server.after_request
def tell_worker(response):
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response
