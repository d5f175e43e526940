"""The same app with dcc.Store and with ServerStore in headless Chromium: same behaviour, and with
ServerStore neither the callback responses nor the browser's storage carry the data."""
import json

import flask
import pytest
from dash import Input, Output, State, html

from apps import STORE_CLASSES, new_app

pytestmark = pytest.mark.browser

SECRET = "BROWSERSECRET"


def recording_app(store_class, storage_type):
    app = new_app()
    app.layout = html.Div([
        html.Button("write", id="write"),
        html.Button("clear", id="clear"),
        store_class(id="store", storage_type=storage_type),
        html.Div(id="out"),
        html.Div(id="stamp"),
    ])

    @app.callback(Output("store", "data"), Input("write", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"label": f"{SECRET}-{n}", "rows": list(range(1000))}

    @app.callback(Output("store", "clear_data"), Input("clear", "n_clicks"), prevent_initial_call=True)
    def clear(n):
        return True

    @app.callback(Output("out", "children"), Input("store", "data"))
    def show(data):
        return "empty" if data is None else f"{data['label'].split('-')[1]}:{len(data['rows'])}"

    @app.callback(Output("stamp", "children"), Input("store", "modified_timestamp"), State("store", "data"))
    def stamp(ts, data):
        return "never" if ts in (None, -1) else "modified"

    return record_responses(app)


def record_responses(app):
    """Keep every body the server sends to the browser that could carry store data."""
    app.recorded = []

    @app.server.after_request
    def record(response):
        if flask.request.path in ("/", "/_dash-layout", "/_dash-update-component"):
            app.recorded.append(response.get_data(as_text=True))
        return response

    return app


def browser_storage(driver):
    return driver.execute_script(
        "const dump = s => Object.fromEntries(Object.keys(s).map(k => [k, s.getItem(k)]));"
        "return JSON.stringify({local: dump(window.localStorage), session: dump(window.sessionStorage)});"
    )


def assert_no_data_reached_the_browser(app, driver, store_class):
    if store_class is STORE_CLASSES["dcc.Store"]:
        return
    assert not [body for body in app.recorded if SECRET in body]
    assert SECRET not in browser_storage(driver)
    assert SECRET not in driver.page_source


@pytest.mark.parametrize("storage_type", ["memory", "session", "local"])
@pytest.mark.parametrize("store_name", list(STORE_CLASSES))
def test_write_read_reload_and_clear(dash_duo, store_name, storage_type):
    store_class = STORE_CLASSES[store_name]
    app = recording_app(store_class, storage_type)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#out", "empty")
    dash_duo.find_element("#write").click()
    dash_duo.wait_for_text_to_equal("#out", "1:1000")
    dash_duo.wait_for_text_to_equal("#stamp", "modified")
    dash_duo.find_element("#write").click()
    dash_duo.wait_for_text_to_equal("#out", "2:1000")
    if storage_type != "memory":
        stored = json.loads(browser_storage(dash_duo.driver))[storage_type]["store"]
        assert (SECRET in stored) == (store_class is STORE_CLASSES["dcc.Store"])

    dash_duo.driver.refresh()
    expected = "empty" if storage_type == "memory" else "2:1000"
    dash_duo.wait_for_text_to_equal("#out", expected)

    dash_duo.find_element("#clear").click()
    dash_duo.wait_for_text_to_equal("#out", "empty")
    if storage_type != "memory":
        assert "store" not in json.loads(browser_storage(dash_duo.driver))[storage_type]
    assert_no_data_reached_the_browser(app, dash_duo.driver, store_class)
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize("store_name", list(STORE_CLASSES))
def test_local_storage_syncs_tabs_through_the_storage_event(dash_duo, store_name):
    store_class = STORE_CLASSES[store_name]
    app = recording_app(store_class, "local")
    dash_duo.start_server(app)
    driver = dash_duo.driver
    dash_duo.wait_for_text_to_equal("#out", "empty")
    first = driver.current_window_handle
    driver.execute_script("window.open(arguments[0], '_blank');", dash_duo.server_url)
    second = [h for h in driver.window_handles if h != first][0]
    driver.switch_to.window(second)
    dash_duo.wait_for_text_to_equal("#out", "empty")
    dash_duo.find_element("#write").click()
    dash_duo.wait_for_text_to_equal("#out", "1:1000")
    driver.switch_to.window(first)
    dash_duo.wait_for_text_to_equal("#out", "1:1000")  # updated by the other tab's write
    assert_no_data_reached_the_browser(app, driver, store_class)


@pytest.mark.parametrize("store_name", list(STORE_CLASSES))
def test_initial_layout_data(dash_duo, store_name):
    store_class = STORE_CLASSES[store_name]
    app = new_app()
    app.layout = html.Div([store_class(id="store", data={"label": f"{SECRET}-0", "rows": [1, 2]}),
                           html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("store", "data"))
    def show(data):
        return f"{data['label'].split('-')[1]}:{len(data['rows'])}"

    record_responses(app)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#out", "0:2")
    assert_no_data_reached_the_browser(app, dash_duo.driver, store_class)
