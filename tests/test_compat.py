"""The fence around Dash's private names (dash_state/glue/compat.py): checked when an app is created."""
import ast
import logging
import pathlib
import subprocess
import sys
import textwrap

import dash
import pytest
from dash import Dash, html

import dash_state
from dash_state import ServerStore  # noqa: F401  (ServerStore in use: the plugin is active)
from dash_state.errors import DashVersionError
from dash_state.glue import compat

PACKAGE = pathlib.Path(dash_state.__file__).parent


def test_a_missing_private_name_fails_in_dash_naming_it_and_the_version(monkeypatch):
    from dash import _callback

    monkeypatch.delattr(_callback, "_prepare_response")
    with pytest.raises(DashVersionError) as raised:
        Dash(__name__)
    message = str(raised.value)
    assert "dash._callback._prepare_response" in message
    assert f"Dash {dash.__version__}" in message
    assert "3.1 to 4.4" in message


def test_a_missing_app_method_fails_in_dash_too(monkeypatch):
    monkeypatch.delattr(dash.Dash, "_config")
    with pytest.raises(DashVersionError, match=r"dash\.dash\.Dash\._config"):
        Dash(__name__)


def test_without_server_stores_a_missing_name_changes_nothing():
    """An app that does not use ServerStore runs on a Dash that lacks the names (dash-state stays inert)."""
    script = textwrap.dedent("""
        import dash
        from dash import _callback, html
        del _callback._prepare_response
        app = dash.Dash(__name__)
        app.layout = html.Div("plain")
        client = app.server.test_client()
        print(client.get("/").status_code, client.get("/_dash-layout").status_code)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "200"]


def test_an_untested_dash_version_logs_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(compat, "_warned_version", False)
    monkeypatch.setattr(dash, "__version__", "5.0.0")
    with caplog.at_level(logging.WARNING, logger="dash_state"):
        Dash(__name__)
        Dash(__name__)
    warnings = [r for r in caplog.records if "tested with Dash" in r.getMessage()]
    assert len(warnings) == 1
    assert "3.1 to 4.4" in warnings[0].getMessage() and "5.0.0" in warnings[0].getMessage()


def test_a_tested_dash_version_logs_no_warning(monkeypatch, caplog):
    monkeypatch.setattr(compat, "_warned_version", False)
    with caplog.at_level(logging.WARNING, logger="dash_state"):
        Dash(__name__)
    assert not [r for r in caplog.records if "tested with Dash" in r.getMessage()]


def test_a_missing_optional_name_turns_its_feature_off(monkeypatch, caplog):
    from dash.background_callback import _proxy_set_props

    monkeypatch.delattr(_proxy_set_props, "ProxySetProps")
    monkeypatch.setattr(compat, "_missing_features", set())
    with caplog.at_level(logging.INFO, logger="dash_state"):
        app = Dash(__name__)
    assert app is not None
    assert not compat.available("background callbacks")
    assert [r for r in caplog.records if "background callbacks are off" in r.getMessage()]


def test_every_name_in_the_table_exists_on_this_dash_but_for_newer_features():
    app = Dash(__name__)
    app.layout = html.Div()
    missing = {p.name for p in compat.PRIVATE if compat._resolve(p.name, app) is compat._ABSENT}
    expected = set()
    if compat.version_tuple(dash.__version__) < (4, 3):
        expected |= {p.name for p in compat.PRIVATE if p.feature and p.feature.startswith("MCP")}
    if compat.version_tuple(dash.__version__) < (4, 2):
        expected |= {p.name for p in compat.PRIVATE if p.name.startswith("dash.backends.")}
        expected.add("dash.dash:Dash._websocket_callbacks")
        # no app method: the callback route calls the module function, which dash-state routes to the
        # app's own _inputs_to_vals (set on the app)
        assert getattr(dash.dash.inputs_to_vals, compat.MARKER, False)
        assert "_inputs_to_vals" in vars(app)
    elif not hasattr(dash.dash, "inputs_to_vals"):
        expected.add("dash.dash:inputs_to_vals")
    if (4, 2) <= compat.version_tuple(dash.__version__) < (4, 4):  # their set_props awaits set_prop
        expected.add("dash.backends.ws:DashWebsocketCallback.set_prop_sync")
    assert missing == expected


def test_a_name_outside_the_table_is_refused():
    with pytest.raises(KeyError):
        compat.get("dash._utils:stringify_id")


def _private_imports(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dash":
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found += [f"{path.relative_to(PACKAGE)}:{node.lineno} {m}" for m in modules
                      if any(part.startswith("_") for part in m.split(".")[1:])][:1]
        elif isinstance(node, ast.Import):
            found += [f"{path.relative_to(PACKAGE)}:{node.lineno} {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] == "dash" and any(p.startswith("_") for p in alias.name.split("."))]
    return found


def test_only_the_fence_imports_private_dash_modules():
    generated = {"ServerStore.py"}  # dash-generate-components writes Dash's own _explicitize_args import
    offenders = [hit for path in sorted(PACKAGE.rglob("*.py")) if path.name != "compat.py"
                 and path.name not in generated for hit in _private_imports(path)]
    assert offenders == []


def test_features_available_on_this_dash():
    """What each feature's names say on this Dash (an app's own attributes are checked on the app)."""
    newest = compat.version_tuple(dash.__version__)
    assert compat.available("background callbacks")
    assert compat.available("MCP") == (newest >= (4, 3))
    assert compat.available("ServerStore in websocket callbacks") == (newest >= (4, 4))
    app = Dash(__name__)
    assert compat.available("MCP", app) == (newest >= (4, 3))
    assert compat.available("websocket callbacks", app) == (newest >= (4, 2))
