"""Applying ``dash.Patch()`` operations on the server, the way Dash's renderer applies them in the
browser (``dash-renderer/src/utils/patch.ts``), so a Patch to a ServerStore ends in the same value.

Values are fresh copies (``Snapshot.thaw()``), so operations mutate them in place.
"""
from __future__ import annotations

from typing import Any, Callable

MISSING = object()


class PatchError(ValueError):
    """An operation that the browser would also fail on (wrong type, missing path)."""


def apply(value: Any, operations: list[dict]) -> Any:
    for op in operations:
        name, params = op.get("operation"), op.get("params") or {}
        handler = _HANDLERS.get(name)
        if handler is None:
            raise PatchError(f"unknown Patch operation {name!r}")
        location = _resolve(op.get("location") or [], value)
        try:
            value = handler(value, location, params)
        except PatchError:
            raise
        except (TypeError, KeyError, IndexError, AttributeError, ZeroDivisionError) as exc:
            raise PatchError(f"{name} at {location}: {type(exc).__name__}: {exc}") from None
    return value


def _resolve(location: list, value: Any) -> list:
    """Negative list indices count from the end, at each step of the path (as the renderer does)."""
    resolved, current = [], value
    for step in location:
        if isinstance(step, int) and step < 0 and isinstance(current, list):
            step = len(current) + step
        resolved.append(step)
        current = _get(current, step)
    return resolved


def _get(container: Any, step: Any) -> Any:
    if isinstance(container, dict):
        return container.get(step, MISSING) if isinstance(step, str) else container.get(str(step), MISSING)
    if isinstance(container, list) and isinstance(step, int) and 0 <= step < len(container):
        return container[step]
    return MISSING


def _at(value: Any, location: list) -> Any:
    for step in location:
        value = _get(value, step)
        if value is MISSING:
            return MISSING
    return value


def _assign(value: Any, location: list, new: Any) -> Any:
    """Set ``new`` at ``location``, creating missing containers like ramda's assocPath."""
    if not location:
        return new
    root = value if isinstance(value, (dict, list)) else ({} if not isinstance(location[0], int) else [])
    parent = root
    for step, following in zip(location, location[1:]):
        child = _get(parent, step)
        if not isinstance(child, (dict, list)):
            child = [] if isinstance(following, int) else {}
            _put(parent, step, child)
        parent = child
    _put(parent, location[-1], new)
    return root


def _put(container: Any, step: Any, item: Any) -> None:
    if isinstance(container, list) and isinstance(step, int):
        container.extend([None] * (step + 1 - len(container)))
        container[step] = item
    elif isinstance(container, dict):
        container[step if isinstance(step, str) else str(step)] = item
    else:
        raise PatchError(f"cannot set {step!r} on a {type(container).__name__}")


def _update(fn: Callable[[Any, dict], Any]) -> Callable[[Any, list, dict], Any]:
    def handler(value: Any, location: list, params: dict) -> Any:
        previous = _at(value, location)
        if previous is MISSING:
            previous = None
        return _assign(value, location, fn(previous, params))
    return handler


def _delete(value: Any, location: list, params: dict) -> Any:
    if not location:
        return None
    parent = _at(value, location[:-1])
    step = location[-1]
    if isinstance(parent, list) and isinstance(step, int) and 0 <= step < len(parent):
        del parent[step]
    elif isinstance(parent, dict):
        parent.pop(step if isinstance(step, str) else str(step), None)
    return value


def _insert(previous: Any, params: dict) -> Any:
    index = params["index"]
    if index < 0:
        index += len(previous)
    return previous[:index] + [params["value"]] + previous[index:]


def _number(value: Any) -> Any:
    """A result as JavaScript gives it back: 4 / 2 is 2, not 2.0 (JSON has one number type)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    return value


def _empty(previous: Any) -> Any:
    return type(previous)() if isinstance(previous, (list, dict, str)) else None


_HANDLERS: dict[str, Callable[[Any, list, dict], Any]] = {
    "Assign": lambda value, location, params: _assign(value, location, params.get("value")),
    "Delete": _delete,
    "Merge": _update(lambda prev, p: {**(prev or {}), **p["value"]}),
    "Extend": _update(lambda prev, p: list(prev) + list(p["value"])),
    "Insert": _update(_insert),
    "Append": _update(lambda prev, p: list(prev) + [p["value"]]),
    "Prepend": _update(lambda prev, p: [p["value"]] + list(prev)),
    "Add": _update(lambda prev, p: _number(prev + p["value"])),
    "Sub": _update(lambda prev, p: _number(prev - p["value"])),
    "Mul": _update(lambda prev, p: _number(prev * p["value"])),
    "Div": _update(lambda prev, p: _number(prev / p["value"])),
    "Clear": _update(lambda prev, p: _empty(prev)),
    "Reverse": _update(lambda prev, p: list(reversed(prev))),
    "Remove": _update(lambda prev, p: [item for item in prev if item != p["value"]]),
}
