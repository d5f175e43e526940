"""The dev tools' Stores panel and the demo's "Where the data lives" panel count browser bytes the same way,
and the open Stores panel is docked beside the page instead of covering it."""
import dash
import pytest
from dash import Input, Output, dash_table, html
from dash_features import DEVTOOL_HOOK
from dash_client import DashClient

import dash_state
from dash_state import ServerStore
from dash_state.glue.devtools import browser_bytes


@pytest.mark.parametrize("data, size", [
    (None, 0),
    ("dsr2.local.abc", 14),  # a reference: its length, without the quotes JSON adds
    ("é", 2),  # UTF-8 bytes
    ({"a": [1, 2]}, len('{"a":[1,2]}')),  # a client store's data: its compact JSON
])
def test_browser_bytes(data, size):
    assert browser_bytes(data) == size


def test_the_panel_route_and_describe_agree_on_browser_bytes():
    app = dash.Dash(__name__)
    app.server.config.update(SECRET_KEY="k")
    app.layout = html.Div([ServerStore(id="s", data={"rows": list(range(100))})])
    app._dev_tools.ui = True  # what app.run(debug=True) sets: the route answers only then
    client = DashClient(app)
    reference = client.layout()["props"]["children"][0]["props"]["data"]
    answer = client.http.post("/_dash-state/v1/devtools", json={"stores": [{"id": "s", "reference": reference}]})
    row = answer.get_json()["stores"][0]
    with app.server.test_request_context("/"):
        described = dash_state.get_state_manager(app).describe("s", reference, client.namespace())
    assert row["browser_bytes"] == described["browser_bytes"] == len(reference)
    assert row["server_bytes"] == described["server_bytes"] > 0


def overlap(a, b) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


@pytest.mark.browser
@DEVTOOL_HOOK
def test_the_open_panel_covers_none_of_the_page_and_closing_it_gives_the_width_back(dash_duo):
    app = dash.Dash(__name__)
    app.server.config.update(SECRET_KEY="k")
    rows = [{"name": f"row {i}", "value": i} for i in range(20)]
    app.layout = html.Div([ServerStore(id="s"), html.Button("go", id="go"),
                           dash_table.DataTable(id="table", data=rows, style_table={"width": "100%"})])

    @app.callback(Output("s", "data"), Input("go", "n_clicks"))
    def write(n):
        return {"n": n, "rows": rows}

    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app, debug=True, use_reloader=False, dev_tools_hot_reload=False)
    table = dash_duo.wait_for_element("#table")
    before = dict(table.rect)
    dash_duo.wait_for_element("#dash-state-devtools-button").click()
    panel = dash_duo.wait_for_element("#dash-state-devtools-panel")
    dash_duo.wait_for_contains_text("#dash-state-devtools-panel", "local")
    dash_duo._wait_for(lambda _: table.rect["width"] < before["width"], timeout=5, msg="the page was not narrowed")
    assert not overlap(panel.rect, table.rect), (panel.rect, table.rect)
    assert "Browser: bytes of the store's data in the browser (the reference)" in panel.text
    dash_duo.find_element("#dash-state-devtools-close").click()
    dash_duo._wait_for(lambda _: not dash_duo.find_elements("#dash-state-devtools-panel"), timeout=5,
                       msg="the panel did not close")
    assert dash_duo.driver.execute_script("return document.body.style.marginRight") == ""
    assert table.rect["width"] == before["width"]
