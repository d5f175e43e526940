"""The component's HTTP routes: touch (sliding expiry), delete (clear_data), get (clientside access)."""
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
    app, client, token = setup()
    response = post(client, "get", {"id": "s", "reference": token})
    assert response.status_code == 200 and response.get_json() == {"data": {"clicks": 2, "rows": [0, 1]}}
    stranger = DashClient(app)
    stranger.layout()
    response = post(stranger, "get", {"id": "s", "reference": token})
    assert response.status_code == 404 and response.get_json() == {"error": "missing"}
    assert "another session" in warnings_log.text


def test_get_gives_dataframes_as_records():
    _, client, token = setup(lambda n: pd.DataFrame({"a": [1, 2], "t": pd.to_datetime(["2024-01-01", "2024-01-02"])}))
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


def test_delete_removes_the_value_for_its_owner_only():
    app, client, token = setup()
    stranger = DashClient(app)
    stranger.layout()
    assert post(stranger, "delete", {"reference": token}).get_json() == {"deleted": False}
    assert post(client, "delete", {"reference": token}).get_json() == {"deleted": True}
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] == "None"


def test_bad_requests_get_json_errors_not_500():
    _, client, _ = setup()
    for name, body in [("touch", {"stores": "nope"}), ("touch", {"stores": [1] * 500}), ("get", {}),
                       ("delete", {"reference": 5}), ("get", {"reference": "dsr1." + "x" * 999})]:
        response = post(client, name, body)
        assert response.status_code in (200, 400, 404), (name, body, response.status_code)
        assert response.is_json and "Traceback" not in response.get_data(as_text=True)
    assert client.http.post("/_dash-state/v1/get", data="not json", content_type="application/json").status_code == 404
