"""Dash 4's MCP layer (callbacks exposed as tools to AI agents) sees a ServerStore as it sees a dcc.Store:
tool descriptions show the store's data, tool calls take data for it and return data from it. Only the
caller's own data: a reference from another session is None, as in a callback."""
from __future__ import annotations

import json

import dash
import pandas as pd
import pytest
from apps import STORE_CLASSES
from dash import Input, Output, State, html
from dash_client import DashClient
from dash_features import MCP

pytestmark = MCP  # Dash's MCP layer exists from Dash 4.3

INITIAL = {"n": 5, "label": "hello"}


def mcp_app(store_class, frame_tool=False):
    app = dash.Dash(__name__, enable_mcp=True)
    app.server.config["SECRET_KEY"] = "mcp-test"
    app.layout = html.Div([html.Button(id="btn"), store_class(id="store", data=INITIAL), html.Div(id="out"),
                           store_class(id="dest"), html.Div(id="frame-out")])

    @app.callback(Output("out", "children"), Input("btn", "n_clicks"), State("store", "data"))
    def show(n, data):
        return f"{n}: {json.dumps(data, sort_keys=True)}"

    @app.callback(Output("dest", "data"), Input("btn", "n_clicks"))
    def write(n):
        return {"written": n}

    if frame_tool:
        @app.callback(Output("frame-out", "children"), Output("store", "data"), Input("dest", "data"),
                      prevent_initial_call=True)
        def frame(data):
            return "ok", pd.DataFrame({"a": [1, 2]})

    return app


class MCPClient:
    def __init__(self, app):
        self.http = DashClient(app).http
        self.http.get("/")
        self.calls = 0
        self.rpc("initialize", {"protocolVersion": "2025-03-26", "capabilities": {},
                                "clientInfo": {"name": "test", "version": "1"}})

    def rpc(self, method, params=None):
        self.calls += 1
        response = self.http.post("/_mcp", json={"jsonrpc": "2.0", "id": self.calls, "method": method,
                                                 "params": params or {}},
                                  headers={"Accept": "application/json, text/event-stream"})
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        body = response.get_json()
        assert "result" in body, body
        return body["result"]

    def tools(self):
        return {tool["name"]: tool for tool in self.rpc("tools/list")["tools"]}

    def call(self, name, **arguments):
        result = self.rpc("tools/call", {"name": name, "arguments": arguments})
        assert not result["isError"], result
        return result["structuredContent"]


@pytest.mark.parametrize("name", list(STORE_CLASSES))
def test_tool_descriptions_inputs_and_outputs_see_data(name):
    app = mcp_app(STORE_CLASSES[name])
    mcp = MCPClient(app)
    tools = mcp.tools()
    described = tools["show"]["inputSchema"]["properties"]["data"]["description"]
    assert repr(INITIAL) in described and "dsr2" not in json.dumps(tools)
    assert mcp.call("show", n=3, data={"n": 7})["response"]["out"]["children"] == '3: {"n": 7}'
    assert mcp.call("write", n=4)["response"]["dest"]["data"] == {"written": 4}
    component = mcp.call("get_dash_component", component_id="store", property="data")
    assert "dsr2" not in json.dumps(component) and "hello" in json.dumps(component)


def test_a_reference_in_a_tool_call_is_resolved_for_its_own_session_only():
    from dash_state import ServerStore, get_state_manager

    app = mcp_app(ServerStore)
    browser = DashClient(app)
    browser.layout()
    token = browser.call([("dest", "data")], [("btn", "n_clicks", 9)])["dest"]["data"]
    # the same session (the browser's cookie) calling the MCP endpoint reads its own value ...
    own = MCPClient(app)
    own.http = browser.http
    assert own.call("show", n=1, data=token)["response"]["out"]["children"] == "1: null"  # bound to 'dest'
    assert get_state_manager(app).stats()["misses"]["foreign"] == 1
    stranger = MCPClient(app)  # another session replaying a reference gets nothing
    assert stranger.call("show", n=1, data=token)["response"]["out"]["children"] == "1: null"


def test_a_dataframe_written_through_a_tool_comes_back_as_records():
    from dash_state import ServerStore

    app = mcp_app(ServerStore, frame_tool=True)
    mcp = MCPClient(app)
    assert "frame" in mcp.tools()
    result = mcp.call("frame", data={"x": 1})
    assert result["response"]["store"]["data"] == [{"a": 1}, {"a": 2}]


def _direct_mcp(app, method, params):
    """Dash's MCP layer called as Dash's own MCP unit tests call it: inside a test request context
    (path "/"), through ``_process_mcp_message``, without the /_mcp endpoint."""
    from dash._get_app import app_context
    from dash.mcp._server import _process_mcp_message
    from dash.mcp.primitives.tools.callback_adapter_collection import (
        CallbackAdapterCollection,
    )

    with app.server.test_request_context():
        app_context.set(app)
        app.mcp_callback_map = CallbackAdapterCollection(app)
        return _process_mcp_message({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


@pytest.mark.parametrize("name", list(STORE_CLASSES))
def test_a_tool_called_without_the_endpoint_returns_data(name):
    app = mcp_app(STORE_CLASSES[name])
    app.server.test_client().get("/")  # the app is set up as for its first request
    answer = _direct_mcp(app, "tools/call", {"name": "write", "arguments": {"n": 3}})
    assert answer["result"]["structuredContent"]["response"]["dest"]["data"] == {"written": 3}
    answer = _direct_mcp(app, "tools/call", {"name": "show", "arguments": {"n": 2, "data": {"n": 1}}})
    assert answer["result"]["structuredContent"]["response"]["out"]["children"] == '2: {"n": 1}'


def test_a_server_store_s_storage_type_is_described_as_dcc_store_s():
    from dash.mcp.primitives.tools.input_schemas.input_descriptions import (
        description_component_props as props,
    )

    from dash_state import ServerStore

    mcp_app(ServerStore)
    assert props._PROP_TEMPLATES[("ServerStore", "storage_type")] == props._PROP_TEMPLATES[("Store", "storage_type")]
