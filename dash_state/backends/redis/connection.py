"""Connecting to Redis: URL forms, one fork-safe client per process, bounded waits.

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
first three schemes. Every message and log shows the URL with ``***`` for the password.

Waits are bounded by ``STATE_BACKEND_TIMEOUT`` (default 2 s) for connecting and for each socket read
(a value of many MB arrives in many short reads, so this bounds silence, not size). Connection errors
are retried ``STATE_RETRIES`` times with backoff (0.1, 0.2, 0.4 s ...); timeouts are not retried, so a
frozen server costs one timeout, after which the circuit breaker fails fast until it answers again.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError
from redis.retry import Retry
from redis.sentinel import Sentinel

from dash_state.config import mask_url  # noqa: F401  (re-exported: the redis backend masks with the shared helper)

HEALTH_CHECK_INTERVAL = 30  # PING a connection idle this long before use: firewalls drop idle sockets
BACKOFF = ExponentialBackoff(cap=1.0, base=0.05)  # 0.1 s, 0.2 s, 0.4 s ... between attempts
PROBE_TIMEOUT = 0.5  # seconds a probe of an unreachable server may wait (at most STATE_BACKEND_TIMEOUT)
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


def connect(target: Target, retries: int, timeout: float) -> Any:
    """A client with its connection pool; only the cluster client talks to the server here."""
    retry = Retry(BACKOFF, retries, supported_errors=(ConnectionError,))  # a timeout is not retried
    common = {"socket_connect_timeout": timeout, "socket_timeout": timeout,
              "health_check_interval": HEALTH_CHECK_INTERVAL}
    auth = {"username": target.username, "password": target.password}
    if target.mode == "single":
        return _plain_packing(redis.Redis.from_url(target.url, retry=retry, **common))
    if target.mode == "cluster":
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.nodes], retry=retry,
                            **auth, **common)  # keeps hiredis' packer: RedisCluster fixes its connection class
    # Each sentinel is asked once per attempt (their own default is 10 retries): ``retry`` repeats the lookup.
    ask_once = {"socket_connect_timeout": timeout, "socket_timeout": timeout,
                "retry": Retry(NoBackoff(), 0)}
    sentinels = Sentinel(list(target.nodes), sentinel_kwargs=ask_once)
    return _plain_packing(sentinels.master_for(target.service, db=target.db, retry=retry, **auth, **common))


def prober(target: Target, timeout: float) -> Any:
    """A client for the circuit breaker's probe of a single server: short timeouts, no retries."""
    return redis.Redis.from_url(target.url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                retry=Retry(NoBackoff(), 0), single_connection_client=True)


# hiredis parses replies fast, but its command packer copies every argument twice: a 6 MB SET took
# 12 ms with it and 2 ms with redis-py's own packer, which sends large values as they are.
def _packer() -> Any:
    from redis.connection import Encoder, PythonRespSerializer

    return PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)


def _plain_packing(client: Any) -> Any:
    client.connection_pool.connection_kwargs["command_packer"] = _packer()
    return client


# One client (and so one connection pool) per process and URL, shared by every backend object. The
# process id is part of the key: a gunicorn worker forked after its parent made a client must open its
# own sockets, never write into the parent's.
_clients: dict[tuple, list] = {}  # key -> [client, number of backends using it]
_clients_lock = threading.Lock()


def _forget_inherited_clients() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()  # another thread may have held it at the fork
    _clients.clear()  # dropped, not closed: the sockets belong to the parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_clients)


def acquire(url: str, target: Target, retries: int, timeout: float, run: Callable[[str, Callable[[], Any]], Any]
            ) -> tuple[Any, tuple]:
    """The process's client for this URL and settings (made through ``run`` on first use)."""
    key = (os.getpid(), url, retries, timeout)
    with _clients_lock:
        entry = _clients.get(key)
        if entry is None:
            entry = _clients[key] = [run("connect", lambda: connect(target, retries, timeout)), 0]
        entry[1] += 1
        return entry[0], key


def release(key: tuple, client: Any) -> None:
    """Give back one backend's share of a client; the last one closes it (never a parent's after a fork)."""
    with _clients_lock:
        entry = _clients.get(key)
        if entry is None or entry[0] is not client:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _clients[key]
    client.close()
