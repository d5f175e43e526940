"""The live route (``_dash-state/v1/live``) through Flask's test client: the conditional poll, the
Server-Sent Events stream, the catch-up of a page that reconnects, and what a page may receive."""
from __future__ import annotations

import json
import threading
import time

import pytest
from dash_client import DashClient
from test_scopes import same_browser, scoped_app, store_props

import dash_state

ROUTE = "/_dash-state/v1/live"


def live_app(backend="memory", **config):
    return scoped_app(STATE_BACKEND=backend, STATE_LIVE_TRANSPORT="sse", STATE_LIVE_STREAM_SECONDS=5, **config)


def poll(client, stores):
    response = client.http.post(ROUTE, json={"stores": stores, "wait": False})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def write_prefs(client, n):
    return client.call([("prefs", "data")], [("btn", "n_clicks", n)])["prefs"]["data"]


class Stream:
    """An open stream read in a thread: its events as they arrive."""

    def __init__(self, client, stores):
        self.response = client.http.post(ROUTE, json={"stores": stores, "wait": True}, buffered=False)
        assert self.response.status_code == 200
        assert self.response.mimetype == "text/event-stream"
        self.events: list[tuple[str, dict]] = []
        self.pings = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        buffer = b""
        try:
            for chunk in self.response.response:
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._parse(block.decode())
        except (ValueError, GeneratorExit):
            pass

    def _parse(self, block):
        if block.startswith(":"):
            self.pings += 1
            return
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        self.events.append((name, json.loads(data)))

    def wait_for(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.events

    def close(self):
        """Let the stream end by itself (STATE_LIVE_STREAM_SECONDS = 5 here): the reading thread is
        inside the generator, which cannot be closed from this thread."""
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the stream did not end at STATE_LIVE_STREAM_SECONDS"


@pytest.fixture
def app():
    return live_app()


def test_a_poll_answers_only_what_changed_and_reads_no_value(app, monkeypatch):
    page = DashClient(app)
    held = store_props(page.layout(), "prefs")["data"]
    assert poll(page, [{"id": "prefs", "reference": held}])["changes"] == []
    token = write_prefs(same_browser(page), 5)
    manager = dash_state.get_state_manager(app)
    backend = manager.backend("memory")
    reads = []
    monkeypatch.setattr(backend, "get", lambda *a: reads.append(a))
    answer = poll(page, [{"id": "prefs", "reference": held}])
    assert answer["changes"] == [{"id": "prefs", "reference": token, "version": 1}]
    assert answer["transport"] == "poll" and answer["interval"] == 2.0
    assert poll(page, [{"id": "prefs", "reference": token}])["changes"] == []
    assert reads == []  # versions come from the pointer: no value was read


def test_a_stream_catches_up_then_pushes_each_change_of_the_users_and_the_apps_stores(app):
    page = DashClient(app)
    layout = page.layout()
    held = store_props(layout, "prefs")["data"]
    tab = same_browser(page)
    first = write_prefs(tab, 1)  # written before the page connects: the catch-up sends it
    stream = Stream(page, [{"id": "prefs", "reference": held}, {"id": "board", "reference": None}])
    try:
        events = stream.wait_for(1)
        assert events[0] == ("hello", {"transport": "sse", "changes": [{"id": "prefs", "reference": first, "version": 1}]})
        second = write_prefs(tab, 2)
        events = stream.wait_for(2)
        assert events[1] == ("message", {"changes": [{"id": "prefs", "reference": second, "version": 2}]})
        with app.server.app_context():
            version = dash_state.set_store("board", {"note": "for everyone"})
        events = stream.wait_for(3)
        assert events[2][1]["changes"][0]["id"] == "board" and events[2][1]["changes"][0]["version"] == version
        write_prefs(DashClient(app), 9)  # another user's own value: not this page's business
        time.sleep(0.3)
        assert len(stream.events) == 3
    finally:
        stream.close()


def test_a_page_never_receives_another_users_reference(app):
    alice, mallory = DashClient(app), DashClient(app)
    alice.layout()
    alices = write_prefs(alice, 3)
    mallory.layout()
    answer = poll(mallory, [{"id": "prefs", "reference": alices}])
    assert all(change["reference"] != alices for change in answer["changes"])
    assert answer["changes"] == []  # mallory never wrote: nothing of hers to send, and nothing of alice's
    mine = write_prefs(mallory, 4)
    assert poll(mallory, [{"id": "prefs", "reference": alices}])["changes"][0]["reference"] == mine


def test_without_an_identity_cookie_only_app_stores_are_watched(app):
    DashClient(app).layout()
    with app.server.app_context():
        dash_state.set_store("board", [1])
    stranger = app.server.test_client()
    response = stranger.post(ROUTE, json={"stores": [{"id": "prefs", "reference": None},
                                                      {"id": "board", "reference": None}], "wait": False})
    assert [change["id"] for change in response.get_json()["changes"]] == ["board"]


def test_stores_that_are_not_live_are_left_out_and_unknown_ids_are_refused(app):
    page = DashClient(app)
    page.layout()
    with app.server.app_context():
        dash_state.set_store("tables", ["new"])  # an app store, but not live
    assert poll(page, [{"id": "tables", "reference": None}, {"id": "page", "reference": None}])["changes"] == []
    response = page.http.post(ROUTE, json={"stores": [{"id": "nope", "reference": None}], "wait": False})
    assert response.status_code == 400 and "not a ServerStore" in response.get_json()["error"]
    response = page.http.post(ROUTE, data="stores=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_past_the_stream_limit_a_page_is_told_to_poll():
    app = live_app(STATE_LIVE_MAX_STREAMS=1)
    page = DashClient(app)
    page.layout()
    stream = Stream(page, [{"id": "prefs", "reference": None}])
    try:
        stream.wait_for(1)
        response = page.http.post(ROUTE, json={"stores": [{"id": "prefs", "reference": None}], "wait": True})
        assert response.mimetype == "application/json" and response.get_json()["transport"] == "poll"
    finally:
        stream.close()


def test_auto_picks_a_poll_on_a_server_that_cannot_hold_connections():
    app = scoped_app(STATE_BACKEND="memory")  # the test client, like a sync worker, is not multithreaded
    page = DashClient(app)
    page.layout()
    response = page.http.post(ROUTE, json={"stores": [{"id": "prefs", "reference": None}], "wait": True})
    assert response.get_json()["transport"] == "poll"
    threaded = page.http.post(ROUTE, json={"stores": [{"id": "prefs", "reference": None}], "wait": True},
                              environ_overrides={"wsgi.multithread": True}, buffered=False)
    try:
        assert threaded.mimetype == "text/event-stream"
    finally:
        threaded.close()


def test_a_page_that_was_away_catches_up_with_the_latest_version_only_never_an_older_one(app):
    page = DashClient(app)
    held = store_props(page.layout(), "prefs")["data"]
    tab = same_browser(page)
    tokens = [write_prefs(tab, n) for n in (1, 2, 3)]  # three writes while the page was away
    assert poll(page, [{"id": "prefs", "reference": held}])["changes"] == [
        {"id": "prefs", "reference": tokens[-1], "version": 3}]  # one change: the latest
    manager = dash_state.get_state_manager(app)
    from dash_state.backends import pointer_name

    backend = manager.backend("memory")
    namespace = page.namespace()
    key = backend.pointer(namespace, pointer_name("prefs"))
    older = tokens[0].split(".")[2]  # the pointer goes back to version 1 (a restored backup, say)
    backend.set_many(namespace, [], [dash_state.backends.Pointer(pointer_name("prefs"), older, 60)], expect={
        pointer_name("prefs"): key})
    assert poll(page, [{"id": "prefs", "reference": tokens[-1]}])["changes"] == []  # never back to version 1
