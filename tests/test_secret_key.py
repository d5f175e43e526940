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
    assert layout["props"]["children"][0]["props"]["data"].startswith("dsr1.redis.")


def test_memory_backend_gets_a_random_per_process_key():
    app = shared_app()
    assert app.server.secret_key  # given by dash-state at Dash(), before any request opens a session
    assert DashClient(app).layout()["props"]["children"][0]["props"]["data"].startswith("dsr1.memory.")
