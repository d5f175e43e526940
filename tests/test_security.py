"""The attacks of the security review, as an attacker with curl would try them, each a regression test,
plus generated hostile payloads. (Session fixation, login and logout: tests/test_identity.py. Deep JSON,
TTL borrowing and /get: tests/test_routes.py. Real sizes: tests/test_values.py. Tampering inside Redis
and PostgreSQL: tests/test_backend_contract.py and test_tampering_in_real_servers below.)"""
from __future__ import annotations

import json
import logging
import os
import uuid

import pytest
from dash import ALL, MATCH, Input, Output, State, html
from hypothesis import HealthCheck, given, settings, strategies as st

import dash_state
from apps import new_app
from dash_client import DashClient
from dash_state import ServerStore
from dash_state.glue import clientside
from services import database_url, redis_url

SECRET = "TOP-SECRET-7731"


def post(client, name, body):
    return client.http.post(f"/_dash-state/v1/{name}", json=body)


def browser(app):
    client = DashClient(app)
    client.layout()
    return client


# -- 1. one forged reference ---------------------------------------------------------------------------
def test_a_non_ascii_signature_is_missing_in_callbacks_and_routes(warnings_log):
    app = new_app(STATE_STORES={"s": {"client_read": True}})
    app.layout = html.Div([ServerStore(id="s"), html.Div(id="out")])

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return repr(data)

    client = browser(app)
    forged = "dsr2.memory." + "A" * 22 + ".s0000000." + "A" * 21 + "é"
    response = client.raw_call([("out", "children")], [("s", "data", forged)])
    assert response.status_code == 200 and response.get_json()["response"]["out"]["children"] == "None"
    assert post(client, "get", {"id": "s", "reference": forged}).status_code == 404
    assert post(client, "touch", {"stores": [{"id": "s", "reference": forged}]}).get_json()["alive"] == [False]
    assert post(client, "delete", {"id": "s", "reference": forged}).get_json() == {"deleted": False}
    assert post(client, "release", {"stores": [{"id": "s", "reference": forged}]}).get_json() == {"released": 0}
    assert "Traceback" not in warnings_log.text


# -- 2. store substitution -----------------------------------------------------------------------------
def role_app():
    app = new_app(STATE_STORES={"role": {"latest_only": True}})
    app.layout = html.Div([html.Button(id="login"), html.Button(id="demote"), html.Button(id="act"),
                           ServerStore(id="notes"), ServerStore(id="role"), html.Div(id="out")])

    @app.callback(Output("role", "data"), Input("login", "n_clicks"), prevent_initial_call=True)
    def login(n):
        return {"role": "admin"}

    @app.callback(Output("role", "data", allow_duplicate=True), Input("demote", "n_clicks"), prevent_initial_call=True)
    def demote(n):
        return {"role": "user"}

    @app.callback(Output("notes", "data"), Input("act", "n_clicks"), State("notes", "data"), prevent_initial_call=True)
    def keep(n, notes):  # a store that keeps what the browser sends
        return notes

    @app.callback(Output("out", "children"), Input("act", "n_clicks"), State("role", "data"))
    def act(n, role):
        return (role or {}).get("role", "nobody")

    return app


def role_of(client, token):
    return client.call([("out", "children")], [("act", "n_clicks", 1)], [("role", "data", token)])["out"]["children"]


def test_a_reference_of_another_store_or_an_old_version_is_not_a_role():
    app = role_app()
    client = browser(app)
    admin = client.call([("role", "data")], [("login", "n_clicks", 1)])["role"]["data"]
    (demote_id,) = [k for k in app.callback_map if k.startswith("role.data@")]
    user = client.call([("role", "data")], [("demote", "n_clicks", 1)], callback_id=demote_id)["role"]["data"]
    assert role_of(client, user) == "user"
    assert role_of(client, admin) == "nobody"  # replaying the older version: latest_only refuses it
    # a value the client chose, stored through a store that keeps what the client sends ...
    notes = client.call([("notes", "data")], [("act", "n_clicks", 1)], [("notes", "data", {"role": "admin"})])
    forged = notes["notes"]["data"]
    assert forged.startswith("dsr2.")
    assert role_of(client, forged) == "nobody"  # ... is bound to 'notes': as the role it is missing
    assert role_of(client, {"role": "admin"}) == "user"  # raw data: refused, the server's value stays
    assert post(client, "put", {"id": "role", "data": {"role": "admin"}}).status_code == 403
    misses = dash_state.get_state_manager(app).stats()["misses"]
    assert misses["superseded"] == 1 and misses["foreign"] == 1 and misses["refused"] == 1


# -- 4. one client evicting everyone -------------------------------------------------------------------
def writer_app(**config):
    app = new_app(**config)
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])
    app.sizes = {}

    @app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
    def write(n):
        size = app.sizes.get(n, 100_000)
        return {"blob": "x" * size, "n": n}

    @app.callback(Output("out", "children"), Input("s", "data"))
    def read(data):
        return "None" if data is None else f"{data['n']}:{len(data['blob'])}"

    return app


def write_size(client, size, n):
    client.app.sizes[n] = size
    return client.raw_call([("s", "data")], [("btn", "n_clicks", n)])


def test_one_client_cannot_evict_other_users_from_memory():
    app = writer_app(STATE_BACKEND="memory", STATE_MEMORY_MAX_BYTES=64 << 20)
    victims = [browser(app) for _ in range(20)]
    tokens = [write_size(v, 100_000, i + 1).get_json()["response"]["s"]["data"] for i, v in enumerate(victims)]
    attacker = browser(app)
    answers = [write_size(attacker, 8 << 20, 100 + i) for i in range(10)]
    statuses = [a.status_code for a in answers]
    assert 200 in statuses and statuses[-1] == 413, statuses
    assert "STATE_MEMORY_MAX_BYTES" in answers[-1].get_data(as_text=True)
    assert "Traceback" not in answers[-1].get_data(as_text=True)
    for i, (victim, token) in enumerate(zip(victims, tokens)):
        assert victim.call([("out", "children")], [("s", "data", token)])["out"]["children"] == f"{i + 1}:100000"


def test_value_and_user_limits_refuse_clearly_and_keep_the_previous_value():
    app = writer_app(STATE_MAX_VALUE_BYTES=5 << 20, STATE_MAX_USER_BYTES=12 << 20)
    client = browser(app)
    first = write_size(client, 4 << 20, 1).get_json()["response"]["s"]["data"]
    too_big = write_size(client, 6 << 20, 2)
    assert too_big.status_code == 413 and "STATE_MAX_VALUE_BYTES" in too_big.get_data(as_text=True)
    write_size(client, 4 << 20, 3)
    over_quota = write_size(client, 4 << 20, 4)  # 4 + 4 + 4 MB > 12 MB for this user
    assert over_quota.status_code == 413 and "STATE_MAX_USER_BYTES" in over_quota.get_data(as_text=True)
    assert client.call([("out", "children")], [("s", "data", first)])["out"]["children"] == f"1:{4 << 20}"
    other = browser(app)  # another user has a quota of their own
    assert write_size(other, 4 << 20, 5).status_code == 200


@pytest.mark.service
def test_a_100_mb_value_is_refused_by_redis_too():
    app = writer_app(STATE_BACKEND="redis", STATE_REDIS_URL=redis_url(),
                     STATE_KEY_PREFIX=f"sec-{uuid.uuid4().hex[:8]}:")
    client = browser(app)
    answer = write_size(client, 100 << 20, 1)
    assert answer.status_code == 413 and "STATE_MAX_VALUE_BYTES" in answer.get_data(as_text=True)


# -- 5. a GET that changes server state ----------------------------------------------------------------
def test_cookie_less_layout_requests_store_nothing_per_user():
    import psutil

    big = {"rows": list(range(200_000))}
    app = new_app(STATE_BACKEND="memory")
    app.layout = html.Div([ServerStore(id="s", data=big)])
    backend_entries = lambda: dash_state.get_state_manager(app).backend("memory").stats()["entries"]  # noqa: E731
    DashClient(app).layout()
    rss = psutil.Process(os.getpid()).memory_info().rss
    tokens = {json.dumps(DashClient(app).layout()) for _ in range(300)}  # 300 crawlers without cookies
    assert len(tokens) == 1 and backend_entries() == 1
    assert psutil.Process(os.getpid()).memory_info().rss - rss < 50 << 20


@pytest.mark.service
def test_cookie_less_layout_requests_make_no_redis_keys():
    import redis

    prefix = f"sec-{uuid.uuid4().hex[:8]}:"
    app = new_app(STATE_BACKEND="redis", STATE_REDIS_URL=redis_url(), STATE_KEY_PREFIX=prefix)
    app.layout = html.Div([ServerStore(id="s", data={"initial": list(range(1000))})])
    server = redis.Redis.from_url(redis_url())
    try:
        DashClient(app).layout()
        before = len(list(server.scan_iter(match=prefix + "*")))
        for _ in range(200):
            DashClient(app).layout()
        assert len(list(server.scan_iter(match=prefix + "*"))) == before <= 3
    finally:
        for key in server.scan_iter(match=prefix + "*"):
            server.delete(key)


# -- 7. the smaller ones ------------------------------------------------------------------------------
@pytest.mark.service
def test_a_corrupted_latest_pointer_does_not_break_later_writes():
    import redis

    prefix = f"sec-{uuid.uuid4().hex[:8]}:"
    app = writer_app(STATE_BACKEND="redis", STATE_REDIS_URL=redis_url(), STATE_KEY_PREFIX=prefix)
    client = browser(app)
    write_size(client, 10, 1)
    server = redis.Redis.from_url(redis_url())
    try:
        (pointer,) = [k for k in server.scan_iter(match=prefix + "*:latest.*") if not k.endswith(b".history")]
        server.set(pointer, b"\xff garbage \x00")
        assert write_size(client, 10, 2).status_code == 200
        assert dash_state.get_state_manager(app).latest("s", client.namespace()) == {"blob": "x" * 10, "n": 2}
        server.set(pointer, b"\xff garbage \x00")
        assert dash_state.get_state_manager(app).latest("s", client.namespace()) is None
    finally:
        for key in server.scan_iter(match=prefix + "*"):
            server.delete(key)


def test_20000_forged_references_make_one_log_line_and_a_huge_id_is_truncated(caplog):
    caplog.set_level(logging.WARNING, logger="dash_state")
    app = new_app()
    app.layout = html.Div([ServerStore(id={"type": "st", "index": i}) for i in range(2)] + [html.Div(id="out")])

    @app.callback(Output("out", "children"), Input({"type": "st", "index": ALL}, "data"))
    def show(values):
        return len(values)

    client = browser(app)
    forged = "dsr2.memory." + "B" * 22 + ".s0000000." + "C" * 22
    entries = [{"id": {"type": "st", "index": i}, "property": "data", "value": forged} for i in range(20_000)]
    entries.append({"id": {"type": "st", "index": "x" * 1_000_000}, "property": "data", "value": forged})
    body = {"output": "out.children", "outputs": {"id": "out", "property": "children"}, "inputs": [entries],
            "state": [], "changedPropIds": []}
    response = client.http.post("/_dash-update-component", json=body)
    assert response.status_code == 200 and response.get_json()["response"]["out"]["children"] == 20_001
    lines = [r for r in caplog.records if r.name == "dash_state"]
    assert len(lines) == 1 and "20001" in lines[0].getMessage()
    assert len(lines[0].getMessage()) < 1000


def test_a_pattern_matching_store_with_an_unseen_string_id_gets_a_reference():
    app = new_app()
    app.layout = html.Div([html.Button(id={"type": "b", "name": "a"}), ServerStore(id={"type": "s", "name": "a"})])

    @app.callback(Output({"type": "s", "name": MATCH}, "data"), Input({"type": "b", "name": MATCH}, "n_clicks"))
    def write(n):
        return {"secret": SECRET}

    client = DashClient(app)  # made by a callback in another worker: this one never saw name "zzz"
    sid = {"type": "s", "name": "zzz"}
    response = client.call([(sid, "data")], [({"type": "b", "name": "zzz"}, "n_clicks", 1)],
                           callback_id='{"name":["MATCH"],"type":"s"}.data')
    value = response[json.dumps(sid, sort_keys=True, separators=(",", ":"))]["data"]
    assert isinstance(value, str) and value.startswith("dsr2.") and SECRET not in json.dumps(response)


def test_values_shaped_like_a_patched_reference_cannot_tie_up_the_server(monkeypatch):
    """A reader waits (bounded) for the component's upload of a clientside Patch; a crafted value makes at
    most a few of one user's requests wait that long (``MAX_WAITING_PER_USER``), and every one of them
    gets a clear error naming the store, never the store's previous value or another one
    (more: tests/attacks/test_upload_wait.py)."""
    import threading
    import time

    from dash_state.glue import clientside

    monkeypatch.setattr(clientside, "UPLOAD_WAIT", 1.0)
    app = role_app()
    client = browser(app)
    token = client.call([("notes", "data")], [("act", "n_clicks", 1)], [("notes", "data", {"mine": 1})])["notes"]["data"]
    crafted = {str(i): c for i, c in enumerate(token)} | {"x": 1}
    timings = []

    def reader():
        started = time.monotonic()
        answer = client.raw_call([("notes", "data")], [("act", "n_clicks", 1)], [("notes", "data", crafted)])
        timings.append((time.monotonic() - started, answer.status_code, answer.get_data(as_text=True)))

    threads = [threading.Thread(target=reader) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(timings) == 12
    waited = [seconds for seconds, _, body in timings if "did not arrive within 1 s" in body]
    assert 1 <= len(waited) <= clientside.MAX_WAITING_PER_USER  # the others were refused a slot at once
    assert all(seconds >= 1.0 for seconds in waited)  # those waited the whole (bounded) time
    for _, status, body in timings:
        assert status == 422 and "ServerStore 'notes'" in body and "clientside Patch" in body, (status, body)
        assert "Traceback" not in body and "dsr2." not in body
    assert clientside.waiting() == 0


def test_usage_py_has_no_published_secret_key():
    source = (pytest.importorskip("pathlib").Path(__file__).parent.parent / "usage.py").read_text()
    assert "dev-only" not in source and "change-me" not in source


@pytest.mark.service
@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_tampering_in_real_servers_is_missing_not_decoded(kind, warnings_log):
    import redis
    from sqlalchemy import create_engine, text

    table = f"sec_{uuid.uuid4().hex[:8]}"
    prefix = f"sec-{uuid.uuid4().hex[:8]}:"
    # the near tier of the host that wrote the value keeps its own intact copy: tamper with the only copy
    config = ({"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": prefix} if kind == "redis"
              else {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(), "STATE_DATABASE_TABLE": table})
    app = writer_app(STATE_NEAR_TIER_BYTES=0, **config)
    client = browser(app)
    token = write_size(client, 1000, 1).get_json()["response"]["s"]["data"]
    dash_state.get_state_manager(app)._cache = None  # read from the server, not this process's cache
    key = token.split(".")[2]
    if kind == "redis":
        server = redis.Redis.from_url(redis_url())
        (name,) = [k for k in server.scan_iter(match=f"{prefix}*:{key}")]
        data = bytearray(server.get(name))
        data[-5] ^= 1
        server.set(name, bytes(data))
    else:
        engine = create_engine(database_url())
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET value = overlay(value placing '\\x00'::bytea from 40 for 1) "
                              "WHERE key = :k"), {"k": key})
    try:
        assert client.call([("out", "children")], [("s", "data", token)])["out"]["children"] == "None"
        assert dash_state.get_state_manager(app).stats()["misses"]["tampered"] == 1
        assert SECRET not in warnings_log.text
    finally:
        if kind == "redis":
            for leftover in server.scan_iter(match=prefix + "*"):
                server.delete(leftover)
        else:
            dash_state.get_state_manager(app).backend("database").drop_table()


# -- generated hostile payloads ------------------------------------------------------------------------
def fuzz_app():
    app = new_app(STATE_STORES={"a": {"client_read": True}, "locked": {"latest_only": True}})
    app.layout = html.Div([html.Button(id="btn"), ServerStore(id="a"), ServerStore(id="b"), ServerStore(id="locked"),
                           html.Div(id="out")])

    @app.callback(Output("a", "data"), Output("b", "data"), Output("locked", "data"), Input("btn", "n_clicks"))
    def write(n):  # user n's values: "user1-a" for the client under test, "user2-..." for the other user
        return {"who": f"user{n}-a"}, {"who": f"user{n}-b"}, {"who": f"user{n}-locked"}

    @app.callback(Output("out", "children"), Input("btn", "n_clicks"), State("a", "data"), State("b", "data"),
                  State("locked", "data"))
    def read(n, a, b, locked):
        return json.dumps([a, b, locked])

    return app


FUZZ: dict = {}


def fuzz_world() -> dict:
    if not FUZZ:
        app = fuzz_app()
        mine, theirs = browser(app), browser(app)
        outputs = [("a", "data"), ("b", "data"), ("locked", "data")]
        own = mine.call(outputs, [("btn", "n_clicks", 1)])
        other = theirs.call(outputs, [("btn", "n_clicks", 2)])
        FUZZ.update(app=app, client=mine, mine={k: v["data"] for k, v in own.items()},
                    theirs=[v["data"] for v in other.values()])
    return FUZZ


def mutations(token: str):
    return st.one_of(
        st.just(token),
        st.integers(0, len(token) - 1).flatmap(lambda i: st.characters().map(lambda c: token[:i] + c + token[i + 1:])),
        st.integers(0, len(token)).map(lambda i: token[:i]),
        st.text(max_size=10).map(lambda t: token + t),
    )


def hostile_value():
    world = fuzz_world()
    candidates = list(world["mine"].values()) + world["theirs"]
    return st.one_of(
        st.sampled_from(candidates).flatmap(mutations),
        st.from_regex(r"dsr[12]\.[a-z]{0,8}\.[A-Za-z0-9_\-é]{0,30}\.[a-z0-9]{0,9}\.[A-Za-z0-9_\-]{0,30}", fullmatch=True),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                     max_leaves=8),
    )


def assert_own(sid: str, value, sent, world: dict) -> None:
    """Never another user's value, never another store's; this store's own value only through its own
    reference (or, for the latest_only store, as the value it keeps when a browser write is refused)."""
    if isinstance(value, dict) and isinstance(value.get("who"), str) and value["who"].startswith("user"):
        assert value["who"] == f"user1-{sid}", (sid, sent, value)
        own = world["mine"][sid]
        patched = isinstance(sent, str) and (own in sent or own in sent[::-1])  # a clientside Patch of it
        assert sent == own or patched or sid == "locked", (sid, sent, value)


@pytest.fixture(autouse=True)
def _short_patch_wait(monkeypatch):
    """Values shaped like a clientside-patched reference wait for the component's upload; curl sends none."""
    from dash_state.glue import clientside

    monkeypatch.setattr(clientside, "UPLOAD_WAIT", 0.01)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_generated_callback_payloads(data):
    world = fuzz_world()
    values = {sid: data.draw(hostile_value(), label=sid) for sid in ("a", "b", "locked")}
    response = world["client"].raw_call([("out", "children")], [("btn", "n_clicks", 1)],
                                        [(sid, "data", value) for sid, value in values.items()])
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    if response.status_code == 422:  # what a clientside Patch makes of a reference, whose upload never comes
        assert any(clientside.looks_patched(v) for v in values.values()) and "clientside Patch upload" in text, text
        return
    assert response.status_code == 200, text
    got = json.loads(response.get_json()["response"]["out"]["children"])
    for sid, value in zip(("a", "b", "locked"), got):
        assert_own(sid, value, values[sid], world)


def test_a_dict_value_whose_key_is_a_non_ascii_digit_is_not_a_500():
    """test_generated_callback_payloads' draw, pinned: the value ``{'²': None}`` written in the browser
    (``'²'.isdigit()`` is true, ``int('²')`` raises: it was an HTTP 500 where dcc.Store answers 200).
    (Generated route bodies, including the dict id ``{'²': None}``: tests/attacks/test_generated_routes.py.)"""
    world = fuzz_world()
    response = world["client"].raw_call([("out", "children")], [("btn", "n_clicks", 1)],
                                        [("a", "data", {"²": None}), ("b", "data", None), ("locked", "data", None)])
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert json.loads(response.get_json()["response"]["out"]["children"])[0] == {"²": None}
