import gc
import glob
import logging
import os
import shutil
import sys
import tempfile
import weakref
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

    if hasattr(_get_app, "app_context"):  # Dash 3.3+; Dash never resets it: get_app() would return an earlier app
        _get_app.app_context.set(None)
    else:  # Dash 3.1-3.2 keep only the last app created
        _get_app.APP = None
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


_KEPT: list = []  # (manager, store directory) still used after their test: module-scoped apps


@pytest.fixture(autouse=True)
def _own_local_store(_isolated_dash, monkeypatch):
    """The default backend is `local`, one store per app and host: each test gets a store of its own
    (on tmpfs, as in production), shared with the servers and workers it starts. Afterwards the managers
    nothing uses any more are closed and the store removed, so no test reads another's values and LMDB
    files do not pile up; one that a module-scoped fixture still holds is closed at the session's end."""
    from dash_state.core import manager as manager_module

    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = tempfile.mkdtemp(prefix="dash-state-test-", dir=shm)
    monkeypatch.setenv("STATE_LOCAL_PATH", path)
    made = []
    original = manager_module.StateManager.__init__

    def remember(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(weakref.ref(self))
        weakref.finalize(self, _close_backends, self._backends)  # closes them when the manager goes

    monkeypatch.setattr(manager_module.StateManager, "__init__", remember)
    yield path
    if made:  # apps of this test: unreachable now, unless a module-scoped fixture keeps one
        gc.collect()
    alive = [ref() for ref in made if ref() is not None]
    _KEPT.extend((manager, path) for manager in alive)
    if not alive:
        shutil.rmtree(path, ignore_errors=True)


def _close_backends(backends: dict) -> None:
    for backend in list(backends.values()):
        backend.close()


@pytest.fixture(autouse=True, scope="session")
def _close_kept_stores():
    """And the host secrets that apps without a SECRET_KEY made (``/dev/shm/dash-state-*.key``)."""
    before = set(glob.glob("/dev/shm/dash-state-*.key"))
    yield
    for manager, path in _KEPT:
        manager.close()
        shutil.rmtree(path, ignore_errors=True)
    for made in set(glob.glob("/dev/shm/dash-state-*.key")) - before:
        os.unlink(made)


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
