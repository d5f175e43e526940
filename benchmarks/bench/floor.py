"""Context for the matrix's floor: Dash's dispatch cost in a child process that never imported
``ServerStore`` (dash-state's plugin loaded but inactive), against the floor measured with it active."""
from __future__ import annotations

import json
import subprocess
import sys

from . import HERE
from .env import Env
from .messages import short_error

# The child imports nothing of this package (that would load ServerStore): its own app and POST timer.
FLOOR_CHILD = r"""
import gc, json, statistics, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import dash, numpy as np
from dash import Input, Output, dcc, html
from roundtrip_free_client import post
app = dash.Dash(__name__)
app.server.config["SECRET_KEY"] = "x"
app.layout = html.Div([html.Button("go", id="go"), dcc.Store(id="store"), html.Div(id="out")])
@app.callback(Output("store", "data"), Input("go", "n_clicks"))
def write(n):
    return 1
@app.callback(Output("out", "children"), Input("store", "data"))
def read(v):
    return str(v)
client = app.server.test_client()
client.get("/_dash-layout")
samples = []
for i in range(int(sys.argv[3])):
    gc.collect()
    w = post(client, "store", "data", "go", "n_clicks", 1)
    r = post(client, "out", "children", "store", "data", 1)
    if i >= 5:
        samples.append((w + r) * 1000)
print("FLOOR-RESULT " + json.dumps({"median_ms": statistics.median(samples),
      "p95_ms": float(np.percentile(samples, 95)), "n": len(samples),
      "server_store_imported": "dash_state.ServerStore" in sys.modules}))
"""
FLOOR_CLIENT = r"""
import json, time
def post(client, out_id, out_prop, in_id, in_prop, value):
    body = json.dumps({"output": f"{out_id}.{out_prop}", "outputs": {"id": out_id, "property": out_prop},
                       "inputs": [{"id": in_id, "property": in_prop, "value": value}], "state": [],
                       "changedPropIds": [f"{in_id}.{in_prop}"]})
    start = time.perf_counter()
    response = client.post("/_dash-update-component", data=body, content_type="application/json")
    seconds = time.perf_counter() - start
    assert response.status_code == 200, response.data[:300]
    return seconds
"""


def measure_floor_without_server_store(runs: int, env: Env) -> dict:
    """Median and p95 of ``runs`` floor round trips in the child (5 warm-ups first)."""
    try:
        (env.tmp / "roundtrip_free_client.py").write_text(FLOOR_CLIENT)
        done = subprocess.run([sys.executable, "-c", FLOOR_CHILD, str(env.tmp), str(HERE), str(runs + 5)],
                              capture_output=True, text=True, timeout=300, cwd=str(env.tmp))
        line = next((x for x in done.stdout.splitlines() if x.startswith("FLOOR-RESULT ")), None)
        if line is None:
            return {"status": f"failed: exit {done.returncode}: {done.stderr.strip()[-300:]}"}
        return {"status": "ok", **json.loads(line[len("FLOOR-RESULT "):])}
    except Exception as exc:
        return {"status": f"failed: {short_error(exc)}"}
