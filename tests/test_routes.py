"""The component's HTTP routes: touch (sliding expiry), release (replaced references), delete
(clear_data), put/patch (values written in the browser) and get (clientside access, opt-in per store)."""
import json

import numpy as np
import pandas as pd

import dash_state
from apps import write_read_app
from dash_client import DashClient


def setup(value_factory=None, **config):
    app = write_read_app(value_factory=value_factory, **config)
    client = DashClient(app)
    client.layout()
    token = client.call([("s", "data")], [("btn", "n_clicks", 2)])["s"]["data"]
    return app, client, token


def post(client, name, body):
    return client.http.post(f"/_dash-state/v1/{name}", json=body)


def test_get_returns_the_value_for_the_owner_only(warnings_log):
    app, client, token = setup(STATE_STORES={"s": {"client_read": True}})
    response = post(client, "get", {"id": "s", "reference": token})
    assert response.status_code == 200 and response.get_json() == {"data": {"clicks": 2, "rows": [0, 1]}}
    stranger = DashClient(app)
    stranger.layout()
    response = post(stranger, "get", {"id": "s", "reference": token})
    assert response.status_code == 404 and response.get_json() == {"error": "missing"}
    assert "another user or another store" in warnings_log.text


def test_get_is_off_unless_the_store_allows_clientside_reads():
    _, client, token = setup()
    response = post(client, "get", {"id": "s", "reference": token})
    assert response.status_code == 403 and "client_read" in response.get_json()["error"]
    assert "rows" not in response.get_data(as_text=True)


def test_get_obeys_the_value_size_limit():
    _, client, token = setup(lambda n: {"rows": list(range(50_000))}, STATE_MAX_VALUE_BYTES=300_000,
                             STATE_STORES={"s": {"client_read": True}})
    assert post(client, "get", {"id": "s", "reference": token}).status_code == 200
    # 800 KB of floats in memory, 1.9 MB as JSON records: refused when it would leave as JSON
    _, client, token = setup(lambda n: pd.DataFrame({"a": np.random.default_rng(1).random(100_000)}),
                             STATE_MAX_VALUE_BYTES=1_000_000, STATE_STORES={"s": {"client_read": True}})
    response = post(client, "get", {"id": "s", "reference": token})
    assert response.status_code == 413 and "STATE_MAX_VALUE_BYTES" in response.get_json()["error"]


def test_get_gives_dataframes_as_records():
    _, client, token = setup(lambda n: pd.DataFrame({"a": [1, 2], "t": pd.to_datetime(["2024-01-01", "2024-01-02"])}),
                             STATE_STORES={"s": {"client_read": True}})
    data = post(client, "get", {"id": "s", "reference": token}).get_json()["data"]
    assert data == [{"a": 1, "t": "2024-01-01T00:00:00.000"}, {"a": 2, "t": "2024-01-02T00:00:00.000"}]


def test_touch_extends_life_and_reports_the_next_interval():
    app, client, token = setup(STATE_STORES={"s": {"ttl": 100}})
    backend = dash_state.get_state_manager(app).backend("memory")
    start = backend._clock()
    backend._clock = lambda: start + 90
    response = post(client, "touch", {"stores": [{"id": "s", "reference": token}, {"id": "s", "reference": "junk"}]})
    assert response.get_json() == {"alive": [True, False], "interval": 50.0}
    backend._clock = lambda: start + 180  # 90 s after the touch: alive only thanks to it
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] != "None"


def test_touch_takes_the_ttl_of_the_store_the_reference_belongs_to():
    """Naming a long-lived store in the request cannot keep a short-lived store's value alive."""
    app = write_read_app(STATE_BACKEND="memory", STATE_STORES={"s": {"ttl": 10}, "long": {"ttl": 10_000}})
    app.layout.children.append(dash_state.ServerStore(id="long"))
    client = DashClient(app)
    client.layout()
    token = client.call([("s", "data")], [("btn", "n_clicks", 2)])["s"]["data"]
    backend = dash_state.get_state_manager(app).backend("memory")
    start = backend._clock()
    assert post(client, "touch", {"stores": [{"id": "long", "reference": token}]}).get_json()["alive"] == [False]
    assert post(client, "touch", {"stores": [{"id": "s", "reference": token}]}).get_json()["alive"] == [True]
    backend._clock = lambda: start + 30
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] == "None"


def test_release_deletes_replaced_values_but_never_the_latest_or_shared_ones():
    app, client, first = setup()
    manager = dash_state.get_state_manager(app)
    second = client.call([("s", "data")], [("btn", "n_clicks", 3)])["s"]["data"]
    stranger = DashClient(app)
    stranger.layout()
    assert post(stranger, "release", {"stores": [{"id": "s", "reference": first}]}).get_json() == {"released": 0}
    assert post(client, "release", {"stores": [{"id": "s", "reference": second}]}).get_json() == {"released": 0}
    assert post(client, "release", {"stores": [{"id": "s", "reference": first}]}).get_json() == {"released": 1}
    assert client.call([("out", "children")], [("s", "data", first)])["out"]["children"] == "None"
    assert client.call([("out", "children")], [("s", "data", second)])["out"]["children"] != "None"
    assert manager.stats()["released"] == 1


def test_one_tab_writing_a_hundred_times_holds_one_value():
    """What the component does after each write (release the reference it replaced) keeps the server at
    one value per store and tab."""
    app, client, token = setup(lambda n: {"rows": list(range(1000)), "n": n}, STATE_BACKEND="memory")
    backend = dash_state.get_state_manager(app).backend("memory")
    for n in range(3, 103):
        new = client.call([("s", "data")], [("btn", "n_clicks", n)])["s"]["data"]
        post(client, "release", {"stores": [{"id": "s", "reference": token}]})
        token = new
    assert backend.stats()["entries"] == 1
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"].startswith("{'rows'")


def test_put_stores_a_browser_write_and_patch_applies_operations():
    app, client, token = setup()
    put = post(client, "put", {"id": "s", "data": {"from": "browser"}}).get_json()
    assert put["reference"].split(".")[3][0] == "c"  # marked as written in the browser
    assert client.call([("out", "children")], [("s", "data", put["reference"])])["out"]["children"] == \
        repr({"from": "browser"})
    patched = {str(i): c for i, c in enumerate(token)} | {"extra": 1}
    ops = [{"operation": "Assign", "location": ["extra"], "params": {"value": 1}}]
    answer = post(client, "patch", {"id": "s", "base": token, "patched": patched, "operations": ops}).get_json()
    assert client.call([("out", "children")], [("s", "data", answer["reference"])])["out"]["children"] == \
        repr({"clicks": 2, "rows": [0, 1], "extra": 1})
    # the callback that received the renderer's patched object reads the same result
    assert client.call([("out", "children")], [("s", "data", patched)])["out"]["children"] == \
        repr({"clicks": 2, "rows": [0, 1], "extra": 1})


def test_put_is_refused_for_stores_that_keep_server_decided_facts():
    app, client, _ = setup(STATE_STORES={"s": {"latest_only": True}})
    response = post(client, "put", {"id": "s", "data": {"role": "admin"}})
    assert response.status_code == 403
    assert post(client, "put", {"id": "nope", "data": 1}).status_code == 400  # not a ServerStore
    assert post(client, "put", {"id": "s", "data": "dsr2.x"}).status_code == 400


def test_delete_removes_the_value_for_its_owner_only():
    app, client, token = setup()
    stranger = DashClient(app)
    stranger.layout()
    assert post(stranger, "delete", {"id": "s", "reference": token}).get_json() == {"deleted": False}
    assert post(client, "delete", {"id": "other", "reference": token}).get_json() == {"deleted": False}
    assert post(client, "delete", {"id": "s", "reference": token}).get_json() == {"deleted": True}
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] == "None"


def test_bad_requests_get_json_errors_not_500():
    _, client, _ = setup()
    for name, body in [("touch", {"stores": "nope"}), ("touch", {"stores": [1] * 500}), ("get", {}),
                       ("delete", {"reference": 5}), ("get", {"reference": "dsr2." + "x" * 999}),
                       ("get", {"id": "s" * 5000, "reference": "x"}), ("put", {"id": "s"}),
                       ("patch", {"id": "s", "base": "x"}), ("release", {"stores": [{"id": ["list"]}]})]:
        response = post(client, name, body)
        assert response.status_code in (200, 400, 403, 404), (name, body, response.status_code)
        assert response.is_json and "Traceback" not in response.get_data(as_text=True)
    for raw in ("not json", "[" * 10_000 + "]" * 10_000, json.dumps([1, 2])):
        response = client.http.post("/_dash-state/v1/get", data=raw, content_type="application/json")
        assert response.status_code == 400 and response.is_json, raw[:20]
