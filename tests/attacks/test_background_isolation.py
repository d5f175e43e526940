"""Security review 15, finding 9: background jobs shared across users.

Dash keys a job's result by the callback and its arguments. Two browsers sending the same arguments
got one key: the second user's poll returned (and deleted) the first user's result, computed from the
first user's ServerStore, and killed its own job. dash-state makes the user part of every job key
(:mod:`dash_state.glue.background.keys`).

Each test: browser A saves "alice" into its ServerStore, browser B "bob"; both run the same background
callback with the same input; the job answers from ``get_store("mine")``. A's job has finished (its
result waits under its key) before B starts, which is when the keys collided.
"""
from __future__ import annotations

import time
import uuid

import dash
import pytest
from dash import Input, Output, html

import dash_state
from dash_state import ServerStore
from isolation_app import SECRET, isolation_app
from services import REDIS_URL
from test_background import (POLL_TIMEOUT, BackgroundClient, celery_worker, diskcache_manager,  # noqa: F401
                             memory_celery_manager, redis_settings)

CELERY_PREFIX = f"dash-state-isolation-{uuid.uuid4().hex[:8]}:"
CELERY_SETTINGS = {"BACKGROUND_CELERY_APP": "attacks.isolation_app:celery_app", "STATE_BACKEND": "redis",
                   "STATE_REDIS_URL": REDIS_URL, "STATE_KEY_PREFIX": CELERY_PREFIX}

def browser(app, name: str) -> BackgroundClient:
    client = BackgroundClient(app)  # its own test client: its own identity cookie
    reference = client.normal(("mine", "data"), [("save", "n_clicks", 1), ("name", "value", name)])
    assert dash_state.get_state_manager(app).load("mine", reference, client.namespace()) == {"owner": name}
    return client


def start(client: BackgroundClient) -> dict:
    body = {"output": "result.children", "outputs": {"id": "result", "property": "children"},
            "inputs": [{"id": "run", "property": "n_clicks", "value": 1}], "state": [],
            "changedPropIds": ["run.n_clicks"]}
    started = client.post(body)
    assert set(started) >= {"cacheKey", "job"}, started
    body["inputs"][0]["value"] = None  # the renderer nulls values when polling
    return {"body": body, "started": started, "key": started["cacheKey"].split("~")[0]}


def finish(client: BackgroundClient, job: dict) -> str:
    """Poll as the renderer does until the job's response arrives."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        answer = client.post(job["body"], cacheKey=job["started"]["cacheKey"], job=job["started"]["job"])
        if "response" in answer:
            return answer["response"]["result"]["children"]
        assert time.monotonic() < deadline, f"{client.namespace()}'s poll found no result: {answer}"
        time.sleep(0.05)


def wait_for_result(manager, key: str) -> None:
    deadline = time.monotonic() + POLL_TIMEOUT
    while not manager.result_ready(key):
        assert time.monotonic() < deadline, "the first job wrote no result"
        time.sleep(0.05)


def two_users_same_inputs(manager, **config) -> None:
    app = isolation_app(manager, **config)
    alice, bob = browser(app, "alice"), browser(app, "bob")
    assert alice.namespace() != bob.namespace()
    first = start(alice)
    wait_for_result(manager, first["key"])
    second = start(bob)
    assert finish(bob, second) == "run 1 for bob"
    assert finish(alice, first) == "run 1 for alice"
    assert alice.leaked() == [] and bob.leaked() == []


def test_two_users_with_the_same_inputs_get_their_own_diskcache_job(diskcache_manager, tmp_path):
    two_users_same_inputs(diskcache_manager, STATE_BACKEND="database",
                          STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db")


def test_two_users_with_the_same_inputs_get_their_own_diskcache_job_on_the_memory_backend(diskcache_manager):
    """The default backend: the forked job process sees the values written before it started."""
    two_users_same_inputs(diskcache_manager)


def test_two_users_with_the_same_inputs_get_their_own_celery_job(memory_celery_manager, tmp_path):
    """A real CeleryManager; its tasks run eagerly in this process (results in Celery's backend, as a
    worker stores them)."""
    celery = memory_celery_manager.handle
    celery.conf.update(task_always_eager=True, task_store_eager_result=True)
    two_users_same_inputs(memory_celery_manager, STATE_BACKEND="database",
                          STATE_DATABASE_URL=f"sqlite:///{tmp_path}/bg.db")


@pytest.mark.service
@pytest.mark.parametrize("celery_worker", [CELERY_SETTINGS], indirect=True)
def test_two_users_with_the_same_inputs_get_their_own_job_from_a_celery_worker(celery_worker, tmp_path):
    """A real Celery worker process (Redis broker and results), the stores on Redis."""
    import redis
    from dash import CeleryManager

    settings = {k: v for k, v in CELERY_SETTINGS.items() if k.startswith("STATE_")}
    try:
        two_users_same_inputs(CeleryManager(celery_worker), **settings)
    finally:
        server = redis.Redis.from_url(REDIS_URL)
        for key in server.scan_iter(match=CELERY_PREFIX + "*"):
            server.delete(key)
        server.close()
    assert "Traceback" not in (tmp_path / "celery.log").read_text()


def test_the_job_key_is_per_user_but_stable_for_cache_by(diskcache_manager):
    """One user asking twice gets the same key (cache_by still caches); the key is not the namespace."""
    app = isolation_app(diskcache_manager)
    alice = browser(app, "alice")
    keys = []
    original = diskcache_manager.call_job_fn
    diskcache_manager.call_job_fn = lambda key, *args: keys.append(key) or original(key, *args)
    for _ in range(2):
        assert finish(alice, start(alice)) == "run 1 for alice"
    assert keys[0] == keys[1] and alice.namespace() not in keys[0]


@pytest.mark.parametrize("stores", [False, True])
def test_apps_without_server_stores_keep_dash_keys(diskcache_manager, stores):
    from dash.background_callback.managers import BaseBackgroundCallbackManager

    app = dash.Dash(__name__, background_callback_manager=diskcache_manager)
    app.server.config.update(SECRET_KEY=SECRET)
    app.layout = html.Div([html.Button(id="run"), html.Div(id="result")] + ([ServerStore(id="s")] if stores else []))

    @app.callback(Output("result", "children"), Input("run", "n_clicks"), background=True,
                  prevent_initial_call=True)
    def job(n):
        return f"run {n}"

    client = BackgroundClient(app)
    run = start(client)
    assert finish(client, run) == "run 1"
    dash_key = BaseBackgroundCallbackManager.build_cache_key(diskcache_manager, job, [1], [], None)
    assert (run["key"] != dash_key) is stores
