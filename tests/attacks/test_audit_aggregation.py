"""Security review 15, finding 12 (low): one audit line per forged reference.

20,000 forged references in one request wrote 20,003 audit lines. Like the warning log (one line per
request, tests/test_security.py), the audit log now writes one ``miss`` line per (request, user, store
family, reason) with a count; outside a request (the Python API) each miss is still its own line.
"""
from __future__ import annotations

import json
import time

import dash
from dash import ALL, Input, Output, State, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from test_background import POLL_TIMEOUT, BackgroundClient, diskcache_manager  # noqa: F401

FORGED = "dsr2.memory." + "B" * 22 + ".s0000000." + "C" * 22
ROWS = '{"index":"*","type":"row"}'


def audited_app(path):
    app = new_app(STATE_AUDIT_LOG=str(path))
    app.layout = html.Div([ServerStore(id="s"), html.Div(id="out")] +
                          [ServerStore(id={"type": "row", "index": i}) for i in range(2)])

    @app.callback(Output("out", "children"), Input({"type": "row", "index": ALL}, "data"))
    def show(values):
        return len(values)

    return app


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def send(client: DashClient, entries: list) -> None:
    body = {"output": "out.children", "outputs": {"id": "out", "property": "children"}, "inputs": [entries],
            "state": [], "changedPropIds": []}
    response = client.http.post("/_dash-update-component", json=body)
    assert response.status_code == 200 and response.get_json()["response"]["out"]["children"] == len(entries)


def test_20000_forged_references_make_one_audit_line_per_store_family_and_reason(tmp_path):
    path = tmp_path / "audit.jsonl"
    client = DashClient(audited_app(path))
    client.layout()
    forged = [{"id": {"type": "row", "index": i}, "property": "data", "value": FORGED} for i in range(20_000)]
    made_up = [{"id": f"made-up-{i}", "property": "data", "value": FORGED} for i in range(500)]
    malformed = [{"id": {"type": "row", "index": i}, "property": "data", "value": "dsr2.memory.x"} for i in range(300)]
    send(client, forged + made_up + malformed)
    assert len(lines(path)) == 3
    found = sorted((line["store"], line["reason"], line["count"]) for line in lines(path))
    assert found == [("other", "foreign", 500), (ROWS, "foreign", 20_000), (ROWS, "malformed", 300)]
    for line in lines(path):
        assert line["event"] == "miss" and line["user"] == client.namespace() and len(line["id"]) < 100
    send(client, forged[:3])  # the next request: its own line
    assert [line["count"] for line in lines(path)][-1] == 3 and len(lines(path)) == 4


def test_outside_a_request_each_miss_is_its_own_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    app = audited_app(path)
    DashClient(app).layout()
    manager = dash_state.get_state_manager(app)
    user = "a." + "u" * 22
    for store_id in ("s", "s", "never-declared"):
        assert manager.load(store_id, FORGED, who=user) is None
    assert [(line["store"], line["id"], line["count"], line["user"]) for line in lines(path)] == [
        ("s", "s", 1, user), ("s", "s", 1, user), ("other", "never-declared", 1, user)]


def test_a_background_job_audits_the_references_it_could_not_resolve_once(diskcache_manager, tmp_path):
    """On a shared backend the job's process resolves the references: one line for all of them too."""
    path = tmp_path / "audit.jsonl"
    app = dash.Dash(__name__, background_callback_manager=diskcache_manager)
    app.server.config.update(SECRET_KEY="audit", STATE_AUDIT_LOG=str(path), STATE_BACKEND="database",
                             STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db")
    app.layout = html.Div([html.Button(id="run"), html.Div(id="out")] +
                          [ServerStore(id={"type": "row", "index": i}) for i in range(2)])

    @app.callback(Output("out", "children"), Input("run", "n_clicks"), State({"type": "row", "index": ALL}, "data"),
                  background=True, prevent_initial_call=True)
    def count(n, values):
        return sum(value is None for value in values)

    client = BackgroundClient(app)
    rows = [{"id": {"type": "row", "index": i}, "property": "data", "value": FORGED} for i in range(300)]
    body = {"output": "out.children", "outputs": {"id": "out", "property": "children"},
            "inputs": [{"id": "run", "property": "n_clicks", "value": 1}], "state": [rows],
            "changedPropIds": ["run.n_clicks"]}
    started = client.post(body)
    deadline = time.monotonic() + POLL_TIMEOUT
    while "response" not in (answer := client.post(body, cacheKey=started["cacheKey"], job=started["job"])):
        assert time.monotonic() < deadline, f"the job did not finish: {answer}"
        time.sleep(0.05)
    assert answer["response"]["out"]["children"] == 300
    assert len(lines(path)) == 1
    assert [(line["store"], line["reason"], line["count"], line["user"]) for line in lines(path)] == [
        (ROWS, "foreign", 300, client.namespace())]
