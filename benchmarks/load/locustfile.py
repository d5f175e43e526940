"""Locust users that behave like Dash's renderer on ``benchmarks/load/app.py``.

Each user is one browser tab: it loads the page once (``GET /``, ``/_dash-layout``,
``/_dash-dependencies``; the session keeps cookies, so dash-state's identity cookie is sent back),
then loops:

1. **write**: the button callback, with the user's marker ``<user>:<click>`` as State; for the
   ServerStore variant with the component's ``dash_state`` hints, as the renderer adds them;
2. **read**: the store callback, sending exactly what the write returned (the reference, or the
   records for dcc.Store; the bytes are passed through, not re-encoded);
3. **release** (ServerStore only): ``POST /_dash-state/v1/release`` with the reference the store
   replaced; with ``LOAD_RELEASE=piggyback`` it rides on the next read request instead, as the
   component's renderer hook now sends it.

The read must return this user's marker for this click, all 100k rows and one owner; anything else
(another user's value, an older value, a missing value) is a failure. Besides Locust's own per-request
statistics, each write+read pair is reported as request type ``ROUNDTRIP`` and, if ``LOAD_SAMPLES``
names a file, every round trip is written there as JSON when the test stops (``run_load.py`` computes
the exact percentiles from it).

Settings: ``LOAD_VARIANT`` (``serverstore`` or ``dcc``), ``LOAD_ROWS`` (expected rows, 100000),
``LOAD_SAMPLES`` (output path), ``LOAD_TIMEOUT`` (seconds per request, 120).
"""
from __future__ import annotations

import itertools
import json
import os
import time
import uuid

import orjson
from locust import HttpUser, constant, events, task

VARIANT = os.environ.get("LOAD_VARIANT", "serverstore")
ROWS = int(os.environ.get("LOAD_ROWS", "100000"))
SAMPLES_PATH = os.environ.get("LOAD_SAMPLES")
TIMEOUT = float(os.environ.get("LOAD_TIMEOUT", "120"))
RELEASE = os.environ.get("LOAD_RELEASE", "route")  # or "piggyback": in the next callback request, as the
# component's renderer hook now sends it
JSON = {"Content-Type": "application/json"}
W_PREFIX = b'{"multi":true,"response":{"store":{"data":'
R_HEAD = (b'{"output":"out.children","outputs":{"id":"out","property":"children"},'
          b'"inputs":[{"id":"store","property":"data","value":')
R_TAIL = b'}],"state":[],"changedPropIds":["store.data"]}'
R_TAIL_RELEASE = b'}],"state":[],"changedPropIds":["store.data"],"dash_state":{"stores":[],"prev":{},"release":%s}}'

_users = itertools.count(1)
SAMPLES: list[dict] = []  # one per finished round trip: start (epoch s), seconds, ok, reason
COUNTS = {"started": 0, "ok": 0, "wrong_value": 0, "http_errors": 0, "release_errors": 0, "writes_ok": 0}
INFLIGHT: dict[int, float] = {}  # user -> when its unfinished round trip started (epoch s)


def store_value_bytes(raw: bytes) -> bytes:
    """The store's data as JSON bytes, sliced out of the write's response without parsing 11 MB."""
    if raw.startswith(W_PREFIX) and raw.endswith(b"}}}"):
        return raw[len(W_PREFIX):-3]
    return orjson.dumps(orjson.loads(raw)["response"]["store"]["data"])


class RendererUser(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.marker = f"u{next(_users):03d}-{uuid.uuid4().hex[:6]}"
        self.clicks = 0
        self.held: str | None = None
        for path in ("/", "/_dash-layout", "/_dash-dependencies"):
            self.client.get(path, name=f"GET {path}", timeout=TIMEOUT)

    @task
    def write_then_read(self) -> None:
        self.clicks += 1
        marker = f"{self.marker}:{self.clicks}"
        body = {"output": "store.data", "outputs": {"id": "store", "property": "data"},
                "inputs": [{"id": "go", "property": "n_clicks", "value": self.clicks}],
                "state": [{"id": "who", "property": "value", "value": marker}],
                "changedPropIds": ["go.n_clicks"]}
        if VARIANT == "serverstore":
            body["dash_state"] = {"stores": ["store"], "prev": {"store": self.held} if self.held else {}}
        COUNTS["started"] += 1
        started_at, start = time.time(), time.perf_counter()
        INFLIGHT[id(self)] = started_at
        with self.client.post("/_dash-update-component", data=orjson.dumps(body), headers=JSON, name="write",
                              catch_response=True, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return self._done(started_at, start, False, f"write HTTP {response.status_code}")
            value = store_value_bytes(response.content)
            COUNTS["writes_ok"] += 1
        tail = R_TAIL
        if VARIANT == "serverstore" and RELEASE == "piggyback" and self.held:
            tail = R_TAIL_RELEASE % orjson.dumps([{"id": "store", "reference": self.held}])
        with self.client.post("/_dash-update-component", data=R_HEAD + value + tail, headers=JSON, name="read",
                              catch_response=True, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return self._done(started_at, start, False, f"read HTTP {response.status_code}")
            got = orjson.loads(response.content)["response"]["out"]["children"]
            expected = f"{marker}|{ROWS}|1"
            if got != expected:
                response.failure(f"wrong value: {got!r} instead of {expected!r}")
                return self._done(started_at, start, False, f"wrong value: {got!r}")
        self._done(started_at, start, True, "")
        if VARIANT == "serverstore":
            replaced, self.held = self.held, orjson.loads(value)
            if replaced and RELEASE == "route":
                with self.client.post("/_dash-state/v1/release", headers=JSON, name="release", catch_response=True,
                                      data=orjson.dumps({"stores": [{"id": "store", "reference": replaced}]}),
                                      timeout=TIMEOUT) as response:
                    if response.status_code != 200:
                        COUNTS["release_errors"] += 1
                        response.failure(f"HTTP {response.status_code}")

    def _done(self, started_at: float, start: float, ok: bool, reason: str) -> None:
        seconds = time.perf_counter() - start
        INFLIGHT.pop(id(self), None)
        if ok:
            COUNTS["ok"] += 1
        elif reason.startswith("wrong"):
            COUNTS["wrong_value"] += 1
        else:
            COUNTS["http_errors"] += 1
        SAMPLES.append({"start": started_at, "seconds": seconds, "ok": ok, "reason": reason})
        events.request.fire(request_type="ROUNDTRIP", name="write+read", response_time=seconds * 1000,
                            response_length=0, exception=None if ok else RuntimeError(reason), context={})


@events.test_start.add_listener
def _start(environment, **_kwargs) -> None:
    COUNTS["test_start"] = time.time()


@events.test_stop.add_listener
def _stop(environment, **_kwargs) -> None:
    COUNTS["test_stop"] = now = time.time()
    if SAMPLES_PATH:  # unfinished round trips at their age so far: a lower bound of their latency
        with open(SAMPLES_PATH, "w") as out:
            json.dump({"variant": VARIANT, "counts": COUNTS, "samples": SAMPLES,
                       "unfinished_ages": [now - t for t in INFLIGHT.values()]}, out)


@events.quitting.add_listener
def _quitting(environment, **_kwargs) -> None:
    if "test_stop" not in COUNTS:  # stopped without a test_stop event: still leave the samples
        _stop(environment)
