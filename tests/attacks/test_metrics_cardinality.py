"""Security review 15, finding 7: metric cardinality.

Every store id named in a callback request became a metric series of its own: 20,000 made-up ids in
5 requests gave 80,074 Prometheus series and a 12.6 MB metrics page, kept for the life of the process.
Only the ids an app declares (pattern-matching ids by family) have labels now; every other id counts
under ``other``, and at most ``MAX_STORE_LABELS`` labels exist per process.
"""
from __future__ import annotations

import dash
from dash import ALL, Input, Output, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from dash_state.metrics import MAX_STORE_LABELS, OTHER, Metrics

FORGED = "dsr2.memory." + "B" * 22 + ".s0000000." + "C" * 22
ROWS = '{"index":"*","type":"row"}'


def rows_app(**config) -> dash.Dash:
    """A plain store 's' and a family of row stores, all read by one ALL callback."""
    app = new_app(**config)
    app.layout = html.Div([ServerStore(id="s"), html.Div(id="out")] +
                          [ServerStore(id={"type": "row", "index": i}) for i in range(3)])

    @app.callback(Output("out", "children"), Input({"type": "row", "index": ALL}, "data"))
    def show(values):
        return len(values)

    return app


def send(client: DashClient, ids: list, pattern: bool = True) -> None:
    """One callback request naming each id as a ServerStore input (one ALL input, or one input each),
    with a forged reference."""
    entries = [{"id": i, "property": "data", "value": FORGED} for i in ids]
    body = {"output": "out.children", "outputs": {"id": "out", "property": "children"},
            "inputs": [entries] if pattern else entries,
            "state": [], "changedPropIds": []}
    response = client.http.post("/_dash-update-component", json=body)
    assert response.status_code == 200 and response.get_json()["response"]["out"]["children"] == len(ids)


def made_up(request: int, n: int = 4000) -> list:
    """Ids no layout has: strings, dicts of unknown keys, and row ids with string indexes."""
    kinds = (lambda i: f"made-up-{request}-{i}", lambda i: {"made": "up", "n": i, "r": request},
             lambda i: {"type": "row", "index": f"made-up-{request}-{i}"})
    return [kinds[i % 3](i) for i in range(n)]


def series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("dash_state_")]


def test_20000_made_up_ids_in_5_requests_add_no_series():
    app = rows_app(STATE_PROMETHEUS=True)
    client = DashClient(app)
    client.layout()
    send(client, [{"type": "row", "index": 1}, "s"])  # the declared ones first: their series exist
    before = series(client.http.get("/_dash-state/metrics").get_data(as_text=True))
    for request in range(5):
        send(client, made_up(request))
    page = client.http.get("/_dash-state/metrics").get_data(as_text=True)
    stores = dash_state.get_state_manager(app).stats()["stores"]
    assert set(stores) == {"s", ROWS, OTHER}, sorted(stores)[:10]
    assert stores[OTHER]["local"]["reads"] == 5 * (1334 + 1333)  # strings and dicts of unknown keys
    assert stores[ROWS]["local"]["misses"]["foreign"] == 1 + 5 * 1333  # made-up rows count as rows
    added = [line for line in series(page) if line not in before and "store=\"other\"" not in line]
    assert len(series(page)) - len(before) <= 10 and not [line for line in added if "made-up" in line]
    assert "made-up" not in page


def test_declared_ids_and_families_keep_their_own_labels():
    app = rows_app()
    app.layout.children.append(ServerStore(id={"type": "row", "index": "named"}))
    client = DashClient(app)
    client.layout()
    send(client, [{"type": "row", "index": 2}, {"type": "row", "index": "named"}, {"type": "other", "index": 1}, "s"])
    labels = dash_state.get_state_manager(app).metrics.label
    assert labels('{"index":7,"type":"row"}') == ROWS
    assert labels('{"index":"named","type":"row"}') == '{"index":"named","type":"row"}'
    assert labels('{"index":"nameless","type":"row"}') == ROWS
    assert labels('{"index":1,"type":"other"}') == '{"index":"*","type":"*"}'  # known keys, unknown values
    assert labels('{"made":"up"}') == labels("made-up") == labels("{not json") == labels("x" * 5000) == OTHER
    assert labels("s") == "s"
    assert set(dash_state.get_state_manager(app).stats()["stores"]) == \
        {"s", ROWS, '{"index":"named","type":"row"}', '{"index":"*","type":"*"}'}


def test_the_number_of_store_labels_is_bounded():
    """A backstop: an app that declares more stores than MAX_STORE_LABELS counts the rest as other."""
    app = new_app()
    app.layout = html.Div([ServerStore(id=f"s{i}") for i in range(MAX_STORE_LABELS + 50)] + [html.Div(id="out")])

    @app.callback(Output("out", "children"), [Input(f"s{i}", "data") for i in range(MAX_STORE_LABELS + 50)])
    def show(*values):
        return len(values)

    client = DashClient(app)
    client.layout()
    send(client, [f"s{i}" for i in range(MAX_STORE_LABELS + 50)], pattern=False)
    stores = dash_state.get_state_manager(app).stats()["stores"]
    assert len(stores) == MAX_STORE_LABELS + 1 and stores[OTHER]["local"]["reads"] == 50
    metrics = Metrics(labels=str, max_stores=3)
    for name in "abcdef":
        metrics.count(name, "memory", "reads")
    assert metrics.snapshot().keys() == {"a", "b", "c", OTHER} and metrics.label("f") == OTHER


def test_python_api_and_dev_tools_use_the_same_labels():
    app = rows_app()
    app.enable_dev_tools(debug=True, dev_tools_hot_reload=False)
    client = DashClient(app)
    client.layout()
    manager = dash_state.get_state_manager(app)
    for store_id in ("s", "never-declared", '{"index":9,"type":"row"}'):
        assert manager.load(store_id, FORGED, who="a." + "u" * 22) is None  # outside a request
    assert set(manager.stats()["stores"]) == {"s", ROWS, OTHER}
    answer = client.http.post("/_dash-state/v1/devtools", json={"stores": [
        {"id": "made-up-9", "reference": FORGED}, {"id": {"type": "row", "index": 9}, "reference": FORGED}]})
    rows = answer.get_json()["stores"]
    assert [(row["key"], row["label"], row["misses"]) for row in rows] == [
        ("made-up-9", OTHER, 1), ('{"index":9,"type":"row"}', ROWS, 1)]
