"""The redis backend: sealed values in Redis (or Valkey), shared by every worker and host of an app.

``STATE_REDIS_URL`` picks the deployment (needs Redis 7.0 or later, for ``PEXPIRE ... NX|GT``)::

    redis://[[user]:password@]host[:port][/db]        one server over TCP
    rediss://[[user]:password@]host[:port][/db]       the same over TLS, e.g. ?ssl_ca_certs=/etc/ca.pem
    unix://[[user]:password@]/path/to/redis.sock[?db=N]  a local socket
    redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]
        Sentinel: asks the sentinels for the master of ``service_name`` (and again after a failover);
        the password is the master's (sentinels themselves without auth).
    redis+cluster://[:password@]host:port[,host:port...]
        Redis Cluster: the nodes listed are only startup nodes, the client learns the rest.

Query options of redis-py's own URL syntax (``socket_timeout``, ``ssl_cert_reqs``, ...) work for the
first three schemes. At startup a URL that cannot be parsed raises ConfigError, and a server that does
not answer PING raises BackendUnavailable; every message and log shows the URL with ``***`` for the password.

Failures: redis-py retries a command ``STATE_RETRIES`` times on connection errors and timeouts (backoff
0.1, 0.2, 0.4 s ... at most 1 s; connect timeout 2 s, read timeout 5 s), so a dead server fails an
operation within about a second and a hung one within (STATE_RETRIES + 1) x 5 s. Then the operation logs
one ERROR and raises BackendUnavailable; the next one tries again, so the backend recovers by itself.
Writes are one MULTI/EXEC: a connection lost midway leaves the old value (or nothing), never half of one.

Keys: ``{prefix}{<user>}:<key>`` for values and ``{prefix}{<user>}:index`` for a sorted set of the
user's keys scored by expiry time. The braces make the user id a Cluster hash tag, so one user's keys
share a slot and every multi-key MULTI/EXEC below also works on a cluster (keep braces out of
``STATE_KEY_PREFIX``). The index lets ``delete_user`` work without KEYS or SCAN, and it cannot grow
without bound: each write prunes entries whose value expired, and the index key itself expires with
its longest-lived member.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError, RedisClusterException, RedisError, TimeoutError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from ..errors import BackendUnavailable, ConfigError
from .base import BytesBackend

if TYPE_CHECKING:
    from ..config import Config
    from ..wire import Wire

log = logging.getLogger("dash_state")
T = TypeVar("T")

CONNECT_TIMEOUT = 2.0  # seconds: a host that is down (or a black hole) fails fast, retries included
READ_TIMEOUT = 5.0  # seconds per socket read, not per value: 50 MB arrive in many short reads
HEALTH_CHECK_INTERVAL = 30  # PING a connection idle this long before use: firewalls drop idle sockets
BACKOFF = ExponentialBackoff(cap=1.0, base=0.05)  # 0.1 s, 0.2 s, 0.4 s ... between attempts
PRUNE_GRACE_MS = 60_000  # prune index entries only this long after expiry: hosts' clocks differ a bit
DELETE_BATCH = 1000  # keys per UNLINK in delete_user
SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")


@dataclass(frozen=True)
class Target:
    """A parsed STATE_REDIS_URL: what to connect to, before any connection is made."""

    mode: str  # "single", "sentinel" or "cluster"
    url: str = field(repr=False)  # holds the password: never in a repr or a log
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``; errs on masking too much, never too little."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{hosts}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", scheme + sep + rest)


def parse_url(url: str) -> Target:
    """Parse without connecting; raises ValueError saying what is wrong."""
    lowered = url.lower()
    if lowered.startswith(("redis://", "rediss://", "unix://")):
        if not lowered.startswith("unix://") and not re.fullmatch(r"/?\d*", urlsplit(url).path):
            raise ValueError("the path must be a database number, as in redis://host:6379/0")
        redis.connection.parse_url(url)  # raises ValueError for a bad port and the like
        return Target("single", url)
    scheme, sep, rest = url.partition("://")
    if lowered.startswith(("redis+sentinel://", "redis+cluster://")):
        userinfo, _, rest = rest.rpartition("@")
        username, _, password = userinfo.partition(":")
        netloc, _, path = rest.partition("/")
        nodes = tuple(_host_port(item) for item in netloc.split(","))
        auth = {"username": unquote(username) or None, "password": unquote(password) or None}
        if scheme.lower() == "redis+cluster":
            if path.strip("/"):
                raise ValueError("a cluster URL has no path: Redis Cluster has only database 0")
            return Target("cluster", url, nodes, **auth)
        service, _, db = path.strip("/").partition("/")
        if not service or not re.fullmatch(r"\d*", db):
            raise ValueError("expected redis+sentinel://host:port[,host:port...]/service_name[/db]")
        return Target("sentinel", url, nodes, service, int(db or 0), **auth)
    raise ValueError(f"unknown scheme; use one of {', '.join(SCHEMES)}")


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{item!r} is not host:port")
    return host.strip("[]"), int(port)


def _connect(target: Target, retries: int) -> Any:
    """A client with its connection pool; only the cluster client talks to the server here."""
    retry = Retry(BACKOFF, retries)  # on ConnectionError and TimeoutError, the redis-py default
    common = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": READ_TIMEOUT,
              "health_check_interval": HEALTH_CHECK_INTERVAL}
    auth = {"username": target.username, "password": target.password}
    if target.mode == "single":
        return redis.Redis.from_url(target.url, retry=retry, **common)
    if target.mode == "cluster":
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.nodes], retry=retry, **auth, **common)
    # Each sentinel is asked once per attempt (their own default is 10 retries): ``retry`` repeats the lookup.
    ask_once = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": READ_TIMEOUT,
                "retry": Retry(NoBackoff(), 0)}
    sentinels = Sentinel(list(target.nodes), sentinel_kwargs=ask_once)
    return sentinels.master_for(target.service, db=target.db, retry=retry, **auth, **common)


# One client (and so one connection pool) per process and URL, shared by every backend object. The
# process id is part of the key: a gunicorn worker forked after its parent made a client must open its
# own sockets, never write into the parent's.
_clients: dict[tuple[int, str, int], list] = {}  # key -> [client, number of backends using it]
_clients_lock = threading.Lock()


def _forget_inherited_clients() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()  # another thread may have held it at the fork
    _clients.clear()  # dropped, not closed: the sockets belong to the parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_clients)


class RedisBackend(BytesBackend):
    name = "redis"
    shared = True

    def __init__(self, wire: "Wire", url: str, prefix: str = "dash-state:", retries: int = 3):
        super().__init__(wire)
        self.target = parse_url(url)
        self.url = mask_url(url)
        self.prefix = prefix
        self.retries = retries
        self._cache_key = (os.getpid(), url, retries)
        with _clients_lock:
            entry = _clients.get(self._cache_key)
            if entry is None:
                entry = [self._run("connect", lambda: _connect(self.target, retries)), 0]
                _clients[self._cache_key] = entry
            entry[1] += 1
        self._client: Any = entry[0]

    # -- keys -----------------------------------------------------------------------------------
    def _key(self, user: str, key: str) -> str:
        return f"{self.prefix}{{{user}}}:{key}"

    def _index(self, user: str) -> str:
        return f"{self.prefix}{{{user}}}:index"

    # -- operations -----------------------------------------------------------------------------
    def read(self, user: str, key: str) -> bytes | None:
        return self._run("read", lambda: self._client.get(self._key(user, key)))

    def write(self, user: str, key: str, data: bytes, ttl: float) -> None:
        self.write_many(user, [(key, data, ttl)])

    def write_many(self, user: str, items: list[tuple[str, bytes, float]]) -> None:
        """SETs and index updates in one MULTI/EXEC: the server applies all of it or none of it."""
        index = self._index(user)
        now = int(time.time() * 1000)
        longest = max(_ms(ttl) for _, _, ttl in items)

        def op() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                for key, data, ttl in items:
                    pipe.set(self._key(user, key), data, px=_ms(ttl))
                pipe.zadd(index, {key: now + _ms(ttl) for key, _, ttl in items})
                pipe.zremrangebyscore(index, "-inf", now - PRUNE_GRACE_MS)
                pipe.pexpire(index, longest, nx=True)  # a new index: expire with these values
                pipe.pexpire(index, longest, gt=True)  # an old one: live at least as long as they do
                pipe.execute()

        self._run("write", op)

    def alive(self, user: str, key: str) -> bool:
        return bool(self._run("alive", lambda: self._client.exists(self._key(user, key))))

    def delete(self, user: str, key: str) -> bool:
        def op() -> bool:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.unlink(self._key(user, key))
                pipe.zrem(self._index(user), key)
                return pipe.execute()[0] == 1

        return self._run("delete", op)

    def touch(self, user: str, key: str, ttl: float) -> bool:
        ms, index = _ms(ttl), self._index(user)

        def op() -> bool:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.pexpire(self._key(user, key), ms)  # 0 when the value is gone: nothing revived
                pipe.zadd(index, {key: int(time.time() * 1000) + ms}, xx=True)
                pipe.pexpire(index, ms, gt=True)
                return bool(pipe.execute()[0])

        return self._run("touch", op)

    def delete_user(self, user: str) -> int:
        """Read the index, then UNLINK what it names. Counts what UNLINK removed, so entries of values
        that already expired are not counted; entries added meanwhile stay in the index (ZREM, not DEL)."""
        index = self._index(user)

        def op() -> int:
            members = self._client.zrange(index, 0, -1)
            removed = 0
            for start in range(0, len(members), DELETE_BATCH):
                batch = members[start:start + DELETE_BATCH]
                with self._client.pipeline(transaction=True) as pipe:
                    pipe.unlink(*(self._key(user, m.decode()) for m in batch))
                    pipe.zrem(index, *batch)
                    removed += pipe.execute()[0]
            return removed

        return self._run("delete a user", op)

    def stats(self) -> dict:
        return {"mode": self.target.mode, "url": self.url, "prefix": self.prefix, "retries": self.retries}

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

    def close(self) -> None:
        """Release this backend's share of the process-wide client; the last one closes it."""
        if self._client is None:
            return
        client, self._client = self._client, None
        with _clients_lock:
            entry = _clients.get(self._cache_key)
            if entry is None or entry[0] is not client:
                return  # made before a fork: the parent's to close
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _clients[self._cache_key]
        client.close()

    def _run(self, what: str, op: Callable[[], T]) -> T:
        """Run ``op``; a failure (after redis-py's retries) is one ERROR log and BackendUnavailable."""
        try:
            return op()
        except (RedisError, RedisClusterException) as exc:
            if isinstance(exc, (ConnectionError, TimeoutError)) or type(exc) is RedisClusterException:
                reason = f"unreachable (retried {self.retries} times)"
            else:
                reason = "refused the operation"
            detail = str(exc)
            if isinstance(exc, MasterNotFoundError):  # its own message is a page of client reprs
                detail = f"no sentinel reports a live master named {self.target.service!r}"
            message = f"dash-state redis backend: cannot {what}: Redis at {self.url} {reason}: {detail}"
            log.error("%s", message)
            raise BackendUnavailable(message) from exc


def _ms(ttl: float) -> int:
    """Milliseconds for PX/PEXPIRE: fractional TTLs are fine, but 0 would be an error, so at least 1."""
    return max(1, round(ttl * 1000))


def from_config(config: "Config", wire: "Wire") -> RedisBackend:
    url = config["STATE_REDIS_URL"]
    try:
        backend = RedisBackend(wire, url, config["STATE_KEY_PREFIX"], config["STATE_RETRIES"])
    except ValueError as exc:
        source = config.sources.get("STATE_REDIS_URL", "the configuration")
        raise ConfigError(f"STATE_REDIS_URL in {source} cannot be parsed ({exc}): {mask_url(url)}") from None
    try:
        backend.check()
    except BaseException:
        backend.close()
        raise
    return backend
