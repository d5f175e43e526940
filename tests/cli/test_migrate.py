"""`dash-state migrate`: dcc.Store calls become ServerStore calls, everything else stays byte for byte;
refusals (computed ids, unknown ids) write nothing; the real console script's exit codes."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dash_state.cli.main import load_commands

USAGE = Path(__file__).parents[2] / "usage.py"
SCRIPT = Path(sys.executable).parent / "dash-state"
IMPORT = "from dash_state import ServerStore\n"


def run(*args):
    return CliRunner().invoke(load_commands(), [str(a) for a in args], catch_exceptions=False)


def write(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def usage_as_dcc(tmp_path):
    """usage.py with its ServerStores turned back into dcc.Stores (and their ServerStore-only props
    dropped, so that the stores left as dcc.Store still build)."""
    text = USAGE.read_text()
    assert IMPORT in text
    text = text.replace(IMPORT, "").replace("ServerStore(", "dcc.Store(")
    text = text.replace('scope="app", live=True, writable=True, ', "").replace('scope="user", live=True, ', "")
    copy = tmp_path / "usage_copy.py"
    copy.write_text(text)
    return copy


LAYOUT_IDS = """
import json, runpy, sys
app = runpy.run_path(sys.argv[1], run_name="migrated")["app"]
layout = app.server.test_client().get("/_dash-layout").get_json()
found = []
def walk(node):
    if isinstance(node, dict):
        if node.get("namespace") == "dash_state" and node.get("type") == "ServerStore":
            found.append(node["props"]["id"])
        for value in node.values():
            walk(value)
    elif isinstance(node, list):
        for value in node:
            walk(value)
walk(layout)
print(json.dumps(found))
"""


def test_usage_copy_gets_its_server_stores_back(usage_as_dcc, tmp_path):
    before = usage_as_dcc.read_text()
    result = run("migrate", usage_as_dcc, "--stores", "filters-store,merged-store")
    assert result.exit_code == 0, result.output
    assert result.output == f"migrated 2 store(s) in {usage_as_dcc}: filters-store, merged-store\n"

    after = usage_as_dcc.read_text()
    expected = (before.replace('dcc.Store(id="filters-store"', 'ServerStore(id="filters-store"')
                .replace('dcc.Store(id="merged-store"', 'ServerStore(id="merged-store"')
                .replace("from dash_state.glue.devtools import browser_bytes\n",
                         "from dash_state.glue.devtools import browser_bytes\n" + IMPORT))
    assert after == expected  # byte for byte: comments, formatting, the other stores untouched
    assert after.count(IMPORT) == 1 and 'dcc.Store(id="team-notes"' in after
    compile(after, str(usage_as_dcc), "exec")

    served = subprocess.run([sys.executable, "-c", LAYOUT_IDS, str(usage_as_dcc)], cwd=tmp_path, check=False,
                            capture_output=True, text=True, timeout=120)
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout.strip().splitlines()[-1]) == ["filters-store", "merged-store"]


def test_dry_run_prints_a_diff_and_writes_nothing(usage_as_dcc):
    before = usage_as_dcc.read_bytes()
    result = run("migrate", usage_as_dcc, "--stores", "merged-store", "--dry-run")
    assert result.exit_code == 0, result.output
    assert usage_as_dcc.read_bytes() == before
    lines = result.output.splitlines()
    assert lines[0] == f"--- a/{usage_as_dcc}" and lines[1] == f"+++ b/{usage_as_dcc}"
    changed = [line for line in lines[2:] if line[:1] in "+-" and not line.startswith("@@")]
    assert changed == ["+" + IMPORT.strip(), '-    dcc.Store(id="merged-store", storage_type="memory"),',
                       '+    ServerStore(id="merged-store", storage_type="memory"),']


COMPUTED = """
    from dash import Dash, dcc, html

    name = "results"
    app = Dash(__name__)
    app.layout = html.Div([
        dcc.Store(id="filters"),
        dcc.Store(id=name),
        dcc.Store(id=f"row-{name}"),
        dcc.Store(id={"type": "cell", "index": len(name)}),
    ])
"""


@pytest.mark.parametrize("named, line, expression", [
    ("results", 7, "name"),  # a name could be anything
    ("row-1", 8, 'f"row-{name}"'),  # the f-string's literal parts fit
    ('{"index":3,"type":"cell"}', 9, '{"type": "cell", "index": len(name)}'),  # same keys, same type
])
def test_a_computed_id_that_may_be_named_refuses(tmp_path, named, line, expression):
    app = write(tmp_path / "app.py", COMPUTED)
    before = app.read_bytes()
    result = run("migrate", app, "--stores", f"filters,{named}")
    assert result.exit_code == 1
    assert "computed at run time" in result.output
    assert f"{app}:7: (name) may be 'filters', {named!r}" in result.output  # a name may be any id
    if line != 7:  # every refusal is named, not only the first; a literal id is never in doubt
        assert f"{app}:{line}: ({expression}) may be {named!r}\n" in result.output
    assert app.read_bytes() == before


def test_a_computed_id_that_clearly_is_another_does_not_block(tmp_path):
    app = write(tmp_path / "app.py", COMPUTED.replace("dcc.Store(id=name),\n", ""))
    result = run("migrate", app, "--stores", "filters")  # not f"row-...", not a dict
    assert result.exit_code == 0, result.output
    assert 'ServerStore(id="filters")' in app.read_text()


def test_unknown_id_exits_1_and_names_it(tmp_path, usage_as_dcc):
    before = usage_as_dcc.read_bytes()
    result = run("migrate", usage_as_dcc, "--stores", "merged-store,nope")
    assert result.exit_code == 1 and "'nope'" in result.output
    assert usage_as_dcc.read_bytes() == before


def test_all_migrates_every_literal_id(tmp_path):
    app = write(tmp_path / "app.py", COMPUTED)
    result = run("migrate", app, "--all")
    assert result.exit_code == 0, result.output
    assert "migrated 1 store(s)" in result.stdout and "app.py:7: name" in result.stderr
    text = app.read_text()
    assert text.count("ServerStore(") == 1 and 'ServerStore(id="filters")' in text
    assert text.count("dcc.Store(") == 3  # the computed ids are left as they are
    assert text.splitlines()[:2] == ["from dash import Dash, dcc, html", IMPORT.strip()]


def test_import_added_once_and_an_existing_import_is_reused(tmp_path):
    app = write(tmp_path / "app.py", '''
        """An app."""
        import dash
        from dash import dcc, html

        app = dash.Dash(__name__)
        app.layout = html.Div([dcc.Store(id="a"), dcc.Store(id="b"), dcc.Store(id="c")])
    ''')
    assert run("migrate", app, "--stores", "a,b").exit_code == 0
    assert run("migrate", app, "--stores", "c").exit_code == 0
    text = app.read_text()
    assert text.count(IMPORT) == 1 and text.count("ServerStore(id=") == 3
    again = run("migrate", app, "--stores", "c")  # already done: says so, changes nothing
    assert again.exit_code == 0 and "c: already a ServerStore" in again.output and app.read_text() == text

    aliased = write(tmp_path / "aliased.py", '''
        from dash import dcc
        from dash_state import ServerStore as SS

        stores = [SS(id="x"), dcc.Store(id="y")]
    ''')
    assert run("migrate", aliased, "--all").exit_code == 0
    assert aliased.read_text() == 'from dash import dcc\nfrom dash_state import ServerStore as SS\n\nstores = [SS(id="x"), SS(id="y")]\n'


def test_every_spelling_of_dcc_store(tmp_path):
    app = write(tmp_path / "app.py", '''
        import dash
        from dash import dcc as d
        from dash.dcc import Store

        stores = [
            Store("positional"),  # from dash.dcc import Store
            d.Store(id="aliased", data={"a": 1}),
            dash.dcc.Store(
                # a comment inside the call
                id="dotted",
                storage_type="local",
            ),
            d.Store(id={"type": "row", "index": 1}),
            d.Store(id="not-named"),
        ]
    ''')
    result = run("migrate", app, "--stores", 'positional,aliased,dotted,{"index": 1, "type": "row"}')
    assert result.exit_code == 0, result.output
    assert result.output.endswith('positional, aliased, dotted, {"index":1,"type":"row"}\n')
    assert app.read_text() == textwrap.dedent('''\
        import dash
        from dash import dcc as d
        from dash.dcc import Store
        from dash_state import ServerStore

        stores = [
            ServerStore("positional"),  # from dash.dcc import Store
            ServerStore(id="aliased", data={"a": 1}),
            ServerStore(
                # a comment inside the call
                id="dotted",
                storage_type="local",
            ),
            ServerStore(id={"type": "row", "index": 1}),
            d.Store(id="not-named"),
        ]
    ''')


def test_a_directory_skips_venvs_and_hidden_dirs(tmp_path):
    source = "from dash import dcc\n\nstore = dcc.Store(id='shared')\n"
    for place in ("pkg/pages/a.py", "pkg/b.py", "pkg/.venv/lib/c.py", "pkg/node_modules/d.py", "pkg/.git/e.py"):
        (tmp_path / place).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / place).write_text(source)
    result = run("migrate", tmp_path / "pkg", "--stores", "shared")
    assert result.exit_code == 0, result.output
    assert result.output.count("migrated 1 store(s)") == 2
    for place in ("pkg/pages/a.py", "pkg/b.py"):
        assert "ServerStore(id='shared')" in (tmp_path / place).read_text()
    for place in ("pkg/.venv/lib/c.py", "pkg/node_modules/d.py", "pkg/.git/e.py"):
        assert (tmp_path / place).read_text() == source


@pytest.mark.skipif(not SCRIPT.exists(), reason="the dash-state console script is not installed")
def test_console_script_exit_codes(tmp_path):
    write(tmp_path / "app.py", COMPUTED)

    def script(*args):
        return subprocess.run([str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=False)

    assert script("migrate", "app.py").returncode == 2  # neither --stores nor --all
    assert script("migrate", "app.py", "--stores", "a", "--all").returncode == 2
    refused = script("migrate", "app.py", "--stores", "results")
    assert refused.returncode == 1 and "app.py:7:" in refused.stderr
    assert script("migrate", "app.py", "--stores", "missing").returncode == 1
    done = script("migrate", "app.py", "--all")
    assert done.returncode == 0 and "migrated 1 store(s) in app.py: filters" in done.stdout
    assert script("audit").returncode == 2
    assert "Examples" in script("migrate", "--help").stdout


def test_the_import_goes_above_the_first_migrated_store_and_line_endings_stay(tmp_path):
    app = tmp_path / "app.py"
    app.write_bytes(b'import dash\r\nfrom dash import dcc, html\r\n\r\nlayout = html.Div([dcc.Store(id="a")])  # c\r\n'
                    b'\r\nimport json  # a late import\r\n')
    assert run("migrate", app, "--stores", "a").exit_code == 0
    assert app.read_bytes() == (b'import dash\r\nfrom dash import dcc, html\r\nfrom dash_state import ServerStore\r\n'
                                b'\r\nlayout = html.Div([ServerStore(id="a")])  # c\r\n\r\nimport json  # a late import\r\n')
