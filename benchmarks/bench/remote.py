"""A tab whose app runs in another process: the writer of the ``*_other`` scenarios that need a second
process of the host (``ss_local_other``, ``ss_redis_near_other``), as a gunicorn worker other than the
reader's would be.

The child (spawned, like a fresh gunicorn worker: nothing of the parent's memory) builds the value and a
ServerStore app with the given settings, opens a :class:`~.tab.Tab` on it and then serves the parent's
calls over a pipe. W is timed in the child exactly as in this process (``perf_counter`` around the
test-client POST); the pipe's round trip is outside the timed region. Every wait has a timeout.
"""
from __future__ import annotations

import gc
import multiprocessing
from typing import Any

WAIT_S = 300.0


def _child(conn: Any, size_token: str, settings: dict) -> None:
    import logging

    logging.getLogger("dash_state").setLevel(logging.ERROR)
    from .apps import close_app, server_store_app
    from .messages import short_error
    from .sizes import Size
    from .tab import Tab

    try:
        size = Size(size_token)
        app = server_store_app(size.value, settings)
        tab = Tab(app)
        tab.open()
        gc.collect()
        gc.freeze()  # as the parent does with its apps: gc.collect() before each W costs microseconds
        conn.send(("ok", None))
    except BaseException as exc:
        conn.send(("error", short_error(exc)))
        return
    while True:
        try:
            command, args = conn.recv()
        except EOFError:
            break
        try:
            if command == "callback":
                gc.collect()
                conn.send(("ok", tab.callback(*args)))
            elif command == "release":
                conn.send(("ok", tab.release(*args)))
            elif command == "cookie":
                conn.send(("ok", tab.cookie()))
            elif command == "stats":
                from dash_state import get_state_manager

                stats = get_state_manager(app).stats()
                cache = stats.get("read_cache") or {}
                conn.send(("ok", {"reads": stats.get("reads"), "hits": stats.get("hits"),
                                  "writes": stats.get("writes"), "released": stats.get("released"),
                                  "read_cache": {k: cache.get(k) for k in ("hits", "misses", "bytes")},
                                  "process": "writer (another process)"}))
            elif command == "close":
                close_app(app)
                conn.send(("ok", None))
                break
            else:
                conn.send(("error", f"unknown command {command!r}"))
        except BaseException as exc:
            conn.send(("error", short_error(exc)))


class RemoteTab:
    """The parts of :class:`~.tab.Tab` a scenario uses, served by a tab in a child process."""

    def __init__(self, size_token: str, settings: dict):
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self.process = context.Process(target=_child, args=(theirs, size_token, settings), daemon=True)
        self.process.start()
        theirs.close()
        self.released = 0
        self._receive()  # the child's app is built and its tab has loaded the page

    def _receive(self) -> Any:
        if not self._conn.poll(WAIT_S):
            raise TimeoutError(f"the writer process did not answer within {WAIT_S:.0f} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"writer process: {value}")
        return value

    def _call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        return self._receive()

    def open(self) -> None:
        """The child's tab loaded the page when it started."""

    def callback(self, output, inputs, extra=None, state=()) -> tuple[Any, float, int, int]:
        return tuple(self._call("callback", output, inputs, extra, state))

    def release(self, store_id: str, reference: str) -> int:
        released = self._call("release", store_id, reference)
        self.released += released
        return released

    def cookie(self) -> str | None:
        return self._call("cookie")

    def stats(self) -> dict:
        return self._call("stats")

    def close(self) -> None:
        try:
            if self.process.is_alive():
                self._call("close")
        except Exception:
            pass
        finally:
            self.process.join(30)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(10)
            self._conn.close()
