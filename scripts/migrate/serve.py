"""Serving one copy: the app under ``harness_runner.py`` on a free 127.0.0.1 port, in its own process
group (so stopping it stops its children too), with its log kept for the report."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

RUNNER = Path(__file__).resolve().parent / "harness_runner.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """One copy of the app, answering on ``url`` once started (or an error with its log's tail)."""

    def __init__(self, work: Path, app_dir: Path, entry: str, app_attr: str, label: str, startup: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / f"server-{label}.log"
        runner = work / "_harness_runner.py"
        runner.write_text(RUNNER.read_text())
        env = {k: v for k, v in os.environ.items() if not k.startswith("STATE_")}
        env.update(PYTHONHASHSEED="0", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(runner), str(app_dir), entry, str(self.port), app_attr],
            cwd=app_dir, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + startup
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{label}: the app exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                urllib.request.urlopen(self.url + "/__harness/pages", timeout=2).read()
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{label}: the app did not answer within {startup}s; see {self.log_path}")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def stats(self) -> dict:
        """The counts and bodies since the last call (each call starts a new count)."""
        return self.get("/__harness/stats?reset=1")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log_file.close()

    def tracebacks(self) -> int:
        """Tracebacks in the server's log: errors the browser may not show."""
        return self.log_path.read_text(errors="replace").count("Traceback (most recent call last)")
