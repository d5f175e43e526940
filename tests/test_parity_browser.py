"""Drop-in parity in the real renderer: the same app with dcc.Store and with ServerStore shows the same
thing after the same clicks, and with ServerStore no callback response carries the data."""
import gzip
import json

import dash
import pytest
from apps import STORE_CLASSES, new_app
from dash import (
    ALL,
    ALLSMALLER,
    MATCH,
    Input,
    Output,
    Patch,
    State,
    ctx,
    dcc,
    html,
    no_update,
    set_props,
)
from dash.exceptions import PreventUpdate

pytestmark = pytest.mark.browser
SECRET = "PARITYSECRET"


RECORDED = ("/_dash-layout", "/_dash-update-component")


def record(app):
    """Keep the body of every layout and callback response the server sends, on Flask, Quart (their
    after_request) or FastAPI (a pure ASGI middleware: it sees the bytes as they go out)."""
    app.bodies = []
    kind = getattr(getattr(app, "backend", None), "server_type", None) or "flask"
    if kind == "flask":
        import flask

        @app.server.after_request
        def keep(response):
            if flask.request.path in RECORDED:
                app.bodies.append(response.get_data(as_text=True))
            return response
    elif kind == "quart":
        import quart

        @app.server.after_request
        async def keep_quart(response):
            if quart.request.path in RECORDED:
                app.bodies.append(await response.get_data(as_text=True))
            return response
    else:
        app.server.add_middleware(_Recorder, bodies=app.bodies)


class _Recorder:
    def __init__(self, app, bodies):
        self.app, self.bodies = app, bodies

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in RECORDED:
            await self.app(scope, receive, send)
            return
        chunks, gzipped = [], False

        async def keep(message):
            nonlocal gzipped
            if message["type"] == "http.response.start":
                gzipped = any(k.lower() == b"content-encoding" and b"gzip" in v for k, v in message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    data = b"".join(chunks)
                    self.bodies.append((gzip.decompress(data) if gzipped and data else data).decode())
            await send(message)
        await self.app(scope, receive, keep)


STORE_IDS = ("s", "shell", "page-store")


def assert_private(app, store_name):
    """With ServerStore, every store value the server sent is a reference. (The apps echo the data
    into Divs on purpose; those bodies are the app's own output, not the store's.)"""
    assert app.bodies, "no layout or callback response was recorded"
    if store_name != "ServerStore":
        return
    for body in app.bodies:
        if not body:
            continue  # 204: PreventUpdate
        found = json.loads(body)
        for part in (found.get("response", {}), found.get("sideUpdate", {})):
            for component_id, props in part.items():
                is_store = component_id in STORE_IDS or '"type":"st"' in component_id
                if is_store and "data" in props:
                    value = props["data"]
                    assert value is None or str(value).startswith("dsr2."), (component_id, value)
        if "props" in found:  # the layout
            assert SECRET not in body


def features_app(store_class):
    app = new_app()
    fired = {"n": 0}
    buttons = ["write", "patch", "noupdate", "prevent", "setprops", "peek"]
    app.layout = html.Div([*(html.Button(b, id=b) for b in buttons), store_class(id="s"),
                           html.Div(id="view"), html.Div(id="peeked"), html.Div(id="status"), html.Div(id="fired")])

    @app.callback(Output("s", "data"), Output("status", "children"), Input("write", "n_clicks"),
                  prevent_initial_call=True)
    def write(n):  # multi-output, prevent_initial_call
        return {"items": [1, 2, 3], "label": SECRET}, "written"

    @app.callback(Output("s", "data", allow_duplicate=True), Input("patch", "n_clicks"), prevent_initial_call=True)
    def patch(n):  # allow_duplicate + Patch
        p = Patch()
        p["items"].append(4)
        p["label"] += "!"
        return p

    @app.callback(Output("s", "data", allow_duplicate=True), Output("status", "children", allow_duplicate=True),
                  Input("noupdate", "n_clicks"), prevent_initial_call=True)
    def skip(n):
        return no_update, "skipped"

    @app.callback(Output("s", "data", allow_duplicate=True), Input("prevent", "n_clicks"), prevent_initial_call=True)
    def prevent(n):
        raise PreventUpdate

    @app.callback(Input("setprops", "n_clicks"), prevent_initial_call=True)
    def via_set_props(n):  # no output, set_props
        set_props("s", {"data": {"items": [9], "label": SECRET + "-set"}})

    @app.callback(Output("view", "children"), Input("s", "data"))
    def view(data):
        return json.dumps(data, sort_keys=True)

    @app.callback(Output("peeked", "children"), Input("peek", "n_clicks"), State("s", "data"),
                  prevent_initial_call=True)
    def peek(n, data):  # State
        return json.dumps(data, sort_keys=True)

    @app.callback(Output("fired", "children"), Input("s", "modified_timestamp"))
    def count(ts):
        fired["n"] += 1
        return str(fired["n"])

    record(app)
    return app


@pytest.mark.parametrize("store_name", list(STORE_CLASSES))
def test_callback_features(dash_duo, store_name):
    app = features_app(STORE_CLASSES[store_name])
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#view", "null")
    dash_duo.wait_for_text_to_equal("#fired", "1")

    def click(button, view, status=None, fired=None):
        dash_duo.find_element(f"#{button}").click()
        dash_duo.wait_for_text_to_equal("#view", view)
        if status:
            dash_duo.wait_for_text_to_equal("#status", status)
        if fired:
            dash_duo.wait_for_text_to_equal("#fired", fired)

    click("write", json.dumps({"items": [1, 2, 3], "label": SECRET}, sort_keys=True), "written", "2")
    click("patch", json.dumps({"items": [1, 2, 3, 4], "label": SECRET + "!"}, sort_keys=True), fired="3")
    click("noupdate", json.dumps({"items": [1, 2, 3, 4], "label": SECRET + "!"}, sort_keys=True), "skipped")
    click("prevent", json.dumps({"items": [1, 2, 3, 4], "label": SECRET + "!"}, sort_keys=True))
    click("setprops", json.dumps({"items": [9], "label": SECRET + "-set"}, sort_keys=True), fired="4")
    dash_duo.find_element("#peek").click()
    dash_duo.wait_for_text_to_equal("#peeked", json.dumps({"items": [9], "label": SECRET + "-set"}, sort_keys=True))
    assert dash_duo.find_element("#fired").text == "4"  # no_update and PreventUpdate fired nothing
    assert_private(app, store_name)
    assert dash_duo.get_logs() == []


def pattern_app(store_class):
    app = new_app()
    app.layout = html.Div(
        [html.Button(f"b{i}", id={"type": "btn", "index": i}) for i in range(3)]
        + [store_class(id={"type": "st", "index": i}) for i in range(3)]
        + [html.Div(id={"type": "smaller", "index": i}) for i in range(3)]
        + [html.Div(id="total"), html.Div(id="trigger")]
    )

    @app.callback(Output({"type": "st", "index": MATCH}, "data"), Input({"type": "btn", "index": MATCH}, "n_clicks"),
                  prevent_initial_call=True)
    def write(n):
        return {"n": n, "label": SECRET}

    @app.callback(Output("total", "children"), Output("trigger", "children"),
                  Input({"type": "st", "index": ALL}, "data"))
    def total(values):
        triggered = ctx.triggered_id
        seen = [entry["id"]["index"] for entry in ctx.inputs_list[0]]
        return (str(sum((v or {}).get("n", 0) for v in values)),
                f"{triggered['index'] if triggered else '-'}|{seen}")

    @app.callback(Output({"type": "smaller", "index": MATCH}, "children"),
                  Input({"type": "st", "index": MATCH}, "data"),
                  State({"type": "st", "index": ALLSMALLER}, "data"))
    def smaller(mine, before):
        return f"{(mine or {}).get('n', 0)}+{sum((v or {}).get('n', 0) for v in before)}"

    record(app)
    return app


@pytest.mark.parametrize("store_name", list(STORE_CLASSES))
def test_pattern_matching(dash_duo, store_name):
    app = pattern_app(STORE_CLASSES[store_name])
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#total", "0")
    def css(kind, i):
        return '#\\{\\"index\\"\\:' + str(i) + '\\,\\"type\\"\\:\\"' + kind + '\\"\\}'

    total = 0
    for i, clicks in ((0, 1), (2, 2)):
        for _ in range(clicks):
            dash_duo.find_element(css("btn", i)).click()
            total += 1  # one click at a time: the last callback to run is then the last click's (store 2's)
            dash_duo.wait_for_text_to_equal("#total", str(total))
    assert total == 3  # 1 + 0 + 2
    dash_duo.wait_for_text_to_equal("#trigger", "2|[0, 1, 2]")
    dash_duo.wait_for_text_to_equal(css("smaller", 2), "2+1")  # ALLSMALLER saw store 0 and 1
    dash_duo.wait_for_text_to_equal(css("smaller", 1), "0+0")  # store 1 never changed: initial call only
    assert_private(app, store_name)


@pytest.mark.parametrize("store_name", list(STORE_CLASSES))
def test_pages_share_a_store_in_the_app_shell(dash_duo, store_name):
    store_class = STORE_CLASSES[store_name]
    app = new_app({"use_pages": True, "pages_folder": ""})
    dash.register_page("writer", path="/", layout=html.Div([html.Button("write", id="w"), html.Div(id="w-out")]))
    dash.register_page("reader", path="/reader",
                       layout=lambda: html.Div([store_class(id="page-store", data={"made": SECRET}),
                                                html.Div(id="r-out"), html.Div(id="r-page")]))

    @app.callback(Output("shell", "data"), Output("w-out", "children"), Input("w", "n_clicks"),
                  prevent_initial_call=True)
    def write(n):
        return {"from": "writer", "label": SECRET, "n": n}, "done"

    @app.callback(Output("r-out", "children"), Output("r-page", "children"), Input("r-out", "id"),
                  State("shell", "data"), State("page-store", "data"))
    def read(_, shell, page):
        return f"{shell['from']}:{shell['n']}", page["made"][:6]

    app.layout = html.Div([store_class(id="shell", storage_type="session"), dcc.Link("to reader", href="/reader",
                                                                                   id="link"), dash.page_container])
    record(app)
    try:
        dash_duo.start_server(app)
        dash_duo.find_element("#w").click()
        dash_duo.wait_for_text_to_equal("#w-out", "done")
        dash_duo.find_element("#link").click()
        dash_duo.wait_for_text_to_equal("#r-out", "writer:1")
        dash_duo.wait_for_text_to_equal("#r-page", SECRET[:6])  # a layout function's initial data
        assert_private(app, store_name)
    finally:
        dash._pages.PAGE_REGISTRY.clear()
