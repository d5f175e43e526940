"""ServerStore in Dash's websocket callbacks (Dash >= 4.2, ``websocket=True`` or
``Dash(websocket_callbacks=True)``) on FastAPI and Quart.

In process, through Starlette's TestClient, which speaks ASGI (HTTP and websocket) to the FastAPI app
and to the Quart app alike: the websocket handshake carries the client's cookie jar, as a browser's
does. Then a real uvicorn process driven by headless Chromium (tests/websocket_app.py).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

import pandas as pd
import pytest
from dash import Dash, Input, Output, State, html, set_props

from dash_features import WEBSOCKET_STORES
from dash_state import ServerStore

BACKENDS = ["fastapi", "quart"]
pytestmark = [pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"), WEBSOCKET_STORES]
ORIGIN = {"origin": "http://testserver"}


def _secret(app: Dash, backend: str) -> None:
    if backend == "fastapi":
        app.server.state.SECRET_KEY = "test-secret"
    else:
        app.server.config["SECRET_KEY"] = "test-secret"


def _payload(outputs, inputs, state=(), hints=None) -> dict:
    def item(id_, prop, *value):
        return {"id": id_, "property": prop, **({"value": value[0]} if value else {})}

    body = {"output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".." if len(outputs) > 1
            else f"{outputs[0][0]}.{outputs[0][1]}" if outputs else "",
            "outputs": [item(i, p) for i, p in outputs] if len(outputs) > 1 else
            (item(*outputs[0]) if outputs else []),
            "inputs": [item(*i) for i in inputs], "state": [item(*s) for s in state],
            "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs[:1]]}
    if hints is not None:  # what src_js/renderer.js adds: the outputs that are ServerStores
        body["dash_state"] = hints
    return body


class Browser:
    """One browser: its own cookie jar, HTTP requests and a websocket connection, as the renderer uses them."""

    _ids = itertools.count()

    def __init__(self, app: Dash):
        from starlette.testclient import TestClient

        self.http = TestClient(app.server, base_url="http://testserver")
        self.http.__enter__()  # the lifespan: Dash's FastAPI catch-all route is added there

    def close(self) -> None:
        self.http.__exit__(None, None, None)

    def load(self) -> None:
        """The index page (it mints the identity cookie) and the layout."""
        assert self.http.get("/").status_code == 200
        assert self.http.get("/_dash-layout").status_code == 200

    def connect(self):
        return self.http.websocket_connect("/_dash-ws-callback", headers=ORIGIN)

    def send(self, ws, outputs, inputs, state=(), hints=None) -> str:
        request_id = f"r{next(self._ids)}"
        ws.send_json({"type": "callback_request", "requestId": request_id, "rendererId": "test",
                      "payload": _payload(outputs, inputs, state, hints)})
        return request_id

    @staticmethod
    def receive(ws, request_ids, side=None) -> dict:
        """The callback responses for ``request_ids`` (and the ``set_props`` messages into ``side``)."""
        got: dict = {}
        while set(request_ids) - set(got):
            message = ws.receive_json()
            for entry in message if isinstance(message, list) else [message]:
                if entry.get("type") == "callback_response":
                    got[entry["requestId"]] = entry["payload"]
                elif entry.get("type") == "set_props" and side is not None:
                    side.append(entry["payload"])
        return got

    def call(self, ws, outputs, inputs, state=(), hints=None, side=None) -> dict:
        request_id = self.send(ws, outputs, inputs, state, hints)
        return self.receive(ws, [request_id], side)[request_id]

    def http_call(self, outputs, inputs, state=()) -> dict:
        response = self.http.post("/_dash-update-component", content=json.dumps(_payload(outputs, inputs, state)),
                                  headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text[:2000]
        return response.json()["response"]


@pytest.fixture
def browsers():
    made: list[Browser] = []

    def make(app: Dash) -> Browser:
        made.append(Browser(app))
        return made[-1]
    yield make
    for browser in made:
        browser.close()


FRAME = pd.DataFrame({"region": ["North", "South", "East"], "quantity": [3, 5, 7]})


def frame_app(backend: str, asynchronous: bool = False, every: bool = False) -> Dash:
    """``go`` writes a DataFrame into the ServerStore ``s`` over the websocket, and ``side`` into ``t``
    through set_props; ``read`` (websocket) and ``read_http`` (HTTP) show what ``s`` holds."""
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend, websocket_callbacks=every)
    _secret(app, backend)
    app.layout = html.Div([html.Button(id="go"), ServerStore(id="s"), ServerStore(id="t"), html.Div(id="out"),
                           html.Div(id="out-http"), html.Button(id="go-http")])
    ws = {} if every else {"websocket": True}

    if asynchronous:
        @app.callback(Output("s", "data"), Input("go", "n_clicks"), prevent_initial_call=True, **ws)
        async def go(n):
            await asyncio.sleep(0)
            set_props("t", {"data": {"side": n}})
            return FRAME.assign(quantity=FRAME["quantity"] * n)
    else:
        @app.callback(Output("s", "data"), Input("go", "n_clicks"), prevent_initial_call=True, **ws)
        def go(n):
            set_props("t", {"data": {"side": n}})
            return FRAME.assign(quantity=FRAME["quantity"] * n)

    @app.callback(Output("out", "children"), Input("s", "data"), State("t", "data"), **ws)
    def read(data, side):
        if data is None:
            return f"None {side!r}"
        return f"{type(data).__name__} {int(data['quantity'].sum())} {side!r}"

    @app.callback(Output("out-http", "children"), Input("go-http", "n_clicks"), State("s", "data"),
                  prevent_initial_call=True)
    def read_http(n, data):
        return "None" if data is None else f"{type(data).__name__} {int(data['quantity'].sum())}"
    return app


def _write(browser: Browser, ws, n: int = 2) -> tuple[str, str]:
    """``go`` over the websocket: the references of ``s`` (output) and ``t`` (set_props)."""
    side: list = []
    result = browser.call(ws, [("s", "data")], [("go", "n_clicks", n)], hints={"stores": ["s"], "prev": {}},
                          side=side)
    assert result["status"] == "ok", result
    token = result["data"]["response"]["s"]["data"]
    sides = [entry["props"]["data"] for entry in side if entry["componentId"] == "t"]
    assert len(sides) == 1, side
    return token, sides[0]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_websocket_callback_writes_a_dataframe_that_websocket_and_http_callbacks_read(backend, asynchronous,
                                                                                          browsers):
    app = frame_app(backend, asynchronous)
    browser = browsers(app)
    browser.load()
    with browser.connect() as ws:
        token, side = _write(browser, ws, 2)
        assert isinstance(token, str) and token.startswith("dsr2.")  # the browser holds references, not data
        assert isinstance(side, str) and side.startswith("dsr2.")
        result = browser.call(ws, [("out", "children")], [("s", "data", token)], [("t", "data", side)])
        assert result["status"] == "ok", result
        assert result["data"]["response"]["out"]["children"] == "DataFrame 30 {'side': 2}"
    assert browser.http_call([("out-http", "children")], [("go-http", "n_clicks", 1)], [("s", "data", token)]) == \
        {"out-http": {"children": "DataFrame 30"}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_value_written_over_http_is_read_over_the_websocket(backend, browsers):
    app = frame_app(backend, every=False)

    @app.callback(Output("t", "data"), Input("go-http", "n_clicks"), prevent_initial_call=True)
    def write_http(n):
        return {"side": f"http-{n}"}

    browser = browsers(app)
    browser.load()
    side = browser.http_call([("t", "data")], [("go-http", "n_clicks", 4)])["t"]["data"]
    assert side.startswith("dsr2.")
    with browser.connect() as ws:
        result = browser.call(ws, [("out", "children")], [("s", "data", None)], [("t", "data", side)])
    assert result["data"]["response"]["out"]["children"] == "None {'side': 'http-4'}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_browser_reading_the_first_ones_reference_gets_none(backend, browsers):
    app = frame_app(backend)
    alice, mallory = browsers(app), browsers(app)
    alice.load()
    mallory.load()
    with alice.connect() as ws:
        token, side = _write(alice, ws, 3)
    with mallory.connect() as ws:
        result = mallory.call(ws, [("out", "children")], [("s", "data", token)], [("t", "data", side)])
    assert result["data"]["response"]["out"]["children"] == "None None"
    assert mallory.http_call([("out-http", "children")], [("go-http", "n_clicks", 1)], [("s", "data", token)]) == \
        {"out-http": {"children": "None"}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_connection_without_the_identity_cookie_reads_and_writes_no_store(backend, browsers):
    app = frame_app(backend)
    alice, stranger = browsers(app), browsers(app)
    alice.load()
    with alice.connect() as ws:
        token, side = _write(alice, ws, 3)
    stranger.http.cookies.clear()  # never loaded the page: no cookie at the handshake
    with stranger.connect() as ws:
        read = stranger.call(ws, [("out", "children")], [("s", "data", token)], [("t", "data", side)])
        assert read["data"]["response"]["out"]["children"] == "None None"  # missing, as a forged reference
        written = stranger.call(ws, [("s", "data")], [("go", "n_clicks", 1)], hints={"stores": ["s"], "prev": {}})
    assert written["status"] == "error"
    assert "no identity" in written["message"] and "identity cookie" in written["message"]
    # a cookie the server did not sign is no identity either
    stranger.http.cookies.set("dash_state_id", alice.http.cookies.get("dash_state_id")[:-2] + "AA")
    with stranger.connect() as ws:
        read = stranger.call(ws, [("out", "children")], [("s", "data", token)], [("t", "data", side)])
    assert read["data"]["response"]["out"]["children"] == "None None"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_identity_in_a_message_is_never_used(backend, browsers):
    """Only the handshake's cookie counts: a cookie header or field inside a message does not."""
    app = frame_app(backend)
    alice, stranger = browsers(app), browsers(app)
    alice.load()
    with alice.connect() as ws:
        token, side = _write(alice, ws, 3)
    cookie = f"dash_state_id={alice.http.cookies.get('dash_state_id')}"
    with stranger.connect() as ws:
        request_id = "forged"
        payload = _payload([("out", "children")], [("s", "data", token)], [("t", "data", side)])
        payload.update(cookies={"dash_state_id": alice.http.cookies.get("dash_state_id")}, headers={"cookie": cookie})
        ws.send_json({"type": "callback_request", "requestId": request_id, "rendererId": "x", "payload": payload,
                      "headers": {"cookie": cookie}})
        read = Browser.receive(ws, [request_id])[request_id]
    assert read["data"]["response"]["out"]["children"] == "None None"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_calls_on_one_connection_each_see_their_own_values(backend, asynchronous, browsers):
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend, websocket_callbacks=True)
    _secret(app, backend)
    count = 8
    app.layout = html.Div([html.Button(id="go")] + [ServerStore(id=f"s{i}") for i in range(count)] +
                          [html.Div(id=f"out{i}") for i in range(count)])
    barrier = threading.Barrier(4, timeout=20)  # Dash's executor has 4 workers: 4 sync calls at once

    for i in range(count):
        if asynchronous:
            @app.callback(Output(f"out{i}", "children"), Input(f"s{i}", "data"), prevent_initial_call=True)
            async def read(data, i=i):
                await asyncio.sleep(0.05)  # all of them in flight together on the loop
                from dash_state import get_store

                return f"{i}:{data['n']}:{get_store(f's{i}')['n']}"
        else:
            @app.callback(Output(f"out{i}", "children"), Input(f"s{i}", "data"), prevent_initial_call=True)
            def read(data, i=i):
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass
                from dash_state import get_store

                return f"{i}:{data['n']}:{get_store(f's{i}')['n']}"

        @app.callback(Output(f"s{i}", "data"), Input("go", "n_clicks"), prevent_initial_call=True)
        def write(n, i=i):
            return {"n": i * 100 + n}

    browser = browsers(app)
    browser.load()
    with browser.connect() as ws:
        ids = [browser.send(ws, [(f"s{i}", "data")], [("go", "n_clicks", 1)], hints={"stores": [f"s{i}"], "prev": {}})
               for i in range(count)]
        written = Browser.receive(ws, ids)
        tokens = [written[r]["data"]["response"][f"s{i}"]["data"] for i, r in enumerate(ids)]
        assert all(t.startswith("dsr2.") for t in tokens)
        started = time.perf_counter()
        ids = [browser.send(ws, [(f"out{i}", "children")], [(f"s{i}", "data", tokens[i])]) for i in range(count)]
        got = Browser.receive(ws, ids)
        elapsed = time.perf_counter() - started
    for i, r in enumerate(ids):
        assert got[r]["status"] == "ok", got[r]
        assert got[r]["data"]["response"][f"out{i}"]["children"] == f"{i}:{i * 100 + 1}:{i * 100 + 1}"
    if asynchronous:
        assert elapsed < 0.05 * count  # they overlapped
    from dash_state.glue.web import websocket

    assert not websocket._pending  # every call's record was claimed, or dropped with its connection


def _get_prop_app(backend: str) -> Dash:
    from dash import ctx

    app = Dash(__name__, backend=backend)
    _secret(app, backend)
    app.layout = html.Div([html.Button(id="btn"), html.Button(id="go"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"rows": [1, 2, 3], "n": n}

    @app.callback(Output("out", "children"), Input("go", "n_clicks"), prevent_initial_call=True, websocket=True)
    async def read(n):
        return json.dumps(await ctx.websocket.get_prop("s", "data"))

    return app


def _get_prop_call(browser: Browser, ws, page_holds: str) -> str:
    """The read callback, answering its get_props request as a page holding ``page_holds`` in s.data."""
    request_id = browser.send(ws, [("out", "children")], [("go", "n_clicks", 1)])
    asked = []
    while True:
        message = ws.receive_json()
        for entry in message if isinstance(message, list) else [message]:
            if entry.get("type") == "get_props_request":
                asked.append(entry["payload"])
                ws.send_json({"type": "get_props_response", "requestId": entry["requestId"],
                              "payload": {"data": page_holds}})
            elif entry.get("type") == "callback_response" and entry["requestId"] == request_id:
                assert asked == [{"componentId": "s", "properties": ["data"]}]
                assert entry["payload"]["status"] == "ok", entry["payload"]
                return entry["payload"]["data"]["response"]["out"]["children"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_prop_of_a_server_store_gives_its_value_to_its_own_browser_only(backend, browsers):
    app = _get_prop_app(backend)
    alice, mallory = browsers(app), browsers(app)
    alice.load()
    mallory.load()
    reference = alice.http_call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    assert reference.startswith("dsr2.")
    with alice.connect() as ws:
        assert json.loads(_get_prop_call(alice, ws, reference)) == {"rows": [1, 2, 3], "n": 1}
    with mallory.connect() as ws:  # the page answers with alice's reference: it reads as missing
        assert json.loads(_get_prop_call(mallory, ws, reference)) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_app_whose_websocket_callbacks_use_no_server_store_runs(backend, browsers):
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend)
    _secret(app, backend)
    app.layout = html.Div([html.Button(id="btn"), html.Div(id="echo"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("echo", "children"), Input("btn", "n_clicks"), websocket=True)
    def echo(n):
        return f"echo {n}"

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"n": n}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    from dash_state.glue.plugin import install

    install(app).scan_layouts()  # no ConfigError any more
    browser = browsers(app)
    browser.load()
    with browser.connect() as ws:
        result = browser.call(ws, [("echo", "children")], [("btn", "n_clicks", 5)])
    assert result == {"status": "ok", "data": {"multi": True, "response": {"echo": {"children": "echo 5"}}}}
    token = browser.http_call([("s", "data")], [("btn", "n_clicks", 2)])["s"]["data"]
    assert browser.http_call([("out", "children")], [("s", "data", token)]) == {"out": {"children": "{'n': 2}"}}


# -- a real uvicorn process, driven by headless Chromium -----------------------------------------------------
@pytest.fixture
def uvicorn_app(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import requests
    from services import free_port

    pytest.importorskip("fastapi")
    tests = Path(__file__).parent
    port, log_path = free_port(), tmp_path / "uvicorn.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "websocket_app:server", "--host", "127.0.0.1", "--port", str(port),
             "--app-dir", str(tests), "--log-level", "warning"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])})
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{url}/_dash-layout", timeout=10).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("uvicorn did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            yield url, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_text(driver, element_id: str, text: str, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(lambda d: d.find_element("id", element_id).text == text)
    except Exception:
        pytest.fail(f"#{element_id} never showed {text!r}: {driver.find_element('id', element_id).text!r}; console: "
                    f"{[e['message'][:300] for e in driver.get_log('browser')]}")


FIND_DATA = ("const s = window.dash_stores[0].getState(); const p = s.paths.strs[arguments[0]];"
             "let n = s.layout; for (const k of p) { n = n[k]; } return n.props.data;")


def _ws_call(url: str, cookie: str | None, payload: dict) -> dict:
    """One callback over a raw websocket client (another browser: its own cookie, or none)."""
    from websockets.sync.client import connect

    headers = {"Origin": url, **({"Cookie": cookie} if cookie else {})}
    with connect(url.replace("http://", "ws://") + "/_dash-ws-callback", additional_headers=headers,
                 open_timeout=30) as ws:
        ws.send(json.dumps({"type": "callback_request", "requestId": "x", "rendererId": "py", "payload": payload}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=30))
            for entry in message if isinstance(message, list) else [message]:
                if entry.get("type") == "callback_response":
                    return entry["payload"]
    raise AssertionError("no callback response in 30 s")


@pytest.mark.browser
def test_chromium_over_the_websocket_on_uvicorn(dash_duo, uvicorn_app):
    import requests

    url, log_path = uvicorn_app
    driver = dash_duo.driver
    driver.get(url)
    _wait_text(driver, "rows", "none")
    assert any(c["name"] == "dash_state_id" for c in driver.get_cookies()), "the index page set no identity cookie"
    driver.find_element("id", "go").click()
    _wait_text(driver, "rows", "rows: 10000 sum: 10000 note: {'clicks': 1}")
    driver.find_element("id", "go").click()
    _wait_text(driver, "rows", "rows: 10000 sum: 20000 note: {'clicks': 2}")
    frame, note = driver.execute_script(FIND_DATA, "frame"), driver.execute_script(FIND_DATA, "note")
    assert isinstance(frame, str) and frame.startswith("dsr2.") and len(frame) < 256, str(frame)[:200]
    assert isinstance(note, str) and note.startswith("dsr2."), str(note)[:200]
    driver.find_element("id", "read-http").click()  # an HTTP callback reads what the websocket one wrote
    _wait_text(driver, "rows-http", "http rows: 10000")
    used_ws = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-update-component'))"
        ".length")
    assert used_ws == 1, f"{used_ws} HTTP callback requests: only read-http should use HTTP"

    read = _payload([("rows", "children")], [("frame", "data", frame), ("note", "data", note)])
    read["changedPropIds"] = ["frame.data"]
    owner = f"dash_state_id={next(c['value'] for c in driver.get_cookies() if c['name'] == 'dash_state_id')}"
    assert _ws_call(url, owner, read)["data"]["response"]["rows"]["children"].startswith("rows: 10000 sum: 20000")
    other = requests.Session()
    other.get(url, timeout=30)  # a second browser: its own cookie
    cookie = "; ".join(f"{k}={v}" for k, v in other.cookies.items())
    assert _ws_call(url, cookie, read)["data"]["response"]["rows"]["children"] == "empty None"
    assert _ws_call(url, None, read)["data"]["response"]["rows"]["children"] == "empty None"  # no cookie at all
    write = _payload([("frame", "data")], [("go", "n_clicks", 9)], hints={"stores": ["frame"], "prev": {}})
    refused = _ws_call(url, None, write)
    assert refused["status"] == "error" and "no identity" in refused["message"]
    log = log_path.read_text()  # Dash prints the refused write's traceback; nothing else failed
    assert log.count("Traceback") <= 1 and ("Traceback" not in log or "StoreValueError" in log), log[-3000:]
