"""Reaching the Redis and PostgreSQL servers the service tests use.

Locally a missing server skips its tests with a loud message; with DASH_STATE_REQUIRE_SERVICES=1
(set by .ci/run) it fails them, so CI can never pass by skipping.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASE_URL = os.environ.get("STATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("DASH_STATE_REQUIRE_SERVICES") == "1"
MISSING: list[str] = []


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def missing(message: str, required: bool = REQUIRED) -> None:
    """Fail under DASH_STATE_REQUIRE_SERVICES=1; otherwise skip, and name it in the run's summary."""
    if required:
        pytest.fail(f"{message} and DASH_STATE_REQUIRE_SERVICES=1", pytrace=False)
    if message not in MISSING:
        MISSING.append(message)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(name: str, url: str, default_port: int) -> str:
    if reachable(url, default_port):
        return url
    missing(f"{name} is not reachable at {url} (start it, or set STATE_TEST_* to another server)")


def redis_url() -> str:
    return require("Redis", REDIS_URL, 6379)


def database_url() -> str:
    return require("PostgreSQL", DATABASE_URL, 5432)


@contextmanager
def gunicorn(app: str, folder: Path, workers: int, env: dict, threads: int = 0) -> Iterator[str]:
    """``gunicorn --workers N app`` on a free port of 127.0.0.1 (``app`` importable from tests/), with
    ``env`` added to this environment (``threads``: gthread workers with that many threads each); yields
    its URL once it answers, stops it afterwards."""
    import requests

    binary = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    assert binary, "gunicorn is not installed in this environment (pip install 'dash-state[test]')"
    port, log_path = free_port(), folder / "gunicorn.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [binary, "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--chdir", str(folder),
             "--pythonpath", str(Path(__file__).parent), "--timeout", "60"]
            + (["--worker-class", "gthread", "--threads", str(threads), "--graceful-timeout", "3"] if threads else [])
            + [app],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    if requests.get(f"{url}/_dash-layout", timeout=20).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            else:
                pytest.fail("gunicorn did not start:\n" + log_path.read_text()[-3000:])
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)
