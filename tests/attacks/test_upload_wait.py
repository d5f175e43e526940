"""Security review, finding 10: the waits for a clientside Patch's upload.

A callback that receives a store value patched in the browser waits (bounded) for the component to
upload the patch. Those waits were capped for the whole process (4), so one client sending values
crafted to look patched held every slot, and meanwhile other users' readers silently got the store's
previous value. Now the slots are per user (``MAX_WAITING_PER_USER``) under a process-wide backstop, and
a reader whose upload does not arrive, or that finds no slot, fails with a clear 422 naming the store.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
from dash import Input, Output, html

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from dash_state.glue import clientside


def patch_app():
    """Button n writes ``{"n": n}`` into 's'; 'out' shows what a reader of 's' receives (memory backend:
    the tests watch its lookups)."""
    app = new_app(STATE_BACKEND="memory")
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        return {"n": n}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return json.dumps(data, sort_keys=True)

    return app


def user(app) -> tuple[DashClient, str]:
    """A fresh identity and the reference of its value ``{"n": 1}``."""
    client = DashClient(app)
    client.layout()
    return client, client.call([("s", "data")], [("btn", "n_clicks", 1)])["s"]["data"]


def assigned(token: str, value: int) -> dict:
    """What the renderer makes of ``Patch().assign(["n"], value)`` applied to a reference string."""
    return {str(i): c for i, c in enumerate(token)} | {"n": value}


def upload(client: DashClient, token: str, patched: dict, value: int):
    """The component's upload of that patch."""
    operations = [{"operation": "Assign", "location": ["n"], "params": {"value": value}}]
    return client.http.post("/_dash-state/v1/patch",
                            json={"id": "s", "base": token, "patched": patched, "operations": operations})


def read(client: DashClient, patched: dict):
    return client.raw_call([("out", "children")], [("s", "data", patched)])


def wait_until(condition, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {limit} s waiting for {what}"
        time.sleep(0.01)


def test_a_reader_whose_upload_never_arrives_gets_a_clear_error_not_the_previous_value(monkeypatch, warnings_log):
    monkeypatch.setattr(clientside, "UPLOAD_WAIT", 0.3)
    app = patch_app()
    client, token = user(app)
    answer = read(client, assigned(token, 5))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422, body  # was 200 with the previous value, {"n": 1}
    assert "ServerStore 's'" in body and "clientside Patch upload did not arrive within 0.3 s" in body
    assert "Traceback" not in body and "Traceback" not in warnings_log.text
    assert clientside.waiting() == 0  # the slot was given back

    patched = assigned(token, 6)  # the normal path: the upload arrives, the reader sees the patched value
    assert upload(client, token, patched, 6).status_code == 200
    assert read(client, patched).get_json()["response"]["out"]["children"] == '{"n": 6}'


def test_one_user_cannot_take_the_upload_wait_slots_of_other_users(monkeypatch):
    monkeypatch.setattr(clientside, "UPLOAD_WAIT", 3.0)
    app = patch_app()
    backend = dash_state.get_state_manager(app).backend("memory")
    finds: list[tuple[str, str, str]] = []  # (thread name, user, key) of every lookup of a patch result
    original_get = backend.get

    def get(user_ns, key):
        finds.append((threading.current_thread().name, user_ns, key))  # names are unique, idents are reused
        return original_get(user_ns, key)

    monkeypatch.setattr(backend, "get", get)
    attacker, attacker_token = user(app)
    crafted = assigned(attacker_token, 99)  # never uploaded
    answers: dict[str, object] = {}

    def attack():
        answers[threading.current_thread().name] = read(attacker, crafted)

    threads = [threading.Thread(target=attack, name=f"attack-{i}") for i in range(6)]
    result = {}
    reader = threading.Thread(target=lambda: result.update(answer=read(victim, patched)), name="victim")
    for thread in threads:
        thread.start()
    try:
        def settled() -> bool:  # each attack request is either waiting (polling) or has been answered
            calls = Counter(t for t, ns, _ in finds if ns == attacker.namespace())
            return all(t.name in answers or calls[t.name] >= 2 for t in threads)

        wait_until(settled, 5, "the attack requests to take their slots")
        victim, victim_token = user(app)
        patched = assigned(victim_token, 5)
        victim_key = clientside.patched_key(victim.namespace(), patched)
        reader.start()
        wait_until(lambda: any(k == victim_key for _, _, k in finds), 5, "the victim's reader to look for its upload")
        assert upload(victim, victim_token, patched, 5).status_code == 200
    finally:  # no wait outlives the test: later tests count the slots
        for thread in [reader, *threads]:
            if thread.is_alive():
                thread.join(timeout=10)

    answer = result["answer"]
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["response"]["out"]["children"] == '{"n": 5}'  # was '{"n": 1}': the previous value
    statuses = Counter(a.status_code for a in answers.values())
    assert statuses == {422: 6}, statuses  # the attacker's own requests fail; none got a value
    bodies = Counter("did not arrive" if "did not arrive" in a.get_data(as_text=True) else
                     "no slot" if "already waiting" in a.get_data(as_text=True) else "other" for a in answers.values())
    assert bodies == {"did not arrive": clientside.MAX_WAITING_PER_USER,
                      "no slot": 6 - clientside.MAX_WAITING_PER_USER}, bodies
    assert clientside.waiting() == 0


def test_the_process_wide_cap_is_a_backstop_one_user_cannot_reach():
    assert 1 <= clientside.MAX_WAITING_PER_USER < clientside.MAX_WAITING


@pytest.mark.parametrize("taken_by_others", [0, 1])
def test_slots_are_counted_per_user_and_in_all(monkeypatch, taken_by_others):
    """Unit level: a user at their own limit is refused while others still get slots; when the process is
    at its cap everyone is refused, with the store named."""
    monkeypatch.setattr(clientside, "MAX_WAITING_PER_USER", 1)
    monkeypatch.setattr(clientside, "MAX_WAITING", 2 - taken_by_others)
    held = threading.Event()
    release = threading.Event()

    def hold():
        def find():
            held.set()
            return "done" if release.is_set() else None
        clientside.wait_for(find, "a.first-user", "s", timeout=10)

    holder = threading.Thread(target=hold)
    holder.start()
    wait_until(lambda: clientside.waiting("a.first-user") == 1, 5, "the first user to wait")
    try:
        with pytest.raises(dash_state.errors.PatchUploadMissing, match="ServerStore 's': the server is already waiting"):
            clientside.wait_for(lambda: None, "a.first-user", "s", timeout=10)
        if taken_by_others:  # the process is at its cap: another user is refused too
            with pytest.raises(dash_state.errors.PatchUploadMissing, match="already waiting"):
                clientside.wait_for(lambda: None, "a.second-user", "s", timeout=10)
        else:  # another user has a slot of their own
            with pytest.raises(dash_state.errors.PatchUploadMissing, match="did not arrive within 0.05 s"):
                clientside.wait_for(lambda: None, "a.second-user", "s", timeout=0.05)
    finally:
        release.set()
        holder.join(timeout=10)
    assert clientside.waiting() == 0
