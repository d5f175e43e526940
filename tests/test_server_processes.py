"""ServerStore on real server processes: uvicorn serving Dash's FastAPI server, hypercorn serving its
Quart server (tests/servers_app.py), driven by headless Chromium."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests
from services import free_port, gunicorn

TESTS = Path(__file__).parent
FIND_DATA = ("const s = window.dash_stores[0].getState(); const p = s.paths.strs[arguments[0]];"
             "let n = s.layout; for (const k of p) { n = n[k]; } return n.props.data;")  # Dash's own layout state


def _command(backend: str, port: int) -> list[str]:
    if backend == "fastapi":
        return [sys.executable, "-m", "uvicorn", "servers_app:server", "--host", "127.0.0.1", "--port", str(port),
                "--app-dir", str(TESTS), "--log-level", "warning"]
    if backend == "quart":
        return [sys.executable, "-m", "hypercorn", "servers_app:server", "--bind", f"127.0.0.1:{port}"]
    raise ValueError(backend)


@contextmanager
def serve(backend: str, folder: Path, env: dict | None = None, timeout: float = 60) -> Iterator[str]:
    """tests/servers_app.py on ``backend``: uvicorn (fastapi), hypercorn (quart) or gunicorn with 8 threads
    (flask), on a free port of 127.0.0.1; yields its URL once ``/_dash-layout`` answers, always stops it."""
    env = {"SERVERS_APP_BACKEND": backend, "SERVERS_APP_CACHE": str(folder / "cache"), **(env or {})}
    if backend == "flask":
        with gunicorn("servers_app:server", folder, 1, env, threads=8) as url:
            yield url
        return
    port, log_path = free_port(), folder / f"{backend}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(_command(backend, port), cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get(
                                       "PYTHONPATH", "")]), **env})
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if requests.get(f"{url}/_dash-layout", timeout=10).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{backend} server did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(params=["fastapi", "quart"])
def served(request, tmp_path):
    pytest.importorskip(request.param)
    binary = "uvicorn" if request.param == "fastapi" else "hypercorn"
    if shutil.which(binary, path=os.path.dirname(sys.executable)) is None:
        pytest.skip(f"{binary} is not installed (pip install 'dash-state[test]')")
    with serve(request.param, tmp_path) as url:
        yield url


def _wait_text(driver, element_id: str, text: str, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(lambda d: d.find_element("id", element_id).text == text)
    except Exception:
        pytest.fail(f"#{element_id} never showed {text!r}: {driver.find_element('id', element_id).text!r}; console: "
                    f"{[e['message'][:300] for e in driver.get_log('browser')]}")


def _identity(driver) -> str | None:
    return next((c["value"] for c in driver.get_cookies() if c["name"] == "dash_state_id"), None)


@pytest.mark.browser
def test_chromium_writes_and_reads_a_dataframe_through_a_server_store(dash_duo, served, tmp_path):
    driver = dash_duo.driver
    driver.get(served)
    _wait_text(driver, "rows", "none")
    identity = _identity(driver)
    assert identity, "the index page set no identity cookie"
    driver.find_element("id", "go").click()
    _wait_text(driver, "rows", "rows: 100000")
    held = driver.execute_script(FIND_DATA, "frame")
    assert isinstance(held, str) and held.startswith("dsr2.") and len(held) < 256, str(held)[:200]

    driver.refresh()  # the same browser keeps its identity, and its values
    _wait_text(driver, "rows", "none")
    assert _identity(driver) == identity
    driver.find_element("id", "go").click()
    _wait_text(driver, "rows", "rows: 100000")

    driver.find_element("id", "bg").click()  # a background callback (DiskcacheManager) writes a store
    _wait_text(driver, "bgrows", "bg rows: 1000")
    held = driver.execute_script(FIND_DATA, "bgstore")
    assert isinstance(held, str) and held.startswith("dsr2."), str(held)[:200]
    logs = "".join(path.read_text() for path in tmp_path.glob("*.log"))
    assert "refused a request" not in logs and "Traceback" not in logs, logs[-3000:]  # the page's own route calls


def test_another_session_cannot_read_the_reference(served):
    """Over real HTTP: a second session presenting the first one's reference reads an empty store."""
    def call(session, output, inputs):
        oid, prop = output.split(".")
        body = {"output": output, "outputs": {"id": oid, "property": prop},
                "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs], "state": [],
                "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"]}
        response = session.post(f"{served}/_dash-update-component", json=body, timeout=60)
        assert response.status_code == 200, response.text[:500]
        return response.json()["response"][oid][prop]

    owner, other = requests.Session(), requests.Session()
    for session in (owner, other):
        session.get(served, timeout=30)
    token = call(owner, "frame.data", [("go", "n_clicks", 1)])
    assert call(owner, "rows.children", [("frame", "data", token)]) == "rows: 100000"
    assert call(other, "rows.children", [("frame", "data", token)]) == "empty"


def test_a_live_store_streams_its_changes_as_server_sent_events(served):
    """The live route holds a Server-Sent Events stream on FastAPI and Quart too (in their thread pool)."""
    def write(session, n):
        body = {"output": "cart.data", "outputs": {"id": "cart", "property": "data"},
                "inputs": [{"id": "add", "property": "n_clicks", "value": n}], "state": [], "changedPropIds": ["add.n_clicks"]}
        response = session.post(f"{served}/_dash-update-component", json=body, timeout=30)
        assert response.status_code == 200, response.text[:500]
        return response.json()["response"]["cart"]["data"]

    page = requests.Session()
    page.get(served, timeout=30)
    reference = write(page, 1)
    stream = page.post(f"{served}/_dash-state/v1/live", json={"stores": [{"id": "cart", "reference": reference}],
                                                               "wait": True}, stream=True, timeout=30)
    try:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == b"event: hello"
        other_tab = requests.Session()
        other_tab.cookies.update(page.cookies)  # the same user, elsewhere
        newer = write(other_tab, 2)
        deadline = time.monotonic() + 20
        for line in lines:
            if line.startswith(b"data:") and b'"reference"' in line:
                change = json.loads(line[5:])["changes"][0]
                assert change["id"] == "cart" and change["reference"].startswith("dsr2.") and change["version"] >= 2
                assert newer.startswith("dsr2.")
                break
            assert time.monotonic() < deadline, "no change event in 20 s"
    finally:
        stream.close()
