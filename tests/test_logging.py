"""dash-state's log lines look like log lines: level and logger name, one per request, no floods."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, sys
    if sys.argv[1] == "configured":
        logging.basicConfig(format="APP %(levelname)s %(name)s %(message)s")
    import dash
    from dash import Input, Output, html
    from dash_state import ServerStore
    app = dash.Dash(__name__)
    app.server.config["SECRET_KEY"] = "x"
    app.layout = html.Div([ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    client = app.server.test_client()
    client.get("/")
    body = {"output": "out.children", "outputs": {"id": "out", "property": "children"},
            "inputs": [{"id": "s", "property": "data", "value": "dsr2.memory." + "A" * 22 + ".s0000000." + "A" * 22}],
            "state": [], "changedPropIds": []}
    for _ in range(3):
        assert client.post("/_dash-update-component", json=body).status_code == 200
""")


def run(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_warning_has_a_level_and_a_logger_name_when_the_app_configured_none():
    lines = [line for line in run("bare").splitlines() if "treated as missing" in line]
    assert len(lines) == 3  # one per request
    assert all(" WARNING dash_state: " in line for line in lines), lines


def test_an_app_that_configured_logging_keeps_its_format():
    lines = [line for line in run("configured").splitlines() if "treated as missing" in line]
    assert len(lines) == 3 and all(line.startswith("APP WARNING dash_state ") for line in lines), lines


def test_a_clientside_reader_of_a_server_store_is_named_once(caplog):
    """With mirror = false, a page whose clientside callback reads a store would fail in JavaScript only."""
    import logging as _logging

    from dash import Input, Output, html

    from apps import new_app
    from dash_client import DashClient
    from dash_state import ServerStore

    caplog.set_level(_logging.WARNING, logger="dash_state")
    app = new_app(STATE_STORES={"readable": {"client_read": True}, "s": {"mirror": False}})
    app.layout = html.Div([ServerStore(id="s", data={"x": 1}), ServerStore(id="readable"), html.Div(id="o"),
                           html.Div(id="p")])
    app.clientside_callback("d => JSON.stringify(d)", Output("o", "children"), Input("s", "data"))
    app.clientside_callback("d => d", Output("p", "children"), Input("readable", "data"))
    client = DashClient(app)
    client.layout()
    client.layout()
    lines = [r.getMessage() for r in caplog.records if "clientside callback" in r.getMessage()]
    assert len(lines) == 1 and "'s'" in lines[0] and "client_read" in lines[0] and "mirror = false" in lines[0]
