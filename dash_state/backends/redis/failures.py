"""What a redis-py exception means for dash-state, decided by its type and its causes' types, never by
the wording of its message (which changes between client versions: redis-py 8 wraps a cluster that no
node answers for in ``RedisClusterUnreachableError``, caused by the ``ConnectionError``).

* the server's memory is full (``OutOfMemoryError``: used memory reached ``maxmemory`` under the
  ``noeviction`` policy): not an outage. Reads still work, so writes are refused like any other quota
  (:class:`~dash_state.errors.QuotaExceeded`, HTTP 413) and the circuit breaker does not open;
* the server cannot be reached, did not answer in time, has no free connection, or refused the
  credentials: an outage (:class:`~dash_state.errors.BackendUnavailable`);
* anything else the server or the client refused (a script error, a misconfigured server): the same.
"""
from __future__ import annotations

from typing import Iterator

from redis import exceptions

#: Types missing from older redis-py versions are left out (an empty tuple matches nothing).
_UNREACHABLE_CLUSTER = tuple(getattr(exceptions, name) for name in ("RedisClusterUnreachableError",)
                             if hasattr(exceptions, name))
_POOL_EXHAUSTED = tuple(getattr(exceptions, name) for name in ("MaxConnectionsError",) if hasattr(exceptions, name))

FULL = "reached its maxmemory limit"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it (``raise ... from``), then what it was raised while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def out_of_memory(exc: BaseException) -> bool:
    """Redis refused a write because its used memory reached ``maxmemory`` (policy ``noeviction``)."""
    return any(isinstance(e, exceptions.OutOfMemoryError) for e in causes(exc))


def reason(exc: BaseException) -> str:
    """Why an operation failed, for the message: what kind of failure, not how the client worded it."""
    chain = list(causes(exc))

    def found(*types: type) -> bool:
        return bool(types) and any(isinstance(e, types) for e in chain)

    if found(exceptions.OutOfMemoryError):
        return FULL
    if found(exceptions.TimeoutError):
        return "did not answer in time"
    if found(*_POOL_EXHAUSTED):
        return "has no free connection in this process's pool"
    if found(exceptions.ClusterDownError):
        return "reports that the cluster is down"
    if found(exceptions.AuthenticationError, exceptions.AuthorizationError):
        return "refused the user name or password"
    if found(exceptions.ConnectionError, exceptions.ClusterError, *_UNREACHABLE_CLUSTER):
        return "is unreachable"
    return "refused the operation"
