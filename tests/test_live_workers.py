"""User and app stores under ``gunicorn -w 2 -k gthread`` on every shared backend: two workers patching
one list 1,000 times each lose no element, and a write that lands on one worker reaches a live page
whose stream another worker serves. Real HTTP, requests spread over the workers by the kernel."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import requests
from services import database_url, gunicorn, redis_url

pytestmark = pytest.mark.service
PATCHES = 1000


def backend_env(kind: str) -> dict:
    run = uuid.uuid4().hex[:8]
    if kind == "local":
        return {}
    if kind == "redis":
        return {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": f"live-{run}:",
                "LIVE_SECRET": "shared-secret"}
    return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(), "STATE_DATABASE_TABLE": f"live_{run}",
            "LIVE_SECRET": "shared-secret"}


@contextmanager
def serve(kind: str, folder, **extra):
    """``gunicorn -w 2 -k gthread --threads 8 live_app:server`` on ``kind``; its tables dropped afterwards."""
    env = {**backend_env(kind), "STATE_LIVE_TRANSPORT": "sse", "STATE_LIVE_STREAM_SECONDS": "30", **extra}
    try:
        with gunicorn("live_app:server", folder, 2, env, threads=8) as url:
            yield url
    finally:
        if kind == "postgres":
            import sqlalchemy

            engine = sqlalchemy.create_engine(env["STATE_DATABASE_URL"])
            with engine.begin() as conn:
                for table in (env["STATE_DATABASE_TABLE"], env["STATE_DATABASE_TABLE"] + "_meta"):
                    conn.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
            engine.dispose()


@pytest.fixture(params=["local", "redis", "postgres"])
def served(request, tmp_path):
    with serve(request.param, tmp_path) as url:
        yield url


def call(session: requests.Session, url: str, output: str, inputs: list[tuple[str, str, object]]) -> tuple[dict, str]:
    store, prop = output.split(".")
    body = {"output": output, "outputs": {"id": store, "property": prop},
            "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs], "state": [],
            "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"]}
    response = session.post(f"{url}/_dash-update-component", json=body, headers={"Connection": "close"}, timeout=30)
    assert response.status_code == 200, response.text[:500]
    return response.json()["response"][store][prop], response.headers["X-Worker-Pid"]


def browser(url: str) -> requests.Session:
    session = requests.Session()
    layout = session.get(f"{url}/_dash-layout", timeout=30)
    assert layout.status_code == 200
    return session


def tab_of(session: requests.Session) -> requests.Session:
    tab = requests.Session()
    tab.cookies.update(session.cookies)
    return tab


def count(session, url):
    return call(session, url, "count.children", [("cart", "data", None), ("board", "data", None)])[0]


def test_two_workers_patching_one_list_lose_nothing(served):
    user = browser(served)
    pids: set[str] = set()
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        tab = tab_of(user)
        try:
            for n in range(PATCHES):
                _, pid = call(tab, served, "cart.data", [("item", "children", f"{name}-{n}")])
                pids.add(pid)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:3]
    assert len(pids) == 2, f"every patch landed on one worker ({pids}): the test proves nothing"
    assert count(tab_of(user), served) == f"{2 * PATCHES}:0:{2 * PATCHES}"  # every element, each once
    assert count(browser(served), served) == "0:0:0"  # another user's cart is their own


class EventStream:
    """A live page's stream (``requests`` with stream=True), read in a thread."""

    def __init__(self, session: requests.Session, url: str, stores: list[dict]):
        self.response = session.post(f"{url}/_dash-state/v1/live", json={"stores": stores, "wait": True},
                                     stream=True, timeout=60)
        assert self.response.headers["Content-Type"].startswith("text/event-stream"), self.response.text[:300]
        self.pid = self.response.headers["X-Worker-Pid"]
        self.changes: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    self.changes.extend(json.loads(line[6:])["changes"])
        except (requests.RequestException, AttributeError, ValueError):
            pass

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(change) for change in self.changes):
                return True
            time.sleep(0.02)
        return False

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


def test_a_write_on_one_worker_reaches_a_live_page_served_by_the_other(served):
    user = browser(served)
    stream = EventStream(tab_of(user), served, [{"id": "cart", "reference": None}, {"id": "board", "reference": None}])
    try:
        other_tab, other_user = tab_of(user), browser(served)
        for n in range(40):  # until a write lands on the worker that does not hold the stream
            reference, pid = call(other_tab, served, "cart.data", [("item", "children", f"x{n}")])
            if pid != stream.pid:
                break
        else:
            pytest.fail("40 writes all landed on the stream's worker")
        assert stream.wait_for(lambda c: c["id"] == "cart" and c["reference"] == reference), stream.changes
        note, pid = call(other_user, served, "board.data", [("note", "children", "hello")])
        assert stream.wait_for(lambda c: c["id"] == "board" and c["reference"] == note), stream.changes
        assert all(c["reference"] is None or ".u" in c["reference"] or ".g" in c["reference"] for c in stream.changes)
    finally:
        stream.close()


def test_live_pages_resubscribe_by_themselves_after_a_redis_restart(tmp_path):
    from redis_servers import RedisServer

    server = RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always").start()
    env = {"STATE_BACKEND": "redis", "STATE_REDIS_URL": f"redis://127.0.0.1:{server.port}/0", "LIVE_SECRET": "s",
           "STATE_LIVE_TRANSPORT": "sse", "STATE_LIVE_STREAM_SECONDS": "60"}
    try:
        with gunicorn("live_app:server", tmp_path, 2, env, threads=8) as url:
            user = browser(url)
            stream = EventStream(tab_of(user), url, [{"id": "cart", "reference": None}])
            try:
                before, _ = call(tab_of(user), url, "cart.data", [("item", "children", "before")])
                assert stream.wait_for(lambda c: c["reference"] == before), stream.changes
                server.kill()  # a crash: every subscription drops
                server.start()
                after, _ = call(tab_of(user), url, "cart.data", [("item", "children", "after")])
                assert stream.wait_for(lambda c: c["reference"] == after, timeout=20), stream.changes
                assert count(tab_of(user), url) == "2:0:2"
            finally:
                stream.close()
    finally:
        server.kill()


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_chromium_follows_a_write_made_on_the_worker_that_does_not_hold_its_stream(dash_duo, kind, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    pids = tmp_path / "stream-pids"
    with serve(kind, tmp_path, LIVE_PID_FILE=str(pids), STATE_LIVE_TRANSPORT="auto") as url:
        warm_up(url)
        driver = dash_duo.driver
        driver.get(url)
        try:
            WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "count").text == "0:0:0")
        except Exception:
            pytest.fail(f"the page never showed '0:0:0': {driver.page_source[:1500]!r}; console: "
                        f"{[e['message'][:300] for e in driver.get_log('browser')]}")
        WebDriverWait(driver, 20).until(lambda d: d.execute_script(
            "const s = window.dash_state && window.dash_state.liveStatus();"
            " return !!s && s.connected && s.transport === 'sse'"))
        stream_pid = pids.read_text().split()[-1]
        same_user = requests.Session()
        for cookie in driver.get_cookies():
            same_user.cookies.set(cookie["name"], cookie["value"])
        for n in range(1, 41):  # until a write lands on the other worker
            _, pid = call(same_user, url, "cart.data", [("item", "children", f"item {n}")])
            if pid != stream_pid:
                break
        else:
            pytest.fail("40 writes all landed on the stream's worker")
        WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "count").text == f"{n}:0:{n}",
                                        f"the page never showed {n} items")
        _, _ = call(browser(url), url, "board.data", [("note", "children", "from another user")])
        WebDriverWait(driver, 10).until(lambda d: d.find_element("id", "count").text == f"{n}:1:{n}")


def warm_up(url: str) -> None:
    """Dash registers its script paths when a worker renders the index page: a worker that never did
    answers them with 500 (Dash's own multi-worker gap, not dash-state's). Make both render it."""
    seen = set()
    for _ in range(40):
        seen.add(requests.get(f"{url}/", headers={"Connection": "close"}, timeout=30).headers["X-Worker-Pid"])
        if len(seen) == 2:
            return


def write_elsewhere(session: requests.Session, url: str, item: str, stream_pid: str) -> None:
    """Append ``item`` to the cart through a worker other than the stream's (retrying the write's
    connection until the kernel hands it to the other worker; each attempt appends once)."""
    for attempt in range(40):
        _, pid = call(session, url, "cart.data", [("item", "children", f"{item}-{attempt}")])
        if pid != stream_pid:
            return
    pytest.fail("40 writes all landed on the stream's worker")


@pytest.mark.browser
def test_chromium_keeps_following_after_a_redis_restart(dash_duo, tmp_path):
    from redis_servers import RedisServer
    from selenium.webdriver.support.ui import WebDriverWait

    server = RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always").start()
    pids = tmp_path / "stream-pids"
    env = {"STATE_BACKEND": "redis", "STATE_REDIS_URL": f"redis://127.0.0.1:{server.port}/0", "LIVE_SECRET": "s",
           "LIVE_PID_FILE": str(pids)}
    try:
        with gunicorn("live_app:server", tmp_path, 2, env, threads=8) as url:
            warm_up(url)
            driver = dash_duo.driver
            driver.get(url)
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "const s = window.dash_state && window.dash_state.liveStatus();"
            " return !!s && s.connected && s.transport === 'sse'"))
            stream_pid = pids.read_text().split()[-1]
            same_user = requests.Session()
            for cookie in driver.get_cookies():
                same_user.cookies.set(cookie["name"], cookie["value"])

            def shows(count):
                text = driver.find_element("id", "count").text.split(":")
                return text[0] == text[2] and int(text[0]) >= count

            write_elsewhere(same_user, url, "before", stream_pid)
            WebDriverWait(driver, 10).until(lambda d: shows(1))
            written = int(driver.find_element("id", "count").text.split(":")[0])
            server.kill()  # a crash while the page is subscribed: the stream's worker must resubscribe
            server.start()
            write_elsewhere(same_user, url, "after", stream_pid)
            WebDriverWait(driver, 20).until(lambda d: shows(written + 1), "the page stopped following after the restart")
    finally:
        server.kill()
