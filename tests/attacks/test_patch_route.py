"""Security review 15, finding 3: ``/patch`` applied the browser's operations before any size check (a
197-byte ``Mul`` of a string by 300,000 cost 571 MB). Each operation is now charged against a size
budget *before* it grows anything: 413 naming STATE_MAX_VALUE_BYTES, or 422 when it cannot apply,
with the stored value unchanged. Memory is measured with tracemalloc, never with a clock."""
from __future__ import annotations

import json
import tracemalloc

import pytest

from routes_kit import BACKENDS, post, read, refused, world

LIMIT = 1 << 20  # 1 MiB: what the default 64 MiB is to these bodies
TEXT = "abcdefghij" * 20
BIG = "y" * 700_000  # the stored value: 70 % of the limit, so 400 KB of operations go past it


def value(n):
    return {"text": TEXT, "rows": [0, 1], "n": n, "items": [{"a": 1}], "big": BIG}


def send(client, token, *operations, patched=None):
    body = {"id": "s", "base": token, "patched": patched or {"x": 1}, "operations": list(operations)}
    return post(client, "patch", body)


def op(name, location, **params):
    return {"operation": name, "location": location, "params": params}


def peak_of(call):
    """(result, peak bytes allocated while ``call`` ran)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


AMPLIFYING = {  # a few bytes of operations that would build many times the limit
    "mul-string": [op("Mul", ["text"], value=300_000)],
    "mul-string-huge": [op("Mul", ["text"], value=10 ** 15)],
    "mul-number-by-string": [op("Assign", ["k"], value=10 ** 6), op("Mul", ["k"], value=TEXT)],
    "mul-list": [op("Mul", ["rows"], value=10 ** 7)],
    "mul-list-of-dicts": [op("Mul", ["items"], value=10 ** 6)],
    "assign-index": [op("Assign", ["rows", 10 ** 7], value=1)],
    "assign-index-huge": [op("Assign", ["rows", 10 ** 18], value=1)],
    "assign-new-path-index": [op("Assign", ["new", 10 ** 9, "x"], value=1)],
    "extend-with-string": [op("Extend", ["rows"], value=TEXT * 500)],
    "reverse-string": [op("Reverse", ["big"])],
    "remove-on-string": [op("Remove", ["big"], value="z")],
}
LINEAR = {  # 400 KB of operations on a value of 700 KB
    "extend": [op("Extend", ["rows"], value=[TEXT] * 500)] * 4,
    "insert": [op("Insert", ["rows"], index=0, value=TEXT * 500)] * 4,
    "append": [op("Append", ["rows"], value=TEXT * 500)] * 4,
    "prepend": [op("Prepend", ["rows"], value=TEXT * 500)] * 4,
    "add-string": [op("Add", ["text"], value=TEXT * 500)] * 4,
    "merge": [op("Merge", [], value={f"k{i}{j}": TEXT * 50 for i in range(10)}) for j in range(4)],
    "assign": [op("Assign", [f"k{j}"], value=TEXT * 500) for j in range(4)],
}


@pytest.mark.parametrize("name", list(AMPLIFYING))
def test_growth_past_the_limit_is_refused_before_it_is_built(name, warnings_log):
    with world(value_factory=value, STATE_MAX_VALUE_BYTES=LIMIT) as (app, client, token):
        _, baseline = peak_of(lambda: send(client, token, op("Assign", ["n"], value=3)))  # the request itself
        warnings_log.clear()
        response, peak = peak_of(lambda: send(client, token, *AMPLIFYING[name]))
        refused(response, 413, "STATE_MAX_VALUE_BYTES", log=warnings_log)
        assert peak < baseline + LIMIT, f"{peak - baseline:,} bytes allocated for a refused patch"
        assert read(client, token) == repr(value(2))


@pytest.mark.parametrize("name", list(LINEAR))
def test_many_operations_that_add_up_past_the_limit_are_refused(name, warnings_log):
    with world(value_factory=value, STATE_MAX_VALUE_BYTES=LIMIT) as (app, client, token):
        warnings_log.clear()
        refused(send(client, token, *LINEAR[name]), 413, "STATE_MAX_VALUE_BYTES", log=warnings_log)
        assert read(client, token) == repr(value(2))


def test_a_patch_within_the_limit_still_applies(warnings_log):
    with world(value_factory=value, STATE_MAX_VALUE_BYTES=LIMIT) as (app, client, token):
        ops = [op("Mul", ["text"], value=3), op("Mul", ["rows"], value=2), op("Assign", ["rows", 5], value="x"),
               op("Mul", ["n"], value=10 ** 15), op("Extend", ["rows"], value=[7]), op("Insert", ["rows"], index=-1, value=6)]
        answer = send(client, token, *ops)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        got = read(client, answer.get_json()["reference"])
        assert got == repr({"text": TEXT * 3, "rows": [0, 1, 0, 1, None, "x", 6, 7], "n": 2 * 10 ** 15,
                            "items": [{"a": 1}], "big": BIG})


def test_a_list_multiplied_holds_copies_not_one_shared_dict():
    """Shared items would grow n times with each later change (and are not what JSON holds)."""
    with world(value_factory=value) as (app, client, token):
        answer = send(client, token, op("Mul", ["items"], value=3), op("Assign", ["items", 0, "a"], value=5))
        got = read(client, answer.get_json()["reference"])
        assert got == repr({**value(2), "items": [{"a": 5}, {"a": 1}, {"a": 1}]})


@pytest.mark.parametrize("operations", [
    [1], ["Assign"], [None], [op("Assign", "abc", value=1)], [{"operation": "Assign", "location": 5, "params": {}}],
    [{"operation": "Append", "location": ["rows"], "params": [1]}], [op("Assign", [{"a": 1}], value=1)],
    [op("Insert", ["rows"], index="x", value=1)], [op("Div", ["n"], value=0)], [op("Add", ["text"], value=1)],
    [op("Explode", [])], [op("Mul", ["text"], value=2.5)],
], ids=repr)
def test_operations_that_cannot_apply_answer_422(operations, warnings_log):
    with world(value_factory=value) as (app, client, token):
        warnings_log.clear()
        refused(send(client, token, *operations), 422, "Patch", log=warnings_log)
        assert read(client, token) == repr(value(2))


def test_patched_nested_300_deep_is_a_400_not_a_500(warnings_log):
    patched = 1
    for _ in range(300):
        patched = [patched]
    with world(value_factory=value) as (app, client, token):
        warnings_log.clear()
        refused(send(client, token, op("Assign", ["n"], value=3), patched=patched), 400, "nested too deeply",
                log=warnings_log)
        assert read(client, token) == repr(value(2))


def test_a_patch_to_a_dataframe_is_422_not_a_500():
    import pandas as pd

    with world(value_factory=lambda n: pd.DataFrame({"a": [1, 2]})) as (app, client, token):
        refused(send(client, token, op("Mul", [], value=10 ** 6)), 422, "DataFrame")


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_huge_patch_is_refused_on_every_backend(kind, warnings_log):
    with world(kind, value_factory=value, STATE_MAX_VALUE_BYTES=LIMIT) as (app, client, token):
        for ops in (AMPLIFYING["mul-string-huge"], AMPLIFYING["assign-index-huge"], LINEAR["append"]):
            refused(send(client, token, *ops), 413, "STATE_MAX_VALUE_BYTES")
        assert read(client, token) == repr(value(2))
        assert "Traceback" not in warnings_log.text and json.dumps(value(2))
