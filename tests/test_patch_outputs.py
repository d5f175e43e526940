"""dash.Patch() outputs to a ServerStore are applied to the stored value on the server."""
import pandas as pd
import pytest
from dash import Input, Output, Patch, State, html

from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore


def patch_app(initial, build_patch, with_state: bool):
    app = new_app()
    app.layout = html.Div([html.Button(id="init"), html.Button(id="patch"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("init", "n_clicks"))
    def init(n):
        return initial() if callable(initial) else initial

    extra = [State("s", "data")] if with_state else []

    @app.callback(Output("s", "data", allow_duplicate=True), Input("patch", "n_clicks"), *extra,
                  prevent_initial_call=True)
    def patch(n, *state):
        p = Patch()
        build_patch(p)
        return p

    @app.callback(Output("out", "children"), Input("s", "data"))
    def show(data):
        return repr(data)

    client = DashClient(app)
    client.layout()
    patch_id = [k for k in app.callback_map if k.startswith("s.data@")][0]
    return app, client, patch_id


def run_patch(client, patch_id, token, with_state):
    state = [("s", "data", token)] if with_state else []
    response = client.raw_call([("s", "data")], [("patch", "n_clicks", 1)], state, callback_id=patch_id)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json().get("response", {}).get("s", {}).get("data")


def show(client, token):
    return client.call([("out", "children")], [("s", "data", token)])["out"]["children"]


def build(p):
    p["items"].append(4)
    p["items"].extend([5, 6])
    p["items"].insert(0, 0)
    p["items"].prepend(-1)
    p["meta"].update({"b": 2})
    p["meta"]["count"] += 10
    del p["drop"]
    p["items"].remove(2)
    p["nested"]["deep"][1] = "x"


START = {"items": [1, 2, 3], "meta": {"a": 1, "count": 1}, "drop": True, "nested": {"deep": [0, 1]}}
EXPECTED = {"items": [-1, 0, 1, 3, 4, 5, 6], "meta": {"a": 1, "count": 11, "b": 2}, "nested": {"deep": [0, "x"]}}


@pytest.mark.parametrize("with_state", [True, False], ids=["store-as-state", "store-not-in-callback"])
def test_patch_applies_on_the_server(with_state):
    app, client, patch_id = patch_app(START, build, with_state)
    token = client.call([("s", "data")], [("init", "n_clicks", 1)])["s"]["data"]
    new_token = run_patch(client, patch_id, token, with_state)
    assert new_token.startswith("dsr2.") and new_token != token
    assert show(client, new_token) == repr(EXPECTED)
    assert show(client, token) == repr(START)  # the old value is untouched


def test_patch_on_a_dataframe_fails_naming_the_store(caplog):
    app, client, patch_id = patch_app(lambda: pd.DataFrame({"a": [1]}), lambda p: p.append(1), True)
    token = client.call([("s", "data")], [("init", "n_clicks", 1)])["s"]["data"]
    response = client.raw_call([("s", "data")], [("patch", "n_clicks", 1)], [("s", "data", token)],
                               callback_id=patch_id)
    assert response.status_code == 422
    assert "ServerStore 's': Patch() cannot update a DataFrame" in caplog.text


def test_a_patch_that_does_not_apply_fails_the_callback_and_leaves_the_store_alone(warnings_log):
    """As in the renderer for a dcc.Store: the callback errors (HTTP 422 with the reason), nothing changes."""
    app, client, patch_id = patch_app(None, lambda p: p["items"].append(1), True)
    response = client.raw_call([("s", "data")], [("patch", "n_clicks", 1)], [("s", "data", "dsr2.bogus")],
                               callback_id=patch_id)
    assert response.status_code == 422 and "Traceback" not in response.get_data(as_text=True)
    assert "ServerStore 's': Patch() does not apply" in response.get_data(as_text=True)
    assert "Patch() does not apply" in warnings_log.text


def test_allow_duplicate_outputs_as_the_renderer_sends_them():
    """The renderer names allow_duplicate outputs "data@<hash>"; they are ServerStore data all the same."""
    app, client, patch_id = patch_app(START, build, True)
    token = client.call([("s", "data")], [("init", "n_clicks", 1)])["s"]["data"]
    response = client.raw_call([("s", patch_id.split(".", 1)[1])], [("patch", "n_clicks", 1)], [("s", "data", token)],
                               callback_id=patch_id)
    new_token = response.get_json()["response"]["s"]["data"]
    assert new_token.startswith("dsr2.") and show(client, new_token) == repr(EXPECTED)
