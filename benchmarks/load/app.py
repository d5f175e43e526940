"""The load-test app: one write callback and one read callback on a 100k-row frame.

``LOAD_VARIANT=serverstore`` keeps the frame in a ``ServerStore`` (the backend comes from the
``STATE_*`` environment variables: ``run_load.py`` sets ``STATE_BACKEND=redis``);
``LOAD_VARIANT=dcc`` keeps it in a ``dcc.Store`` as ``df.to_dict("records")``, which is what apps do
today. Everything else is identical.

W: the button's ``n_clicks`` and the user's marker (``who``) -> the store: the frame with a column
``owner`` holding the marker, a fresh frame per write as a filter or merge would make.
R: the store -> a Div: ``"<owner>|<rows>|<distinct owners>"``, so the simulated user can check that the
value it reads back is the one it wrote (its own marker and click number), never another user's.

Served by gunicorn (``run_load.py``): ``gunicorn -w 4 app:server``. ``LOAD_SECRET`` is the shared
``SECRET_KEY``; ``LOAD_ROWS`` the frame's rows (default 100000).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchdata import make_frame

VARIANT = os.environ.get("LOAD_VARIANT", "serverstore")
ROWS = int(os.environ.get("LOAD_ROWS", "100000"))
BASE = make_frame(ROWS)

if VARIANT == "serverstore":
    from dash_state import ServerStore

    store = ServerStore(id="store")
elif VARIANT == "dcc":
    store = dcc.Store(id="store")
else:
    raise SystemExit(f"LOAD_VARIANT must be 'serverstore' or 'dcc', not {VARIANT!r}")

app = dash.Dash(__name__)
server = app.server
server.config["SECRET_KEY"] = os.environ.get("LOAD_SECRET", "dash-state-load-test")
app.layout = html.Div([dcc.Input(id="who"), html.Button("go", id="go"), store, html.Div(id="out")])


@app.callback(Output("store", "data"), Input("go", "n_clicks"), State("who", "value"))
def write(n_clicks, who):
    frame = BASE.copy(deep=False)
    frame["owner"] = who
    return frame if VARIANT == "serverstore" else frame.to_dict("records")


@app.callback(Output("out", "children"), Input("store", "data"))
def read(data):
    if data is None:
        return "missing"
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    owners = frame["owner"].unique()
    return f"{owners[0]}|{len(frame)}|{len(owners)}"
