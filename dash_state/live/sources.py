"""How a process hears that another process or host changed a scoped store: through the backend the
app already runs, no new server.

* memory: there is no other process; the writer wakes its own watchers (:meth:`Hub.changed`);
* redis: ``PUBLISH`` on ``<STATE_KEY_PREFIX>live`` after each write, one subscriber thread per
  process (Sentinel and Cluster clients included). When the connection drops (a Redis restart) it
  reconnects with backoff, subscribes again, and every watcher looks again, so a change made while it
  was away is not missed;
* database on PostgreSQL: ``pg_notify`` after each write, one ``LISTEN`` connection per process, with
  the same reconnect and catch-up;
* local (and database on SQLite or MySQL): one thread per process reads the pointers open pages watch,
  every :data:`LOCAL_INTERVAL` (host-local store) or :data:`DATABASE_INTERVAL` seconds: a read of a few
  small keys, nothing when no page watches.

Messages carry a namespace and a pointer name (never a value or a key): the receiver reads the pointer.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from dash_state.live.hub import Watch

if TYPE_CHECKING:
    from dash_state.backends import Backend
    from dash_state.live.hub import Hub

log = logging.getLogger("dash_state")
LOCAL_INTERVAL = 0.1
DATABASE_INTERVAL = 0.5
_SEPARATOR = "\n"


def for_backend(hub: "Hub", backend: "Backend") -> Any:
    inner = getattr(backend, "inner", backend)  # the near tier wraps a remote backend
    if inner.name == "redis":
        return RedisChannel(hub, backend, inner)
    if inner.name == "database" and inner.engine.dialect.name == "postgresql":
        return PostgresChannel(hub, backend, inner)
    if not backend.shared:
        return InProcess()
    return Polling(hub, backend, LOCAL_INTERVAL if backend.name == "local" else DATABASE_INTERVAL)


class InProcess:
    """The memory backend: every reader is in this process, woken by the writer itself."""

    def publish(self, owner: str, name: str, key: str | None) -> None:
        pass

    def listen(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Thread:
    """A daemon thread that runs :meth:`loop` until :meth:`close`."""

    what = "live updates"

    def __init__(self, hub: "Hub", backend: "Backend"):
        self.hub, self.backend = hub, backend
        self.closed = threading.Event()
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def listen(self) -> None:
        """Start the thread (with the first page that watches; a process that only writes needs none)."""
        with self._lock:
            if self.thread is None and not self.closed.is_set():
                self.thread = threading.Thread(target=self._run, name=f"dash-state live ({self.backend.name})",
                                               daemon=True)
                self.thread.start()

    def _run(self) -> None:
        delay, told = 0.5, False
        while not self.closed.is_set():
            try:
                self.loop()
                delay = 0.5
            except Exception as exc:  # the server went away: try again, then catch up
                if not told:
                    log.warning("dash-state: %s on the %s backend lost its connection (%s: %.200s); retrying",
                                self.what, self.backend.name, type(exc).__name__, exc)
                told = True
                self.closed.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            told = False

    def loop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed.set()


class Polling(_Thread):
    """Reads the watched pointers every ``interval`` seconds and wakes the pages whose pointer moved."""

    what = "reading live stores"

    def __init__(self, hub: "Hub", backend: "Backend", interval: float):
        self.interval = interval
        self.seen: dict[Watch, str | None] = {}
        super().__init__(hub, backend)

    def publish(self, owner: str, name: str, key: str | None) -> None:
        pass  # the other processes read the pointer themselves

    def loop(self) -> None:
        while not self.closed.wait(self.interval):
            watched = self.hub.watched(self.backend.name)
            self.seen = {watch: self.seen.get(watch, _UNSEEN) for watch in watched}  # forget unwatched ones
            for watch in watched:
                key = self.backend.pointer(watch.owner, watch.name)
                if self.seen[watch] != key:  # a first look wakes too: a write may have come just before it
                    self.seen[watch] = key
                    self.hub.notify(watch)


_UNSEEN = object()


class RedisChannel(_Thread):
    """Redis pub/sub: one channel per app (its key prefix)."""

    what = "the Redis subscription for live stores"

    def __init__(self, hub: "Hub", backend: "Backend", inner: Any):
        self.inner = inner
        self.channel = f"{inner.prefix}live"
        super().__init__(hub, backend)

    def publish(self, owner: str, name: str, key: str | None) -> None:
        try:
            self.inner._client.publish(self.channel, owner + _SEPARATOR + name)
        except Exception as exc:  # the write is done; pages on other hosts see it at their next look
            log.warning("dash-state: could not publish a live update on Redis (%s)", type(exc).__name__)

    def loop(self) -> None:
        pubsub = self.inner._client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            connection = getattr(pubsub, "connection", None)
            if connection is not None:  # redis-py reconnects and resubscribes by itself: catch up each time
                connection.register_connect_callback(self._reconnected)
            self.hub.resync(self.backend.name)  # whatever changed while no subscription was listening
            while not self.closed.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message and message.get("type") == "message":
                    self._deliver(message.get("data"))
        finally:
            try:
                pubsub.close()
            except Exception:
                log.debug("dash-state: closing a Redis subscription failed", exc_info=True)

    def _reconnected(self, connection: Any) -> None:
        self.hub.resync(self.backend.name)

    def _deliver(self, data: Any) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        owner, _, name = text.partition(_SEPARATOR)
        if owner and name:
            self.hub.notify(Watch(self.backend.name, owner, name))


class PostgresChannel(_Thread):
    """PostgreSQL LISTEN/NOTIFY on a channel named after the table."""

    what = "the PostgreSQL LISTEN connection for live stores"

    def __init__(self, hub: "Hub", backend: "Backend", inner: Any):
        self.inner = inner
        self.channel = f"{inner.table.name}_live"[:63]
        super().__init__(hub, backend)

    def publish(self, owner: str, name: str, key: str | None) -> None:
        from sqlalchemy import text

        try:
            with self.inner.engine.begin() as conn:
                conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                             {"channel": self.channel, "payload": owner + _SEPARATOR + name})
        except Exception as exc:
            log.warning("dash-state: could not send a live update through PostgreSQL (%s)", type(exc).__name__)

    def loop(self) -> None:
        import psycopg

        url = self.inner.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'LISTEN "{self.channel}"')
            self.hub.resync(self.backend.name)
            while not self.closed.is_set():
                for notify in conn.notifies(timeout=1.0):
                    owner, _, name = notify.payload.partition(_SEPARATOR)
                    if owner and name:
                        self.hub.notify(Watch(self.backend.name, owner, name))
                conn.execute("SELECT 1")  # notices a server that went away while all was quiet
