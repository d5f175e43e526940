"""The server-side hook, driven through Flask's test client exactly as the renderer calls Dash."""
import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
from dash import Input, Output, dcc, html

import dash_state
from apps import new_app, write_read_app
from dash_client import DashClient
from dash_state import ServerStore


def write(client, n=3):
    return client.call([("s", "data")], [("btn", "n_clicks", n)])["s"]["data"]


def read(client, token):
    return client.call([("out", "children")], [("s", "data", token)])["out"]["children"]


def test_output_is_a_small_reference_and_input_is_the_value():
    client = DashClient(write_read_app(value_factory=lambda n: {"rows": list(range(100_000))}))
    client.layout()
    token = write(client)
    assert isinstance(token, str) and token.startswith("dsr2.")
    assert len(token.encode()) <= 256
    assert client.last_response_bytes < 400  # the whole HTTP body, not just the token
    assert read(client, token) == repr({"rows": list(range(100_000))})


def test_reference_reveals_nothing_server_internal():
    app = write_read_app()
    client = DashClient(app)
    client.layout()
    token = write(client)
    user = client.namespace()
    for secret in (user, user[2:], "memory/", "test-secret", "127.0.0.1", "localhost", "/tmp", "/work"):
        assert secret not in token


@pytest.mark.parametrize("value", [
    pd.DataFrame({"a": np.arange(5), "b": list("abcde"), "t": pd.date_range("2024-01-01", periods=5)}),
    pd.Series([1.5, 2.5, None], name="price"),
    np.arange(12, dtype="int16").reshape(3, 4),
])
def test_frames_series_and_arrays_come_back_as_the_same_type(value):
    received = {}
    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"))
    def w(n):
        return value

    @app.callback(Output("out", "children"), Input("s", "data"))
    def r(data):
        received["value"] = data
        if hasattr(data, "columns"):
            data.iloc[0, 0] = 999  # a reader that mutates its input must not change the stored value
        elif hasattr(data, "iloc"):
            data.iloc[0] = 999
        else:
            data[0] = 99
        return "ok"

    client = DashClient(app)
    client.layout()
    token = write(client)
    for _ in range(2):
        read(client, token)
    got = received["value"]  # what the second reader got, mutated by that reader afterwards
    assert type(got) is type(value)
    if isinstance(value, np.ndarray):
        assert got.dtype == value.dtype and got.shape == value.shape
        assert np.array_equal(got[1:], value[1:]) and (got[0] == 99).all()
    else:
        assert got.iloc[1:].equals(value.iloc[1:]) and list(got.dtypes if hasattr(got, "columns") else [got.dtype]) == \
            list(value.dtypes if hasattr(value, "columns") else [value.dtype])
    # two readers mutated their copies; the stored value is still the original
    r_state = dash_state.get_state_manager(app).load("s", token, client.namespace())
    if isinstance(value, np.ndarray):
        assert np.array_equal(r_state, value)
    else:
        assert r_state.equals(value)


def test_writer_keeping_a_reference_to_its_value_cannot_change_the_stored_copy():
    shared = {"items": [1, 2, 3]}
    app = write_read_app(value_factory=lambda n: shared)
    client = DashClient(app)
    client.layout()
    token = write(client)
    shared["items"].append(4)
    assert read(client, token) == repr({"items": [1, 2, 3]})


def test_another_session_gets_none_and_a_warning(warnings_log):
    app = write_read_app()
    alice, mallory = DashClient(app), DashClient(app)
    alice.layout()
    mallory.layout()
    token = write(alice)
    assert read(mallory, token) == "None"
    assert "another user or another store" in warnings_log.text and "'s'" in warnings_log.text
    assert dash_state.get_state_manager(app).stats()["misses"]["foreign"] == 1
    assert read(alice, token) != "None"


@pytest.mark.parametrize("bad", [
    "dsr2.",
    "dsr2.memory.short.sig",
    "dsr2.memory." + "A" * 22 + ".forgedsignatureAAAAAAA",
    "dsr2.memory." + "A" * 22 + ".s0000000." + "A" * 22,
    "dsr2.memory." + "A" * 22 + ".s0000000." + "A" * 21 + "\u00e9",  # non-ASCII signature: once a 500
    "dsr2.evil." + "A" * 22 + ".x",
    "dsr2." + "x" * 5000,
    "dsr1.memory." + "A" * 22 + ".sig",  # an old reference
])
def test_malformed_forged_or_oversized_references_are_missing_not_errors(bad, warnings_log):
    app = write_read_app()
    client = DashClient(app)
    client.layout()
    response = client.raw_call([("out", "children")], [("s", "data", bad)])
    assert response.status_code == 200
    assert response.get_json()["response"]["out"]["children"] == "None"
    assert "'s' x1" in warnings_log.text
    assert "Traceback" not in response.get_data(as_text=True)
    misses = dash_state.get_state_manager(app).stats()["misses"]
    assert sum(misses.values()) == 1


@pytest.mark.parametrize("raw", [{"not": "a reference"}, [1, 2, 3], 12345, "plain text", True])
def test_raw_data_for_a_server_store_is_a_browser_write(raw):
    """A clientside callback (or running=) writes data straight into the store, as with dcc.Store: the
    reader gets it as it is, unless the store refuses values written in the browser."""
    app = write_read_app()
    client = DashClient(app)
    client.layout()
    assert read(client, raw) == repr(raw)
    locked = write_read_app(STATE_STORES={"s": {"client_write": False}})
    locked_client = DashClient(locked)
    locked_client.layout()
    token = write(locked_client)
    assert read(locked_client, raw) == repr({"clicks": 3, "rows": [0, 1, 2]})  # refused: its own latest value
    assert read(locked_client, token) == repr({"clicks": 3, "rows": [0, 1, 2]})
    assert dash_state.get_state_manager(locked).stats()["misses"]["refused"] == 1


def test_tampering_with_a_valid_reference_is_detected(warnings_log):
    client = DashClient(write_read_app())
    client.layout()
    token = write(client)
    prefix, backend, key, meta, sig = token.split(".")
    other_key = ("B" if key[0] != "B" else "C") + key[1:]
    assert read(client, f"{prefix}.{backend}.{other_key}.{meta}.{sig}") == "None"
    assert read(client, f"{prefix}.{backend}.{key}.{meta}.{sig[:-1]}") == "None"
    assert read(client, f"{prefix}.{backend}.{key}.c{meta[1:]}.{sig}") == "None"  # scope is signed too


def test_expired_data_is_never_served(warnings_log):
    app = write_read_app(STATE_BACKEND="memory")
    client = DashClient(app)
    client.layout()
    token = write(client)
    backend = dash_state.get_state_manager(app).backend("memory")
    now = backend._clock()
    backend._clock = lambda: now + 3601  # STATE_TTL_DEFAULT is 3600
    assert read(client, token) == "None"
    assert "expired" in warnings_log.text
    assert dash_state.get_state_manager(app).stats()["misses"]["expired"] == 1


def test_per_store_ttl_from_config():
    app = write_read_app(STATE_BACKEND="memory", STATE_STORES={"s": {"ttl": 5}})
    client = DashClient(app)
    client.layout()
    token = write(client)
    backend = dash_state.get_state_manager(app).backend("memory")
    now = backend._clock()
    backend._clock = lambda: now + 4
    assert read(client, token) != "None"
    backend._clock = lambda: now + 6
    assert read(client, token) == "None"


def test_unserializable_value_fails_naming_store_and_type_and_stores_nothing(caplog):
    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="good"), ServerStore(id="bad")])

    @app.callback(Output("good", "data"), Output("bad", "data"), Input("btn", "n_clicks"))
    def w(n):
        return {"fine": True}, {"oops": {1, 2}}

    client = DashClient(app)
    client.layout()
    manager = dash_state.get_state_manager(app)
    before = manager.backend("memory").stats()["entries"]
    caplog.set_level(logging.WARNING)
    response = client.raw_call([("good", "data"), ("bad", "data")], [("btn", "n_clicks", 1)])
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "Traceback" not in caplog.text
    assert re.search(r"ServerStore 'bad': cannot store the set at oops", body)
    assert re.search(r"ServerStore 'bad': cannot store the set at oops", caplog.text)
    assert manager.backend("memory").stats()["entries"] == before
    assert manager.stats()["writes"] == 0


def test_client_backend_is_exactly_dcc_store(tmp_path):
    (tmp_path / "config.toml").write_text('[STATE_STORES.s]\nbackend = "client"\n')
    app = write_read_app()
    client = DashClient(app)
    client.layout()
    data = write(client, 2)
    assert data == {"clicks": 2, "rows": [0, 1]}
    assert read(client, data) == repr(data)


@pytest.mark.parametrize("backend", ["local", "memory"])
def test_rollback_still_reads_references_written_before_the_switch(backend):
    app = write_read_app(STATE_BACKEND=backend)
    client = DashClient(app)
    client.layout()
    token = write(client)
    dash_state.init_app(app, STATE_STORES={"s": {"backend": "client"}})
    # a reference names its backend: the local store outlives the manager init_app rebuilds, the
    # memory backend does not (then None, never the token string)
    expected = repr({"clicks": 3, "rows": [0, 1, 2]}) if backend == "local" else "None"
    assert read(client, token) == expected


def test_without_user_isolation_all_sessions_share_data():
    app = write_read_app(STATE_ENABLE_USER_ISOLATION=False)
    alice, bob = DashClient(app), DashClient(app)
    alice.layout()
    token = write(alice)
    assert read(bob, token) == repr({"clicks": 3, "rows": [0, 1, 2]})


def test_initial_data_in_a_static_layout_is_stored_server_side():
    big = {"rows": list(range(50_000))}
    app = new_app()
    app.layout = html.Div([ServerStore(id="s", data=big), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("s", "data"))
    def r(data):
        return len(data["rows"])

    client = DashClient(app)
    layout = client.layout()
    token = layout["props"]["children"][0]["props"]["data"]
    assert token.startswith("dsr2.") and len(json.dumps(layout)) < 1000
    assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] == 50_000
    # the app's own layout object is untouched: every request gets the initial value again
    assert app.layout.children[0].data is big
    assert client.layout()["props"]["children"][0]["props"]["data"] == token  # same value, same entry


def test_layout_function_and_index_page_carry_no_initial_data():
    secret_rows = list(range(1000, 1100))

    def layout():
        return html.Div([ServerStore(id="s", data={"marker": "SECRETMARKER", "rows": secret_rows})])

    app = new_app()
    app.layout = layout
    client = DashClient(app)
    assert "SECRETMARKER" not in client.index()  # Dash embeds the validation layout in the index page
    assert "SECRETMARKER" not in json.dumps(client.layout())


def test_pattern_matching_ids_and_all_outputs():
    from dash import ALL, MATCH

    app = new_app()
    app.layout = html.Div(
        [html.Button(id={"type": "btn", "index": i}) for i in range(3)]
        + [ServerStore(id={"type": "store", "index": i}) for i in range(3)]
        + [html.Div(id={"type": "out", "index": i}) for i in range(3)]
        + [html.Div(id="total")]
    )

    @app.callback(Output({"type": "store", "index": MATCH}, "data"), Input({"type": "btn", "index": MATCH}, "n_clicks"))
    def w(n):
        return {"n": n}

    @app.callback(Output("total", "children"), Input({"type": "store", "index": ALL}, "data"))
    def total(values):
        return sum((v or {}).get("n", 0) for v in values)

    client = DashClient(app)
    client.layout()
    tokens = []
    for i in range(3):
        sid = {"type": "store", "index": i}
        r = client.call([(sid, "data")], [({"type": "btn", "index": i}, "n_clicks", i + 1)],
                        callback_id='{"index":["MATCH"],"type":"store"}.data')
        tokens.append(r[json.dumps(sid, sort_keys=True, separators=(",", ":"))]["data"])
    assert all(t.startswith("dsr2.") for t in tokens)
    body = {
        "output": "total.children", "outputs": {"id": "total", "property": "children"},
        "inputs": [[{"id": {"type": "store", "index": i}, "property": "data", "value": t} for i, t in enumerate(tokens)]],
        "state": [], "changedPropIds": [],
    }
    response = client.http.post("/_dash-update-component", json=body)
    assert response.get_json()["response"]["total"]["children"] == 6


def test_set_props_writes_a_server_store():
    from dash import set_props

    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Input("btn", "n_clicks"))
    def w(n):
        set_props("s", {"data": {"via": "set_props", "n": n}})

    @app.callback(Output("out", "children"), Input("s", "data"))
    def r(data):
        return repr(data)

    client = DashClient(app)
    client.layout()
    (no_output_id,) = [k for k in app.callback_map if "." not in k]
    side = client.raw_call([], [("btn", "n_clicks", 4)], callback_id=no_output_id).get_json()["sideUpdate"]
    token = side["s"]["data"]
    assert token.startswith("dsr2.")
    assert read(client, token) == repr({"via": "set_props", "n": 4})


def test_callback_returning_components_with_server_stores():
    app = new_app(suppress_callback_exceptions=True)
    app.layout = html.Div([html.Button(id="btn"), html.Div(id="holder"), html.Div(id="out")])

    @app.callback(Output("holder", "children"), Input("btn", "n_clicks"))
    def make(n):
        return [ServerStore(id="s", data={"made": "SECRETMARKER"})]

    @app.callback(Output("out", "children"), Input("s", "data"))
    def r(data):
        return repr(data)

    client = DashClient(app)
    client.layout()
    children = client.call([("holder", "children")], [("btn", "n_clicks", 1)])["holder"]["children"]
    token = children[0]["props"]["data"]
    assert "SECRETMARKER" not in json.dumps(children)
    assert read(client, token) == repr({"made": "SECRETMARKER"})


def test_dcc_store_in_the_same_app_is_untouched():
    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), dcc.Store(id="plain"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("plain", "data"), Output("s", "data"), Input("btn", "n_clicks"))
    def w(n):
        return {"plain": n}, {"server": n}

    client = DashClient(app)
    client.layout()
    response = client.call([("plain", "data"), ("s", "data")], [("btn", "n_clicks", 7)])
    assert response["plain"]["data"] == {"plain": 7}
    assert response["s"]["data"].startswith("dsr2.")


def test_no_update_and_none_pass_through():
    from dash import no_update

    app = new_app()
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="a"), ServerStore(id="b")])

    @app.callback(Output("a", "data"), Output("b", "data"), Input("btn", "n_clicks"))
    def w(n):
        return no_update, None

    client = DashClient(app)
    client.layout()
    response = client.call([("a", "data"), ("b", "data")], [("btn", "n_clicks", 1)])
    assert "a" not in response and response["b"]["data"] is None


def test_a_worker_that_never_served_the_layout_still_knows_its_server_stores():
    """Under gunicorn a callback can be the first request a worker sees (or the first after a restart)."""
    app = write_read_app(value_factory=lambda n: pd.DataFrame({"a": [n]}))
    client = DashClient(app)  # no client.layout(): this process has not served the page
    token = write(client)
    assert isinstance(token, str) and token.startswith("dsr2.")
    assert read(client, token) == repr(pd.DataFrame({"a": [3]}))


def test_layout_function_stores_are_known_from_the_validation_layout():
    app = new_app()
    app.layout = lambda: html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"))
    def w(n):
        return {"n": n}

    token = DashClient(app).call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]
    assert token.startswith("dsr2.")


def test_bad_references_inside_all_lists_are_missing_entries(warnings_log):
    from dash import ALL

    app = new_app()
    app.layout = html.Div([ServerStore(id={"type": "st", "index": i}, data={"init": i}) for i in range(3)]
                          + [html.Div(id="out")])
    seen = {}

    @app.callback(Output("out", "children"), Input({"type": "st", "index": ALL}, "data"))
    def show(values):
        seen["values"] = values
        return "ok"

    client = DashClient(app)
    client.layout()
    good = dash_state.get_state_manager(app).save('{"index":0,"type":"st"}', {"fine": 1}, client.namespace())
    stranger = DashClient(app)
    stranger.layout()
    foreign = dash_state.get_state_manager(app).save('{"index":1,"type":"st"}', {"theirs": 1}, stranger.namespace())
    body = {"output": "out.children", "outputs": {"id": "out", "property": "children"},
            "inputs": [[{"id": {"type": "st", "index": i}, "property": "data", "value": v}
                        for i, v in enumerate([good, foreign, "dsr2.garbage"])]],
            "state": [], "changedPropIds": []}
    response = client.http.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert seen["values"] == [{"fine": 1}, None, None]
    assert "another user or another store" in warnings_log.text and "not a valid" in warnings_log.text
    assert warnings_log.text.count("treated as missing") == 1  # one line per request
