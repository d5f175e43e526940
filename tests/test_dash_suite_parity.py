"""The behaviours Dash's own integration tests check on dcc.Store, run with dcc.Store and with ServerStore
in headless Chromium and compared: the dcc store suite (components/dash-core-components/tests/integration/
store), Patch from Python (tests/integration/test_patch.py) and from clientside callbacks
(test_clientside_patch.py), the callback tests that use a store, and background callbacks with a store.

Dash's tests read the store through clientside callbacks and window.localStorage; a ServerStore holds a
reference there, so these tests read it the way a Python app does (callbacks) and compare what the browser
holds only where it is comparable (which storage keys exist). Where ServerStore differs, the test is an
xfail(strict) that names the difference.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import time

import numpy as np
import pytest
from dash_features import RENDERER_4_2, SIDE_UPDATE_PATCH
from apps import STORE_CLASSES, new_app
from dash import (
    DiskcacheManager,
    Input,
    Output,
    Patch,
    State,
    ctx,
    dcc,
    html,
    set_props,
)
from dash.exceptions import PreventUpdate

pytestmark = pytest.mark.browser
NAMES = list(STORE_CLASSES)
# A ServerStore that a clientside callback uses is mirrored in the browser by default, so it behaves as
# dcc.Store there. "ServerStore (mirror off)" runs the same clientside test with mirror = false: the
# browser holds references, clientside writes are uploaded and clientside Patches replayed on the server.
MIRROR_OFF = "ServerStore (mirror off)"
CS_NAMES = NAMES + [MIRROR_OFF]


def store_class(name):
    return STORE_CLASSES.get(name, STORE_CLASSES["ServerStore"])


def cs_app(name, store_ids):
    """An app for a clientside test: with mirror = false for ``store_ids`` under MIRROR_OFF."""
    return new_app(STATE_STORES={sid: {"mirror": False} for sid in store_ids}) if name == MIRROR_OFF else new_app()


# -- helpers ----------------------------------------------------------------------------------------
def canon(value):
    """A reader's JSON text. Integral floats are written as ints: the browser turns 2.0 into 2 for a
    dcc.Store, a ServerStore keeps 2.0 (test_numbers_as_the_browser_parses_them checks that on its own)."""
    def norm(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v
    return json.dumps(norm(value), sort_keys=True)


def readers(app, store_ids):
    """For each store, a Python callback showing its ``data`` in ``#<id>-seen`` and recording its calls."""
    app.reads = {sid: [] for sid in store_ids}
    for sid in store_ids:
        def read(data, _sid=sid):
            app.reads[_sid].append(data)
            return canon(data)
        app.callback(Output(f"{sid}-seen", "children"), Input(sid, "data"))(read)
    return [html.Div(id=f"{sid}-seen") for sid in store_ids]


def readers_raw(app, store_ids):
    """Readers that show the data exactly as the callback received it (json.dumps and the type)."""
    for sid in store_ids:
        def read(data, _sid=sid):
            return f"{json.dumps(data, sort_keys=True)} {type(data).__name__}"
        app.callback(Output(f"{sid}-seen", "children"), Input(sid, "data"))(read)
    return [html.Div(id=f"{sid}-seen") for sid in store_ids]


def held(dash_duo, store_id):
    """What the renderer holds as a store's ``data``."""
    return dash_duo.driver.execute_script(
        "const s = window.dash_stores[0].getState(); const p = s.paths.strs[arguments[0]];"
        "let n = s.layout; for (const k of p) { n = n[k]; } return n.props.data;", store_id)


def assert_references_only(dash_duo, name, store_ids, timeout=3):
    """With ServerStore the browser holds references only (a value written in the browser is swapped
    for its reference a moment after the upload, hence the wait); a mirrored one holds the data."""
    if name not in ("ServerStore", MIRROR_OFF):
        return
    for sid in store_ids:
        deadline = time.monotonic() + timeout
        while not ((value := held(dash_duo, sid)) is None or (isinstance(value, str) and value.startswith("dsr2."))):
            assert time.monotonic() < deadline, (sid, value)
            time.sleep(0.1)


def assert_held_as(dash_duo, name, store_ids):
    """A clientside test's stores: mirrored (data, as dcc.Store) by default, references with mirror off."""
    if name == MIRROR_OFF:
        assert_references_only(dash_duo, name, store_ids)
    elif name == "ServerStore":
        for sid in store_ids:
            value = held(dash_duo, sid)
            assert not (isinstance(value, str) and value.startswith("dsr2.")), (sid, value)


def severe(dash_duo):
    return [entry["message"] for entry in dash_duo.get_logs() if entry.get("level") == "SEVERE"]


def storage_keys(dash_duo):
    """Which keys each web storage has (values differ by design: a ServerStore keeps a reference)."""
    return dash_duo.driver.execute_script(
        "return {local: Object.keys(localStorage).sort(), session: Object.keys(sessionStorage).sort()};")


def click(dash_duo, button):
    dash_duo.find_element(f"#{button}").click()


def settle(dash_duo, expected, timeout=3):
    """Wait until each ``#<id>`` shows its expected text, or the timeout; returns the texts seen last
    (compared whole, so that every difference shows in one assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {key: dash_duo.find_element(f"#{key}").text for key in expected}
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def wait_for_errors(dash_duo, timeout=3):
    """The SEVERE console entries logged from now on (waiting for at least one, up to the timeout)."""
    deadline = time.monotonic() + timeout
    errors = []
    while not errors and time.monotonic() < deadline:
        errors = severe(dash_duo)
        time.sleep(0.1)
    return errors


# -- Patch from Python callbacks (test_patch.py pch001, pch006, pch007; ddro004) ----------------------
INITIAL = {"value": "unset", "n_clicks": 0, "array": ["initial"], "delete": "Delete me",
           "nested": {"n": 10, "list": [1, 2, 3], "deep": {"x": [{"y": 1}]}}}


def _set(p):
    p.value = "Set Value"
    p.n_clicks += 1


def _append(p):
    p.array.append("Append")
    p.n_clicks += 1


def _prepend(p):
    p.array.prepend("Prepend")
    p.n_clicks += 1


def _extend(p):
    p.array.extend(["Extend"])
    p.n_clicks += 1


def _merge(p):
    p.update({"merged": "Merged"})
    p.n_clicks += 1


def _delete(p):
    del p.delete


def _delete_index(p):
    del p.array[1]
    del p.array[-2]


def _arithmetic(p):
    p.nested.n -= 3
    p.nested.n *= 4
    p.nested.n /= 2


def _nested(p):
    p.nested.list[-1] = "last"
    p.nested.list[0] = "zero"
    p.nested.deep.x[0].y += 1
    p["nested"]["deep"]["new"] = {"a": [1]}
    p.nested.deep.update({"m": True})
    p.nested.list.append(4)


def _nested_delete(p):
    del p.nested.deep.x[0].y
    del p.nested.list[-1]


def _num(op):
    def apply(p):
        if op == "add":
            p += 1
        elif op == "sub":
            p -= 1
        elif op == "mul":
            p *= 2
        else:
            p /= 2
        return p
    return apply


def _or(p):
    p |= {"merged": "merged"}
    return p


# (button, store, patch builder, expected): for the "dict" store, the keys that change (None: deleted),
# for the others the new value. The builders of "dict" mutate the Patch in place, those of top-level
# values return it (augmented assignment rebinds).
PY_STEPS = [
    ("set", "dict", _set, {"value": "Set Value", "n_clicks": 1}),
    ("append", "dict", _append, {"array": ["initial", "Append"], "n_clicks": 2}),
    ("prepend", "dict", _prepend, {"array": ["Prepend", "initial", "Append"], "n_clicks": 3}),
    ("extend", "dict", _extend, {"array": ["Prepend", "initial", "Append", "Extend"], "n_clicks": 4}),
    ("merge", "dict", _merge, {"merged": "Merged", "n_clicks": 5}),
    ("delete", "dict", _delete, {"delete": None}),
    ("insert", "dict", lambda p: p.array.insert(1, "Inserted"),
     {"array": ["Prepend", "Inserted", "initial", "Append", "Extend"]}),
    ("insert-neg", "dict", lambda p: p.array.insert(-1, "Inserted with negative index"),
     {"array": ["Prepend", "Inserted", "initial", "Append", "Inserted with negative index", "Extend"]}),
    ("delete-index", "dict", _delete_index, {"array": ["Prepend", "initial", "Append", "Extend"]}),
    ("reverse", "dict", lambda p: p.array.reverse(), {"array": ["Extend", "Append", "initial", "Prepend"]}),
    ("remove", "dict", lambda p: p.array.remove("initial"), {"array": ["Extend", "Append", "Prepend"]}),
    ("clear", "dict", lambda p: p.array.clear(), {"array": []}),
    ("arith", "dict", _arithmetic, {"nested": {"n": 14, "list": [1, 2, 3], "deep": {"x": [{"y": 1}]}}}),
    ("nested", "dict", _nested, {"nested": {"n": 14, "list": ["zero", 2, "last", 4],
                                            "deep": {"x": [{"y": 2}], "new": {"a": [1]}, "m": True}}}),
    ("nested-delete", "dict", _nested_delete, {"nested": {"n": 14, "list": ["zero", 2, "last"],
                                                          "deep": {"x": [{}], "new": {"a": [1]}, "m": True}}}),
    ("add", "num", _num("add"), 3),
    ("sub", "num", _num("sub"), 2),
    ("mul", "num", _num("mul"), 4),
    ("div", "num", _num("div"), 2),
    ("or", "obj", _or, {"initial": "initial", "merged": "merged"}),
]


@pytest.mark.parametrize("name", NAMES)
@SIDE_UPDATE_PATCH
def test_python_patch_operations(dash_duo, name):
    """Every Patch operation from a Python callback, as a callback output and through set_props (each
    click patches 'dict' by Output and 'dict-side' by set_props with the same operations), on dicts,
    lists, nested locations, negative indices and top-level numbers; and a Patch in the initial call."""
    Store = STORE_CLASSES[name]
    app = new_app()
    stores = {"dict": INITIAL, "num": 2, "obj": {"initial": "initial"}, "count": {"count": 0}}
    ids = ["dict", "dict-side", "num", "num-side", "obj", "obj-side", "count"]
    app.layout = html.Div(
        [html.Button(step[0], id=step[0]) for step in PY_STEPS] + [html.Button("count", id="count-btn")]
        + [Store(id=sid, data=stores[sid.replace("-side", "")]) for sid in ids] + readers(app, ids))

    for button, store, build, _ in PY_STEPS:
        def patch(_n, _build=build, _store=store):
            p, q = Patch(), Patch()
            built_p, built_q = _build(p), _build(q)  # top-level operators return the Patch
            p, q = built_p or p, built_q or q
            set_props(f"{_store}-side", {"data": q})
            return p
        app.callback(Output(store, "data", allow_duplicate=True), Input(button, "n_clicks"),
                     prevent_initial_call=True)(patch)

    @app.callback(Output("count", "data"), Input("count-btn", "n_clicks"))
    def count(_):  # no prevent_initial_call: a Patch in the initial call (ddro004)
        p = Patch()
        p.count += 1
        return p

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#dict-seen", canon(INITIAL))
    dash_duo.wait_for_text_to_equal("#count-seen", canon({"count": 1}))
    expected = {"dict": json.loads(json.dumps(INITIAL)), "num": 2, "obj": {"initial": "initial"}}
    for button, store, _, change in PY_STEPS:
        if isinstance(change, dict) and store == "dict":
            expected["dict"].update(change)
            expected["dict"] = {k: v for k, v in expected["dict"].items() if v is not None}
        else:
            expected[store] = change
        click(dash_duo, button)
        dash_duo.wait_for_text_to_equal(f"#{store}-seen", canon(expected[store]))
        dash_duo.wait_for_text_to_equal(f"#{store}-side-seen", canon(expected[store]))
    click(dash_duo, "count-btn")
    dash_duo.wait_for_text_to_equal("#count-seen", canon({"count": 2}))
    assert_references_only(dash_duo, name, ids)
    assert severe(dash_duo) == []


@pytest.mark.parametrize("name", [
    "dcc.Store",
    pytest.param("ServerStore", marks=pytest.mark.xfail(strict=True, reason=(
        "number types: a dcc.Store's value goes through the browser's JSON, so 2.0 and a Patch's 4 / 2 "
        "come back as int 2, -0.0 as 0 and 2**53 + 1 as 9007199254740992; a ServerStore returns what "
        "Python computed (2.0, -0.0, 9007199254740993)"))),
])
def test_numbers_as_the_browser_parses_them(dash_duo, name):
    Store = STORE_CLASSES[name]
    app = new_app()
    app.layout = html.Div([html.Button("write", id="write"), html.Button("div", id="div"),
                           Store(id="values"), Store(id="num", data=4), *readers_raw(app, ["values", "num"])])

    @app.callback(Output("values", "data"), Input("write", "n_clicks"), prevent_initial_call=True)
    def write(_):
        return {"two": 2.0, "negzero": -0.0, "big": 2 ** 53 + 1, "tiny": 1e-12, "huge": 1e21}

    @app.callback(Output("num", "data"), Input("div", "n_clicks"), prevent_initial_call=True)
    def divide(_):
        p = Patch()
        p /= 2
        return p

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#num-seen", "4 int")
    click(dash_duo, "write")
    click(dash_duo, "div")
    expected = {"num-seen": "2 int", "values-seen":
                '{"big": 9007199254740992, "huge": 1e+21, "negzero": 0, "tiny": 1e-12, "two": 2} dict'}
    assert settle(dash_duo, expected) == expected


@pytest.mark.parametrize("name", list(STORE_CLASSES))
def test_patch_on_a_store_without_data(dash_duo, name):
    """dcc.Store's renderer refuses it ('Cannot patch undefined', a console error); ServerStore's server
    refuses it the same way (the callback fails with HTTP 422 saying so). The store stays None."""
    Store = STORE_CLASSES[name]
    app = new_app()
    app.layout = html.Div([html.Button("patch", id="patch"), Store(id="empty"), *readers(app, ["empty"])])

    @app.callback(Output("empty", "data"), Input("patch", "n_clicks"), prevent_initial_call=True)
    def patch(_):
        p = Patch()
        p["x"] = 1
        return p

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#empty-seen", "null")
    click(dash_duo, "patch")
    errors = wait_for_errors(dash_duo)
    assert dash_duo.find_element("#empty-seen").text == "null"
    if name == "dcc.Store":
        assert any("Cannot patch undefined" in message for message in errors), errors
    else:
        assert any("422" in message for message in errors), errors


# -- clientside Patch (test_clientside_patch.py pch_cs001, pch_cs002) ---------------------------------
# Operations the renderer can apply to a ServerStore's reference (they write at a location without
# reading the previous value there, or read only an absent key); ServerStore applies them on the server.
CS_STEPS = [
    ("set", "assign(['value'], 'Set Value').add(['n_clicks'], 1)", {"value": "Set Value", "n_clicks": 1}),
    ("append", "append(['array'], 'Append').add(['n_clicks'], 1)", {"array": ["initial", "Append"], "n_clicks": 2}),
    ("prepend", "prepend(['array'], 'Prepend').add(['n_clicks'], 1)",
     {"array": ["Prepend", "initial", "Append"], "n_clicks": 3}),
    ("merge", "merge([], {merged: 'Merged'}).add(['n_clicks'], 1)", {"merged": "Merged", "n_clicks": 4}),
    ("delete", "delete(['delete'])", {"delete": None}),
    ("nested", ("merge(['nested'], {m: 1}).sub(['nested', 'n'], 3).mul(['nested', 'n'], 4).div(['nested', 'n'], 2)"
                ".assign(['nested', 'deep', 'new'], {a: [1]}).assign(['nested', 'list', 0], 'zero')"
                ".append(['nested', 'list'], 4).clear(['array'])"),
     {"nested": {"n": 14, "list": ["zero", 2, 3, 4], "deep": {"x": [{"y": 1}], "new": {"a": [1]}}, "m": 1},
      "array": []}),
]
CS_STORES = ["cs-memory", "cs-session", "cs-local", "cs-side"]


@pytest.mark.parametrize("name", CS_NAMES)
@SIDE_UPDATE_PATCH
def test_clientside_patch_operations_and_reload(dash_duo, name):
    """dash_clientside.Patch returned by a clientside callback (to a memory, a session and a local store)
    and passed to dash_clientside.set_props (a memory store), one store per click; then a reload: memory
    stores start again from the layout data, session and local stores keep the patched value and can be
    patched again. (Several stores patched by one click: test_clientside_patches_for_two_stores_in_one_callback.)"""
    Store = store_class(name)
    app = cs_app(name, CS_STORES)
    storage = {"cs-memory": "memory", "cs-session": "session", "cs-local": "local", "cs-side": "memory"}
    app.layout = html.Div([html.Button(f"{step[0]} {sid}", id=f"{step[0]}-{sid}") for step in CS_STEPS
                           for sid in CS_STORES]
                          + [Store(id=sid, data=INITIAL, storage_type=storage[sid]) for sid in CS_STORES]
                          + readers(app, CS_STORES))
    for button, ops, _ in CS_STEPS:
        for sid in CS_STORES[:-1]:
            app.clientside_callback(f"function(n) {{ return new dash_clientside.Patch().{ops}.build(); }}",
                                    Output(sid, "data", allow_duplicate=True), Input(f"{button}-{sid}", "n_clicks"),
                                    prevent_initial_call=True)
        app.clientside_callback(
            "function(n) { dash_clientside.set_props('cs-side', {data: new dash_clientside.Patch()."
            + ops + ".build()}); }", Input(f"{button}-cs-side", "n_clicks"), prevent_initial_call=True)

    dash_duo.start_server(app)
    expected = json.loads(json.dumps(INITIAL))
    for sid in CS_STORES:
        dash_duo.wait_for_text_to_equal(f"#{sid}-seen", canon(expected))
    for button, _, change in CS_STEPS:
        expected.update(change)
        expected = {k: v for k, v in expected.items() if v is not None}
        for sid in CS_STORES:
            click(dash_duo, f"{button}-{sid}")
            dash_duo.wait_for_text_to_equal(f"#{sid}-seen", canon(expected))
    assert_held_as(dash_duo, name, CS_STORES)

    dash_duo.driver.refresh()
    for sid in CS_STORES:
        dash_duo.wait_for_text_to_equal(f"#{sid}-seen", canon(expected if storage[sid] != "memory" else INITIAL))
    after = {**expected, "n_clicks": expected["n_clicks"] + 1}
    for sid in CS_STORES:
        click(dash_duo, f"set-{sid}")
        kept = storage[sid] != "memory"
        dash_duo.wait_for_text_to_equal(f"#{sid}-seen", canon(after if kept else {**INITIAL, **CS_STEPS[0][2]}))
    assert_held_as(dash_duo, name, CS_STORES)
    assert severe(dash_duo) == []


# Operations that read the previous value at a location inside the store's value. The renderer applies
# a clientside Patch to what the store holds: for a ServerStore that is the reference string, where
# there is nothing to read, so these throw in the renderer.
READING_STEPS = [
    ("extend", "extend(['array'], ['E'])", ["initial", "E"]),
    ("insert", "insert(['array'], 1, 'I')", ["initial", "I", "E"]),
    ("insert-neg", "insert(['array'], -1, 'N')", ["initial", "I", "N", "E"]),
    ("delete-neg", "delete(['array', -2])", ["initial", "I", "E"]),
    ("reverse", "reverse(['array'])", ["E", "I", "initial"]),
    ("remove", "remove(['array'], 'initial')", ["E", "I"]),
    ("assign-neg", "assign(['array', -1], 'last')", ["E", "last"]),
]


@pytest.mark.parametrize("name", [
    "dcc.Store", "ServerStore",
    pytest.param(MIRROR_OFF, marks=pytest.mark.xfail(strict=True, reason=(
        "with mirror = false, clientside Patch operations that read the previous value inside the store "
        "(extend, insert, reverse, remove, negative indices at ['array']) throw in the renderer, which holds "
        "a reference string: the store keeps its value and the operation is lost"))),
])
@SIDE_UPDATE_PATCH
def test_clientside_patch_operations_that_read_the_previous_value(dash_duo, name):
    Store = store_class(name)
    app = cs_app(name, ["st"])
    app.layout = html.Div([html.Button(step[0], id=step[0]) for step in READING_STEPS]
                          + [Store(id="st", data={"array": ["initial"]})] + readers(app, ["st"]))
    for button, ops, _ in READING_STEPS:
        app.clientside_callback(f"function(n) {{ return new dash_clientside.Patch().{ops}.build(); }}",
                                Output("st", "data", allow_duplicate=True), Input(button, "n_clicks"),
                                prevent_initial_call=True)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#st-seen", canon({"array": ["initial"]}))
    for button, _, array in READING_STEPS:
        click(dash_duo, button)
        dash_duo.wait_for_text_to_equal("#st-seen", canon({"array": array}), timeout=1.5)
    assert severe(dash_duo) == []


def test_clientside_patch_that_cannot_apply_to_a_reference_keeps_the_value(dash_duo):
    """ServerStore with mirror = false only (the documented limit of the test above): each such operation, on its own store,
    leaves the store's value as it was (not None, not the patched reference), fires no reader, and shows
    the renderer's error in the console. With mirror = false: mirrored, these operations just work."""
    ids = [f"st-{step[0]}" for step in READING_STEPS]
    app = cs_app(MIRROR_OFF, ids)
    initial = {"array": ["initial", "second"], "n": 1}
    app.layout = html.Div([html.Button(step[0], id=step[0]) for step in READING_STEPS]
                          + [STORE_CLASSES["ServerStore"](id=sid, data=initial) for sid in ids] + readers(app, ids))
    for button, ops, _ in READING_STEPS:
        app.clientside_callback(f"function(n) {{ return new dash_clientside.Patch().{ops}.build(); }}",
                                Output(f"st-{button}", "data"), Input(button, "n_clicks"), prevent_initial_call=True)
    dash_duo.start_server(app)
    for sid in ids:
        dash_duo.wait_for_text_to_equal(f"#{sid}-seen", canon(initial))
    before = held(dash_duo, ids[0])
    for button, _, _ in READING_STEPS:
        click(dash_duo, button)
        errors = wait_for_errors(dash_duo)
        assert errors and all("TypeError" in e for e in errors), (button, errors)
    time.sleep(0.5)  # room for a (wrong) reader call or upload
    for sid in ids:
        assert dash_duo.find_element(f"#{sid}-seen").text == canon(initial)
        assert app.reads[sid] == [initial], sid  # the initial call only
        assert isinstance(held(dash_duo, sid), str) and held(dash_duo, sid).startswith("dsr2.")
    assert held(dash_duo, ids[0]) == before


@pytest.mark.parametrize("name", CS_NAMES)
@SIDE_UPDATE_PATCH
def test_a_clientside_patch_after_one_that_failed(dash_duo, name):
    Store = store_class(name)
    app = cs_app(name, ["st"])
    app.layout = html.Div([html.Button("insert", id="insert"), html.Button("clear", id="clear"),
                           Store(id="st", data={"array": [1, 2]}), *readers(app, ["st"])])
    app.clientside_callback("function(n) { return new dash_clientside.Patch().insert(['array'], 1, 'I').build(); }",
                            Output("st", "data"), Input("insert", "n_clicks"), prevent_initial_call=True)
    app.clientside_callback("function(n) { return new dash_clientside.Patch().clear(['array']).build(); }",
                            Output("st", "data", allow_duplicate=True), Input("clear", "n_clicks"),
                            prevent_initial_call=True)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#st-seen", canon({"array": [1, 2]}))
    click(dash_duo, "insert")
    time.sleep(0.5)
    click(dash_duo, "clear")
    assert settle(dash_duo, {"st-seen": canon({"array": []})}) == {"st-seen": canon({"array": []})}


@pytest.mark.parametrize("name", CS_NAMES)
@SIDE_UPDATE_PATCH
def test_clientside_patches_for_two_stores_in_one_callback(dash_duo, name):
    Store = store_class(name)
    app = cs_app(name, list("abcd"))
    app.layout = html.Div([html.Button("two", id="two"), html.Button("delete", id="delete"),
                           *(Store(id=sid, data={"v": 0, "k": 1}) for sid in "abcd"), *readers(app, list("abcd"))])
    app.clientside_callback(
        "function(n) { const b = new dash_clientside.Patch().assign(['v'], 'B').build();"
        " const a = new dash_clientside.Patch().assign(['v'], 'A').build(); return [a, b]; }",
        Output("a", "data"), Output("b", "data"), Input("two", "n_clicks"), prevent_initial_call=True)
    app.clientside_callback(
        "function(n) { const make = () => new dash_clientside.Patch().delete(['k']).build();"
        " return [make(), make()]; }",
        Output("c", "data"), Output("d", "data"), Input("delete", "n_clicks"), prevent_initial_call=True)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#d-seen", canon({"k": 1, "v": 0}))
    click(dash_duo, "two")
    click(dash_duo, "delete")
    expected = {"a-seen": canon({"k": 1, "v": "A"}), "b-seen": canon({"k": 1, "v": "B"}),
                "c-seen": canon({"v": 0}), "d-seen": canon({"v": 0})}
    assert settle(dash_duo, expected) == expected
    assert severe(dash_duo) == []


TOP_STEPS = [  # (button, store, operations at the top level, expected)
    ("t-add", "num", "add([], 1)", 3),
    ("t-sub", "num", "sub([], 1)", 2),
    ("t-mul", "num", "mul([], 2)", 4),
    ("t-div", "num", "div([], 2)", 2),
    ("l-append", "lst", "append([], 9)", [1, 2, 3, 9]),
    ("l-prepend", "lst", "prepend([], 0)", [0, 1, 2, 3, 9]),
    ("l-insert", "lst", "insert([], 1, 5)", [0, 5, 1, 2, 3, 9]),
    ("l-assign", "lst", "assign([0], 'x')", ["x", 5, 1, 2, 3, 9]),
    ("l-delete", "lst", "delete([0])", [5, 1, 2, 3, 9]),
    ("l-delete-neg", "lst", "delete([-1])", [5, 1, 2, 3]),
    ("l-reverse", "lst", "reverse([])", [3, 2, 1, 5]),
    ("l-remove", "lst", "remove([], 2)", [3, 1, 5]),
    ("l-extend", "lst", "extend([], [7])", [3, 1, 5, 7]),
    ("l-clear", "lst", "clear([])", []),
]


@pytest.mark.parametrize("name", [
    "dcc.Store", "ServerStore",
    pytest.param(MIRROR_OFF, marks=pytest.mark.xfail(strict=True, reason=(
        "with mirror = false, clientside Patch operations at the top level of a list store that read the "
        "list itself (remove([], x), extend([], [...])) fail in the renderer, which applies them to the "
        "reference string: the callback errors in the console and the store keeps its value; add/sub/mul/div, "
        "append, prepend, insert, assign, delete and reverse at the top level are replayed on the server"))),
])
@SIDE_UPDATE_PATCH
def test_clientside_patch_on_top_level_values(dash_duo, name):
    Store = store_class(name)
    app = cs_app(name, ["num", "lst"])
    app.layout = html.Div([html.Button(step[0], id=step[0]) for step in TOP_STEPS]
                          + [Store(id="num", data=2), Store(id="lst", data=[1, 2, 3])] + readers(app, ["num", "lst"]))
    for button, store, ops, _ in TOP_STEPS:
        app.clientside_callback(f"function(n) {{ return new dash_clientside.Patch().{ops}.build(); }}",
                                Output(store, "data", allow_duplicate=True), Input(button, "n_clicks"),
                                prevent_initial_call=True)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#lst-seen", "[1, 2, 3]")
    for button, store, _, value in TOP_STEPS:
        click(dash_duo, button)
        dash_duo.wait_for_text_to_equal(f"#{store}-seen", canon(value), timeout=1.5)
    assert severe(dash_duo) == []


@pytest.mark.parametrize("name", [
    "dcc.Store", "ServerStore",
    pytest.param(MIRROR_OFF, marks=pytest.mark.xfail(strict=True, reason=(
        "with mirror = false, a clientside callback with the store as Input receives the reference string "
        "('dsr2....'), by choice (window.dash_state.get(reference, id) with client_read = true gives the "
        "data). Dash's Patch tests (pch001, pch006, pch007, pch_cs001, pch_cs002) and ddro004 read the "
        "store this way: they pass with the default (mirrored)"))),
])
def test_clientside_reader_sees_the_data(dash_duo, name):
    Store = store_class(name)
    app = cs_app(name, ["st", "obj"])
    app.layout = html.Div([html.Button("add", id="add"), Store(id="st", data=2),
                           Store(id="obj", data={"initial": "initial"}), html.Div(id="out"), html.Div(id="obj-out")])

    @app.callback(Output("st", "data"), Input("add", "n_clicks"), prevent_initial_call=True)
    def add(_):
        p = Patch()
        p += 1
        return p

    app.clientside_callback("data => data", Output("out", "children"), Input("st", "data"))
    app.clientside_callback("data => JSON.stringify(data)", Output("obj-out", "children"), Input("obj", "data"))
    dash_duo.start_server(app)
    click(dash_duo, "add")
    expected = {"obj-out": '{"initial":"initial"}', "out": "3"}
    assert settle(dash_duo, expected) == expected


# -- data types, nested data, large data, falsy initial data (test_store_data.py, stcp003) ------------
TYPES = [("str", "hello"), ("number", 1), ("dict", {"data": [2, 3, None]}), ("list", [5, -6, 700000, 1e-12]),
         ("null", None), ("bool", True), ("bool", False), ("empty-dict", {})]
DATA_VALUES = [value for pair in itertools.combinations(TYPES, 2) for _, value in pair] + [
    [1, 2, {"data": [55, 66, 77], "dummy": "dum"}], [1, 2, {"data": [111, 99, 88]}], {"a": 1, "c": 1},
    {"a": 1, "b": None}, {"nested": {"nest": "much"}}, {"my_list": [1, 2, 3]}, [], "", 0, -1.5,
    {"unicode": "héllo ✓ 😀 日本", "ключ": ["ß", "\u0000", "\n\t\"'\\"]}, [[[[[[["deep"]]]]]]],
    {"mixed": [None, True, False, 0, "", {}, [], 3.25, "x" * 1000]},
]
FALSY = {"zero": 0, "false": False, "null": None, "empty": ""}
STORAGE = ["memory", "session", "local"]


@pytest.mark.parametrize("name", NAMES)
def test_data_of_every_json_type(dash_duo, name):
    """stda001/stda002: every JSON type and nested data, read through modified_timestamp + State as Dash's
    test does; stda003: a 5 MB string in a memory, a session and a local store; stcp003: falsy initial data
    (0, False, None, '') per storage type, before and after a reload."""
    Store = STORE_CLASSES[name]
    app = new_app()
    # about 5 MB, as Dash's csv_5mb (which stays a little under the 5 MiB web storage quota)
    big = "".join(f"{i:08d},name{i % 977}@example.org\n" for i in range(200_000))[: 5 * 1024 * 1024 - 400_000]
    falsy_ids = [f"{kind}-{storage}" for storage in STORAGE for kind in FALSY]
    app.layout = html.Div(
        [html.Button("click", id="click"), html.Button("big", id="big"), Store(id="store"), html.Div(id="output")]
        + [Store(id=f"big-{storage}", storage_type=storage) for storage in STORAGE]
        + [Store(id=f"{kind}-{storage}", storage_type=storage, data=value)
           for storage in STORAGE for kind, value in FALSY.items()]
        + [html.Div(id="big-out"), html.Div(id="falsy-out")])

    @app.callback(Output("output", "children"), Input("store", "modified_timestamp"), State("store", "data"))
    def on_data(ts, data):
        if ts is None:
            raise PreventUpdate
        return json.dumps(data)

    @app.callback(Output("store", "data"), Input("click", "n_clicks"))
    def on_click(n):
        if n is None:
            raise PreventUpdate
        return DATA_VALUES[n - 1]

    @app.callback([Output(f"big-{s}", "data") for s in STORAGE], Input("big", "n_clicks"), prevent_initial_call=True)
    def write_big(_):
        return [big] * 3

    @app.callback(Output("big-out", "children"), [Input(f"big-{s}", "data") for s in STORAGE])
    def fingerprint(*values):
        return " ".join("nil" if v is None else hashlib.sha1(v.encode()).hexdigest()[:12] for v in values)

    @app.callback(Output("falsy-out", "children"), [Input(sid, "data") for sid in falsy_ids])
    def falsy(*values):
        return json.dumps(dict(zip(falsy_ids, values)), sort_keys=True)

    falsy_expected = json.dumps({f"{kind}-{s}": v for s in STORAGE for kind, v in FALSY.items()}, sort_keys=True)
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#falsy-out", falsy_expected)
    dash_duo.wait_for_text_to_equal("#big-out", "nil nil nil")
    button = dash_duo.find_element("#click")
    for value in DATA_VALUES:
        button.click()
        dash_duo.wait_for_text_to_equal("#output", json.dumps(value))
    click(dash_duo, "big")
    dash_duo.wait_for_text_to_equal("#big-out", " ".join([hashlib.sha1(big.encode()).hexdigest()[:12]] * 3),
                                    timeout=20)
    dash_duo.driver.refresh()
    dash_duo.wait_for_text_to_equal("#falsy-out", falsy_expected)
    fingerprint_kept = hashlib.sha1(big.encode()).hexdigest()[:12]
    dash_duo.wait_for_text_to_equal("#big-out", f"nil {fingerprint_kept} {fingerprint_kept}", timeout=20)
    assert_references_only(dash_duo, name, ["store", "big-memory", "big-session", "big-local"])
    assert severe(dash_duo) == []


# -- lifecycle: modified_timestamp, reload, clear_data, tabs (stcp001, stcp002, stdl001) --------------
UUID = "store-test-uuid-1234"
LIFE = {"memory": ("memory", UUID), "local": ("local", None), "session": ("session", None),
        "local-init": ("local", {"layout": "local"}), "session-init": ("session", {"layout": "session"})}


@pytest.mark.parametrize("name", NAMES)
def test_lifecycle_timestamps_reload_clear_and_tabs(dash_duo, name):
    """Dash's store_app: one callback writes all stores, one clears all; readers take modified_timestamp as
    Input and data as State. Firing counts, timestamps, reload, a second tab (local shared and synced,
    session per tab, memory per page), clear_data, and layout data coming back after a clear."""
    Store = STORE_CLASSES[name]
    app = new_app()
    app.fired = {sid: [] for sid in LIFE}
    app.layout = html.Div([Store(id=sid, storage_type=kind, data=data) for sid, (kind, data) in LIFE.items()]
                          + [html.Button("click me", id="btn"), html.Button("clear data", id="clear-btn")]
                          + [html.Div(id=f"{sid}-out") for sid in LIFE])
    for sid in LIFE:
        def show(ts, data, _sid=sid):
            app.fired[_sid].append((ts, data))
            return json.dumps(data)
        app.callback(Output(f"{sid}-out", "children"), Input(sid, "modified_timestamp"), State(sid, "data"))(show)

    @app.callback([Output(sid, "clear_data") for sid in LIFE], Input("clear-btn", "n_clicks"))
    def on_clear(n):
        if n is None:
            raise PreventUpdate
        return [True] * len(LIFE)

    @app.callback([Output(sid, "data") for sid in LIFE], Input("btn", "n_clicks"))
    def on_click(n):
        if n is None:
            raise PreventUpdate
        return [{"n_clicks": n}] * len(LIFE)

    def shows(**values):
        for sid, value in values.items():
            dash_duo.wait_for_text_to_equal(f"#{sid.replace('_', '-')}-out", json.dumps(value))

    def counts():
        time.sleep(0.3)  # room for a (wrong) extra firing
        return {sid: len(calls) for sid, calls in app.fired.items()}

    dash_duo.start_server(app)
    shows(memory=UUID, local=None, session=None, local_init={"layout": "local"}, session_init={"layout": "session"})
    assert counts() == {"memory": 1, "local": 1, "session": 1, "local-init": 1, "session-init": 1}
    assert [ts for ts, _ in app.fired["local"]] == [None]  # nothing stored: never modified

    for n in (1, 2, 3):
        before = time.time() * 1000
        click(dash_duo, "btn")
        shows(**{key: {"n_clicks": n} for key in ("memory", "local", "session", "local_init", "session_init")})
        after = time.time() * 1000
        ts, _ = app.fired["session"][-1]
        assert before - 40 <= ts <= after + 40  # stcp002: set right after the click, in ms
    assert counts() == {sid: 4 for sid in LIFE}  # one firing per write
    keys = storage_keys(dash_duo)
    assert keys == {"local": ["local", "local-init", "local-init-timestamp", "local-timestamp"],
                    "session": ["session", "session-init", "session-init-timestamp", "session-timestamp"]}

    dash_duo.driver.refresh()  # the stored value wins over the layout's data; memory starts again
    shows(memory=UUID, **{key: {"n_clicks": 3} for key in ("local", "session", "local_init", "session_init")})

    first = dash_duo.driver.current_window_handle
    dash_duo.driver.execute_script("window.open(arguments[0], '_blank');", dash_duo.server_url)
    dash_duo.driver.switch_to.window(next(h for h in dash_duo.driver.window_handles if h != first))
    shows(memory=UUID, local={"n_clicks": 3}, local_init={"n_clicks": 3})
    new_tab_session = dash_duo.find_element("#session-out").text  # what the new tab got (Chromium copies it)
    dash_duo.multiple_click("#btn", 2)
    shows(**{key: {"n_clicks": 2} for key in ("memory", "local", "session", "local_init", "session_init")})
    dash_duo.driver.close()
    dash_duo.driver.switch_to.window(first)
    shows(memory=UUID, local={"n_clicks": 2}, local_init={"n_clicks": 2},  # synced through the storage event
          session={"n_clicks": 3}, session_init={"n_clicks": 3})  # per tab

    click(dash_duo, "clear-btn")
    shows(memory=None, local=None, session=None, local_init=None, session_init=None)
    assert storage_keys(dash_duo) == {"local": [], "session": []}
    dash_duo.driver.refresh()  # after a clear, a store with layout data gets its layout data again
    shows(memory=UUID, local=None, session=None, local_init={"layout": "local"}, session_init={"layout": "session"})
    assert severe(dash_duo) == []
    assert new_tab_session == json.dumps({"n_clicks": 3})


# -- remounting and storage_type switches (stcp004) ---------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@RENDERER_4_2
def test_remount_and_storage_type_switches(dash_duo, name):
    """stcp004: stores rendered by a callback, cleared, written, then rendered again. Then the same id
    rendered again with another storage_type (a new component: it reads and writes the new storage), and
    storage_type changed by a callback (the component keeps the storage it was created with)."""
    Store = STORE_CLASSES[name]
    app = new_app()
    app.config.suppress_callback_exceptions = True

    def content(local_type="local"):
        return html.Div([Store(id="memory", storage_type="memory"), Store(id="local", storage_type=local_type),
                         Store(id="session", storage_type="session"), html.Button("click me", id="btn"),
                         html.Button("clear data", id="clear-btn"), html.Div(id="output")])

    app.layout = html.Div([html.Button("start", id="start"), html.Button("switch", id="switch"),
                           html.Button("prop", id="prop"), html.Div(id="content")])

    @app.callback(Output("content", "children"), Input("start", "n_clicks"), Input("switch", "n_clicks"))
    def start(n, switched):
        if ctx.triggered_id == "switch":
            return content("session")
        return content() if n else "init"

    @app.callback(Output("output", "children"),
                  [Input(s, "modified_timestamp") for s in ("memory", "local", "session")],
                  [State(s, "data") for s in ("memory", "local", "session")])
    def write_memory(tsm, tsl, tss, datam, datal, datas):
        return json.dumps([datam, datal, datas])

    @app.callback([Output(s, "clear_data") for s in ("local", "memory", "session")], Input("clear-btn", "n_clicks"))
    def on_clear(n):
        if n is None:
            raise PreventUpdate
        return True, True, True

    @app.callback([Output(s, "data") for s in ("memory", "local", "session")], Input("btn", "n_clicks"))
    def on_click(n):
        return ({"n_clicks": n},) * 3

    @app.callback(Output("local", "storage_type"), Input("prop", "n_clicks"), prevent_initial_call=True)
    def to_session(_):
        return "session"

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#content", "init")
    click(dash_duo, "start")
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": null}, {"n_clicks": null}, {"n_clicks": null}]')
    click(dash_duo, "btn")
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": 1}, {"n_clicks": 1}, {"n_clicks": 1}]')
    click(dash_duo, "clear-btn")
    dash_duo.wait_for_text_to_equal("#output", "[null, null, null]")
    click(dash_duo, "btn")
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": 2}, {"n_clicks": 2}, {"n_clicks": 2}]')
    click(dash_duo, "start")  # remount
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": null}, {"n_clicks": null}, {"n_clicks": null}]')
    click(dash_duo, "btn")
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": 1}, {"n_clicks": 1}, {"n_clicks": 1}]')
    assert storage_keys(dash_duo)["local"] == ["local", "local-timestamp"]

    click(dash_duo, "switch")  # "local" is now a session store: a new component on sessionStorage
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": null}, {"n_clicks": null}, {"n_clicks": null}]')
    click(dash_duo, "btn")
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": 1}, {"n_clicks": 1}, {"n_clicks": 1}]')
    assert storage_keys(dash_duo) == {"local": ["local", "local-timestamp"],
                                      "session": ["local", "local-timestamp", "session", "session-timestamp"]}

    click(dash_duo, "start")  # back to a local store (a new button: its first click is 1 again)
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": null}, {"n_clicks": null}, {"n_clicks": null}]')
    click(dash_duo, "prop")  # storage_type changed by a callback: still writes localStorage
    click(dash_duo, "clear-btn")
    dash_duo.wait_for_text_to_equal("#output", "[null, null, null]")
    assert storage_keys(dash_duo) == {"local": [], "session": ["local", "local-timestamp"]}
    click(dash_duo, "btn")
    dash_duo.wait_for_text_to_equal("#output", '[{"n_clicks": 1}, {"n_clicks": 1}, {"n_clicks": 1}]')
    assert storage_keys(dash_duo)["local"] == ["local", "local-timestamp"]
    assert severe(dash_duo) == []


# -- callbacks through stores (cbmt006, cbsc016, cbsc018, cbsc023, cbsc026, dcl001) --------------------
@pytest.mark.parametrize("name", NAMES)
@RENDERER_4_2
def test_callbacks_chained_through_stores(dash_duo, name):
    Store = STORE_CLASSES[name]
    app = new_app()
    app.calls = {"first": 0, "second": 0, "b": 0, "c": 0}
    app._extra_components.append(Store(id="extra-store", data=123))  # cbsc016
    app.layout = html.Div([
        html.Button("go", id="go"), html.Button("btn", id="btn"), html.Button("np", id="np"),
        html.Button("enable", id="enable", n_clicks=0),
        Store(id="a"), Store(id="b"), Store(id="c"), Store(id="derived"), Store(id="array"),
        Store(id="initial", data="initial"), Store(id="toggle", data=None),
        dcc.Input(id="input", value="initial value"),
        html.Div(id="chain"), html.Div(id="derived-out"), html.Div(id="no-input"), html.Div(id="dup"),
        html.Div(id="extra-out"), html.Div(id="array-out"), html.Div(id="toggle-out"),
    ])

    @app.callback(Output("a", "data"), Input("go", "n_clicks"), prevent_initial_call=True)
    def to_a(n):
        return {"n": n, "path": ["a"]}

    @app.callback(Output("b", "data"), Input("a", "data"), prevent_initial_call=True)
    def to_b(a):
        app.calls["b"] += 1
        return {**a, "path": a["path"] + ["b"]}

    @app.callback(Output("c", "data"), Input("b", "data"), State("a", "data"), prevent_initial_call=True)
    def to_c(b, a):
        app.calls["c"] += 1
        return {**b, "path": b["path"] + ["c"], "a_n": a["n"]}

    @app.callback(Output("chain", "children"), Input("c", "data"))
    def chain(c):
        return json.dumps(c, sort_keys=True)

    @app.callback(Output("derived-out", "children"), Input("derived", "modified_timestamp"), State("derived", "data"))
    def on_data(ts, data):  # cbmt006
        return data

    @app.callback(Output("derived", "data"), Input("btn", "n_clicks"))
    def on_click(n):
        return n or 0

    @app.callback(Output("no-input", "children"), State("initial", "data"))
    def no_input(data):  # cbsc023
        return f"Data: {data}"

    @app.callback(Output("dup", "children"), State("initial", "data"))
    def first(data):  # cbsc026
        app.calls["first"] += 1
        return f"First: {data}"

    @app.callback(Output("dup", "children", allow_duplicate=True), State("initial", "data"),
                  prevent_initial_call="initial_duplicate")
    def second(data):
        app.calls["second"] += 1
        return f"Second: {data}"

    @app.callback(Output("extra-out", "children"), Input("input", "value"), Input("extra-store", "data"))
    def extra(value, data):  # cbsc016
        return f"{value}:{data}"

    @app.callback(Output("array", "data"), Input("np", "n_clicks"))
    def ndarray(_):  # cbsc018
        return np.array([[1, 2, 3], [4, 5, 6]], np.int32)

    @app.callback(Output("array-out", "children"), Input("array", "data"))
    def show_array(data):  # a dcc.Store gives a list, a ServerStore the array back (documented)
        return json.dumps(np.asarray(data).tolist())

    @app.callback(Output("toggle", "data"), Input("enable", "n_clicks"))
    def update_store_data(clicks):  # dcl001
        return {"data": "available"} if clicks > 0 else None

    @app.callback(Output("toggle-out", "children"), Input("toggle", "data"))
    def toggle(store_data):
        return "enabled" if store_data is not None and "data" in store_data else "disabled"

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#derived-out", "0")
    dash_duo.wait_for_text_to_equal("#no-input", "Data: initial")
    dash_duo.wait_for_text_to_equal("#extra-out", "initial value:123")
    dash_duo.wait_for_text_to_equal("#array-out", "[[1, 2, 3], [4, 5, 6]]")
    dash_duo.wait_for_text_to_equal("#toggle-out", "disabled")
    dash_duo.wait_for_text_to_equal("#chain", "null")
    assert "initial" in dash_duo.find_element("#dup").text
    for n in (1, 2):
        click(dash_duo, "go")
        dash_duo.wait_for_text_to_equal("#chain", json.dumps({"a_n": n, "n": n, "path": ["a", "b", "c"]},
                                                             sort_keys=True))
        click(dash_duo, "btn")
        dash_duo.wait_for_text_to_equal("#derived-out", str(n))
    click(dash_duo, "enable")
    dash_duo.wait_for_text_to_equal("#toggle-out", "enabled")
    input_ = dash_duo.find_element("#input")
    dash_duo.clear_input(input_)
    input_.send_keys("A")
    dash_duo.wait_for_text_to_equal("#extra-out", "A:123")
    time.sleep(0.5)
    assert app.calls == {"first": 1, "second": 1, "b": 2, "c": 2}
    assert_references_only(dash_duo, name, ["a", "b", "c", "derived", "array", "initial", "toggle", "extra-store"])
    assert severe(dash_duo) == []


# -- background callbacks (tests/background_callback app_unordered: lcbc013) --------------------------
@pytest.mark.parametrize("name", NAMES)
def test_background_callback_state_output_and_set_props(dash_duo, name, tmp_path):
    """A background job (DiskcacheManager, the default memory backend) gets a store as State, writes
    a store as Output and another through set_props."""
    import diskcache

    Store = STORE_CLASSES[name]
    cache = diskcache.Cache(str(tmp_path / "cache"))
    app = new_app({"background_callback_manager": DiskcacheManager(cache)})
    app.layout = html.Div([html.Div(id="output"), html.Button("click", id="click"),
                           Store(data="stored", id="stored"), Store(id="result"), Store(id="side"),
                           *readers(app, ["result", "side"])])

    @app.callback(Output("output", "children"), Output("result", "data"), State("stored", "data"),
                  Input("click", "n_clicks"), background=True, prevent_initial_call=True)
    def update_output(stored, n_clicks):
        set_props("side", {"data": {"from": stored, "n": n_clicks}})
        return stored, {"result": stored, "n": n_clicks}

    try:
        dash_duo.start_server(app)
        dash_duo.wait_for_text_to_equal("#result-seen", "null")
        for n in (1, 2):
            click(dash_duo, "click")
            dash_duo.wait_for_text_to_equal("#output", "stored", timeout=15)
            dash_duo.wait_for_text_to_equal("#result-seen", canon({"n": n, "result": "stored"}), timeout=15)
            dash_duo.wait_for_text_to_equal("#side-seen", canon({"from": "stored", "n": n}), timeout=15)
        assert_references_only(dash_duo, name, ["stored", "result", "side"])
        assert severe(dash_duo) == []
    finally:
        cache.close()
