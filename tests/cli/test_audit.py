"""`dash-state audit`: every dcc.Store and ServerStore of a multi-page app, who writes and reads it,
and the advice to migrate or keep it (the JSON output, the table, the exit codes)."""
import json
import sys
import textwrap
from pathlib import Path

import dash
import pytest
from click.testing import CliRunner

from dash_state.cli.main import load_commands

APP = '''
import dash
from dash import Dash, Input, Output, State, dcc, html
from dash_state import ServerStore

CATALOG = [{"sku": i, "name": f"item {i}"} for i in range(600)]  # about 17 KB of JSON

app = Dash(__name__, use_pages=True, pages_folder="audit_pages")
app.layout = html.Div([
    dcc.Store(id="theme", storage_type="local", data={"dark": False}),  # read in the browser
    dcc.Store(id="catalog", data=CATALOG),  # big
    ServerStore(id="results", storage_type="session"),
    html.Div(id="out"), html.Div(id="theme-out"),
    dash.page_container,
])

app.clientside_callback("function(t) { return t && t.dark ? 'dark' : 'light'; }",
                        Output("theme-out", "children"), Input("theme", "data"))


@app.callback(Output("results", "data"), Input("catalog", "data"))
def compute(catalog):
    return len(catalog or [])


@app.callback(Output("out", "children"), Input("results", "data"), State("catalog", "modified_timestamp"))
def show(results, _ts):
    return str(results)
'''

HOME = '''
import dash
from dash import MATCH, Input, Output, callback, dcc, html

dash.register_page(__name__, path="/")

layout = html.Div([
    dcc.Store(id={"type": "row", "index": 1}, data="a"),
    dcc.Store(id={"type": "row", "index": 2}),
    html.Button(id={"type": "add", "index": 1}), html.Button(id={"type": "add", "index": 2}),
    dcc.Store(id="tiny", data=1),
])


@callback(Output({"type": "row", "index": MATCH}, "data"), Input({"type": "add", "index": MATCH}, "n_clicks"))
def add_row(n):
    return n
'''

REPORT = '''
import dash
from dash import Input, Output, callback, dcc, html

dash.register_page(__name__, path="/report")


def layout(**_):
    return html.Div([dcc.Store(id="report-filters", data={"year": 2024}), dcc.Input(id="year"),
                     dcc.Store(id="theme")])  # theme again: reported once, found in both


@callback(Output("report-filters", "data"), Input("year", "value"))
def pick_year(year):
    return {"year": year}
'''

BROKEN = '''
import dash

dash.register_page(__name__, path="/broken")


def layout():
    raise RuntimeError("boom")
'''


@pytest.fixture
def clean_imports(tmp_path):
    """The app's modules, its sys.path entry and Dash's page registry do not outlive the test (only the
    modules from tmp_path go: dash-state's own register Dash hooks once per process)."""
    path = list(sys.path)
    dash.page_registry.clear()
    yield
    dash.page_registry.clear()
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def multipage(tmp_path, clean_imports):
    (tmp_path / "audit_pages").mkdir()
    (tmp_path / "audit_multi.py").write_text(APP)
    for name, text in (("home", HOME), ("report", REPORT), ("broken", BROKEN)):
        (tmp_path / "audit_pages" / f"{name}.py").write_text(textwrap.dedent(text))
    return tmp_path / "audit_multi.py"


def run(*args):
    return CliRunner().invoke(load_commands(), list(args), catch_exceptions=False)


def by_id(result):
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    ids = [s["id"] for s in found]
    assert len(ids) == len(set(ids)), "every store once"
    return {s["id"]: s for s in found}


def test_json_of_a_multipage_app(multipage):
    result = run("audit", str(multipage), "--json")
    stores = by_id(result)
    assert set(stores) == {"theme", "catalog", "results", '{"index":1,"type":"row"}', '{"index":2,"type":"row"}',
                           "tiny", "report-filters"}  # not Dash's own _pages_store
    assert "page /broken: layout function failed: RuntimeError: boom" in result.stderr
    assert list(stores["theme"]) == ["id", "pattern", "type", "storage_type", "found_in", "initial_bytes",
                                     "initial_type", "writers", "readers", "recommendation", "reason"]

    theme = stores["theme"]
    assert (theme["type"], theme["storage_type"], theme["found_in"]) == ("dcc.Store", "local", ["layout", "page /report"])
    assert theme["initial_bytes"] == len(b'{"dark":false}')
    assert theme["writers"] == []
    assert theme["readers"] == [{"callback": "clientside (theme-out.children)", "clientside": True, "props": ["data"]}]
    assert theme["recommendation"] == "keep" and "clientside" in theme["reason"]

    catalog = stores["catalog"]
    assert catalog["initial_bytes"] > 10 * 1024
    assert catalog["readers"] == [{"callback": "compute", "clientside": False, "props": ["data"]},
                                  {"callback": "show", "clientside": False, "props": ["modified_timestamp"]}]
    assert catalog["recommendation"] == "migrate" and "initial data of" in catalog["reason"]

    results = stores["results"]
    assert (results["type"], results["storage_type"], results["initial_bytes"]) == ("ServerStore", "session", 0)
    assert [w["callback"] for w in results["writers"]] == ["compute"]
    assert [r["callback"] for r in results["readers"]] == ["show"]
    assert (results["recommendation"], results["reason"]) == ("already", "already a ServerStore")

    for index, size in ((1, 3), (2, 0)):  # pattern matching: the MATCH output writes both rows
        row = stores[f'{{"index":{index},"type":"row"}}']
        assert row["pattern"] is True and row["found_in"] == ["page /"] and row["initial_bytes"] == size
        assert row["writers"] == [{"callback": "add_row", "clientside": False, "props": ["data"]}]
        assert row["recommendation"] == "migrate" and "written by server callbacks" in row["reason"]

    assert stores["tiny"]["recommendation"] == "keep" and "small (1 bytes)" in stores["tiny"]["reason"]
    report = stores["report-filters"]  # from a layout function
    assert report["found_in"] == ["page /report"]
    assert [w["callback"] for w in report["writers"]] == ["pick_year"]
    assert report["recommendation"] == "migrate"


def test_app_option_table_and_validation_layout(multipage, monkeypatch):
    extra = ('\napp.validation_layout = html.Div([app.layout, dcc.Store(id="declared-only")])\n')
    multipage.write_text(multipage.read_text() + extra)
    monkeypatch.chdir(multipage.parent)
    stores = by_id(run("--app", "audit_multi:app", "audit", "--json"))
    assert stores["declared-only"]["found_in"] == ["validation layout"]
    assert stores["catalog"]["found_in"] == ["layout"]  # also in the validation layout: said once

    result = run("audit", "audit_multi:app")
    assert result.exit_code == 0, result.output
    assert "catalog" in result.stdout and "migrate" in result.stdout and "already a ServerStore" in result.stdout
    assert "layout function failed" in result.stdout
    assert ("8 store(s): 7 dcc.Store (4 to migrate, 3 to keep), 1 ServerStore; 1 layout(s) could not be read"
            in result.stdout)


def test_layout_function_runs_in_a_request_and_written_only_clientside(tmp_path, clean_imports):
    (tmp_path / "audit_fn.py").write_text(textwrap.dedent('''
        import flask
        from dash import Dash, Input, Output, dcc, html

        app = Dash(__name__)
        def layout():  # Dash calls it once at import (the validation layout), outside of a request
            path = flask.request.path if flask.has_request_context() else None
            return html.Div([dcc.Store(id="path", data=path), html.Button(id="b"), dcc.Store(id="clicks")])

        app.layout = layout
        app.clientside_callback("function(n) { return n; }", Output("clicks", "data"), Input("b", "n_clicks"))
    '''))
    stores = by_id(run("audit", str(tmp_path / "audit_fn.py"), "--json"))
    assert stores["path"]["initial_bytes"] == len(b'"/"')  # called in a request for the audit
    assert stores["path"]["found_in"] == ["layout"]  # and not again for the validation layout
    assert stores["clicks"]["writers"][0]["clientside"] is True
    assert stores["clicks"]["recommendation"] == "keep" and "clientside" in stores["clicks"]["reason"]


def test_data_that_is_not_json(tmp_path, clean_imports):
    (tmp_path / "audit_df.py").write_text(textwrap.dedent('''
        from dash import Dash, dcc, html

        class Frame:  # stands for a DataFrame: orjson cannot encode it
            pass

        app = Dash(__name__)
        app.layout = html.Div([dcc.Store(id="frame", data=Frame())])
    '''))
    frame = by_id(run("audit", str(tmp_path / "audit_df.py"), "--json"))["frame"]
    assert (frame["initial_bytes"], frame["initial_type"]) == (None, "Frame")
    assert frame["recommendation"] == "migrate" and "not JSON (Frame)" in frame["reason"]


def test_usage_demo_has_only_server_stores(clean_imports):
    usage = Path(__file__).parents[2] / "usage.py"
    stores = by_id(run("audit", str(usage), "--json"))
    assert set(stores) == {"filters-store", "merged-store", "team-notes", "bookmarks"}
    assert {s["recommendation"] for s in stores.values()} == {"already"}
    assert [w["callback"] for w in stores["merged-store"]["writers"]] == ["merge"]


def test_usage_errors(tmp_path):
    assert run("audit").exit_code == 2  # no TARGET and no --app
    missing = run("audit", str(tmp_path / "nope.py"))
    assert missing.exit_code == 1 and "no such file" in missing.output
    assert "Examples" in run("audit", "--help").output
