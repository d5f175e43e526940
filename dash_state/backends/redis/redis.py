"""The redis backend: sealed values in Redis (or Valkey), shared by every worker and host of an app.

Keys: ``{prefix}{<user>}:<key>`` for values and pointers, ``{prefix}{<user>}:index`` and
``{prefix}{<user>}:sizes`` for the bookkeeping described in :mod:`.scripts`. The braces make the user
namespace a Cluster hash tag, so one user's keys share a slot and every multi-key transaction below
also works on a cluster (keep braces out of ``STATE_KEY_PREFIX``). No operation uses KEYS, and only
the command line's ``inventory``, ``users`` and ``gc`` use SCAN (:mod:`.inventory`).

A write is one round trip: ``MULTI``, the values' ``SET ... PX`` to staging keys, one ``EVAL`` of the
bookkeeping that renames them into place, ``EXEC``. The server applies all of it or none of it, and a
write over the user's quota is undone in the same transaction (a value it would have replaced stays).
Failures go through a circuit breaker (:mod:`..breaker`): one ERROR per outage, then fast failures
until the server answers again. Connection details are in :mod:`.connection`, what each redis-py
exception means in :mod:`.failures`.

Set Redis's ``maxmemory`` and ``maxmemory-policy noeviction``. Every dash-state key has a TTL, so any
evicting policy (``volatile-*`` as much as ``allkeys-*``) lets one user's writes, or many fresh
identities', evict other users' values and the bookkeeping keys. Under ``noeviction`` a full Redis
refuses writes (:class:`~dash_state.errors.QuotaExceeded`, HTTP 413; not an outage, the breaker stays
closed) and keeps serving reads; ``STATE_MAX_USER_BYTES`` bounds what each user can take.
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import redis
from redis.exceptions import RedisClusterException, RedisError
from redis.sentinel import MasterNotFoundError

from dash_state.backends import history
from dash_state.backends.base import (
    POINTER_PREFIX,
    BytesBackend,
    Entry,
    Pointer,
    is_key,
)
from dash_state.backends.breaker import Breaker
from dash_state.backends.redis import connection, failures, scripts
from dash_state.backends.redis import inventory as _inventory
from dash_state.backends.redis.connection import mask_url, parse_url
from dash_state.core.tokens import random_id
from dash_state.errors import (
    BackendUnavailable,
    ConfigError,
    PointerConflict,
    QuotaExceeded,
)

if TYPE_CHECKING:
    from dash_state.config import Config
    from dash_state.core.seal import Seal

T = TypeVar("T")
log = logging.getLogger("dash_state")
DELETE_BATCH = 500  # keys per UNLINK in delete_user and per pipeline in move_user
FULL_LOG_INTERVAL = 60.0  # seconds between WARNINGs that Redis is full (writes refused meanwhile)
_HASH_TAG = re.compile(r"\{[^{}]*\}")


class RedisBackend(BytesBackend):
    name = "redis"
    shared = True
    remote = True

    def __init__(self, seal: "Seal", url: str, prefix: str = "dash-state:", retries: int = 3, timeout: float = 2.0,
                 values_per_store: int = 16):
        super().__init__(seal)
        self.values_per_store = values_per_store
        self.evicted_per_store = 0
        self.target = parse_url(url)
        self.url = mask_url(url)
        self.prefix = prefix
        self.retries = retries
        self.breaker = Breaker(f"redis backend ({self.url})", answers=(QuotaExceeded,), probe=self._probe)
        self._probe_timeout = min(timeout, connection.PROBE_TIMEOUT)
        self._prober: Any = None
        self._full_logged_at: float | None = None
        self._client: Any = None
        self._client, self._client_key = connection.acquire(url, self.target, retries, timeout, self._run)

    # -- keys -----------------------------------------------------------------------------------
    def _key(self, user: str, key: str) -> str:
        return f"{self.prefix}{{{user}}}:{key}"

    def _books(self, user: str) -> list[str]:
        return [f"{self.prefix}{{{user}}}:index", f"{self.prefix}{{{user}}}:sizes"]

    # -- values ---------------------------------------------------------------------------------
    def read(self, user: str, key: str) -> bytes | None:
        return self._run("read", lambda: self._client.get(self._key(user, key)))

    def write_many(self, user: str, items: list[tuple[str, Any, float]], pointers: list[Pointer],
                   quota: int | None, expect: Mapping[str, str | None] | None = None, *,
                   histories: bool = True) -> None:
        """One round trip (module docstring); ``expect`` is checked first, in the same script.
        ``histories=False`` (a login's carry-over, which merges them itself) leaves the stores'
        histories as they are."""
        now = _now_ms()
        nonce = random_id()
        expected = list((expect or {}).items())
        staging = [self._key(user, f"~staged.{nonce}.{i}") for i in range(len(items))]
        keys = (self._books(user) + [self._key(user, k) for k, _, _ in items] + [self._key(user, p.name) for p in pointers]
                + staging + [self._key(user, history.history_name(p.name)) for p in pointers]
                + [self._key(user, name) for name, _ in expected])
        limit = self.values_per_store if histories else 0
        args: list[Any] = [now, -1 if quota is None else quota, len(items), len(pointers), limit, self._key(user, "")]
        for key, data, ttl in items:
            args += [key, len(data), now + _ms(ttl)]
        for name, target, ttl in pointers:
            args += [name, target.encode("ascii", "replace"), _ms(ttl)]  # a valid target is ASCII
        args += [(target or "").encode("ascii", "replace") for _, target in expected]  # '': no live pointer

        def op() -> Any:
            with self._client.pipeline(transaction=True) as pipe:
                for staged, (key, data, ttl) in zip(staging, items):
                    pipe.set(staged, memoryview(data), px=_ms(ttl))
                # not pipe.eval(): redis-py's ClusterPipeline.eval() takes no script (a TypeError on a cluster)
                pipe.execute_command("EVAL", scripts.WRITE, len(keys), *keys, *args)
                return pipe.execute(raise_on_error=False)[-1]

        outcome = self._run("write", op)
        if isinstance(outcome, Exception):  # the script failed after the SETs: take them back
            if staging:
                self._run("undo a failed write", lambda: self._client.unlink(*staging))
            raise self._failure("write", outcome)
        if int(outcome[0]) == 2:  # an expected pointer names another key: the script changed nothing
            found = outcome[2].decode("ascii", "replace") if isinstance(outcome[2], bytes) else None
            raise PointerConflict(expected[int(outcome[1])][0], found or None)
        kept, total = int(outcome[0]), int(outcome[1])
        self.evicted_per_store += int(outcome[2])
        if not kept:
            raise QuotaExceeded(f"this user's ServerStore values would take {total:,} bytes, more than "
                                f"STATE_MAX_USER_BYTES = {quota:,}")

    def alive(self, user: str, key: str) -> bool:
        return bool(self._run("check a value", lambda: self._client.exists(self._key(user, key))))

    def expiry(self, user: str, key: str) -> float | None:
        """When a live value expires (epoch seconds, never later than Redis's own clock has it: the
        time is taken before PTTL is sent), or None; as cheap as ``alive`` (the near tier uses it)."""
        sent = time.time()
        left = self._run("check a value", lambda: self._client.pttl(self._key(user, key)))
        return None if left == -2 else sent + (left / 1000 if left >= 0 else 365 * 86400)

    def pointer(self, user: str, name: str) -> str | None:
        raw = self._run("read a pointer", lambda: self._client.get(self._key(user, name)))
        target = raw.decode("ascii", "replace") if isinstance(raw, bytes) else None
        return target if is_key(target) else None

    def delete(self, user: str, key: str) -> bool:
        keys = self._books(user) + [self._key(user, key)]
        return self._run("delete", lambda: self._client.eval(scripts.DELETE, 3, *keys, key)) == 1

    def release(self, user: str, pointer: str, key: str) -> bool:
        keys = self._books(user) + [self._key(user, key), self._key(user, pointer),
                                    self._key(user, history.history_name(pointer))]
        args = (key, _now_ms(), history.history_name(pointer))
        return self._run("release", lambda: self._client.eval(scripts.RELEASE, 5, *keys, *args)) == 1

    def touch(self, user: str, key: str, ttl: float) -> bool:
        if key.startswith(POINTER_PREFIX):
            keys = [self._books(user)[0], self._key(user, key), self._key(user, history.history_name(key))]
            args = (key, history.history_name(key), _ms(ttl), _now_ms())
            return self._run("touch", lambda: self._client.eval(scripts.TOUCH_POINTER, 3, *keys, *args)) == 1
        keys = self._books(user) + [self._key(user, key)]
        return self._run("touch", lambda: self._client.eval(scripts.TOUCH, 3, *keys, key, _ms(ttl), _now_ms())) == 1

    # -- users ----------------------------------------------------------------------------------
    def delete_user(self, user: str) -> int:
        """UNLINK what the index names, then the bookkeeping; counts the values UNLINK removed."""
        index, sizes = self._books(user)

        def op() -> int:
            members = [m.decode() for m in self._client.zrange(index, 0, -1)]
            removed = 0
            for start in range(0, len(members), DELETE_BATCH):
                batch = members[start:start + DELETE_BATCH]
                removed += self._client.unlink(*(self._key(user, m) for m in batch))
            self._client.unlink(index, sizes)
            return removed

        return self._run("delete a user", op)

    def move_user(self, source: str, target: str) -> int:
        """Copy each live value and pointer of ``source`` that ``target`` lacks, then delete ``source``.
        Values are sealed for their key, not their user, so they move as bytes."""
        def op() -> int:
            members = [m.decode() for m in self._client.zrange(self._books(source)[0], 0, -1)]
            moved = 0
            for start in range(0, len(members), DELETE_BATCH):
                batch = members[start:start + DELETE_BATCH]
                pipe = self._client.pipeline(transaction=False)
                for member in batch:
                    pipe.get(self._key(source, member))
                    pipe.pttl(self._key(source, member))
                    pipe.exists(self._key(target, member))
                found = pipe.execute()
                items, pointers = [], []
                for i, member in enumerate(batch):
                    data, pttl, taken = found[3 * i:3 * i + 3]
                    if data is None or pttl <= 0:
                        continue
                    if history.is_history(member):  # merged into the target's own, if it has one
                        merge = (self._key(target, "index"), self._key(target, member))
                        self._client.eval(scripts.MERGE, 2, *merge, data, pttl, _now_ms(), member)
                    elif taken:
                        continue
                    elif member.startswith(POINTER_PREFIX):
                        pointers.append(Pointer(member, data.decode("ascii", "replace"), pttl / 1000))
                    else:
                        items.append((member, data, pttl / 1000))
                if items or pointers:
                    self.write_many(target, items, pointers, None, histories=False)
                    moved += len(items)
            return moved

        moved = self._run("move a user's values", op)
        self.delete_user(source)
        return moved

    def usage(self, user: str) -> list[tuple[str, int, float]]:
        index, sizes = self._books(user)

        def op() -> list[tuple[str, int, float]]:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.zrange(index, 0, -1, withscores=True)
                pipe.hgetall(sizes)
                members, known = pipe.execute()
            now = _now_ms()
            return [(m.decode(), int(known[m]), score / 1000) for m, score in members
                    if m in known and score > now]

        return self._run("list a user's values", op)

    def inventory(self, user: str | None = None) -> Iterator[Entry]:
        return _inventory.inventory(self, user, lambda: _now_ms())

    def users(self) -> Iterator[str]:
        return _inventory.users(self, lambda: _now_ms())

    def gc(self, dry_run: bool = False, batch: int = 1000, progress: Callable[[int], None] | None = None) -> dict:
        return _inventory.gc(self, dry_run, batch, progress, lambda: _now_ms())

    # -- lifecycle ------------------------------------------------------------------------------
    def stats(self) -> dict:
        return {"mode": self.target.mode, "url": self.url, "prefix": self.prefix, "retries": self.retries,
                "outages": self.breaker.outages, "down": self.breaker.is_open,
                "evicted_per_store": self.evicted_per_store}

    def check(self) -> None:
        """Startup check: the server answers, and knows PEXPIRE NX/GT (Redis 7.0+)."""
        try:
            self._run("reach the server", self._client.ping)
        except TypeError as exc:  # an unknown ?option= in the URL surfaces at the first connection
            raise ConfigError(f"STATE_REDIS_URL {self.url} has an option redis-py does not know: {exc}") from None
        try:
            self._client.pexpire(f"{self.prefix}{{startup-check}}:none", 1, nx=True)
        except redis.ResponseError as exc:
            raise ConfigError(f"STATE_REDIS_URL {self.url}: the server does not support PEXPIRE NX/GT "
                              f"(dash-state needs Redis 7.0 or later): {exc}") from None
        except RedisError:
            pass  # unreachable again since the PING: the operations themselves will report it
        self._warn_about_eviction_policy()

    def _warn_about_eviction_policy(self) -> None:
        """An ``allkeys-*`` policy lets one user's writes evict everyone's values: say so at start-up."""
        try:
            found = self._client.config_get("maxmemory-policy")
        except RedisError:
            return  # CONFIG is often disabled on managed Redis: nothing to check
        answers = found.values() if found and "maxmemory-policy" not in found else [found]  # a cluster: per node
        policies = {str(a.get("maxmemory-policy", "")) for a in answers if isinstance(a, dict)}
        bad = sorted(p for p in policies if p.startswith(("allkeys", "volatile")))
        if bad:
            log.warning("dash-state redis backend: Redis at %s has maxmemory-policy %s, which evicts keys of "
                        "any user when Redis is full (every dash-state key has a TTL), so one user's writes, "
                        "or many fresh identities', delete other users' values; set maxmemory-policy "
                        "noeviction: a full Redis then refuses writes (HTTP 413) and keeps everyone's values, "
                        "and STATE_MAX_USER_BYTES bounds each user", self.url, bad[0])

    def _probe(self) -> None:
        """While the circuit is open: one PING with a short timeout and no retries (the breaker's probe).
        A single server gets a connection of its own; sentinel and cluster are asked through the client."""
        if self.target.mode != "single":
            self._client.ping()
            return
        prober = self._prober
        if prober is None or prober[0] != os.getpid():
            prober = self._prober = (os.getpid(), connection.prober(self.target, self._probe_timeout))
        prober[1].ping()
        self._client.connection_pool.disconnect(inuse_connections=False)  # sockets to the old server: reconnect

    def close(self) -> None:
        prober, self._prober = self._prober, None
        if prober is not None and prober[0] == os.getpid():
            prober[1].close()
        client, self._client = self._client, None
        if client is not None:
            connection.release(self._client_key, client)

    def _run(self, what: str, op: Callable[[], T]) -> T:
        """Run ``op`` through the circuit breaker; Redis errors become BackendUnavailable (an outage),
        or QuotaExceeded when Redis is full (not an outage: the breaker lets it through)."""
        def guarded() -> T:
            try:
                return op()
            except (RedisError, RedisClusterException) as exc:
                raise self._failure(what, exc) from exc

        return self.breaker.call(guarded, what)

    def _failure(self, what: str, exc: BaseException) -> BackendUnavailable | QuotaExceeded:
        """The error to raise for a failed operation, by the type of what redis-py raised."""
        if failures.out_of_memory(exc):
            return self._full(what)
        return self._unavailable(what, exc)

    def _full(self, what: str) -> QuotaExceeded:
        """Redis refused a write at its maxmemory limit: one WARNING a minute for the operator (with the
        URL), and a message for the user that names the limit but not the server."""
        now = time.monotonic()
        if self._full_logged_at is None or now - self._full_logged_at > FULL_LOG_INTERVAL:
            self._full_logged_at = now
            log.warning("dash-state redis backend: Redis at %s %s: writes are refused (HTTP 413) until values "
                        "expire or are deleted; reads still work. Raise maxmemory, or lower "
                        "STATE_MAX_USER_BYTES / STATE_TTL_DEFAULT", self.url, failures.FULL)
        return QuotaExceeded(f"the ServerStore storage is full: Redis refused to {what} because its used memory "
                             f"{failures.FULL}; nothing was stored and the previous value stays")

    def _unavailable(self, what: str, exc: BaseException) -> BackendUnavailable:
        reason = failures.reason(exc)
        detail = _HASH_TAG.sub("{***}", str(exc))  # never a user's namespace in a log line
        if isinstance(exc, MasterNotFoundError):  # its own message is a page of client reprs
            detail = f"no sentinel reports a live master named {self.target.service!r}"
        return BackendUnavailable(f"dash-state redis backend: cannot {what}: Redis at {self.url} {reason}: {detail}")


def _ms(ttl: float) -> int:
    """Milliseconds for PX/PEXPIRE: fractional TTLs are fine, but 0 would be an error, so at least 1."""
    return max(1, round(ttl * 1000))


def _now_ms() -> int:
    return int(time.time() * 1000)


def from_config(config: "Config", seal: "Seal") -> RedisBackend:
    url = config["STATE_REDIS_URL"]
    try:
        backend = RedisBackend(seal, url, config["STATE_KEY_PREFIX"], config["STATE_RETRIES"],
                               config["STATE_BACKEND_TIMEOUT"], config["STATE_VALUES_PER_STORE"])
    except ValueError as exc:
        source = config.sources.get("STATE_REDIS_URL", "the configuration")
        raise ConfigError(f"STATE_REDIS_URL in {source} cannot be parsed ({exc}): {mask_url(url)}") from None
    try:
        backend.check()
    except BaseException:
        backend.close()
        raise
    return backend


__all__ = ["RedisBackend", "from_config", "mask_url", "parse_url"]
