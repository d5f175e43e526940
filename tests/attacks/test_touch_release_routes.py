"""Security review 15, findings 4 and 8 on ``/touch`` and ``/release``: ids that are no store id (a list,
a dict nested 990 deep, a dict with a None value) are a 400 naming what is wrong, never a 500;
non-JSON and cross-site requests are refused; nothing is released by a refused request."""
from __future__ import annotations

import pytest

from routes_kit import post, read, refused, world

DEEP = '{"a":' * 990 + '"s"' + "}" * 990


@pytest.mark.parametrize("route", ["touch", "release"])
@pytest.mark.parametrize("raw_id", ['["s"]', '{"type":null}', '{"²":null}', '{"a":{"b":1}}', DEEP, '{"a":[1]}'],
                         ids=["list", "none-value", "non-ascii-none", "nested", "deep-990", "list-value"])
def test_ids_that_are_no_store_id_are_a_400(route, raw_id, warnings_log):
    with world() as (app, client, token):
        client.call([("s", "data")], [("btn", "n_clicks", 3)])  # token is no longer the latest: releasable
        warnings_log.clear()
        body = '{"stores":[{"id":"s","reference":"%s"},{"id":%s,"reference":"%s"}]}' % (token, raw_id, token)
        refused(post(client, route, body), 400, "'id' is not a store id", log=warnings_log)
        assert read(client, token) != "None"  # the whole request was refused: nothing released


@pytest.mark.parametrize("route", ["touch", "release"])
def test_non_json_and_cross_site_requests_are_refused(route):
    with world() as (app, client, token):
        client.call([("s", "data")], [("btn", "n_clicks", 3)])
        body = {"stores": [{"id": "s", "reference": token}]}
        refused(post(client, route, body, "text/plain"), 415, "application/json")
        refused(post(client, route, body, Origin="https://evil.example"), 403, "Origin")
        assert read(client, token) != "None"
        assert post(client, route, body, Origin="http://localhost").status_code == 200
