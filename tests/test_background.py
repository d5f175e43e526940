"""Background callbacks (background=True) with DiskcacheManager and with a real Celery worker.

Driven through Flask's test client exactly as the renderer drives a background callback: the page's
signed ``endId`` on every request; the first request answers ``{"cacheKey", "job"}``; the renderer
then polls the same callback (input values nulled) with ``cacheKey`` and ``job`` in the query string
until a response arrives, applying ``sideUpdate`` and ``progress`` from every poll.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pytest
from dash import DiskcacheManager, Input, Output, html

import dash_state
from background_app import MARKER, SECRET, make_app, make_celery, source_frame
from dash_client import DashClient
from dash_state import ConfigError, ServerStore
from dash_state.glue import background, plugin
from dash_state.core import references
from services import redis_url

TESTS = Path(__file__).parent
POLL_TIMEOUT = 20


class BackgroundClient(DashClient):
    """DashClient plus the renderer's background protocol; keeps every response body it received."""

    def __init__(self, app):
        super().__init__(app)
        self.bodies: list[bytes] = []
        match = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', self.index(), re.S)
        self.end_id = json.loads(match.group(1)).get("end_id")  # Dash 4+ signs job handles with it (cacheKey "key~signature")
        self.bodies.append(self.http.get("/").data)
        self.bodies.append(self.http.get("/_dash-layout").data)

    def post(self, body: dict, **args):
        response = self.http.post("/_dash-update-component", query_string={**({"endId": self.end_id} if self.end_id else {}), **args},
                                  data=json.dumps(body), content_type="application/json")
        self.bodies.append(response.data)
        assert response.status_code == 200, response.get_data(as_text=True)[:3000]
        return response.get_json()

    def normal(self, output, inputs):
        """A plain callback with one output: the new value of that output."""
        (oid, prop), entries = output, [{"id": i, "property": p, "value": v} for i, p, v in inputs]
        body = {"output": f"{oid}.{prop}", "outputs": {"id": oid, "property": prop}, "inputs": entries,
                "state": [], "changedPropIds": [f"{entries[0]['id']}.{entries[0]['property']}"]}
        return self.post(body)["response"][oid][prop]

    def background(self, outputs, inputs, state):
        """Run a background callback to completion; returns (response, sideUpdate, progress) as the
        renderer would have applied them."""
        entries = lambda items: [{"id": i, "property": p, "value": v} for i, p, v in items]  # noqa: E731
        body = {
            "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".." if len(outputs) > 1
            else f"{outputs[0][0]}.{outputs[0][1]}",
            "outputs": [{"id": i, "property": p} for i, p in outputs] if len(outputs) > 1
            else {"id": outputs[0][0], "property": outputs[0][1]},
            "inputs": entries(inputs), "state": entries(state),
            "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
        }
        started = self.post(body)
        assert set(started) >= {"cacheKey", "job"} and "response" not in started, started
        polled = json.loads(json.dumps(body))
        for item in polled["inputs"] + polled["state"]:
            item["value"] = None  # the renderer nulls values when polling
        side, progress = {}, {}
        deadline = time.monotonic() + POLL_TIMEOUT
        while True:
            answer = self.post(polled, cacheKey=started["cacheKey"], job=started["job"])
            for target, key in ((side, "sideUpdate"), (progress, "progress")):
                for component, props in (answer.get(key) or {}).items():
                    if isinstance(props, dict):
                        target.setdefault(component, {}).update(props)
                    else:
                        target[component] = props
            if "response" in answer:
                return answer["response"], side, progress
            assert time.monotonic() < deadline, f"no result after {POLL_TIMEOUT}s; last answer {answer}"
            time.sleep(0.05)

    def leaked(self) -> list[int]:
        return [i for i, body in enumerate(self.bodies) if MARKER.encode() in body]


def is_reference(value) -> bool:
    return isinstance(value, str) and value.startswith("dsr2.") and len(value) < 256


def scenario(app, frames: bool = True) -> None:
    """load a frame into 'source'; the background job reads it and writes 'result' (+ set_props to
    'side', progress to 'progress-store'); normal callbacks read both back. ``frames=False``: the same
    with JSON values (records), as an app migrated from dcc.Store has them."""
    kind = "DataFrame" if frames else "list"
    client = BackgroundClient(app)
    source = client.normal(("source", "data"), [("load", "n_clicks", 1)])
    assert is_reference(source)

    response, side, progress = client.background(
        [("result", "data"), ("status", "children")], [("run", "n_clicks", 3)], [("source", "data", source)])
    result = response["result"]["data"]
    assert is_reference(result) and result != source
    assert response["status"]["children"] == "done 3"
    assert is_reference(side["side"]["data"])
    assert is_reference(progress["progress-store.data"])  # set_progress of a frame: a reference too

    expected = source_frame().assign(total=source_frame()["a"] * 3)
    assert client.normal(("out", "children"), [("result", "data", result)]) == \
        f"{kind}:a,label,total:50:{int(expected['total'].sum())}"
    assert client.normal(("side-out", "children"), [("side", "data", side["side"]["data"])]) == f"{kind}:3:6"

    stored = dash_state.get_state_manager(app).load("result", result, client.namespace())
    pd.testing.assert_frame_equal(pd.DataFrame(stored), expected)
    assert client.leaked() == [], "a response body carried ServerStore data"

    other = BackgroundClient(app)  # another session replaying the references gets nothing
    assert other.normal(("out", "children"), [("result", "data", result)]) == "None"


@pytest.fixture
def diskcache_manager(tmp_path):
    import diskcache

    cache = diskcache.Cache(str(tmp_path / "bg-cache"))
    yield DiskcacheManager(cache)
    cache.close()


@pytest.fixture
def redis_settings():
    import redis

    settings = {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(),
                "STATE_KEY_PREFIX": f"dash-state-bg-{uuid.uuid4().hex[:8]}:"}
    yield settings
    client = redis.Redis.from_url(settings["STATE_REDIS_URL"])
    keys = list(client.scan_iter(match=settings["STATE_KEY_PREFIX"] + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def job_results(manager) -> list:
    """Record what the jobs handed back to the web process (what Celery would serialize as JSON)."""
    results, original = [], manager.get_result

    def get_result(key, job):
        result = original(key, job)
        if result is not manager.UNDEFINED:
            json.dumps(result)  # no frames: references only
            results.append(result)
        return result

    manager.get_result = get_result
    return results


@pytest.mark.service
def test_diskcache_with_redis(diskcache_manager, redis_settings):
    results = job_results(diskcache_manager)
    scenario(make_app(diskcache_manager, **redis_settings))
    assert len(results) == 1 and is_reference(results[0][0])


def test_diskcache_with_sqlite(diskcache_manager, tmp_path):
    results = job_results(diskcache_manager)
    scenario(make_app(diskcache_manager, STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db"))
    assert len(results) == 1 and is_reference(results[0][0])


def test_job_receives_references_not_values(diskcache_manager, tmp_path):
    """What travels to the job (its arguments, which Celery would serialize) is the reference."""
    app = make_app(diskcache_manager, STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db")
    client = BackgroundClient(app)
    source = client.normal(("source", "data"), [("load", "n_clicks", 1)])
    sent = []
    original = diskcache_manager.call_job_fn
    diskcache_manager.call_job_fn = lambda key, fn, args, context: sent.append((args, context)) or original(
        key, fn, args, context)
    client.background([("result", "data"), ("status", "children")], [("run", "n_clicks", 2)],
                      [("source", "data", source)])
    (args, context), = sent
    assert list(args) == [2, source]
    assert context["dash_state"]["user"] and set(context["dash_state"]["stores"]) >= {"source", "result"}
    json.dumps(context["dash_state"])  # plain JSON


def test_raw_data_written_in_the_browser_reaches_the_job_and_job_errors_are_reported(diskcache_manager, tmp_path):
    """Raw data in a ServerStore (a clientside write) reaches the job as it is, as with dcc.Store; the
    job's error comes back as Dash's BackgroundCallbackError."""
    from dash.exceptions import BackgroundCallbackError

    app = make_app(diskcache_manager, STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db",
                   PROPAGATE_EXCEPTIONS=True)
    client = BackgroundClient(app)
    with pytest.raises(BackgroundCallbackError, match="expected a DataFrame, got dict"):
        client.background([("result", "data"), ("status", "children")], [("run", "n_clicks", 1)],
                          [("source", "data", {"a": [1, 2]})])


def test_memory_backend_with_diskcache(diskcache_manager):
    """The default backend: the web process resolves the job's inputs and stores what it returns, sets
    and reports (DiskcacheManager's process cannot reach the web process's memory)."""
    scenario(make_app(diskcache_manager))


def test_memory_backend_json_values_with_diskcache(diskcache_manager):
    scenario(make_app(diskcache_manager, frames=False), frames=False)


def test_no_update_never_reaches_the_renderer_as_a_value(diskcache_manager):
    """set_progress(no_update) and set_props(..., {"data": no_update}) in a job: Dash would send the
    placeholder, which the renderer stores as the prop's value."""
    import dash
    from dash import no_update, set_props

    app = dash.Dash(__name__, background_callback_manager=diskcache_manager)
    app.server.config["SECRET_KEY"] = SECRET
    app.layout = html.Div([html.Button(id="go"), ServerStore(id="p", data={"keep": 1}), ServerStore(id="q"),
                           html.Div(id="done")])

    @app.callback(Output("done", "children"), Input("go", "n_clicks"), background=True,
                  progress=[Output("p", "data")], prevent_initial_call=True)
    def job(set_progress, n):
        set_progress(no_update)
        set_props("q", {"data": no_update})
        time.sleep(0.5)
        return "done"

    client = BackgroundClient(app)
    response, side, progress = client.background([("done", "children")], [("go", "n_clicks", 1)], [])
    assert response["done"]["children"] == "done"
    assert not any(b"_dash_no_update" in body for body in client.bodies)


def test_client_backend_and_apps_without_background_callbacks_are_fine(diskcache_manager):
    app = make_app(diskcache_manager, STATE_BACKEND="client", PROPAGATE_EXCEPTIONS=True)
    DashClient(app).layout()  # client backend: the browser holds the data, as with dcc.Store

    plain = dash_state_app_without_background()
    DashClient(plain).layout()  # memory backend without background callbacks: no error


def dash_state_app_without_background():
    import dash

    app = dash.Dash(__name__)
    app.server.config.update(SECRET_KEY="x", PROPAGATE_EXCEPTIONS=True)
    app.layout = html.Div([ServerStore(id="s"), html.Div(id="o")])

    @app.callback(Output("o", "children"), Input("s", "data"))
    def show(data):
        return repr(data)

    return app


def test_dash_callback_background_registered_before_the_app(diskcache_manager, tmp_path):
    """dash.callback background callbacks land in app.callback_map at the first request, and work on the
    default memory backend like those of app.callback."""
    import dash

    @dash.callback(Output("o", "children"), Input("s", "data"), background=True, manager=diskcache_manager)
    def slow(data):
        return repr(data)

    app = dash.Dash(__name__)
    app.server.config.update(SECRET_KEY="x", PROPAGATE_EXCEPTIONS=True)
    app.layout = html.Div([ServerStore(id="s", data={"initial": [1, 2]}), html.Div(id="o")])
    client = BackgroundClient(app)
    token = json.loads(client.bodies[-1])["props"]["children"][0]["props"]["data"]
    body = {"output": "o.children", "outputs": {"id": "o", "property": "children"},
            "inputs": [{"id": "s", "property": "data", "value": token}], "state": [], "changedPropIds": ["s.data"]}
    started = client.post(body)
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        answer = client.post(body, cacheKey=started["cacheKey"], job=started["job"])
        if "response" in answer:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert answer["response"]["o"]["children"] == repr({"initial": [1, 2]})


def test_dict_groupings_for_inputs_and_outputs(diskcache_manager, tmp_path):
    """Dict-grouped arguments reach the job as keyword arguments, dict-grouped outputs are rewritten
    by their place in the grouping (the web process sends the grouping's shape with the job)."""
    from dash import State

    app = make_app(diskcache_manager, STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db")

    @app.callback(output={"frame": Output("result", "data"), "text": Output("note", "children")},
                  inputs={"n": Input("again", "n_clicks"), "frame": State("source", "data")},
                  background=True, prevent_initial_call=True)
    def grouped(n, frame):
        return {"text": f"rows {len(frame)}", "frame": frame.head(n)}

    app.layout.children.extend([html.Button(id="again"), html.Div(id="note")])
    client = BackgroundClient(app)
    results = job_results(diskcache_manager)
    source = client.normal(("source", "data"), [("load", "n_clicks", 1)])
    response, _, _ = client.background([("result", "data"), ("note", "children")], [("again", "n_clicks", 4)],
                                       [("source", "data", source)])
    assert response["note"]["children"] == "rows 50"
    assert is_reference(response["result"]["data"])
    stored = dash_state.get_state_manager(app).load("result", response["result"]["data"], client.namespace())
    pd.testing.assert_frame_equal(stored, source_frame().head(4))
    assert client.leaked() == []
    assert results == [{"text": "rows 50", "frame": response["result"]["data"]}]  # the worker returned the reference


def test_web_process_guards_set_props_and_progress_left_by_an_unwrapped_job(diskcache_manager, tmp_path,
                                                                            monkeypatch):
    """If a job's set_props / set_progress values were not rewritten in the worker, the web process
    stores them before any poll sends them to the browser."""
    monkeypatch.setattr(background.JobRun, "rewrite_set_props", lambda self, id_str, props: props)
    monkeypatch.setattr(background.JobRun, "wrap_progress", lambda self, set_progress: set_progress)
    scenario(make_app(diskcache_manager, STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db"))


def test_functions_registered_before_dash_state_are_rewrapped(monkeypatch, tmp_path):
    """Managers created and background callbacks defined before dash-state's plugin was imported:
    install() rebuilds their job functions (Celery: replacing the task of the same name)."""
    import diskcache
    from celery import Celery
    from dash import CeleryManager
    from dash.background_callback.managers import BaseBackgroundCallbackManager as Base

    def user_fn(n):
        return n

    def wrapped_fn(job):
        return inspect.getclosurevars(job).nonlocals["fn"]

    monkeypatch.setattr(Base, "managers", [])
    monkeypatch.setattr(Base, "functions", [])
    patched = Base.register
    Base.register = patched.__wrapped__  # as before dash_state.glue.plugin was imported
    try:
        disk = DiskcacheManager(diskcache.Cache(str(tmp_path / "c")))
        celery = Celery("early", broker="memory://", backend="cache+memory://")
        queue = CeleryManager(celery)
        key = Base.register_func(user_fn, False, "early.children")
    finally:
        Base.register = patched
    name = f"background_callback_{key}"
    assert wrapped_fn(disk.func_registry[key]) is user_fn
    assert wrapped_fn(celery.tasks[name]._decorated_fun) is user_fn

    background.reregister()
    for job in (disk.func_registry[key], celery.tasks[name]._decorated_fun, queue.func_registry[key]._decorated_fun):
        assert getattr(wrapped_fn(job), "__dash_state_job__", False) and wrapped_fn(job).__wrapped__ is user_fn
    assert wrapped_fn(disk.func_registry[key])(5) == 5  # no dash_state in the context: the function as it is


def test_worker_refuses_another_secret_or_backend(diskcache_manager, tmp_path):
    from dash_state.glue.background import worker

    app = make_app(diskcache_manager, STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db")
    state = plugin.install(app)
    user = "a." + "u" * 22
    good_probe = references.make(state.manager._ref_keys[0], user, worker.PROBE_STORE, "probe", worker.PROBE_KEY)
    bad_probe = references.make(b"another secret" * 3, user, worker.PROBE_STORE, "probe", worker.PROBE_KEY)
    with pytest.raises(ConfigError, match="another SECRET_KEY"):
        background.JobRun(state, {"user": user, "probe": bad_probe, "stores": {}}, {}).check()
    stores = {"result": {"id": "result", "backend": "redis"}}
    with pytest.raises(ConfigError, match="'result' uses the 'redis' backend in the web server but 'database'"):
        background.JobRun(state, {"user": user, "probe": good_probe, "stores": stores}, {}).check()
    stores["result"]["backend"] = "database"
    background.JobRun(state, {"user": user, "probe": good_probe, "stores": stores}, {}).check()


# -- Celery ----------------------------------------------------------------------------------------
def celery_url(url: str) -> str:
    """The test Redis server, database 14 (state tests use their own database and key prefixes)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        pytest.skip(f"the Celery test needs a plain redis:// URL, not {parts.scheme}://")
    return urlunsplit(parts._replace(path="/14"))


@pytest.fixture
def celery_worker(request, tmp_path, redis_settings):
    """A Celery worker importing background_app; ``@pytest.mark.parametrize("celery_worker", [settings],
    indirect=True)`` gives it (and the test) other settings, e.g. the memory backend, or another app
    (``BACKGROUND_CELERY_APP``: ``module:celery_app``, importable from tests/)."""
    settings = getattr(request, "param", None) or redis_settings
    url, queue = celery_url(redis_settings["STATE_REDIS_URL"]), f"dash-state-bg-{uuid.uuid4().hex[:8]}"
    celery_bin = shutil.which("celery", path=os.path.dirname(sys.executable))
    assert celery_bin, "celery is not installed in this environment (pip install 'celery[redis]')"
    env = {**os.environ, **settings, "BACKGROUND_CELERY_URL": url, "BACKGROUND_CELERY_QUEUE": queue,
           "BACKGROUND_SECRET": SECRET,
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    log = open(tmp_path / "celery.log", "w")
    worker = subprocess.Popen(
        [celery_bin, "-A", settings.get("BACKGROUND_CELERY_APP", "background_app:celery_app"), "worker", "--pool=solo", "--loglevel=warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{queue}@%h"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    celery = make_celery(url, queue)
    try:
        deadline = time.monotonic() + 30
        while True:
            if worker.poll() is not None:
                pytest.fail("the Celery worker exited:\n" + (tmp_path / "celery.log").read_text()[-3000:])
            if any(name.startswith(f"{queue}@") for reply in celery.control.ping(timeout=0.5) for name in reply):
                break
            if time.monotonic() > deadline:
                pytest.fail("the Celery worker did not start:\n" + (tmp_path / "celery.log").read_text()[-3000:])
        yield celery
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)
        log.close()
        with celery.connection_for_write() as connection:  # the queue's bindings outlive the worker
            client = connection.default_channel.client
            for key in client.scan_iter(match=f"_kombu.binding*{queue}*"):
                client.delete(key)
        celery.close()


@pytest.mark.service
def test_celery_worker_with_redis(celery_worker, redis_settings, tmp_path):
    from dash import CeleryManager

    app = make_app(CeleryManager(celery_worker), **redis_settings)
    scenario(app)
    assert "Traceback" not in (tmp_path / "celery.log").read_text()


@pytest.mark.service
@pytest.mark.parametrize("celery_worker", [{"BACKGROUND_FRAMES": "0"}], indirect=True)
def test_celery_worker_with_the_default_memory_backend(celery_worker, tmp_path):
    """An app migrated from dcc.Store as the README says (JSON values, default backend) keeps its Celery
    background callbacks: the web process resolves the inputs and stores the results."""
    from dash import CeleryManager

    scenario(make_app(CeleryManager(celery_worker), frames=False), frames=False)
    assert "Traceback" not in (tmp_path / "celery.log").read_text()


# -- Dash's polling races (dash_state.glue.background.polling) -------------------------------------------
@pytest.fixture
def memory_celery_manager():
    """A real CeleryManager on an in-memory Celery result backend: the test plays the job's part."""
    from celery import Celery
    from dash import CeleryManager

    celery = Celery("polling-race", broker="memory://", backend="cache+memory://")
    manager = CeleryManager(celery)
    yield manager
    celery.close()


def fresh():
    """Celery's memory cache is one per process: every test uses its own keys and job ids."""
    tag = uuid.uuid4().hex
    return f"key-{tag}", f"job-{tag}"


def poll(manager, key, job):
    """What one poll of dash._callback._update_background_callback asks, in its order."""
    result = manager.get_result(key, job)
    running = manager.job_running(job)
    side = manager.get_updated_props(key)
    cancelled = result is manager.UNDEFINED and not running
    return result, running, side, cancelled


def test_a_poll_reading_set_props_does_not_delete_the_finished_result(memory_celery_manager):
    """Dash's CeleryManager.get_updated_props cleared the result key: a poll that came after the job
    wrote its result but before it finished lost that result for good."""
    from dash_state.glue.background.polling import make_polls_consistent

    manager, backend = memory_celery_manager, memory_celery_manager.handle.backend
    make_polls_consistent(manager)
    key, job = fresh()
    backend.set(f"{key}-set_props", json.dumps({"side": {"data": 1}}))
    original = manager.__dict__["get_result"]

    def job_writes_its_result_during_the_poll(key, job):
        found = original(key, job)
        backend.set(key, json.dumps(["value", "done"]))  # the job's last step, still "running"
        return found

    manager.get_result = job_writes_its_result_during_the_poll
    assert poll(manager, key, job) == (manager.UNDEFINED, True, {"side": {"data": 1}}, False)
    manager.get_result = original
    backend.store_result(job, None, "SUCCESS")
    result, running, side, cancelled = poll(manager, key, job)
    assert result == ["value", "done"] and not cancelled
    assert side == {}, "a set_props update is delivered once"


def test_a_job_that_finishes_between_the_two_reads_of_a_poll_is_not_cancelled(memory_celery_manager):
    from dash_state.glue.background.polling import make_polls_consistent

    manager, backend = memory_celery_manager, memory_celery_manager.handle.backend
    real_get_result = manager.get_result
    key, job = fresh()
    calls = []

    def job_finishes_right_after_the_first_read(key, job):
        found = real_get_result(key, job)
        if not calls:
            backend.set(key, json.dumps(["value", "done"]))
            backend.store_result(job, None, "SUCCESS")
        calls.append(found)
        return found

    manager.get_result = job_finishes_right_after_the_first_read
    make_polls_consistent(manager)
    result, running, _, cancelled = poll(manager, key, job)
    assert result == ["value", "done"] and not cancelled


def test_a_cancelled_job_still_reads_as_cancelled(memory_celery_manager):
    from dash_state.glue.background.polling import make_polls_consistent

    manager = memory_celery_manager
    make_polls_consistent(manager)
    (key, revoked), (_, started) = fresh(), fresh()
    manager.handle.backend.store_result(revoked, None, "REVOKED")
    assert poll(manager, key, revoked) == (manager.UNDEFINED, False, {}, True)
    manager.handle.backend.store_result(started, None, "STARTED")
    assert poll(manager, key, started) == (manager.UNDEFINED, True, {}, False)


# -- the real renderer -----------------------------------------------------------------------------
@pytest.mark.browser
def test_renderer_runs_the_background_callback(dash_duo, diskcache_manager, tmp_path):
    """Headless Chromium: load, run in the background, read back; nothing sent to the page carries data."""
    import flask

    app = make_app(diskcache_manager, STATE_BACKEND="database", STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db")
    sent = []

    @app.server.after_request
    def record(response):
        if flask.request.path in ("/", "/_dash-layout", "/_dash-update-component"):
            sent.append(response.get_data(as_text=True))
        return response

    dash_duo.start_server(app)
    dash_duo.find_element("#load").click()
    deadline = time.monotonic() + 10
    while not any('"source"' in body and "dsr2." in body for body in sent):
        assert time.monotonic() < deadline, "the load callback did not answer"
        time.sleep(0.05)
    time.sleep(0.5)  # the renderer applies the answer
    dash_duo.find_element("#run").click()
    expected = int((source_frame()["a"] * 1).sum())
    dash_duo.wait_for_text_to_equal("#out", f"DataFrame:a,label,total:50:{expected}", timeout=20)
    dash_duo.wait_for_text_to_equal("#status", "done 1")
    dash_duo.wait_for_text_to_equal("#side-out", "DataFrame:3:6")
    assert sent and not [body for body in sent if MARKER in body]
