"""Configuration sources, precedence, the per-store flag and startup errors."""
import dash
import pytest
from dash import html

import dash_state
from dash_state import ConfigError, ServerStore
from dash_state.config import load_config


def test_defaults():
    config = load_config()
    assert config["STATE_BACKEND"] == "local"
    assert config["STATE_TTL_DEFAULT"] == 3600
    assert config["STATE_ENABLE_USER_ISOLATION"] is True
    assert config["STATE_DATABASE_URL"] == "sqlite:///state.db"
    assert config.store("anything").backend == "local"


def test_precedence_file_then_environment_then_server_config_then_init_app(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(
        'STATE_TTL_DEFAULT = 10\nSTATE_ENABLE_USER_ISOLATION = false\nSTATE_BACKEND = "client"\n'
        '[STATE_STORES.a]\nbackend = "client"\nttl = 5\n'
    )
    assert load_config()["STATE_TTL_DEFAULT"] == 10
    monkeypatch.setenv("STATE_TTL_DEFAULT", "20")
    monkeypatch.setenv("STATE_ENABLE_USER_ISOLATION", "yes")
    config = load_config()
    assert config["STATE_TTL_DEFAULT"] == 20 and config["STATE_ENABLE_USER_ISOLATION"] is True
    config = load_config({"STATE_TTL_DEFAULT": 30, "STATE_STORES": {"a": {"ttl": 7}}})
    assert config["STATE_TTL_DEFAULT"] == 30
    assert config.store("a") == type(config.store("a"))(backend="client", ttl=7)  # merged per store
    config = load_config({"STATE_TTL_DEFAULT": 30}, {"STATE_TTL_DEFAULT": 40, "STATE_BACKEND": "memory"})
    assert config["STATE_TTL_DEFAULT"] == 40 and config.store("b").backend == "memory"
    assert config.sources["STATE_TTL_DEFAULT"] == "init_app()"


def test_config_file_named_by_environment(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.toml"
    path.write_text("STATE_TTL_DEFAULT = 99\n")
    monkeypatch.setenv("STATE_CONFIG_FILE", str(path))
    assert load_config()["STATE_TTL_DEFAULT"] == 99
    monkeypatch.setenv("STATE_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml"):
        load_config()


@pytest.mark.parametrize("text, words", [
    ('STATE_BACKEND = "mongo"\n', ["STATE_BACKEND", "config.toml", "mongo", "memory"]),
    ("STATE_TTL_DEFAULT = -5\n", ["STATE_TTL_DEFAULT", "config.toml", "positive"]),
    ('STATE_TTL_DEFAULT = "soon"\n', ["STATE_TTL_DEFAULT", "number"]),
    ("STATE_BACKEND = \n", ["config.toml", "not valid TOML"]),
    ('[STATE_STORES.cart]\nbackend = "disk"\n', ["STATE_STORES.cart", "backend", "disk"]),
    ("[STATE_STORES.cart]\nttl = 0\n", ["STATE_STORES.cart", "ttl", "positive"]),
    ("[STATE_STORES.cart]\nttll = 5\n", ["STATE_STORES.cart", "ttll"]),
    ("STATE_TLL_DEFAULT = 5\n", ["STATE_TLL_DEFAULT", "unknown setting"]),
    ('STATE_ENABLE_USER_ISOLATION = "maybe"\n', ["STATE_ENABLE_USER_ISOLATION", "true or false"]),
])
def test_invalid_config_fails_at_startup_naming_key_and_file(tmp_path, text, words):
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        dash.Dash(__name__)  # the plugin validates when the app is created
    for word in words:
        assert word in str(info.value)


def test_unrelated_broken_config_toml_is_ignored(tmp_path):
    (tmp_path / "config.toml").write_text("[tool\nname = \n")
    assert load_config()["STATE_BACKEND"] == "local"


def test_invalid_environment_and_server_config_name_their_source(monkeypatch):
    monkeypatch.setenv("STATE_BACKEND", "nope")
    with pytest.raises(ConfigError, match="environment"):
        load_config()
    monkeypatch.delenv("STATE_BACKEND")
    with pytest.raises(ConfigError, match="app.server.config"):
        load_config({"STATE_TTL_DEFAULT": -1})


def test_init_app_settings_are_validated_and_win():
    app = dash.Dash(__name__)
    app.layout = html.Div([ServerStore(id="s")])
    with pytest.raises(ConfigError, match="init_app"):
        dash_state.init_app(app, STATE_TTL_DEFAULT=-3)
    manager = dash_state.init_app(app, STATE_TTL_DEFAULT=12, STATE_STORES={"s": {"backend": "client"}})
    assert manager.settings("s").backend == "client" and manager.settings("other").ttl == 12
    assert dash_state.get_state_manager(app) is manager


def test_server_config_set_after_dash_counts():
    app = dash.Dash(__name__)
    app.server.config["STATE_TTL_DEFAULT"] = 77
    assert dash_state.get_state_manager(app).settings("x").ttl == 77
