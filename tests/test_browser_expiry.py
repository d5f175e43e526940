"""The component's use of the server routes in headless Chromium: sliding expiry (an active page keeps
its values alive, an idle one lets them expire), clear_data deleting the server value, and
``window.dash_state.get`` for clientside callbacks."""
import io
import json
import time

import flask
import pytest
from dash import Input, Output, State, html

import dash_state
from apps import new_app
from dash_state import ServerStore

pytestmark = pytest.mark.browser

SECRET = "EXPIRYSECRET"
MISSING = "missing"
TTL = 3
FOREIGN = "dsr2.memory.AAAAAAAAAAAAAAAAAAAAAA.xxxx"


def record_routes(app):
    """Keep, in order, every dash-state route call and callback response: (path, request body, response
    body, time)."""
    app.calls = []
    wsgi = app.server.wsgi_app

    def tee(environ, start_response):  # the raw body, however the route reads it (a bounded stream)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"], environ["test.body"] = io.BytesIO(body), body
        return wsgi(environ, start_response)

    app.server.wsgi_app = tee

    @app.server.after_request
    def record(response):
        path = flask.request.path
        if path.startswith("/_dash-state/") or path == "/_dash-update-component":
            app.calls.append((path, flask.request.environ.get("test.body", b"").decode(),
                              response.get_data(as_text=True), time.monotonic()))
        return response

    return app


def calls(app, name):
    return [call for call in list(app.calls) if call[0] == f"/_dash-state/v1/{name}"]


def written_references(app):
    found = []
    for path, _, body, _ in list(app.calls):
        if path == "/_dash-update-component":
            data = json.loads(body).get("response", {}).get("s", {}).get("data")
            if isinstance(data, str) and data.startswith("dsr2."):
                found.append(data)
    return found


def wait_for(condition, timeout=10.0, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def page_errors(dash_duo):
    """SEVERE browser log entries, except Chrome's own "Failed to load resource" line for a route that
    answered 404 on purpose (a missing value)."""
    return [entry for entry in dash_duo.get_logs()
            if not (entry.get("source") == "network" and "/_dash-state/v1/get" in entry.get("message", "")
                    and "404" in entry.get("message", ""))]


def expiry_app():
    app = new_app(STATE_STORES={"s": {"ttl": TTL}})
    app.layout = html.Div([
        html.Button("write", id="write"),
        html.Button("read", id="read"),
        ServerStore(id="s"),
        html.Div(id="written"),
        html.Div(id="out"),
    ])

    @app.callback(Output("s", "data"), Output("written", "children"), Input("write", "n_clicks"),
                  prevent_initial_call=True)
    def write(n):
        return {"label": f"{SECRET}-{n}", "rows": list(range(100))}, f"written {n}"

    @app.callback(Output("out", "children"), Input("read", "n_clicks"), State("s", "data"),
                  prevent_initial_call=True)
    def read(n, data):
        return MISSING if data is None else data["label"]

    return record_routes(app)


def write_once(dash_duo, app):
    dash_duo.find_element("#write").click()
    dash_duo.wait_for_text_to_equal("#written", "written 1")
    return wait_for(lambda: written_references(app), message="the write's reference")[-1]


def assert_touches_carry_no_data(app, reference):
    touches = calls(app, "touch")
    for _, request, response, _ in touches:
        assert SECRET not in request and SECRET not in response
        assert json.loads(request) == {"stores": [{"id": "s", "reference": reference}]}
        assert set(json.loads(response)) == {"alive", "interval"}


def test_active_page_keeps_the_value_alive(dash_duo):
    app = expiry_app()
    dash_duo.start_server(app)
    reference = write_once(dash_duo, app)
    written_at = time.monotonic()
    while time.monotonic() - written_at < 8:  # well past the TTL of 3 s
        time.sleep(1)
        dash_duo.driver.execute_script(
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Shift', bubbles: true}));")
    touches = calls(app, "touch")
    dash_duo.find_element("#read").click()
    dash_duo.wait_for_text_to_equal("#out", f"{SECRET}-1")

    assert len(touches) >= 2, touches
    # Every touch came while the value was alive, and it kept it alive.
    assert all(json.loads(response)["alive"] == [True] for _, _, response, _ in touches)
    assert json.loads(touches[0][2])["interval"] == TTL * 0.5
    # Consecutive touches (and the last one before the read) are closer than the TTL.
    moments = [written_at] + [t for *_, t in touches] + [time.monotonic()]
    assert max(b - a for a, b in zip(moments, moments[1:])) < TTL
    assert_touches_carry_no_data(app, reference)
    assert page_errors(dash_duo) == []


def test_idle_page_lets_the_value_expire(dash_duo):
    app = expiry_app()
    dash_duo.start_server(app)
    reference = write_once(dash_duo, app)
    time.sleep(6)  # no user activity: the first touch (1 s after the write) is the only one
    touches = calls(app, "touch")
    dash_duo.find_element("#read").click()
    dash_duo.wait_for_text_to_equal("#out", MISSING)

    assert len(touches) <= 1, touches
    assert_touches_carry_no_data(app, reference)
    assert dash_state.get_state_manager(app).stats()["misses"]["expired"] >= 1
    assert page_errors(dash_duo) == []


def test_clear_data_deletes_the_server_value(dash_duo):
    app = new_app()
    app.layout = html.Div([
        html.Button("write", id="write"),
        html.Button("clear", id="clear"),
        ServerStore(id="s", storage_type="session"),
        html.Div(id="written"),
        html.Div(id="out"),
    ])

    @app.callback(Output("s", "data"), Output("written", "children"), Input("write", "n_clicks"),
                  prevent_initial_call=True)
    def write(n):
        return {"label": f"{SECRET}-{n}"}, f"written {n}"

    @app.callback(Output("s", "clear_data"), Input("clear", "n_clicks"), prevent_initial_call=True)
    def clear(n):
        return True

    @app.callback(Output("out", "children"), Input("s", "data"))
    def show(data):
        return "empty" if data is None else data["label"]

    record_routes(app)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#out", "empty")
    reference = write_once(dash_duo, app)
    dash_duo.wait_for_text_to_equal("#out", f"{SECRET}-1")
    manager = dash_state.get_state_manager(app)
    deleted = manager.stats()["deleted"]

    dash_duo.find_element("#clear").click()
    dash_duo.wait_for_text_to_equal("#out", "empty")
    deletes = wait_for(lambda: calls(app, "delete"), message="the delete request")
    assert [(json.loads(request), json.loads(response)) for _, request, response, _ in deletes] == [
        ({"id": "s", "reference": reference}, {"deleted": True})]
    assert manager.stats()["deleted"] == deleted + 1  # the server value went, on whatever backend
    assert page_errors(dash_duo) == []


def test_clientside_get(dash_duo):
    app = new_app(STATE_STORES={"c": {"backend": "client"}, "s": {"client_read": True}})
    app.layout = html.Div([
        html.Button("write", id="write"),
        html.Button("forge", id="forge"),
        ServerStore(id="s"),
        ServerStore(id="c"),
        html.Div(id="written"),
        html.Div(id="cs"),
        html.Div(id="cs-client"),
    ])

    @app.callback(Output("s", "data"), Output("c", "data"), Output("written", "children"),
                  Input("write", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"label": f"{SECRET}-{n}"}, {"label": f"client-{n}"}, f"written {n}"

    app.clientside_callback(
        "async function(ref) { const v = await window.dash_state.get(ref, 's'); return v ? v.label : 'none'; }",
        Output("cs", "children"), Input("s", "data"))
    app.clientside_callback(
        "async function(data) { const v = await window.dash_state.get(data, 'c'); return v ? v.label : 'none'; }",
        Output("cs-client", "children"), Input("c", "data"))
    app.clientside_callback(
        f"function(n) {{ return '{FOREIGN}'; }}",
        Output("s", "data", allow_duplicate=True), Input("forge", "n_clicks"), prevent_initial_call=True)

    record_routes(app)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#cs", "none")
    dash_duo.wait_for_text_to_equal("#cs-client", "none")
    driver = dash_duo.driver
    driver.execute_script(
        "window.__warnings = []; const warn = console.warn;"
        "console.warn = (...args) => { window.__warnings.push(args.join(' ')); warn(...args); };")
    assert driver.execute_script("return Object.keys(window.dash_state).sort();") == ["ServerStore", "StatePanel", "get", "liveStatus"]

    write_once(dash_duo, app)
    dash_duo.wait_for_text_to_equal("#cs", f"{SECRET}-1")
    dash_duo.wait_for_text_to_equal("#cs-client", "client-1")  # real data: resolved as is

    dash_duo.find_element("#forge").click()
    dash_duo.wait_for_text_to_equal("#cs", "none")
    direct = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"window.dash_state.get('{FOREIGN}', 's').then(v => done(['ok', v]), e => done(['error', String(e)]));")
    assert direct == ["ok", None]
    warnings = driver.execute_script("return window.__warnings;")
    assert len(warnings) == 2 and all("missing" in w for w in warnings), warnings
    gets = calls(app, "get")
    assert [json.loads(request) for _, request, _, _ in gets][-2:] == [
        {"id": "s", "reference": FOREIGN}, {"id": "s", "reference": FOREIGN}]
    # the forged reference that clientside code wrote into the store is reported loudly
    errors = page_errors(dash_duo)
    assert len(errors) == 1 and "not a valid reference" in errors[0]["message"], errors


def test_clientside_get_needs_client_read(dash_duo):
    """Without client_read (and with mirror = false), window.dash_state.get is refused: server data
    stays on the server."""
    app = new_app(STATE_STORES={"s": {"mirror": False}})
    app.layout = html.Div([html.Button("write", id="write"), ServerStore(id="s"), html.Div(id="written"),
                           html.Div(id="cs")])

    @app.callback(Output("s", "data"), Output("written", "children"), Input("write", "n_clicks"),
                  prevent_initial_call=True)
    def write(n):
        return {"label": f"{SECRET}-{n}"}, f"written {n}"

    app.clientside_callback(
        "async function(ref) { if (!ref) { return 'none'; } try { const v = await window.dash_state.get(ref, 's');"
        " return 'got ' + JSON.stringify(v); } catch (e) { return 'refused: ' + e.message; } }",
        Output("cs", "children"), Input("s", "data"))
    record_routes(app)
    dash_duo.start_server(app)
    write_once(dash_duo, app)
    dash_duo.wait_for_contains_text("#cs", "refused: ")
    assert SECRET not in dash_duo.find_element("#cs").text
    assert "client_read" in dash_duo.find_element("#cs").text
    assert all(SECRET not in response for _, _, response, _ in calls(app, "get"))
