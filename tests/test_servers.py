"""ServerStore on Dash's FastAPI and Quart servers (Dash >= 4.2), in process through Starlette's
TestClient (an ASGI client: it drives the FastAPI app and the Quart app alike, lifespan included)."""
from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from dash import Dash, Input, Output, State, html
from dash_client import DashClient

from dash_features import SERVERS, WEBSOCKET_STORES
from dash_state import ConfigError, ServerStore
from dash_state.errors import BackendUnavailable

BACKENDS = ["fastapi", "quart"]
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def _secret(app: Dash, backend: str) -> None:
    if backend == "fastapi":  # Dash keeps a FastAPI app's config on app.server.state
        app.server.state.SECRET_KEY = "test-secret"
    else:
        app.server.config["SECRET_KEY"] = "test-secret"


class AsgiDash:
    """A browser's view of one ASGI Dash app: its own cookie jar, callbacks posted as the renderer does."""

    def __init__(self, app: Dash):
        from starlette.testclient import TestClient

        self.app = app
        self.http = TestClient(app.server, base_url="http://testserver")
        self.http.__enter__()  # runs the lifespan (Dash's FastAPI catch-all route is added there)

    def close(self) -> None:
        self.http.__exit__(None, None, None)

    def call_raw(self, outputs, inputs, state=()):
        def item(id_, prop, *value):
            return {"id": id_, "property": prop, **({"value": value[0]} if value else {})}

        body = {"output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".." if len(outputs) > 1
                else f"{outputs[0][0]}.{outputs[0][1]}",
                "outputs": [item(i, p) for i, p in outputs] if len(outputs) > 1 else item(*outputs[0]),
                "inputs": [item(*i) for i in inputs], "state": [item(*s) for s in state],
                "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs[:1]]}
        return self.http.post("/_dash-update-component", content=json.dumps(body),
                              headers={"Content-Type": "application/json"})

    def call(self, outputs, inputs, state=()):
        response = self.call_raw(outputs, inputs, state)
        assert response.status_code == 200, response.text[:2000]
        return response.json()["response"]

    def post_route(self, name, body, **headers):
        return self.http.post(f"/_dash-state/v1/{name}", content=body if isinstance(body, bytes) else json.dumps(body),
                              headers={"Content-Type": "application/json", **headers})


def write_read_app(backend: str, make=lambda n: {"clicks": n}, asynchronous=False) -> Dash:
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend)
    _secret(app, backend)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    if asynchronous:
        @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
        async def write(n):
            await asyncio.sleep(0)
            return make(n)

        @app.callback(Output("out", "children"), Input("s", "data"))
        async def read(data):
            await asyncio.sleep(0)
            return repr(data)
    else:
        @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
        def write(n):
            return make(n)

        @app.callback(Output("out", "children"), Input("s", "data"))
        def read(data):
            return repr(data)
    return app


@pytest.fixture
def clients():
    made: list[AsgiDash] = []

    def make(app: Dash) -> AsgiDash:
        made.append(AsgiDash(app))
        return made[-1]
    yield make
    for client in made:
        client.close()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_write_then_read_through_a_reference_with_the_identity_cookie(backend, asynchronous, clients):
    app = write_read_app(backend, asynchronous=asynchronous)
    browser = clients(app)
    page = browser.http.get("/")
    assert page.status_code == 200 and "dash_state_id" in page.headers.get("set-cookie", "")
    assert "Cookie" in page.headers.get("vary", "")
    assert browser.http.get("/_dash-layout").status_code == 200
    token = browser.call([("s", "data")], [("btn", "n_clicks", 3)])["s"]["data"]
    assert isinstance(token, str) and token.startswith("dsr2.")  # the browser holds a reference, not the data
    assert browser.call([("out", "children")], [("s", "data", token)])["out"]["children"] == repr({"clicks": 3})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_user_never_reads_another_users_value(backend, clients):
    app = write_read_app(backend, make=lambda n: {"secret": f"alice-{n}"})
    alice, mallory = clients(app), clients(app)
    alice.http.get("/")
    mallory.http.get("/")
    assert alice.http.cookies.get("dash_state_id") != mallory.http.cookies.get("dash_state_id")
    token = alice.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    assert alice.call([("out", "children")], [("s", "data", token)])["out"]["children"] == repr({"secret": "alice-1"})
    stolen = mallory.call([("out", "children")], [("s", "data", token)])["out"]["children"]
    assert stolen == repr(None)  # alice's reference reads as an empty store for anyone else


@pytest.mark.parametrize("backend", BACKENDS)
def test_route_bodies_over_the_limit_get_413_and_foreign_origins_403(backend, clients):
    app = write_read_app(backend)
    from dash_state import init_app

    init_app(app, STATE_MAX_VALUE_BYTES=1000)
    browser = clients(app)
    browser.http.get("/")
    ok = browser.post_route("touch", {"stores": []})
    assert ok.status_code == 200, ok.text
    big = browser.post_route("put", json.dumps({"id": "s", "data": "x" * 5000}).encode())
    assert big.status_code == 413 and "STATE_MAX_VALUE_BYTES" in big.json()["error"]

    def chunks():  # no Content-Length: the limit holds for a streamed body too
        for _ in range(10):
            yield b" " * 500
    streamed = browser.http.post("/_dash-state/v1/touch", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    foreign = browser.post_route("touch", {"stores": []}, Origin="https://evil.example")
    assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"]
    cross = browser.post_route("touch", {"stores": []}, **{"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    form = browser.http.post("/_dash-state/v1/touch", content=b"{}", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415
    own = browser.post_route("touch", {"stores": []}, Origin="http://testserver")
    assert own.status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reader_of_a_clientside_patch_waits_for_the_upload_without_blocking_the_loop(backend, clients):
    """The renderer fires a clientside Patch's readers while the component uploads the Patch. On FastAPI
    and Quart a sync callback runs on the event loop that has to receive that upload: waiting for it by
    sleeping there would let nothing in, and the reader would fail after UPLOAD_WAIT with the upload
    stuck behind it. It waits on the loop instead, before Dash dispatches the callback."""
    from concurrent.futures import ThreadPoolExecutor

    app = write_read_app(backend, make=lambda n: {"clicks": n})
    browser = clients(app)
    browser.http.get("/")
    token = browser.call([("s", "data")], [("btn", "n_clicks", 2)])["s"]["data"]
    patched = {str(i): c for i, c in enumerate(token)} | {"extra": 1}  # what the renderer makes of the reference
    ops = [{"operation": "Assign", "location": ["extra"], "params": {"value": 1}}]
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(browser.call_raw, [("out", "children")], [("s", "data", patched)])
        time.sleep(0.3)  # the reader is waiting when the upload comes in
        started = time.monotonic()
        upload = browser.post_route("patch", {"id": "s", "base": token, "patched": patched, "operations": ops})
        uploaded_after = time.monotonic() - started
        read = reading.result(timeout=30)
    assert upload.status_code == 200, upload.text
    assert uploaded_after < 1.0  # answered while the reader waited, not after its wait ran out
    assert read.status_code == 200, read.text
    assert read.json()["response"]["out"]["children"] == repr({"clicks": 2, "extra": 1})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dash_state_error_in_a_callback_is_its_plain_text_status(backend, clients):
    app = write_read_app(backend)

    @app.callback(Output("out", "title"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def fails(n):
        raise BackendUnavailable("redis down")

    browser = clients(app)
    browser.http.get("/")
    response = browser.call_raw([("out", "title")], [("btn", "n_clicks", 1)])
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/plain")
    assert "storage is unavailable" in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_100k_row_dataframe_round_trip(backend, clients):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": range(100_000), "b": [x * 0.5 for x in range(100_000)], "c": ["row"] * 100_000})
    app = write_read_app(backend, make=lambda n: frame)

    @app.callback(Output("out", "title"), Input("s", "data"))
    def shape(data):
        return f"{type(data).__name__} {len(data)} {data['b'].sum()}"

    browser = clients(app)
    browser.http.get("/")
    response = browser.call_raw([("s", "data")], [("btn", "n_clicks", 1)])
    assert response.status_code == 200 and len(response.content) < 1000  # a reference, not 8 MB of JSON
    token = response.json()["response"]["s"]["data"]
    got = browser.call([("out", "title")], [("s", "data", token)])["out"]["title"]
    assert got == f"DataFrame 100000 {frame['b'].sum()}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_background_callbacks_keep_the_users_store(backend, clients, tmp_path):
    pytest.importorskip("diskcache")
    import diskcache
    from dash import DiskcacheManager

    manager = DiskcacheManager(diskcache.Cache(str(tmp_path / "cache")))
    app = Dash(__name__, backend=backend, background_callback_manager=manager)
    _secret(app, backend)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), background=True, prevent_initial_call=True)
    def write(n):
        return {"from the job": n}

    @app.callback(Output("out", "children"), Input("s", "data"), prevent_initial_call=True)
    def read(data):
        return repr(data)

    browser = clients(app)
    config = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', browser.http.get("/").text, re.DOTALL)
    end_id = json.loads(config.group(1)).get("end_id")  # newer Dash releases sign job handles with it
    assert browser.http.get("/_dash-layout").status_code == 200

    def post(body, **args):  # as the renderer: the page's endId on every request
        response = browser.http.post("/_dash-update-component", params={**({"endId": end_id} if end_id else {}), **args},
                                     content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text[:2000]
        return response.json()

    body = {"output": "s.data", "outputs": {"id": "s", "property": "data"},
            "inputs": [{"id": "btn", "property": "n_clicks", "value": 2}], "state": [], "changedPropIds": ["btn.n_clicks"]}
    started = post(body)
    assert set(started) >= {"cacheKey", "job"}, started
    body["inputs"][0]["value"] = None  # the renderer nulls values when polling
    deadline = time.monotonic() + 60
    while True:
        answer = post(body, cacheKey=started["cacheKey"], job=started["job"])
        if "response" in answer:
            break
        assert time.monotonic() < deadline, f"the background job did not finish in 60 s: {answer}"
        time.sleep(0.1)
    token = answer["response"]["s"]["data"]
    assert isinstance(token, str) and token.startswith("dsr2.")
    assert browser.call([("out", "children")], [("s", "data", token)])["out"]["children"] == repr({"from the job": 2})


@pytest.mark.parametrize("backend", BACKENDS)
def test_flask_only_resolvers_are_refused_at_startup(backend, monkeypatch):
    pytest.importorskip(backend)
    monkeypatch.setenv("STATE_USER_RESOLVER", "flask_login")
    with pytest.raises(ConfigError, match=f"Flask server.*{backend}.*STATE_USER_RESOLVER"):
        app = Dash(__name__, backend=backend)
        app.layout = html.Div([ServerStore(id="s")])
        from dash_state.glue.plugin import install

        install(app)


@pytest.mark.parametrize("backend", BACKENDS)
@WEBSOCKET_STORES
def test_websocket_callbacks_with_server_stores_are_accepted(backend):
    """ServerStore works in websocket callbacks (tests/test_websocket_callbacks.py): no refusal."""
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), websocket=True)
    def write(n):
        return {"secret": n}

    from dash_state.glue.plugin import install

    install(app).scan_layouts()  # what the first callback does


@pytest.mark.parametrize("backend", BACKENDS)
@SERVERS
def test_websocket_callbacks_on_a_dash_without_the_websocket_internals_are_refused_clearly(backend, monkeypatch):
    """A Dash whose websocket internals dash-state does not find: websocket callbacks with ServerStores
    are refused, naming them, instead of streaming store data to the browser."""
    pytest.importorskip(backend)
    from dash.backends import ws

    monkeypatch.delattr(ws.DashWebsocketCallback, "set_prop_sync", raising=False)  # absent before Dash 4.4
    app = Dash(__name__, backend=backend)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), websocket=True)
    def write(n):
        return {"secret": n}

    from dash_state.glue.plugin import install

    state = install(app)
    with pytest.raises(ConfigError, match=r"Dash 4\.\d+\.\d+ lacks.*1 websocket callbacks \(s\.data\)"):
        state.scan_layouts()


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_server_backends_without_server_stores_are_untouched(backend, clients):
    pytest.importorskip(backend)
    app = Dash(__name__, backend=backend)
    app.layout = html.Div([html.Button(id="btn"), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("btn", "n_clicks"), State("out", "children"))
    def echo(n, current):
        return f"{n}"

    browser = clients(app)
    assert browser.http.get("/").status_code == 200
    assert browser.call([("out", "children")], [("btn", "n_clicks", 4)], [("out", "children", "")]) == \
        {"out": {"children": "4"}}


def test_websocket_callbacks_flag_on_flask_uses_http_and_server_stores_work():
    """Dash serves websocket callbacks only on FastAPI/Quart; on Flask the flag leaves callbacks on
    HTTP, where the hook applies as usual."""
    app = Dash(__name__, websocket_callbacks=True)
    app.server.config["SECRET_KEY"] = "x"
    assert not app.backend.websocket_capability
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"))
    def write(n):
        return {"clicks": n}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    client = DashClient(app)
    client.layout()
    token = client.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    assert token.startswith("dsr2.")
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] == repr({"clicks": 1})
