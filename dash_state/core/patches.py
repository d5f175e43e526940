"""Applying ``dash.Patch()`` operations on the server, the way Dash's renderer applies them in the
browser (``dash-renderer/src/utils/patch.ts``), so a Patch to a ServerStore ends in the same value.

Values are fresh copies (``Snapshot.thaw()``), so operations mutate them in place.

The operations may come from the browser, so every result is bounded *while it is built*: a
:class:`Budget` holds the value's size (JSON characters, estimated from the sizes of the operands),
and each operation is charged what it adds before it allocates anything (``len(s) * n`` before
``s * n``, the ``None`` padding of an index past the end of a list before the list grows). A Patch
that would take the value past the limit raises :class:`PatchTooLarge` and builds nothing more; the
exact size is checked again when the result is stored.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable

import orjson

MISSING = object()
DEFAULT_LIMIT = 64 << 20  # STATE_MAX_VALUE_BYTES' default, outside an app
_INT_RANGE = 1 << 64  # what JSON (orjson) carries as an integer; beyond it JavaScript has a double anyway
_NUMBER = 12  # JSON characters of a typical double (at most 24)


class PatchError(ValueError):
    """An operation that the browser would also fail on (wrong type, missing path)."""


class PatchTooLarge(PatchError):
    """The result would be larger than STATE_MAX_VALUE_BYTES; refused before it was built."""


class Budget:
    """The value's estimated size, checked before each operation grows it."""

    def __init__(self, limit: int, used: int):
        self.limit, self.used = limit, used

    def grow(self, nbytes: int) -> None:
        """Account for ``nbytes`` more (fewer, if negative); raises before the caller builds anything."""
        if nbytes > 0 and self.used + nbytes > self.limit:
            raise PatchTooLarge(f"the result would be about {self.used + nbytes:,} bytes, more than "
                                f"STATE_MAX_VALUE_BYTES ({self.limit:,})")
        self.used = max(self.used + nbytes, 0)

    def left(self) -> int:
        return self.limit - self.used


def size(value: Any, cap: int) -> int:
    """JSON characters of ``value`` (an estimate within a small factor), counting stops past ``cap``."""
    total, stack = 0, [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 3  # quotes and a separator
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += _NUMBER
        elif isinstance(item, list):
            total += 2
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2
            stack.extend(item)  # keys (strings; other keys become strings)
            stack.extend(item.values())
        else:  # a server-side Patch may hold numpy values, timestamps ...
            total += int(getattr(item, "nbytes", 0) or 0) + _NUMBER
    return total


def apply(value: Any, operations: list, limit: int | None = None, nbytes: int | None = None) -> Any:
    """``value`` with ``operations`` applied; raises PatchError (PatchTooLarge past ``limit``, the app's
    STATE_MAX_VALUE_BYTES, which callers pass) and then the caller must discard ``value``. ``nbytes``: the size of
    ``value`` as JSON, when the caller knows it."""
    budget = Budget(_limit(limit), _json_size(value) if nbytes is None else nbytes)
    for op in operations:
        name, location, params = _operation(op)
        handler = _HANDLERS.get(name)
        if handler is None:
            raise PatchError(f"unknown Patch operation {name!r:.60}")
        try:
            location = _resolve(location, value)
            value = handler(value, location, params, budget)
        except PatchError:
            raise
        except RecursionError:
            raise PatchError(f"{name} at {location!r:.200}: the value is nested too deeply") from None
        except (TypeError, KeyError, IndexError, AttributeError, ZeroDivisionError, OverflowError, ValueError) as exc:
            raise PatchError(f"{name} at {location!r:.200}: {type(exc).__name__}: {exc}") from None
    return value


def _limit(limit: int | None) -> int:
    return DEFAULT_LIMIT if limit is None else limit


def _json_size(value: Any) -> int:
    try:
        return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY))
    except TypeError:  # deeper than orjson goes, or types only Dash's encoder takes: estimate it
        return size(value, 1 << 62)


def _operation(op: Any) -> tuple[Any, list, dict]:
    if not isinstance(op, dict):
        raise PatchError(f"an operation is an object with 'operation', 'location' and 'params', not {op!r:.60}")
    location, params = op.get("location") or [], op.get("params") or {}
    if not isinstance(location, list) or not all(s is None or isinstance(s, (str, int, float)) for s in location):
        raise PatchError(f"'location' is a list of keys and indices, not {location!r:.60}")
    if not isinstance(params, dict):
        raise PatchError(f"'params' is an object, not {params!r:.60}")
    return op.get("operation"), location, params


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


def _path_cost(value: Any, location: list, budget: Budget) -> int:
    """What :func:`_assign` adds to reach ``location``: missing keys, new containers, and the ``None``s
    that pad a list up to an index past its end (checked before anything is padded)."""
    if not location:
        return 0
    cost, parent = 0, value if isinstance(value, (dict, list)) else _new(location[0])
    for step, following in zip(location, location[1:] + [None]):
        if isinstance(parent, list) and isinstance(step, int) and step > len(parent):
            if step - len(parent) > budget.left() // 5:
                raise PatchTooLarge(f"index {step:,} would pad a list of {len(parent):,} items with None past "
                                    f"STATE_MAX_VALUE_BYTES ({budget.limit:,})")
            cost += 5 * (step - len(parent))
        child = _get(parent, step)
        if child is MISSING:
            cost += size(step, budget.limit) + 4  # a new key or item
        if following is None:
            return cost
        parent = child if isinstance(child, (dict, list)) else _new(following)  # as _assign makes it
    return cost


def _new(step: Any) -> Any:
    return [] if isinstance(step, int) else {}


def _assign(value: Any, location: list, new: Any) -> Any:
    """Set ``new`` at ``location``, creating missing containers like ramda's assocPath."""
    if not location:
        return new
    root = value if isinstance(value, (dict, list)) else _new(location[0])
    parent = root
    for step, following in zip(location, location[1:]):
        child = _get(parent, step)
        if not isinstance(child, (dict, list)):
            child = _new(following)
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


def _assign_op(value: Any, location: list, params: dict, budget: Budget) -> Any:
    new, old = params.get("value"), _at(value, location)
    removed = size(old, budget.limit) if old is not MISSING else 0  # replaced: counted once, then gone
    budget.grow(size(new, budget.limit) - removed + _path_cost(value, location, budget))
    return _assign(value, location, new)


def _update(fn: Callable[[Any, dict, Budget], Any]) -> Callable[[Any, list, dict, Budget], Any]:
    def handler(value: Any, location: list, params: dict, budget: Budget) -> Any:
        previous = _at(value, location)
        if previous is MISSING:
            previous = None
            budget.grow(_path_cost(value, location, budget))
        return _assign(value, location, fn(previous, params, budget))
    return handler


def _delete(value: Any, location: list, params: dict, budget: Budget) -> Any:
    if not location:
        budget.grow(-budget.used)
        return None
    parent = _at(value, location[:-1])
    step = location[-1]
    if isinstance(parent, list) and isinstance(step, int) and 0 <= step < len(parent):
        budget.grow(-size(parent[step], budget.limit))
        del parent[step]
    elif isinstance(parent, dict):
        removed = parent.pop(step if isinstance(step, str) else str(step), MISSING)
        budget.grow(-size(removed, budget.limit) if removed is not MISSING else 0)
    return value


def _as_list(previous: Any) -> int:
    """What ``list(previous)`` adds: a string becomes a list of one-character strings."""
    return 3 * len(previous) if isinstance(previous, str) else 0


def _append(prepend: bool) -> Callable[[Any, dict, Budget], Any]:
    def fn(prev: Any, p: dict, budget: Budget) -> Any:
        item = p["value"]
        budget.grow(_as_list(prev) + size(item, budget.limit) + 1)
        return [item] + list(prev) if prepend else list(prev) + [item]
    return fn


def _extend(prev: Any, p: dict, budget: Budget) -> Any:
    budget.grow(_as_list(prev) + _as_list(p["value"]) + size(p["value"], budget.limit))
    return list(prev) + list(p["value"])


def _insert(previous: Any, params: dict, budget: Budget) -> Any:
    index = params["index"]
    if index < 0:
        index += len(previous)
    budget.grow(size(params["value"], budget.limit) + 1)
    return previous[:index] + [params["value"]] + previous[index:]


def _merge(prev: Any, p: dict, budget: Budget) -> Any:
    new, prev = p["value"], prev or {}
    if isinstance(new, dict) and isinstance(prev, dict):
        replaced = sum(size(prev[k], budget.limit) for k in new if k in prev)
        budget.grow(size(new, budget.limit) - replaced)
    return {**prev, **new}


def _add(prev: Any, p: dict, budget: Budget) -> Any:
    other = p["value"]
    if isinstance(prev, str) and isinstance(other, str):
        budget.grow(len(other))
    elif isinstance(prev, list) and isinstance(other, list):
        budget.grow(size(other, budget.limit))
    return _number(prev + other, prev, budget)


def _mul(prev: Any, p: dict, budget: Budget) -> Any:
    other = p["value"]
    if isinstance(other, (str, list)) and isinstance(prev, int):  # 3 * "ab", as Python reads it
        prev, other = other, prev
    if isinstance(prev, str) and isinstance(other, int):
        budget.grow(len(prev) * (max(other, 0) - 1))  # before "ab" * n is built
        return prev * other
    if isinstance(prev, list) and isinstance(other, int):
        return _repeat(prev, other, budget)
    return _number(prev * other, prev, budget)


def _repeat(items: list, n: int, budget: Budget) -> list:
    """``items * n``, with containers copied: shared ones would grow n times with each later change."""
    if n <= 1:
        return items * max(n, 0)
    each = size(items, budget.left() // (n - 1) + 2) - 2  # counting stops as soon as it cannot fit
    budget.grow(each * (n - 1))
    if not any(isinstance(item, (dict, list)) for item in items):
        return items * n
    return items + [copied for _ in range(n - 1) for copied in copy.deepcopy(items)]


def _number(result: Any, prev: Any, budget: Budget) -> Any:
    """A result as JavaScript gives it back: 4 / 2 is 2, not 2.0 (JSON has one number type), and an
    integer past 64 bits a double; Infinity and NaN are null, as ``JSON.stringify`` writes them."""
    if isinstance(result, int) and not isinstance(result, bool) and not -_INT_RANGE < result < _INT_RANGE:
        result = float(result)  # OverflowError past a double's range: cannot apply
    if isinstance(result, float):
        if not math.isfinite(result):
            return None
        if result.is_integer() and abs(result) < 2 ** 53:
            result = int(result)
    if isinstance(result, (int, float)) and isinstance(prev, (int, float)):
        budget.grow(size(result, _NUMBER) - size(prev, _NUMBER))
    return result


def _empty(prev: Any, params: dict, budget: Budget) -> Any:
    budget.grow(-size(prev, budget.limit))
    return type(prev)() if isinstance(prev, (list, dict, str)) else None


def _reverse(prev: Any, params: dict, budget: Budget) -> Any:
    budget.grow(_as_list(prev))
    return list(reversed(prev))


def _remove(prev: Any, params: dict, budget: Budget) -> Any:
    budget.grow(_as_list(prev))
    return [item for item in prev if item != params["value"]]


_HANDLERS: dict[str, Callable[[Any, list, dict, Budget], Any]] = {
    "Assign": _assign_op,
    "Delete": _delete,
    "Merge": _update(_merge),
    "Extend": _update(_extend),
    "Insert": _update(_insert),
    "Append": _update(_append(prepend=False)),
    "Prepend": _update(_append(prepend=True)),
    "Add": _update(_add),
    "Sub": _update(lambda prev, p, budget: _number(prev - p["value"], prev, budget)),
    "Mul": _update(_mul),
    "Div": _update(lambda prev, p, budget: _number(prev / p["value"], prev, budget)),
    "Clear": _update(_empty),
    "Reverse": _update(_reverse),
    "Remove": _update(_remove),
}
