"""The mirror: a ServerStore whose data a clientside callback takes or sets is held in the browser too,
as dcc.Store holds it, with no setting; ``mirror = false`` keeps only its reference there.

The browser side (clientside readers and clientside Patch on a mirrored store) is checked against
dcc.Store in tests/test_dash_suite_parity.py; here: which stores are mirrored, in every worker, and
what the server sends and accepts for them.
"""
from __future__ import annotations

import json
import logging
import re
import time

import dash
import flask
import pytest
from apps import new_app
from dash import ALL, MATCH, Input, Output, State, html
from dash_client import DashClient

from dash_state import ServerStore, get_state_manager

READ = "function(d) { return JSON.stringify(d); }"


def app_with(**store_settings):
    app = new_app(STATE_STORES=store_settings)
    app.layout = html.Div([
        html.Button(id="btn"), html.Div(id="js"), html.Div(id="py"),
        ServerStore(id="read-js", data=[1, 2, 3]), ServerStore(id="state-js", data={"a": 1}),
        ServerStore(id="write-js"), ServerStore(id="server-only", data={"b": 2}),
        ServerStore(id={"type": "cart", "index": 1}, data=[1]), ServerStore(id={"type": "other", "index": 1}, data=[2]),
    ])
    app.clientside_callback(READ, Output("js", "children"), Input("read-js", "data"), State("state-js", "data"))
    app.clientside_callback("function(n) { return [n]; }", Output("write-js", "data", allow_duplicate=True),
                            Input("btn", "n_clicks"), prevent_initial_call=True)
    app.clientside_callback(READ, Output({"type": "cart", "index": MATCH}, "title"),
                            Input({"type": "cart", "index": MATCH}, "data"))

    @app.callback(Output("py", "children"), Input("server-only", "data"), Input("read-js", "data"))
    def show(server_only, read_js):
        return repr((server_only, read_js))

    return app


def layout_data(client):
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "ServerStore":
                props = node["props"]
                found[dash._utils.stringify_id(props["id"])] = props.get("data")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(client.layout())
    return found


def test_stores_that_clientside_callbacks_use_reach_the_browser_as_data():
    client = DashClient(app_with())
    data = layout_data(client)
    assert data["read-js"] == [1, 2, 3] and data["state-js"] == {"a": 1}  # Input and State of a clientside callback
    assert data['{"index":1,"type":"cart"}'] == [1]  # a pattern-matching Input (MATCH)
    assert data["server-only"].startswith("dsr2.")  # no clientside user: a reference, as before
    assert data['{"index":1,"type":"other"}'].startswith("dsr2.")  # another family: not matched


def test_each_mirrored_store_is_named_once_in_the_log_with_its_callback(caplog):
    app = app_with()
    with caplog.at_level(logging.INFO, logger="dash_state"):
        for _ in range(3):
            DashClient(app).layout()
    lines = [r.getMessage() for r in caplog.records if "is mirrored in the browser" in r.getMessage()]
    assert len(lines) == len(set(lines))
    named = {line.split("'")[1] for line in lines}
    assert {"read-js", "state-js", '{"index":1,"type":"cart"}'} <= named
    assert "server-only" not in named
    assert any("'read-js'" in line and "js.children" in line and "mirror = false" in line for line in lines)


def test_a_store_a_clientside_callback_writes_is_mirrored_too():
    app = app_with()
    manager = get_state_manager(app)
    DashClient(app).layout()
    settings = manager.settings("write-js")
    assert settings.backend == "client" and settings.mirrored  # a clientside Patch needs the value there


def test_python_callbacks_receive_and_send_a_mirrored_store_s_data_as_data():
    client = DashClient(app_with())
    client.layout()
    answer = client.call([("py", "children")], [("server-only", "data", None), ("read-js", "data", [4, 5])])
    assert answer["py"]["children"] == repr((None, [4, 5]))  # the data itself, as for a dcc.Store


def test_mirror_false_keeps_only_the_reference_in_the_browser_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="dash_state"):
        client = DashClient(app_with(**{"read-js": {"mirror": False}}))
        data = layout_data(client)
    assert data["read-js"].startswith("dsr2.") and data["state-js"] == {"a": 1}
    assert any("'read-js' is read by a clientside callback" in r.getMessage() and "mirror = false" in r.getMessage()
               for r in caplog.records)


def test_client_read_stores_keep_their_reference_for_window_dash_state_get():
    client = DashClient(app_with(**{"read-js": {"client_read": True}}))
    assert layout_data(client)["read-js"].startswith("dsr2.")


def test_a_worker_that_never_served_the_layout_decides_the_same():
    app = app_with()
    manager = get_state_manager(app)  # no layout served, no request yet
    assert manager.settings("read-js").backend == "client"
    assert manager.settings('{"index":7,"type":"cart"}').backend == "client"  # a cart created later
    assert manager.settings("server-only").backend == app.server.config.get("STATE_BACKEND", "local")


def test_a_clientside_callback_registered_later_is_picked_up():
    app = app_with()
    manager = get_state_manager(app)
    DashClient(app).layout()
    assert manager.settings("server-only").backend != "client"
    app.clientside_callback(READ, Output("btn", "title"), Input("server-only", "data"))
    assert manager.settings("server-only").backend == "client"


def test_dash_callback_global_clientside_callbacks_count():
    app = new_app()
    app.layout = html.Div([ServerStore(id="g", data=[1]), html.Div(id="g-out")])
    dash.clientside_callback(READ, Output("g-out", "children"), Input("g", "data"))
    assert layout_data(DashClient(app))["g"] == [1]


def test_all_wildcards_mirror_every_matching_store():
    app = new_app()
    app.layout = html.Div([ServerStore(id={"k": "row", "i": i}, data=i) for i in range(3)] + [html.Div(id="sum")])
    app.clientside_callback("function(v) { return v.length; }", Output("sum", "children"),
                            Input({"k": "row", "i": ALL}, "data"))
    data = layout_data(DashClient(app))
    assert [data[f'{{"i":{i},"k":"row"}}'] for i in range(3)] == [0, 1, 2]


def test_a_store_written_by_inline_clientside_set_props_is_mirrored():
    app = new_app()
    app.layout = html.Div([html.Button(id="go"), ServerStore(id="side", data={"n": 1}),
                           ServerStore(id="untouched", data={"n": 2})])
    app.clientside_callback("function(n) { dash_clientside.set_props('side', {data: {n: n}}); "
                            "dash_clientside.set_props('untouched', {title: 'x'}); }",
                            Input("go", "n_clicks"), prevent_initial_call=True)
    data = layout_data(DashClient(app))
    assert data["side"] == {"n": 1} and data["untouched"].startswith("dsr2.")


def test_the_index_page_lists_the_stores_the_browser_holds():
    app = app_with(**{"server-only": {"backend": "client"}, "state-js": {"mirror": False}})
    config = json.loads(re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>',
                                  DashClient(app).index(), re.DOTALL).group(1))
    held = config["dash_state"]
    assert set(held["ids"]) == {"read-js", "write-js", "server-only"}  # not state-js (mirror = false)
    assert held["patterns"] == [{"index": ["MATCH"], "type": "cart"}]


@pytest.mark.browser
def test_a_mirrored_store_that_starts_empty_uploads_nothing(dash_duo):
    """The component knows from the index page that the store is held in the browser: a value a Python
    callback writes there is not sent back to /put to learn it."""
    app = new_app()
    app.layout = html.Div([html.Button("go", id="go"), ServerStore(id="empty"), html.Div(id="js")])
    puts = []
    app.server.before_request(lambda: puts.append(1) if flask.request.path.endswith("/put") else None)

    @app.callback(Output("empty", "data"), Input("go", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"rows": list(range(n))}

    app.clientside_callback("function(d) { return d ? d.rows.length : 'none'; }", Output("js", "children"),
                            Input("empty", "data"))
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#js", "none")
    for clicks in (1, 2, 3):
        dash_duo.find_element("#go").click()
        dash_duo.wait_for_text_to_equal("#js", str(clicks))
    time.sleep(0.5)  # room for an upload the component would send after the swap
    assert puts == []
    assert [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"] == []
