"""Security review 15, finding 17: a component id that is neither a string nor a flat dict in a callback
request (a list, a nested dict) made dash-state answer 500 where dcc.Store answers 200. Such ids are no
ServerStore's: dash-state leaves them to Dash, in inputs, outputs and the component's release hints."""
from __future__ import annotations

import json

import pytest

from apps import write_read_app
from dash_client import DashClient
from dash_state import ServerStore
from dash import dcc

ODD_IDS = [[1], ["s"], {"a": {"b": 1}}, {"a": [1]}, {"²": None}, 5]


def answer(store_class, raw_id, release="[]"):
    app = write_read_app(store_class)
    client = DashClient(app)
    client.layout()
    token = client.call([("s", "data")], [("btn", "n_clicks", 2)])["s"]["data"]
    body = {"output": "out.children", "outputs": {"id": "out", "property": "children"},
            "inputs": [{"id": raw_id, "property": "data", "value": token if store_class is ServerStore else "x"}],
            "state": [], "changedPropIds": [], "dash_state": {"release": "RELEASE"}}
    data = json.dumps(body).replace('"RELEASE"', release)  # raw JSON: ids too deep for Python's json module
    response = client.http.post("/_dash-update-component", data=data, content_type="application/json")
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize("raw_id", ODD_IDS, ids=repr)
def test_an_odd_id_is_answered_as_dcc_store_answers_it(raw_id, warnings_log):
    status, text = answer(ServerStore, raw_id)
    assert (status, "Traceback" in text) == (answer(dcc.Store, raw_id)[0], False)
    assert status == 200
    assert "Traceback" not in warnings_log.text


@pytest.mark.parametrize("raw_id", ODD_IDS, ids=repr)
def test_an_odd_id_in_the_release_hints_is_skipped(raw_id, warnings_log):
    status, text = answer(ServerStore, "s", '[{"id":%s,"reference":"dsr2.x"}]' % json.dumps(raw_id))
    assert status == 200, text[:300]
    assert "Traceback" not in warnings_log.text


def test_a_request_990_levels_deep_fails_in_dash_itself_as_for_dcc_store():
    """Dash parses the callback body with Python's json module, which gives up before dash-state sees it."""
    release = '[{"id":%s,"reference":"dsr2.x"}]' % ('{"a":' * 990 + '"s"' + "}" * 990)
    assert answer(ServerStore, "s", release)[0] == answer(dcc.Store, "s", release)[0]
