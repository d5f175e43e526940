"""Shared backends need one SECRET_KEY across workers; without it each worker would split every user."""
import logging

import dash
import pytest
from dash import html

import dash_state
from dash_client import DashClient
from dash_state import ConfigError, ServerStore
from services import redis_url


def shared_app(**config):
    app = dash.Dash(__name__)
    app.server.config.update(config)
    app.layout = html.Div([ServerStore(id="s", data={"a": 1})])
    return app


@pytest.mark.parametrize("backend", ["redis", "database"])
def test_shared_backend_without_secret_key_fails_clearly_when_serving(backend, caplog):
    app = shared_app(STATE_BACKEND=backend)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        dash_state.get_state_manager(app)
    caplog.set_level(logging.ERROR)
    response = DashClient(app).http.get("/_dash-layout")
    assert response.status_code == 500
    assert "SECRET_KEY" in caplog.text and "SECRET_KEY" not in response.get_data(as_text=True)


def test_a_secret_key_set_after_dash_counts():
    app = shared_app(STATE_BACKEND="redis", STATE_REDIS_URL=redis_url())
    app.server.secret_key = "set-after-Dash()"
    layout = DashClient(app).layout()
    assert layout["props"]["children"][0]["props"]["data"].startswith("dsr2.redis.")


def test_memory_backend_uses_a_random_key_and_leaves_the_app_alone(caplog):
    """Random, and shared by the app's processes on this host: a reference another worker minted is
    then told apart (as written elsewhere) from a forged one."""
    caplog.set_level(logging.INFO, logger="dash_state")
    app = shared_app(STATE_BACKEND="memory")
    assert DashClient(app).layout()["props"]["children"][0]["props"]["data"].startswith("dsr2.memory.")
    assert not app.server.secret_key  # the app's own sessions are not changed behind its back
    assert "no SECRET_KEY configured" in caplog.text
    assert dash_state.get_state_manager(app).keys.generated


def test_a_secret_key_set_right_after_dash_is_used_without_a_warning(caplog):
    """The key is read when the first request needs it, not at Dash(): no misleading "random key" line."""
    caplog.set_level(logging.INFO, logger="dash_state")
    app = shared_app()
    app.server.config["SECRET_KEY"] = "set-right-after-Dash"
    DashClient(app).layout()
    assert "random key" not in caplog.text and "no SECRET_KEY" not in caplog.text
    assert not dash_state.get_state_manager(app).keys.generated


def test_local_backend_without_a_secret_key_shares_one_host_key_between_the_app_s_processes(caplog):
    """`python app.py` / `gunicorn -w 4 app:server` with no setting: every process of the app on this
    host signs with the same random key, kept next to the store, so each reads the others' references."""
    caplog.set_level(logging.INFO, logger="dash_state")
    first, second = shared_app(), shared_app()  # two workers: two apps of one module, no SECRET_KEY
    browser = DashClient(first)
    token = browser.layout()["props"]["children"][0]["props"]["data"]
    assert token.startswith("dsr2.local.")
    other_worker = dash_state.get_state_manager(second)
    assert other_worker.load("s", token, browser.namespace()) == {"a": 1}
    assert not first.server.secret_key and "share a random key" in caplog.text
