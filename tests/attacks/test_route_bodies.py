"""Security review 15, findings 4 and 5, for every route: bodies are JSON from this origin, read through a
bounded stream (a chunked body is not buffered whole before the 413), and a body of tiny items cannot
turn STATE_MAX_VALUE_BYTES of JSON into gigabytes of Python objects."""
from __future__ import annotations

import io
import json

import pytest

from routes_kit import post, refused, world

ROUTES = ["touch", "release", "delete", "put", "patch", "get", "devtools"]
LIMIT = 1 << 20


class Source(io.RawIOBase):
    """A chunked upload of ``total`` bytes of JSON-looking text, counting what the server reads."""

    def __init__(self, total: int):
        self.total, self.sent = total, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.total - self.sent)
        buffer[:n] = b"[" * n
        self.sent += n
        return n


def chunked(client, route, source):
    return client.http.post(f"/_dash-state/v1/{route}", content_type="application/json",
                            headers={"Transfer-Encoding": "chunked"},
                            environ_overrides={"wsgi.input": source, "wsgi.input_terminated": True})


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_body_is_read_only_up_to_the_limit(route, warnings_log):
    with world(STATE_MAX_VALUE_BYTES=LIMIT) as (app, client, _):
        source = Source(64 * LIMIT)
        warnings_log.clear()
        refused(chunked(client, route, source), 413, "STATE_MAX_VALUE_BYTES", log=warnings_log)
        assert source.sent <= LIMIT + 1


@pytest.mark.parametrize("route", ROUTES)
def test_an_announced_body_over_the_limit_is_not_read(route):
    with world(STATE_MAX_VALUE_BYTES=LIMIT) as (app, client, _):
        source = Source(2 * LIMIT)
        response = client.http.post(f"/_dash-state/v1/{route}", content_type="application/json",
                                    environ_overrides={"wsgi.input": source, "CONTENT_LENGTH": str(2 * LIMIT)})
        refused(response, 413, "STATE_MAX_VALUE_BYTES")
        assert source.sent == 0


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_every_route_takes_only_json(route, content_type):
    with world() as (app, client, token):
        refused(post(client, route, {"id": "s", "reference": token}, content_type), 415, "application/json")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "https://localhost"}])
def test_every_route_refuses_other_origins(route, headers):
    with world() as (app, client, token):
        refused(post(client, route, {"id": "s", "reference": token}, **headers), 403, "refused")


def test_a_body_of_tiny_containers_is_refused_before_parsing(warnings_log):
    """4 MiB of ``{},`` is 100 MB of dicts once parsed: more than 16 x the limit (estimated from byte counts)."""
    with world(STATE_MAX_VALUE_BYTES=4 * LIMIT) as (app, client, _):
        body = b'{"id":"s","data":[' + b"{}," * (4 * LIMIT // 3 - 20) + b"{}]}"
        warnings_log.clear()
        refused(post(client, "put", body), 413, "Python objects", log=warnings_log)


def test_ordinary_records_of_the_same_size_are_stored():
    with world(STATE_MAX_VALUE_BYTES=4 * LIMIT) as (app, client, _):
        rows = [{"name": f"row {i}", "value": i * 1.5, "ok": True} for i in range(4 * LIMIT // 56)]
        body = json.dumps({"id": "s", "data": rows})
        assert 3 * LIMIT < len(body) < 4 * LIMIT
        assert post(client, "put", body).status_code == 200
