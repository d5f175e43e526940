"""Live fan-out: N open pages on ``gunicorn -w 4 -k gthread`` with Redis, one app-wide live store, and how
long a write takes to reach every page.

Each page is a headless client that does what the component does: it loads the layout (its own
identity cookie: one anonymous user per page), then holds the live stream
(``POST _dash-state/v1/live``, Server-Sent Events). A writer then runs a callback that appends to the
store with ``Patch()`` on a connection of its own, ``--writes`` times. For every write and page the
latency is from the moment the writer sends its request to the moment that page reads the event that
carries the new version. Reported with a baseline from the same run: the writer's own callback round
trip (the time a page that wrote the value itself waits for it), and the ratio between the two.

Also measured: the CPU the server (gunicorn's master and workers) uses while every page holds its
stream and nothing changes, over ``--idle-seconds``.

Bounded: every request has a timeout, the whole run stops after ``--budget`` seconds (exit code 3),
traffic goes only to 127.0.0.1, gunicorn is stopped at the end and the Redis keys are removed.

    .venv/bin/python benchmarks/live_fanout.py                       # 200 pages, 20 writes (~1 min)
    .venv/bin/python benchmarks/live_fanout.py --pages 20 --writes 3 --json out.json   # the CI smoke
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
_SERVER: list[subprocess.Popen] = []  # stopped by the watchdog too
APP = """
import os
from dash import Dash, Input, Output, Patch, html
from dash_state import ServerStore

app = Dash(__name__)
server = app.server
server.config["SECRET_KEY"] = os.environ["LIVE_SECRET"]
app.layout = html.Div([html.Div(id="note"), ServerStore(id="board", scope="app", live=True, writable=True, data=[])])


@app.callback(Output("board", "data"), Input("note", "children"), prevent_initial_call=True)
def post(note):
    patch = Patch()
    patch.append(note)
    return patch
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Page:
    """One open page: its session (cookie) and its stream, read in a thread."""

    def __init__(self, url: str):
        self.session = requests.Session()
        layout = self.session.get(f"{url}/_dash-layout", timeout=30).json()
        self.reference = _board_reference(layout)
        self.received: dict[int, float] = {}  # version -> when this page read it
        self.ready = threading.Event()
        self.error: str | None = None
        self.response = self.session.post(f"{url}/_dash-state/v1/live", stream=True, timeout=120,
                                          json={"stores": [{"id": "board", "reference": self.reference}], "wait": True})
        self.transport = "sse" if self.response.headers.get("Content-Type", "").startswith("text/event-stream") else "poll"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    now = time.perf_counter()
                    for change in json.loads(line[6:])["changes"]:
                        self.received.setdefault(change["version"], now)
                    self.ready.set()
        except Exception as exc:  # noqa: BLE001 - a closed stream at the end, or a failure to report
            self.error = f"{type(exc).__name__}: {exc}"[:200]
        self.ready.set()

    def close(self) -> None:
        """Shut the socket first: the reading thread holds the response's file, and a plain close()
        would wait for the next byte (a ping, up to 15 s away)."""
        connection = getattr(self.response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()


def _board_reference(layout: dict) -> str | None:
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "ServerStore" and node.get("props", {}).get("id") == "board":
                return node["props"].get("data")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def write(url: str, session: requests.Session, note: str) -> tuple[int, float, float]:
    """One callback that appends to the board: (the new version, when it was sent, its round trip)."""
    body = {"output": "board.data", "outputs": {"id": "board", "property": "data"},
            "inputs": [{"id": "note", "property": "children", "value": note}], "state": [],
            "changedPropIds": ["note.children"]}
    sent = time.perf_counter()
    response = session.post(f"{url}/_dash-update-component", json=body, timeout=30)
    took = time.perf_counter() - sent
    response.raise_for_status()
    reference = response.json()["response"]["board"]["data"]
    from dash_state.core.versions import version_of

    return version_of(reference.split(".")[2]), sent, took


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def server_pids(master: int) -> list[int]:
    import psutil

    return [master] + [child.pid for child in psutil.Process(master).children(recursive=True)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    assert gunicorn, "gunicorn is not installed (pip install 'dash-state[test]')"
    folder = Path(tempfile.mkdtemp(prefix="dash-state-live-"))
    (folder / "live_bench_app.py").write_text(APP)
    port, prefix = free_port(), f"live-bench-{uuid.uuid4().hex[:8]}:"
    # Streams may take half of a worker's pool, and gthread workers accept unevenly (in a CI run 17 of 20
    # pages landed on one worker and one was told to poll): size each pool for every page on one worker.
    threads = max(32, args.pages * 2 + 16)
    env = {**os.environ, "STATE_BACKEND": "redis", "STATE_REDIS_URL": args.redis_url, "STATE_KEY_PREFIX": prefix,
           "LIVE_SECRET": uuid.uuid4().hex, "STATE_LIVE_MAX_STREAMS": str(threads - 8),
           "STATE_LIVE_STREAM_SECONDS": str(int(args.budget) + 60), "STATE_CONFIG_FILE": str(folder / "none.toml")}
    (folder / "none.toml").write_text("")
    log = open(folder / "gunicorn.log", "w")
    process = subprocess.Popen([gunicorn, "-w", str(args.workers), "-k", "gthread", "--threads", str(threads),
                                "--graceful-timeout", "3", "-b", f"127.0.0.1:{port}", "--chdir", str(folder),
                                "live_bench_app:server"], env=env, stdout=log, stderr=subprocess.STDOUT)
    _SERVER.append(process)
    url = f"http://127.0.0.1:{port}"
    pages: list[Page] = []
    try:
        for _ in range(150):
            try:
                if requests.get(f"{url}/_dash-layout", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        say(f"server up at {url}; opening {args.pages} pages")
        opened = time.perf_counter()
        for _ in range(args.pages):
            pages.append(Page(url))
        for page in pages:
            page.ready.wait(timeout=30)
        open_seconds = time.perf_counter() - opened
        transports = {t: sum(p.transport == t for p in pages) for t in ("sse", "poll")}
        say(f"pages open ({transports}); measuring idle CPU for {args.idle_seconds} s")
        pids = server_pids(process.pid)
        before, started = cpu_seconds(pids), time.perf_counter()
        time.sleep(args.idle_seconds)
        idle_cpu = (cpu_seconds(pids) - before) / (time.perf_counter() - started)
        writer = requests.Session()
        writer.get(f"{url}/_dash-layout", timeout=30)
        say(f"{args.writes} writes")
        latencies, round_trips, missing = [], [], 0
        for n in range(args.writes):
            version, sent, took = write(url, writer, f"note {n}")
            round_trips.append(took)
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline and not all(version in p.received for p in pages):
                time.sleep(0.005)
            for page in pages:
                if version in page.received:
                    latencies.append(page.received[version] - sent)
                else:
                    missing += 1
            time.sleep(args.pause)
        return {
            "parameters": {"pages": args.pages, "writes": args.writes, "workers": args.workers, "threads": threads,
                           "backend": "redis", "worker_class": "gthread"},
            "transports": transports,
            "open_seconds": round(open_seconds, 2),
            "delivered": len(latencies), "expected": args.pages * args.writes, "missing": missing,
            "fanout_ms": {"p50": round(1000 * statistics.median(latencies), 1) if latencies else None,
                          "p95": round(1000 * percentile(latencies, 0.95), 1) if latencies else None,
                          "max": round(1000 * max(latencies), 1) if latencies else None},
            "baseline_write_round_trip_ms": {"p50": round(1000 * statistics.median(round_trips), 1)},
            "ratio_p50_to_write_round_trip": round(statistics.median(latencies) / statistics.median(round_trips), 2)
            if latencies else None,
            "idle_server_cpu_percent": round(100 * idle_cpu, 2),
            "idle_seconds": args.idle_seconds,
            "page_errors": sorted({p.error for p in pages if p.error})[:5],
        }
    finally:
        say("closing")
        for page in pages:
            page.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        _drop_keys(args.redis_url, prefix)
        shutil.rmtree(folder, ignore_errors=True)


def _drop_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


def markdown(result: dict) -> str:
    p = result["parameters"]
    return "\n".join([
        f"# Live fan-out: {p['pages']} pages, gunicorn -w {p['workers']} -k gthread --threads {p['threads']}, Redis",
        "",
        f"- transports: {result['transports']}; pages opened in {result['open_seconds']} s",
        f"- delivered {result['delivered']} of {result['expected']} (missing {result['missing']})",
        f"- write -> every page: p50 {result['fanout_ms']['p50']} ms, p95 {result['fanout_ms']['p95']} ms, "
        f"max {result['fanout_ms']['max']} ms",
        f"- baseline, the writer's own callback round trip: p50 {result['baseline_write_round_trip_ms']['p50']} ms "
        f"(fan-out p50 / round trip = {result['ratio_p50_to_write_round_trip']})",
        f"- server CPU with every page connected and nothing changing: {result['idle_server_cpu_percent']} % of "
        f"one core over {result['idle_seconds']} s",
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.25, help="seconds between two writes")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds before the run stops itself")
    parser.add_argument("--redis-url", default=os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    def stop() -> None:
        for server in _SERVER:
            server.kill()
        os._exit(3)

    watchdog = threading.Timer(args.budget, stop)
    watchdog.daemon = True
    watchdog.start()
    result = run(args)
    watchdog.cancel()
    text = markdown(result)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
