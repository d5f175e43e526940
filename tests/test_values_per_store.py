"""Values per tab are bounded (issue 16, item 6): one browser reloading a page whose store keeps its
reference in memory leaves every old page's value behind. Before, 12 MB values got HTTP 413
(STATE_MAX_USER_BYTES) from the 23rd reload on, for the rest of the TTL. Now the server keeps at most
STATE_VALUES_PER_STORE values per user and store (evicting the oldest in the write itself), and a page
releases what it holds when it goes away (pagehide), so a reload leaves one value, not one more."""
from __future__ import annotations

import time
import uuid

import flask
import pytest
import redis
from dash import Input, Output, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from dash_state.core.references import parse
from services import redis_url

FIVE_MB = 5 << 20
RELOADS = 100


def reloading_app(**settings):
    """A page whose memory store gets a 5 MB value each time the page loads (as a dashboard filling
    its store from an initial callback does)."""
    app = new_app(**settings)
    app.layout = html.Div([html.Button("load", id="load"), ServerStore(id="frame", storage_type="memory"),
                           html.Div(id="out")])

    @app.callback(Output("frame", "data"), Input("load", "n_clicks"))
    def fill(n):
        return {"n": n, "payload": "x" * FIVE_MB}

    @app.callback(Output("out", "children"), Input("frame", "data"))
    def show(data):
        return "empty" if data is None else f"loaded {data['n']}"

    return app


@pytest.fixture(params=["memory", "local", pytest.param("redis", marks=pytest.mark.service)])
def settings(request, tmp_path):
    if request.param == "memory":
        yield {"STATE_BACKEND": "memory"}
    elif request.param == "local":
        yield {"STATE_BACKEND": "local", "STATE_LOCAL_PATH": str(tmp_path / "local")}
    else:
        prefix = f"dash-state-test-{uuid.uuid4().hex[:8]}:"
        yield {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": prefix}
        with redis.Redis.from_url(redis_url()) as raw:
            for key in raw.scan_iter(match=f"{prefix}*", count=500):  # tests may scan; backends never do
                raw.unlink(key)


def test_one_browser_reloading_100_times_is_never_refused(settings):
    """One cookie, 100 page loads, each writing a 5 MB value and never releasing one, with
    STATE_MAX_USER_BYTES at its default (256 MiB, 51 such values): every write is accepted and the
    server holds the 16 newest, the last one readable."""
    app = reloading_app(**settings)
    browser = DashClient(app)
    statuses, tokens = [], []
    for n in range(RELOADS):
        browser.layout()
        response = browser.raw_call([("frame", "data")], [("load", "n_clicks", n)])
        statuses.append(response.status_code)
        if response.status_code == 200:
            tokens.append(response.get_json()["response"]["frame"]["data"])
    manager = dash_state.get_state_manager(app)
    backend = manager.backend(settings["STATE_BACKEND"])
    held = backend.usage(browser.namespace())
    assert statuses == [200] * RELOADS
    assert len(held) == 16 and {key for key, _, _ in held} == {parse(t).key for t in tokens[-16:]}
    assert all(size >= FIVE_MB for _, size, _ in held)
    assert browser.call([("out", "children")], [("frame", "data", tokens[-1])])["out"]["children"] == "loaded 99"
    old = browser.call([("out", "children")], [("frame", "data", tokens[0])])  # an old tab's reference
    assert old["out"]["children"] == "empty"  # None, as for an expired value
    assert backend.stats()["evicted_per_store"] == RELOADS - 16


def test_a_page_that_goes_away_leaves_its_value_to_the_next_write(settings):
    """What the pagehide release asks of the server: the old page's value is the store's latest, so it
    stays (the Python API reads it) until the reloaded page writes; then it goes at once."""
    app = reloading_app(**settings)
    browser = DashClient(app)
    backend = None
    for n in range(5):
        browser.layout()
        token = browser.call([("frame", "data")], [("load", "n_clicks", n)])["frame"]["data"]
        backend = dash_state.get_state_manager(app).backend(settings["STATE_BACKEND"])
        assert len(backend.usage(browser.namespace())) == 1
        body = {"stores": [{"id": "frame", "reference": token}]}
        response = browser.http.post("/_dash-state/v1/release", json=body)
        assert response.status_code == 200 and response.get_json() == {"released": 0}  # kept: the latest
        assert dash_state.get_state_manager(app).latest("frame", who=browser.namespace())["n"] == n


@pytest.mark.browser
def test_reloading_a_page_in_chromium_leaves_one_value_thanks_to_pagehide(dash_duo):
    """Five reloads of a page whose memory store gets a new value at each load: the server ends with
    one value of that store (two while the last write replaces the released one), not five. Without
    the pagehide release each reload would leave its value behind (five values)."""
    app = reloading_app(STATE_BACKEND="memory")
    released, pages = [], []  # references released, and each page's reference, as the server saw them

    @app.server.after_request
    def record_write(response):
        if flask.request.path.endswith("/_dash-update-component"):
            if response.is_json:
                pages.append(response.get_json()["response"].get("frame", {}).get("data"))
        return response

    dash_duo.start_server(app)
    manager = dash_state.get_state_manager(app)
    release = manager.release

    def record_release(store_id, token, who=None):
        released.append(token)
        return release(store_id, token, who)

    manager.release = record_release

    def held() -> int:  # the page has no initial layout data: every value is this browser's
        return manager.backend("memory").stats()["entries"]

    for load in range(5):
        if load:
            dash_duo.driver.refresh()
        dash_duo.wait_for_text_to_equal("#out", "loaded None")
        assert held() in (1, 2)  # the old page's value goes with this load's write
    deadline = time.monotonic() + 10  # the last page's write may come before the previous page's release
    while (held() != 1 or len(released) < 4) and time.monotonic() < deadline:
        time.sleep(0.1)
    pages = [token for token in pages if token is not None]
    assert len(pages) == 5 and released == pages[:4]  # each page, as it went away, released its reference
    assert held() == 1
    assert dash_duo.get_logs() == []
