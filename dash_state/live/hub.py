"""The per-process registry of open pages watching scoped stores, and the sources that wake them."""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from dash_state.backends import Backend
    from dash_state.core.manager import StateManager

log = logging.getLogger("dash_state")


class Watch(NamedTuple):
    """One store pointer: a user's value of a store (or the app's)."""

    backend: str
    owner: str
    name: str


class Subscription:
    """One open page's stream or poll: the watches it holds and those that changed since it looked."""

    def __init__(self, watches: list[Watch]):
        self.watches = watches
        self._changed: set[Watch] = set()
        self._lock = threading.Lock()
        self._event = threading.Event()

    def mark(self, watch: Watch) -> None:
        with self._lock:
            self._changed.add(watch)
        self._event.set()

    def wait(self, timeout: float) -> set[Watch]:
        """The watches that changed (empty after ``timeout`` seconds without a change)."""
        self._event.wait(timeout)
        with self._lock:
            changed, self._changed = self._changed, set()
            self._event.clear()
        return changed


class Hub:
    """Who in this process watches what; each backend's :mod:`source <.sources>` starts with its first watch."""

    def __init__(self, manager: "StateManager"):
        self.manager = manager
        self._lock = threading.Lock()
        self._subscriptions: dict[Watch, set[Subscription]] = {}
        self._sources: dict[str, Any] = {}
        self.streams = 0  # open streams of this process (each holds a server thread)

    def open_stream(self, limit: int) -> bool:
        """Count one more open stream, unless ``limit`` are open (that page polls instead)."""
        with self._lock:
            if self.streams >= limit:
                return False
            self.streams += 1
            return True

    def close_stream(self) -> None:
        with self._lock:
            self.streams -= 1

    def subscribe(self, watches: list[Watch]) -> Subscription:
        subscription = Subscription(watches)
        with self._lock:
            for watch in watches:
                self._subscriptions.setdefault(watch, set()).add(subscription)
        for name in {watch.backend for watch in watches}:
            self.source(self.manager.backend(name)).listen()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            for watch in subscription.watches:
                holders = self._subscriptions.get(watch)
                if holders is not None:
                    holders.discard(subscription)
                    if not holders:
                        del self._subscriptions[watch]

    def changed(self, backend: "Backend", owner: str, name: str, key: str | None) -> None:
        """This process wrote a scoped value: wake its own watchers, then tell the other processes."""
        self.notify(Watch(backend.name, owner, name))
        self.source(backend).publish(owner, name, key)

    def notify(self, watch: Watch) -> None:
        with self._lock:
            holders = list(self._subscriptions.get(watch, ()))
        for subscription in holders:
            subscription.mark(watch)

    def resync(self, backend_name: str) -> None:
        """A source may have missed messages (it reconnected): every watcher of that backend looks again."""
        for watch in self.watched(backend_name):
            self.notify(watch)

    def watched(self, backend_name: str) -> list[Watch]:
        with self._lock:
            return [watch for watch in self._subscriptions if watch.backend == backend_name]

    def source(self, backend: "Backend") -> Any:
        """The backend's source (made on first use; its thread starts with the first watcher)."""
        source = self._sources.get(backend.name)
        if source is None:
            from dash_state.live.sources import for_backend

            with self._lock:
                source = self._sources.get(backend.name)
                if source is None:
                    source = self._sources[backend.name] = for_backend(self, backend)
        return source

    def stats(self) -> dict:
        with self._lock:
            pages = {id(s) for holders in self._subscriptions.values() for s in holders}
            return {"watched": len(self._subscriptions), "open_pages": len(pages), "streams": self.streams,
                    "sources": {name: type(source).__name__ for name, source in self._sources.items()}}

    def close(self) -> None:
        for source in list(self._sources.values()):
            source.close()
