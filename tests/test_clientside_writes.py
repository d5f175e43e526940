"""Writes that do not come from a Python callback's output, in headless Chromium, with dcc.Store and with
ServerStore, for every storage_type: a Patch without the store as input, a skipped Patch inside
set_props, a clientside Patch, plain clientside writes, and ``running=``.

Each test runs the same app with both components and compares what a Python reader receives, how often
it fires, and (for ServerStore) that only references reached the browser.
"""
from __future__ import annotations

import itertools
import json
import time

import flask
import pytest
from dash import Input, Output, Patch, State, html, no_update, set_props

from dash_features import SIDE_UPDATE_PATCH
from apps import STORE_CLASSES, new_app

pytestmark = pytest.mark.browser
STORAGE = ["memory", "session", "local"]
CASES = list(itertools.product(STORE_CLASSES, STORAGE))


def ids(case):
    return f"{case[0]}-{case[1]}"


def reader(app, store="store"):
    """A Python reader of the store: shows what it received and counts its calls."""
    app.reads = []

    @app.callback(Output("seen", "children"), Output("calls", "children"), Input(store, "data"))
    def read(data):
        app.reads.append(data)
        return json.dumps(data, sort_keys=True), str(len(app.reads))


def browser_data(dash_duo, store_id="store"):
    """What the browser holds as the store's data (through Dash's own layout state)."""
    return dash_duo.driver.execute_script(
        "const s = window.dash_stores[0].getState(); const p = s.paths.strs[arguments[0]];"
        "let n = s.layout; for (const k of p) { n = n[k]; } return n.props.data;", store_id)


def assert_reference_only(dash_duo, name, store_id="store"):
    if name == "ServerStore":
        held = browser_data(dash_duo, store_id)
        assert held is None or (isinstance(held, str) and held.startswith("dsr2.")), held


def assert_no_console_errors(dash_duo):
    errors = [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"]
    assert errors == [], errors


def settle(dash_duo, selector, text, calls=None):
    dash_duo.wait_for_text_to_equal(selector, text)
    if calls is not None:
        time.sleep(0.6)  # room for a (wrong) second firing after a reference swap
        dash_duo.wait_for_text_to_equal("#calls", calls)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_patch_without_input_applies_to_the_layout_data(dash_duo, case):
    """Case 1: the store still holds its layout data= and a callback returns Patch() without the store
    as Input or State."""
    name, storage = case
    app = new_app()
    app.layout = html.Div([html.Button("inc", id="inc"), STORE_CLASSES[name](id="store", data={"n": 0},
                          storage_type=storage), html.Div(id="seen"), html.Div(id="calls")])

    @app.callback(Output("store", "data"), Input("inc", "n_clicks"), prevent_initial_call=True)
    def inc(_):
        p = Patch()
        p.n += 1
        return p

    reader(app)
    dash_duo.start_server(app)
    settle(dash_duo, "#seen", '{"n": 0}', "1")
    for n in (1, 2, 3):
        dash_duo.find_element("#inc").click()
        settle(dash_duo, "#seen", json.dumps({"n": n}), str(n + 1))
    assert_reference_only(dash_duo, name)
    if storage != "memory":  # kept across a reload, and patched from there
        dash_duo.driver.refresh()
        settle(dash_duo, "#seen", '{"n": 3}')
        dash_duo.find_element("#inc").click()
        settle(dash_duo, "#seen", '{"n": 4}')
    else:  # a reload starts again from the layout's data, in this tab
        dash_duo.driver.refresh()
        settle(dash_duo, "#seen", '{"n": 0}')
        dash_duo.find_element("#inc").click()
        settle(dash_duo, "#seen", '{"n": 1}')
    assert_no_console_errors(dash_duo)


@pytest.mark.parametrize("case", CASES, ids=ids)
@SIDE_UPDATE_PATCH
def test_patch_and_no_update_inside_set_props(dash_duo, case):
    """Case 2: set_props with a Patch (applied) and with no_update or a Patch that does not apply
    (skipped): the store keeps its value, never a placeholder."""
    name, storage = case
    app = new_app()
    app.layout = html.Div([html.Button("inc", id="inc"), html.Button("noop", id="noop"),
                           html.Button("bad", id="bad"),
                           STORE_CLASSES[name](id="store", data={"n": 0, "items": [1]}, storage_type=storage),
                           html.Div(id="seen"), html.Div(id="calls")])

    @app.callback(Input("inc", "n_clicks"), prevent_initial_call=True)
    def inc(_):
        p = Patch()
        p.n += 1
        set_props("store", {"data": p})

    @app.callback(Input("noop", "n_clicks"), prevent_initial_call=True)
    def noop(_):
        set_props("store", {"data": no_update})

    reader(app)
    app.sides = []

    @app.server.after_request
    def keep_side_updates(response):
        if flask.request.path == "/_dash-update-component" and response.status_code == 200:
            app.sides.append(json.loads(response.get_data()).get("sideUpdate"))
        return response

    dash_duo.start_server(app)
    settle(dash_duo, "#seen", '{"items": [1], "n": 0}', "1")
    dash_duo.find_element("#inc").click()
    settle(dash_duo, "#seen", '{"items": [1], "n": 1}', "2")
    dash_duo.find_element("#noop").click()
    time.sleep(0.8)
    dash_duo.find_element("#inc").click()
    settle(dash_duo, "#seen", '{"items": [1], "n": 2}')
    placeholders = [s for s in app.sides if s and "_dash_no_update" in json.dumps(s)]
    if name == "ServerStore":
        assert placeholders == []  # Dash itself sends the placeholder for dcc.Store (a renderer bug)
        assert_reference_only(dash_duo, name)
    assert dash_duo.find_element("#seen").text == '{"items": [1], "n": 2}'


@pytest.mark.parametrize("case", CASES, ids=ids)
@SIDE_UPDATE_PATCH
def test_clientside_patch(dash_duo, case):
    """Case 3: a clientside callback returns dash_clientside.Patch for the store. With mirror = false:
    the default mirrors the store in the browser, where it behaves as the dcc.Store case does."""
    name, storage = case
    app = new_app(STATE_STORES={"store": {"mirror": False}})
    app.layout = html.Div([html.Button("inc", id="inc"), html.Button("push", id="push"),
                           STORE_CLASSES[name](id="store", data={"n": 0, "items": []}, storage_type=storage),
                           html.Div(id="seen"), html.Div(id="calls"), html.Div(id="state")])
    app.clientside_callback(
        "function(n) { return new dash_clientside.Patch().add(['n'], 1).build(); }",
        Output("store", "data"), Input("inc", "n_clicks"), prevent_initial_call=True)
    app.clientside_callback(
        "function(n) { return new dash_clientside.Patch().assign(['items'], [n, 'x']).merge([], {m: n}).build(); }",
        Output("store", "data", allow_duplicate=True), Input("push", "n_clicks"), prevent_initial_call=True)
    reader(app)

    @app.callback(Output("state", "children"), Input("push", "n_clicks"), State("store", "data"),
                  prevent_initial_call=True)
    def as_state(_, data):  # State read after the patch: sees the patched value
        return json.dumps(data, sort_keys=True)

    dash_duo.start_server(app)
    settle(dash_duo, "#seen", '{"items": [], "n": 0}', "1")
    dash_duo.find_element("#inc").click()
    settle(dash_duo, "#seen", '{"items": [], "n": 1}', "2")
    dash_duo.find_element("#inc").click()
    settle(dash_duo, "#seen", '{"items": [], "n": 2}', "3")
    dash_duo.find_element("#push").click()
    settle(dash_duo, "#seen", '{"items": [1, "x"], "m": 1, "n": 2}', "4")
    assert_reference_only(dash_duo, name)
    dash_duo.find_element("#inc").click()
    settle(dash_duo, "#seen", '{"items": [1, "x"], "m": 1, "n": 3}', "5")
    assert_no_console_errors(dash_duo)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_clientside_plain_writes(dash_duo, case):
    """Case 4: a clientside callback writes plain data; dash_clientside.set_props writes too. With
    mirror = false (the default mirrors the store, which then behaves as the dcc.Store case)."""
    name, storage = case
    app = new_app(STATE_STORES={"store": {"mirror": False}})
    app.layout = html.Div([html.Button("write", id="write"), html.Button("side", id="side"),
                           html.Button("read", id="read"),
                           STORE_CLASSES[name](id="store", storage_type=storage),
                           html.Div(id="seen"), html.Div(id="calls"), html.Div(id="later")])
    app.clientside_callback("function(n) { return {n: n, rows: [1, 2, 3]}; }",
                            Output("store", "data"), Input("write", "n_clicks"), prevent_initial_call=True)
    app.clientside_callback(
        "function(n) { dash_clientside.set_props('store', {data: {side: n}}); return dash_clientside.no_update; }",
        Output("side", "title"), Input("side", "n_clicks"), prevent_initial_call=True)
    reader(app)

    @app.callback(Output("later", "children"), Input("read", "n_clicks"), State("store", "data"),
                  prevent_initial_call=True)
    def later(_, data):
        return json.dumps(data, sort_keys=True)

    dash_duo.start_server(app)
    settle(dash_duo, "#seen", "null", "1")
    dash_duo.find_element("#write").click()
    settle(dash_duo, "#seen", '{"n": 1, "rows": [1, 2, 3]}', "2")
    time.sleep(0.5)  # the upload has swapped in a reference by now
    assert_reference_only(dash_duo, name)
    dash_duo.find_element("#read").click()
    settle(dash_duo, "#later", '{"n": 1, "rows": [1, 2, 3]}', "2")
    dash_duo.find_element("#side").click()
    settle(dash_duo, "#seen", '{"side": 1}', "3")
    if storage != "memory":
        dash_duo.driver.refresh()
        settle(dash_duo, "#seen", '{"side": 1}')
    assert_no_console_errors(dash_duo)


@pytest.mark.parametrize("name", list(STORE_CLASSES))
def test_running_outputs_reach_their_readers(dash_duo, name):
    """Case 8: running=[(Output(store, "data"), True, False)] is written by the renderer itself; a reader
    of that store disables the Run button and enables Cancel while the job runs."""
    app = new_app()
    app.layout = html.Div([html.Button("run", id="run"), html.Button("cancel", id="cancel", disabled=True),
                           STORE_CLASSES[name](id="job_running", data=False), html.Div(id="result"),
                           html.Div(id="seen"), html.Div(id="calls")])

    @app.callback(Output("result", "children"), Input("run", "n_clicks"), prevent_initial_call=True,
                  running=[(Output("job_running", "data"), True, False)])
    def run(n):
        time.sleep(1.5)
        return f"done {n}"

    @app.callback(Output("run", "disabled"), Output("cancel", "disabled"), Input("job_running", "data"))
    def buttons(running):
        return bool(running), not running

    reader(app, "job_running")
    dash_duo.start_server(app)
    settle(dash_duo, "#seen", "false")
    dash_duo.find_element("#run").click()
    dash_duo.wait_for_text_to_equal("#seen", "true")
    assert dash_duo.find_element("#run").get_attribute("disabled") == "true"
    assert dash_duo.find_element("#cancel").get_attribute("disabled") is None
    dash_duo.wait_for_text_to_equal("#result", "done 1")
    dash_duo.wait_for_text_to_equal("#seen", "false")
    assert dash_duo.find_element("#run").get_attribute("disabled") is None
    assert app.reads == [False, True, False]
    assert_no_console_errors(dash_duo)
