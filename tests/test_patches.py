"""Server-side Patch application gives what Dash's renderer gives in the browser."""
import pytest
from dash import Patch

from dash_state.core.patches import PatchError, apply


def run(value, build):
    patch = Patch()
    build(patch)
    return apply(value, patch.to_plotly_json()["operations"])


@pytest.mark.parametrize("build, start, expected", [
    (lambda p: p.append(4), [1, 2, 3], [1, 2, 3, 4]),
    (lambda p: p.prepend(0), [1, 2], [0, 1, 2]),
    (lambda p: p.extend([3, 4]), [1, 2], [1, 2, 3, 4]),
    (lambda p: p.insert(1, "x"), [1, 2], [1, "x", 2]),
    (lambda p: p.insert(-1, "x"), [1, 2, 3], [1, 2, "x", 3]),
    (lambda p: p.remove(2), [1, 2, 3, 2], [1, 3]),
    (lambda p: p.reverse(), [1, 2, 3], [3, 2, 1]),
    (lambda p: p.clear(), [1, 2, 3], []),
    (lambda p: p.update({"b": 2}), {"a": 1}, {"a": 1, "b": 2}),
    (lambda p: p.__setitem__("a", 5), {"a": 1}, {"a": 5}),
    (lambda p: p.__delitem__("a"), {"a": 1, "b": 2}, {"b": 2}),
    (lambda p: p.__delitem__(-1), [1, 2, 3], [1, 2]),
])
def test_list_and_dict_operations(build, start, expected):
    assert run(start, build) == expected


def test_nested_paths_arithmetic_and_negative_indices():
    def build(p):
        p["items"][-1]["qty"] += 2
        p["items"][0]["price"] *= 10
        p["meta"]["count"] -= 1
        p["meta"]["ratio"] /= 4
        p["meta"]["name"] += "!"
        p["new"]["deep"] = [1]
        p["items"].append({"qty": 0})

    start = {"items": [{"qty": 1, "price": 1.5}, {"qty": 5}], "meta": {"count": 3, "ratio": 1, "name": "a"}}
    assert run(start, build) == {
        "items": [{"qty": 1, "price": 15.0}, {"qty": 7}, {"qty": 0}],
        "meta": {"count": 2, "ratio": 0.25, "name": "a!"},
        "new": {"deep": [1]},
    }


def test_assign_on_empty_store_creates_the_structure():
    assert run(None, lambda p: p.__setitem__("a", 1)) == {"a": 1}


def test_impossible_operations_raise_patch_error():
    with pytest.raises(PatchError, match="Append"):
        run({"a": 1}, lambda p: p["a"].append(2))
    with pytest.raises(PatchError):
        apply([1], [{"operation": "Explode", "location": [], "params": {}}])
