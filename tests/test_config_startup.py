"""Configuration fails early and helpfully: misspelt settings (environment, config file, app.server.config,
per-store keys and store ids) with "did you mean", missing packages and SECRET_KEY before any request,
the start-up line naming where each store family lives, and URLs with their password masked."""
import json
import logging
import shutil
import sys

import dash
import pytest
from dash import html

import dash_state
from dash_state import ConfigError, ServerStore
from dash_state.config import (
    build_config,
    load_config,
    mask_url,
    read_environment,
    unknown_store_warnings,
)
from dash_state.glue.runtime import app_state


def block(monkeypatch, *packages):
    """Make ``packages`` (and their submodules already imported) unimportable, as if not installed."""
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in packages):
            monkeypatch.setitem(sys.modules, name, None)
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)


def app_with_store(**server_config):
    app = dash.Dash(__name__)
    app.server.config.update(server_config)
    app.layout = html.Div([ServerStore(id="filters"), ServerStore(id="merged-store")])
    return app


# -- misspelt environment variables --------------------------------------------------------------------

@pytest.mark.parametrize("variable, meant", [
    ("STATE_TTL_DEFALT", "STATE_TTL_DEFAULT"),
    ("STATE_REDIS_ULR", "STATE_REDIS_URL"),
    ("STATE_BACKEN", "STATE_BACKEND"),
    ("STATE_ENABLE_USER_ISOLATON", "STATE_ENABLE_USER_ISOLATION"),
])
def test_a_misspelt_environment_variable_fails_at_dash_with_did_you_mean(monkeypatch, variable, meant):
    monkeypatch.setenv(variable, "redis://127.0.0.1:6379/13")
    with pytest.raises(ConfigError) as info:
        dash.Dash(__name__)
    message = str(info.value)
    assert f"{variable} (did you mean {meant}?)" in message
    assert "in the environment" in message and "rename or unset it" in message
    assert "reads every STATE_* environment variable" in message
    assert "Settings:" not in message  # a close match is enough; the whole list only when there is none


def test_every_unknown_variable_is_named_and_without_a_close_match_the_settings_are_listed(monkeypatch):
    monkeypatch.setenv("STATE_TTL_DEFALT", "5")
    monkeypatch.setenv("STATE_OF_THE_UNION", "x")
    with pytest.raises(ConfigError) as info:
        load_config()
    message = str(info.value)
    assert "unknown dash-state settings in the environment" in message
    assert "STATE_TTL_DEFALT (did you mean STATE_TTL_DEFAULT?)" in message
    assert "STATE_OF_THE_UNION;" in message or "STATE_OF_THE_UNION." in message
    assert "Settings: STATE_BACKEND, STATE_TTL_DEFAULT" in message


def test_state_variables_dash_state_itself_reads_are_allowed(tmp_path):
    (tmp_path / "c.toml").write_text("STATE_TTL_DEFAULT = 9\n")
    environ = {"STATE_CONFIG_FILE": str(tmp_path / "c.toml"), "STATE_TEST_REDIS_URL": "redis://x:1/0",
               "STATE_TEST_PG_BIN": "/usr/bin", "STATE_BACKEND": "memory", "DASH_STATE_SECRET_KEY": "k",
               "MY_STATE_DIR": "/tmp", "PATH": "/bin"}
    assert read_environment(environ) == {"STATE_BACKEND": "memory"}


def test_a_typo_in_the_redis_url_variable_no_longer_falls_back_to_db_0(monkeypatch):
    monkeypatch.setenv("STATE_BACKEND", "redis")
    monkeypatch.setenv("STATE_REDIS_ULR", "redis://:pw@127.0.0.1:6379/13")
    with pytest.raises(ConfigError, match=r"STATE_REDIS_ULR \(did you mean STATE_REDIS_URL\?\)") as info:
        load_config()
    assert "pw@" not in str(info.value)  # the value is never echoed


# -- misspelt keys in the config file, app.server.config and per-store tables ------------------------

def test_a_misspelt_key_in_the_config_file_says_did_you_mean(tmp_path):
    (tmp_path / "config.toml").write_text("STATE_TLL_DEFAULT = 5\n")
    with pytest.raises(ConfigError) as info:
        dash.Dash(__name__)
    message = str(info.value)
    assert "unknown setting STATE_TLL_DEFAULT (in config file" in message and "config.toml)" in message
    assert "(did you mean STATE_TTL_DEFAULT?)" in message


def test_a_misspelt_key_in_server_config_says_did_you_mean():
    with pytest.raises(ConfigError, match=r"STATE_REDIS_ULR \(in app\.server\.config\) \(did you mean STATE_REDIS_URL\?\)"):
        load_config({"STATE_REDIS_ULR": "redis://h/0"})


def test_an_unknown_setting_without_a_close_match_lists_the_settings():
    with pytest.raises(ConfigError, match=r"STATE_WHATEVER \(in init_app\(\)\); known settings: STATE_BACKEND"):
        load_config(None, {"STATE_WHATEVER": 1})


def test_a_misspelt_per_store_key_says_did_you_mean(tmp_path):
    (tmp_path / "config.toml").write_text("[STATE_STORES.cart]\nttll = 5\nlatest_onyl = true\n")
    with pytest.raises(ConfigError) as info:
        load_config()
    message = str(info.value)
    assert "STATE_STORES.cart.latest_onyl (did you mean latest_only?)" in message
    assert "STATE_STORES.cart.ttll (did you mean ttl?)" in message
    assert "(in config file" in message


@pytest.mark.parametrize("value, words", [
    ("redsi", ["STATE_BACKEND (in the environment): unknown backend 'redsi' (did you mean 'redis'?)"]),
    ("mongo", ["STATE_BACKEND (in the environment): unknown backend 'mongo'; choose one of memory"]),
])
def test_a_misspelt_backend_name_says_did_you_mean(monkeypatch, value, words):
    monkeypatch.setenv("STATE_BACKEND", value)
    with pytest.raises(ConfigError) as info:
        load_config()
    for word in words:
        assert word in str(info.value)


def test_a_misspelt_choice_says_did_you_mean():
    with pytest.raises(ConfigError, match=r"STATE_ENCRYPTION \(in app\.server\.config\) must be one of 'aes-gcm', "
                                          r"'hmac', got 'aes_gcm' \(did you mean 'aes-gcm'\?\)"):
        load_config({"STATE_ENCRYPTION": "aes_gcm"})


# -- every message names the key first, then where it came from ----------------------------------------

@pytest.mark.parametrize("key, value, expected", [
    ("backend", "disk", "STATE_STORES.filters.backend (in {label}): unknown backend 'disk'"),
    ("ttl", 0, "STATE_STORES.filters.ttl (in {label}) must be a positive number of seconds, got 0"),
    ("ttl", "soon", "STATE_STORES.filters.ttl (in {label}) must be a number, got 'soon'"),
    ("latest_only", "maybe", "STATE_STORES.filters.latest_only (in {label}) must be true or false, got 'maybe'"),
    ("client_read", 3, "STATE_STORES.filters.client_read (in {label}) must be true or false, got 3"),
    ("client_write", "x", "STATE_STORES.filters.client_write (in {label}) must be true or false, got 'x'"),
])
@pytest.mark.parametrize("layer", ["environment", "server", "init_app"])
def test_per_store_messages_name_the_key_then_the_source(monkeypatch, key, value, expected, layer):
    stores = {"filters": {key: value}}
    if layer == "environment":
        monkeypatch.setenv("STATE_STORES", json.dumps(stores))
        label, call = "the environment", lambda: load_config()
    elif layer == "server":
        label, call = "app.server.config", lambda: load_config({"STATE_STORES": stores})
    else:
        label, call = "init_app()", lambda: load_config(None, {"STATE_STORES": stores})
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert message.startswith(expected.format(label=label)), message
    assert " in the environment." not in message and "}.ttl" not in message


@pytest.mark.parametrize("key, value, expected", [
    ("STATE_TTL_DEFAULT", "-1", "STATE_TTL_DEFAULT (in the environment) must be a positive number of seconds"),
    ("STATE_RETRIES", "1.5", "STATE_RETRIES (in the environment) must be a whole number of at least 0, got '1.5'"),
    ("STATE_TOUCH_FRACTION", "2", "STATE_TOUCH_FRACTION (in the environment) must be between 0 and 1"),
    ("STATE_COOKIE_NAME", "a b", "STATE_COOKIE_NAME (in the environment) must be a cookie name"),
    ("STATE_REDIS_URL", "localhost:6379", "STATE_REDIS_URL (in the environment) must be a URL such as scheme://"),
    ("STATE_STORES", "[1]", "STATE_STORES (in the environment) must be a table of store ids, got list"),
])
def test_setting_messages_name_the_key_then_the_source(monkeypatch, key, value, expected):
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value).startswith(expected), str(info.value)


def test_a_pattern_matching_store_id_is_looked_up_in_dash_s_spelling():
    config = load_config({"STATE_STORES": {'{"type": "row", "index": 1}': {"ttl": 5}}})
    assert config.store('{"index":1,"type":"row"}').ttl == 5


# -- [STATE_STORES.<id>] for a store the app never declares ---------------------------------------------

def test_unknown_store_ids_are_named_with_the_closest_ids(tmp_path):
    (tmp_path / "config.toml").write_text('[STATE_STORES.filtres]\nttl = 5\n[STATE_STORES.merged-store]\nttl = 9\n'
                                          '[STATE_STORES.zzz]\nbackend = "client"\n')
    config = load_config()
    messages = unknown_store_warnings(config, ["filters", "merged-store", "table-cache"])
    assert len(messages) == 2
    filtres, zzz = sorted(messages)
    assert filtres.startswith("[STATE_STORES.filtres] (in config file") and "config.toml)" in filtres
    assert "names no ServerStore of this app (did you mean 'filters'?)" in filtres
    assert "did you mean" not in zzz and "'filters', 'merged-store', 'table-cache'" in zzz


def test_pattern_matching_ids_count_by_family():
    config = load_config({"STATE_STORES": {
        '{"index": 7, "type": "row"}': {"ttl": 5},  # another row: made later by a callback
        '{"index":1,"type":"rows"}': {"ttl": 5},  # no such family
    }})
    messages = unknown_store_warnings(config, ['{"index":1,"type":"row"}', "filters"])
    assert len(messages) == 1 and '[STATE_STORES.{"index":1,"type":"rows"}]' in messages[0]
    assert "did you mean '{\"index\":1,\"type\":\"row\"}'?" in messages[0]


def test_the_app_warns_once_after_its_layout_is_known(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    app = app_with_store(SECRET_KEY="k", STATE_BACKEND="memory", STATE_STORES={"filtres": {"ttl": 5}})
    state = app_state(app)
    first = state.warn_unknown_stores()
    assert len(first) == 1 and "did you mean 'filters'?" in first[0]
    assert state.warn_unknown_stores() == []  # once
    assert [r.getMessage() for r in caplog.records if "filtres" in r.getMessage()] == first
    assert all(r.levelno == logging.WARNING for r in caplog.records if "filtres" in r.getMessage())


# -- missing packages and SECRET_KEY fail before any request --------------------------------------------

@pytest.mark.parametrize("settings, blocked, extra", [
    ({"STATE_BACKEND": "redis"}, "cryptography", 'pip install "dash-state[redis]"'),
    ({"STATE_BACKEND": "redis"}, "redis", 'pip install "dash-state[redis]"'),
    ({"STATE_BACKEND": "database", "STATE_DATABASE_URL": "postgresql+psycopg://u:hunter2@db/app"}, "cryptography",
     'pip install "dash-state[postgres]"'),
    ({"STATE_BACKEND": "database", "STATE_DATABASE_URL": "postgresql+psycopg://u:hunter2@db/app"}, "psycopg",
     'pip install "dash-state[postgres]"'),
    ({"STATE_BACKEND": "database", "STATE_DATABASE_URL": "mysql+pymysql://u:hunter2@db/app"}, "pymysql",
     'pip install "dash-state[mysql]"'),
    ({"STATE_BACKEND": "database", "STATE_DATABASE_URL": "mysql+pymysql://u:hunter2@db/app"}, "sqlalchemy",
     'pip install "dash-state[mysql]"'),
    ({"STATE_BACKEND": "database", "STATE_DATABASE_URL": "sqlite:///state.db"}, "sqlalchemy",
     'pip install "dash-state[sqlite]"'),
    ({"STATE_BACKEND": "database", "STATE_DATABASE_URL": "sqlite:///state.db"}, "cryptography",
     'pip install "dash-state[sqlite]"'),
    ({"STATE_BACKEND": "memory", "STATE_STORES": json.dumps({"filters": {"backend": "redis"}})}, "cryptography",
     'pip install "dash-state[redis]"'),
    ({"STATE_BACKEND": "memory", "STATE_PROMETHEUS": "true"}, "prometheus_client", 'pip install "dash-state[metrics]"'),
    ({"STATE_BACKEND": "redis", "STATE_COMPRESSION": "zstd"}, "zstandard", 'pip install "dash-state[zstd]"'),
    ({}, "cryptography", "pip install cryptography"),  # the local backend (the default) seals with it too
])
def test_a_missing_package_fails_at_dash_naming_it_and_the_extra(monkeypatch, settings, blocked, extra):
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    block(monkeypatch, blocked)
    with pytest.raises(ConfigError) as info:
        app_with_store()
    message = str(info.value)
    assert extra in message, message
    package = {"prometheus_client": "prometheus-client", "psycopg": "psycopg[binary]"}.get(blocked, blocked)
    assert f"the {package} package" in message
    assert "(from the environment)" in message if settings else "STATE_BACKEND = 'local' (the default)" in message
    assert "hunter2" not in message


def test_missing_encryption_package_is_not_needed_with_hmac(monkeypatch):
    monkeypatch.setenv("STATE_BACKEND", "redis")
    monkeypatch.setenv("STATE_ENCRYPTION", "hmac")
    block(monkeypatch, "cryptography")
    app_with_store()  # no error: nothing needs AES-GCM


def test_a_redis_backend_whose_server_is_down_still_starts(monkeypatch):
    """The checks connect to nothing: an app may start before its Redis does."""
    monkeypatch.setenv("STATE_BACKEND", "redis")
    monkeypatch.setenv("STATE_REDIS_URL", "redis://127.0.0.1:1/13")
    app = app_with_store(SECRET_KEY="k")
    assert app_state(app).check_startup()["STATE_BACKEND"] == "redis"


def test_an_unparsable_redis_url_fails_at_dash_with_the_password_masked(monkeypatch):
    monkeypatch.setenv("STATE_BACKEND", "redis")
    monkeypatch.setenv("STATE_REDIS_URL", "redis://:hunter2@127.0.0.1:port/13")
    with pytest.raises(ConfigError) as info:
        app_with_store()
    message = str(info.value)
    assert message.startswith("STATE_REDIS_URL (from the environment) cannot be parsed")
    assert "redis://:***@127.0.0.1:port/13" in message and "hunter2" not in message


def test_a_missing_pyarrow_is_a_warning_for_apps_that_use_pandas(monkeypatch, caplog):
    pytest.importorskip("pandas")
    caplog.set_level(logging.WARNING, logger="dash_state")
    block(monkeypatch, "pyarrow")
    app_with_store()
    warnings = [r.getMessage() for r in caplog.records if "pyarrow" in r.getMessage()]
    assert len(warnings) == 1 and 'pip install "dash-state[arrow]"' in warnings[0]
    assert "STATE_BACKEND = 'local' (the default)" in warnings[0]


@pytest.fixture
def runs(monkeypatch):
    """Dash.run replaced by a recorder: if a check failed to stop it, no real server starts."""
    calls = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, *a, **k: calls.append(self))
    return calls


@pytest.mark.parametrize("backend", ["redis", "database"])
def test_a_shared_backend_without_secret_key_stops_app_run_before_any_request(monkeypatch, runs, backend):
    monkeypatch.setenv("STATE_BACKEND", backend)
    app = app_with_store()  # Dash() itself passes: SECRET_KEY is usually set on the next line
    with pytest.raises(ConfigError) as info:
        app.run(port=1)
    assert runs == []
    message = str(info.value)
    assert message.startswith(f"STATE_BACKEND = '{backend}' (from the environment) keeps values on a server shared")
    assert "app.server.config['SECRET_KEY']" in message
    app.server.config["SECRET_KEY"] = "set after Dash()"
    app.run(port=1)
    assert runs == [app]


def test_a_missing_package_chosen_after_dash_stops_app_run(monkeypatch, runs):
    app = app_with_store(SECRET_KEY="k")
    app.server.config["STATE_BACKEND"] = "redis"
    block(monkeypatch, "redis")
    with pytest.raises(ConfigError, match=r'STATE_BACKEND = \'redis\' \(from app.server.config\) needs the redis '
                                          r'package, which is not installed: pip install "dash-state\[redis\]"'):
        app.run()
    assert runs == []


def test_a_missing_package_chosen_after_dash_fails_the_first_request_not_the_first_write(monkeypatch, caplog):
    from dash_client import DashClient

    app = app_with_store(SECRET_KEY="k")
    app.server.config["STATE_BACKEND"] = "redis"
    block(monkeypatch, "cryptography")
    caplog.set_level(logging.ERROR)
    response = DashClient(app).http.get("/")
    assert response.status_code == 500
    assert 'pip install "dash-state[redis]"' in caplog.text


# -- the start-up line ---------------------------------------------------------------------------------

def test_the_start_up_line_names_each_store_family_and_where_it_lives(monkeypatch, caplog):
    monkeypatch.delenv("STATE_LOCAL_PATH")  # the default directory, derived from SECRET_KEY
    caplog.set_level(logging.INFO, logger="dash_state")
    app = app_with_store(SECRET_KEY="start-up line test", STATE_REDIS_URL="redis://:hunter2@127.0.0.1:6379/13",
                         STATE_KEY_PREFIX="startup-line-test:",
                         STATE_STORES={"merged-store": {"backend": "redis"}, "filters": {"backend": "redis"},
                                       "table-cache": {"backend": "client"}})
    manager = dash_state.get_state_manager(app)
    lines = [r for r in caplog.records if r.getMessage().startswith("dash-state: ") and " on " in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and lines[0].name == "dash_state"
    line = lines[0].getMessage()
    local = manager.backend("local")
    try:
        assert line == (f"dash-state: other stores on local ({local.path}); merged-store, filters on redis "
                        "(redis://:***@127.0.0.1:6379/13); table-cache on client (in the browser)")
    finally:
        manager.close()
        shutil.rmtree(local.path, ignore_errors=True)


def test_the_start_up_line_with_one_backend(caplog):
    caplog.set_level(logging.INFO, logger="dash_state")
    app = app_with_store(SECRET_KEY="k", STATE_BACKEND="memory")
    dash_state.get_state_manager(app)
    assert "dash-state: stores on memory (in this process)" in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("url, masked", [
    ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("redis://user:hunter2@h:6379/0", "redis://user:***@h:6379/0"),
    ("rediss://user:p@ss:w0rd@h/0", "rediss://user:***@h/0"),
    ("postgresql+psycopg://app:hunter2@db:5432/state", "postgresql+psycopg://app:***@db:5432/state"),
    ("redis+sentinel://:hunter2@a:26379,b:26379/mymaster", "redis+sentinel://:***@a:26379,b:26379/mymaster"),
    ("mysql+pymysql://db/app?user=u&password=hunter2", "mysql+pymysql://db/app?user=u&password=***"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("sqlite:///state.db", "sqlite:///state.db"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_build_config_records_where_each_store_setting_came_from():
    config = build_config(({"STATE_STORES": {"a": {"ttl": 5}}}, "file"),
                          ({"STATE_STORES": {"a": {"backend": "client"}}}, "env"))
    assert config.sources["STATE_STORES.a.ttl"] == "file" and config.sources["STATE_STORES.a.backend"] == "env"


def test_serving_the_layout_warns_about_a_misspelt_store_id_once(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    app = app_with_store(SECRET_KEY="k", STATE_BACKEND="memory", STATE_STORES={"filtres": {"ttl": 5}})
    client = app.server.test_client()
    for _ in range(3):
        assert client.get("/_dash-layout").status_code == 200
    lines = [r.getMessage() for r in caplog.records if "STATE_STORES.filtres" in r.getMessage()]
    assert len(lines) == 1 and "did you mean 'filters'?" in lines[0]
