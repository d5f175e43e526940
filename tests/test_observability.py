"""Metrics per store and backend, their Prometheus export, the audit log, and the dev-tools panel."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from dash import Input, Output, State, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore

SECRET = "OBSERVED-SECRET-42"


def metric_app(**config):
    app = new_app(**config)
    app.layout = html.Div([html.Button(id="w"), html.Button(id="r"), ServerStore(id="s"),
                           ServerStore(id={"type": "cart", "index": 1}), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("w", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return pd.DataFrame({"label": [SECRET] * 1000, "x": range(1000)})

    @app.callback(Output("out", "children"), Input("r", "n_clicks"), State("s", "data"), prevent_initial_call=True)
    def read(n, data):
        return "none" if data is None else str(len(data))

    return app


def run(client):
    token = client.call([("s", "data")], [("w", "n_clicks", 1)])["s"]["data"]
    for value in (token, token, "dsr2.memory." + "A" * 22 + ".s0000000." + "A" * 22):
        client.call([("out", "children")], [("r", "n_clicks", 1)], [("s", "data", value)])
    return token


def test_counters_and_histograms_per_store_and_backend():
    app = metric_app()
    client = DashClient(app)
    client.layout()
    run(client)
    stats = dash_state.get_state_manager(app).stats()["stores"]["s"]["local"]
    assert stats["writes"] == 1 and stats["hits"] == 2 and stats["reads"] == 3
    assert stats["misses"] == {"foreign": 1}
    assert stats["bytes_stored"] > 10_000
    # what a dcc.Store would have sent: to_dict("records") as JSON, within 25 %
    real = len(json.dumps(pd.DataFrame({"label": [SECRET] * 1000, "x": range(1000)}).to_dict("records")))
    assert 0.75 * real < stats["bytes_kept_from_browser"] < 1.25 * real
    assert stats["latency"]["read"]["count"] == 2 and stats["latency"]["write"]["count"] == 1
    assert json.dumps(stats) and SECRET not in json.dumps(stats)


def test_pattern_matching_ids_are_counted_by_family():
    from dash_state.metrics import store_label

    assert store_label('{"index":7,"type":"cart"}') == '{"index":"*","type":"cart"}'
    assert store_label("x" * 500).endswith("...") and len(store_label("x" * 500)) < 110


def test_metrics_can_be_turned_off():
    app = metric_app(STATE_METRICS=False)
    client = DashClient(app)
    client.layout()
    run(client)
    assert dash_state.get_state_manager(app).stats()["stores"] == {}


def test_prometheus_route_is_off_by_default_and_never_shows_values():
    app = metric_app()
    assert DashClient(app).http.get("/_dash-state/metrics").status_code == 404
    app = metric_app(STATE_PROMETHEUS=True)
    client = DashClient(app)
    client.layout()
    token = run(client)
    response = client.http.get("/_dash-state/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert re.search(r'dash_state_writes_total\{backend="local",store="s"\} [1-9]', text)
    assert re.search(r'dash_state_misses_total\{backend="local",reason="foreign",store="s"\} [1-9]', text)
    assert 'dash_state_read_seconds_bucket{backend="local",le="0.005",store="s"}' in text
    assert SECRET not in text and token not in text and "dsr2" not in text


def test_prometheus_multiprocess_mode_aggregates_workers(tmp_path):
    """Two worker processes under PROMETHEUS_MULTIPROC_DIR: the route of either shows both's writes."""
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[2])
        from test_observability import metric_app
        from dash_client import DashClient
        app = metric_app(STATE_PROMETHEUS=True)
        client = DashClient(app)
        client.layout()
        for n in range(int(sys.argv[1])):
            client.call([("s", "data")], [("w", "n_clicks", n + 1)])
        if sys.argv[1] == "0":
            print(client.http.get("/_dash-state/metrics").get_data(as_text=True))
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    tests = os.path.dirname(__file__)
    for writes in ("2", "3"):
        subprocess.run([sys.executable, "-c", script, writes, tests], env=env, check=True, timeout=120,
                       cwd=tmp_path)
    out = subprocess.run([sys.executable, "-c", script, "0", tests], env=env, check=True, timeout=120,
                         capture_output=True, text=True, cwd=tmp_path).stdout
    assert re.search(r'dash_state_writes_total\{backend="local",store="s"\} 5\.0', out), out[-2000:]


def test_audit_log_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    app = metric_app(STATE_AUDIT_LOG=str(path))
    client = DashClient(app)
    client.layout()
    token = run(client)
    client.http.post("/_dash-state/v1/delete", json={"id": "s", "reference": token})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    events = [line["event"] for line in lines]
    assert events == ["write", "miss", "delete"], events
    write = lines[0]
    assert write["store"] == "s" and write["backend"] == "local" and write["bytes"] > 10_000
    assert write["user"] == client.namespace() and len(write["key"]) == 6
    assert lines[1]["reason"] == "foreign"
    text = path.read_text()
    assert SECRET not in text and token not in text and token.split(".")[2] not in text


def test_audit_log_to_a_logger(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="dash_state.audit")
    app = metric_app(STATE_AUDIT_LOG="logger")
    client = DashClient(app)
    client.layout()
    run(client)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dash_state.audit"]
    assert [r["event"] for r in records] == ["write", "miss"]


@pytest.mark.browser
def test_dev_tools_panel_lists_the_page_stores_live(dash_duo, tmp_path):
    app = metric_app()
    dash_duo.start_server(app, debug=True, use_reloader=False, dev_tools_hot_reload=False)
    dash_duo.find_element("#w").click()
    dash_duo.wait_for_element("#dash-state-devtools-button").click()
    dash_duo.wait_for_element("#dash-state-devtools-panel")
    dash_duo.wait_for_contains_text("#dash-state-devtools-panel", "local")
    rows = lambda: [r.text for r in dash_duo.find_elements(".dash-state-devtools-row")]  # noqa: E731
    assert any(row.startswith("s local") and "KB" in row for row in rows()), rows()
    dash_duo.find_element("#r").click()  # a read: the hit count goes up while the panel is open
    dash_duo.wait_for_text_to_equal("#out", "1000")
    dash_duo._wait_for(lambda _: any(row.startswith("s local") and row.endswith(" 1 0") for row in rows()),
                       timeout=5, msg="the panel did not show the hit")
    dash_duo.driver.save_screenshot(str(tmp_path / "panel.png"))
    assert SECRET not in dash_duo.find_element("#dash-state-devtools-panel").text


def test_dev_tools_route_answers_only_in_debug_mode():
    app = metric_app()
    assert DashClient(app).http.post("/_dash-state/v1/devtools", json={"stores": []}).status_code == 404
