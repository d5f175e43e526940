import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

os.environ.setdefault("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")


def pytest_configure(config):
    # dash_duo: headless unless told otherwise (the test command always runs headless).
    if hasattr(config.option, "headless"):
        config.option.headless = True


@pytest.fixture(autouse=True)
def _isolated_dash(tmp_path, tmp_path_factory, monkeypatch):
    """Each test gets an empty working directory (no stray config.toml) and Dash's global callback
    registry cleared, so apps from earlier tests do not leak callbacks into this one. Near tiers
    (redis/database) live in this session's temporary directory, not in /dev/shm, where every test's
    unique key prefix would leave one behind."""
    from dash import _callback, _get_app

    _get_app.app_context.set(None)  # Dash never resets it: get_app() would return an earlier test's app
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("STATE_")]:
        monkeypatch.delenv(key)
    near_tiers = str(tmp_path_factory.getbasetemp() / "near-tiers")
    monkeypatch.setattr("dash_state.backends.near.DEFAULT_BASE", near_tiers)
    monkeypatch.setenv("STATE_NEAR_TIER_PATH", near_tiers)  # for servers the tests start (gunicorn)
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_CALLBACK_LIST.clear()
    yield
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_CALLBACK_LIST.clear()


@pytest.fixture
def warnings_log(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    return caplog


def pytest_terminal_summary(terminalreporter):
    from services import MISSING

    if MISSING:
        terminalreporter.section("SERVICES MISSING: these tests were skipped", sep="!", red=True, bold=True)
        for message in MISSING:
            terminalreporter.line(f"  {message}", red=True, bold=True)
