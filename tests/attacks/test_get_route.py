"""Security review 15, findings 4 and 8 on ``/get``: no value leaves for a cross-site or non-JSON request
(a ``text/plain`` POST needs no preflight), and ids that are no store id are a 400, never a 500."""
from __future__ import annotations

import pytest

from routes_kit import post, refused, world

CONFIG = {"STATE_STORES": {"s": {"client_read": True}}}


@pytest.mark.parametrize("content_type, headers, status", [
    ("text/plain", {}, 415), ("application/json", {"Origin": "https://evil.example"}, 403),
    ("application/json", {"Sec-Fetch-Site": "cross-site"}, 403)])
def test_no_value_leaves_for_a_foreign_request(content_type, headers, status, warnings_log):
    with world(**CONFIG) as (app, client, token):
        warnings_log.clear()
        response = post(client, "get", {"id": "s", "reference": token}, content_type, **headers)
        refused(response, status, "", log=warnings_log)
        assert "rows" not in response.get_data(as_text=True)
        assert post(client, "get", {"id": "s", "reference": token}).get_json() == {"data": {"clicks": 2, "rows": [0, 1]}}


@pytest.mark.parametrize("raw_id", ['["s"]', '{"type":null}', '{"a":{"b":1}}', '{"a":' * 990 + '"s"' + "}" * 990],
                         ids=["list", "none-value", "nested", "deep-990"])
def test_ids_that_are_no_store_id_are_a_400(raw_id, warnings_log):
    with world(**CONFIG) as (app, client, token):
        warnings_log.clear()
        refused(post(client, "get", '{"id":%s,"reference":"%s"}' % (raw_id, token)), 400, "'id' is not a store id",
                log=warnings_log)
