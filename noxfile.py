"""The version matrix: dash-state against every supported Dash minor and every Dash server.

    bash scripts/test.sh --matrix                       # everything: each Dash minor x each server
    bash scripts/test.sh --matrix -s matrix_ci          # the subset CI runs (fits in its time)
    bash scripts/test.sh --matrix -s "matrix(dash-3.1.1)"  # one Dash release

Each cell is a virtual environment with that Dash installed first; installing dash-state and its test
extra must leave that Dash in place (checked: ``pip install dash-state`` never upgrades a supported
Dash). On Flask a cell runs the core suite (:data:`CORE`, without service tests) and the browser parity tests
(Dash's own dcc.Store behaviours, ServerStore against dcc.Store in headless Chromium); on FastAPI and
Quart (Dash 4.2+) the server tests, real uvicorn/hypercorn processes with Chromium, and the same
parity tests with the app on that server. Results: one JUnit XML per cell in .nox/results/.
"""
from __future__ import annotations

import os
import re

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["matrix"]

#: The newest release of each Dash minor that has the plugin hooks dash-state needs (3.0 lacks
#: _prepare_response: see dash_state/glue/compat.py and the README's table).
DASH = ("3.1.1", "3.2.0", "3.3.0", "3.4.0", "4.0.0", "4.1.0", "4.2.0", "4.3.0", "4.4.1")
SERVERS_SINCE = (4, 2)  # Dash's FastAPI and Quart servers
PARITY = ["tests/test_dash_suite_parity.py", "tests/test_parity_browser.py"]
#: The core suite of a cell: every test file that builds Dash apps and goes through dash-state's glue
#: (what can differ between Dash releases); backends, codecs and the CLI do not touch Dash and run once,
#: in the full suite on the newest Dash.
CORE = ["tests/test_compat.py", "tests/test_ids.py", "tests/test_hook.py", "tests/test_routes.py",
        "tests/test_patch_outputs.py", "tests/test_patches.py", "tests/test_store_api.py", "tests/test_scopes.py",
        "tests/test_live.py", "tests/test_clientside_writes.py", "tests/test_devtools_panel.py",
        "tests/test_background.py", "tests/test_mirror.py", "tests/test_mcp.py", "tests/test_coexistence.py",
        "tests/test_rollback.py", "tests/test_identity.py", "tests/test_security.py", "tests/test_config_startup.py",
        "tests/attacks"]
SERVER_TESTS = ["tests/test_servers.py", "tests/test_server_processes.py", "tests/test_websocket_callbacks.py"]
#: CI's subset: the oldest Dash on Flask (core files that cover every wrapped name) and the oldest Dash
#: with FastAPI and Quart (their server tests); the newest Dash runs the whole suite outside nox.
CI_CORE = ["tests/test_compat.py", "tests/test_ids.py", "tests/test_hook.py", "tests/test_routes.py",
           "tests/test_patch_outputs.py", "tests/test_store_api.py", "tests/test_scopes.py",
           "tests/test_clientside_writes.py", "tests/test_devtools_panel.py", "tests/test_background.py",
           "tests/test_parity_browser.py"]
CI_CELLS = [("3.1.1", "flask"), ("4.2.0", "fastapi+quart")]


def _minor(version: str) -> tuple[int, int]:
    major, minor = re.findall(r"\d+", version)[:2]
    return int(major), int(minor)


def _servers(version: str) -> list[str]:
    """The servers of this Dash release (``DASH_STATE_MATRIX_SERVERS=fastapi,quart`` narrows them)."""
    servers = ["flask", "fastapi", "quart"] if _minor(version) >= SERVERS_SINCE else ["flask"]
    chosen = os.environ.get("DASH_STATE_MATRIX_SERVERS")
    return [s for s in servers if s in chosen.split(",")] if chosen else servers


def _install(session: nox.Session, dash: str) -> None:
    session.install(f"dash[testing]=={dash}")
    session.install("-e", ".[test]")
    found = session.run_install("python", "-c", "import dash; print(dash.__version__)", silent=True).strip()
    if found != dash:
        session.error(f"installing dash-state[test] changed Dash {dash} into {found}: its lower bound is wrong")


def _pytest(session: nox.Session, dash: str, server: str, args: list[str]) -> None:
    os.makedirs(".nox/results", exist_ok=True)
    env = {"DASH_STATE_TEST_SERVER": server}
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-q",
                f"--junitxml=.nox/results/dash-{dash}-{server}.xml", *args, *session.posargs, env=env)


@nox.session
@nox.parametrize("dash", DASH, ids=[f"dash-{d}" for d in DASH])
def matrix(session: nox.Session, dash: str) -> None:
    """One Dash release on each of its servers (one virtual environment)."""
    _install(session, dash)
    for server in _servers(dash):
        if server == "flask":
            _pytest(session, dash, server, ["-m", "not service", *CORE, *PARITY])
        else:
            _pytest(session, dash, server, [*SERVER_TESTS, *PARITY])


@nox.session
@nox.parametrize("dash,server", CI_CELLS, ids=[f"dash-{d}-{s}" for d, s in CI_CELLS])
def matrix_ci(session: nox.Session, dash: str, server: str) -> None:
    """The fast subset CI runs after the full suite on the newest Dash."""
    _install(session, dash)
    for one in server.split("+"):
        _pytest(session, dash, one, ["-m", "not service"] + (CI_CORE if one == "flask" else SERVER_TESTS))
