"""Security review 15, findings 11, 4 and 8 on ``/delete``: a store whose value the server decides
(``latest_only = true`` or ``client_write = false``) could be emptied from the browser. Such stores now
refuse client deletes (403 naming why); the component only logs a refused delete (``deleteReference`` in
``src_js/values.js`` warns and resolves false), so ``clear_data`` still clears the page's copy."""
from __future__ import annotations

import pytest

from routes_kit import BACKENDS, post, read, refused, world

VALUE = repr({"clicks": 2, "rows": [0, 1]})


@pytest.mark.parametrize("settings", [{"latest_only": True}, {"client_write": False}])
@pytest.mark.parametrize("kind", BACKENDS)
def test_server_decided_values_cannot_be_deleted_by_the_browser(kind, settings, warnings_log):
    with world(kind, STATE_STORES={"s": settings}) as (app, client, token):
        warnings_log.clear()
        refused(post(client, "delete", {"id": "s", "reference": token}), 403, "cannot delete", log=warnings_log)
        assert read(client, token) == VALUE


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_plain_store_is_still_cleared(kind):
    with world(kind) as (app, client, token):
        assert post(client, "delete", {"id": "s", "reference": token}).get_json() == {"deleted": True}
        assert read(client, token) == "None"


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_cross_site_or_non_json_delete_deletes_nothing(kind, warnings_log):
    with world(kind) as (app, client, token):
        refused(post(client, "delete", {"id": "s", "reference": token}, "text/plain"), 415, "application/json")
        refused(post(client, "delete", {"id": "s", "reference": token}, **{"Sec-Fetch-Site": "cross-site"}), 403,
                "cross-site")
        assert read(client, token) == VALUE


@pytest.mark.parametrize("raw_id", [["s"], {"a": {"b": "s"}}, {"type": None}])
def test_an_id_that_is_no_store_id_is_a_400(raw_id, warnings_log):
    with world() as (app, client, token):
        warnings_log.clear()
        refused(post(client, "delete", {"id": raw_id, "reference": token}), 400, "'id'", log=warnings_log)
        assert read(client, token) == VALUE


def test_a_dict_id_nested_990_deep_is_a_400_not_a_500(warnings_log):
    deep = '{"a":' * 990 + '"s"' + "}" * 990
    with world() as (app, client, token):
        warnings_log.clear()
        refused(post(client, "delete", '{"id":%s,"reference":"%s"}' % (deep, token)), 400, "dict id", log=warnings_log)
        assert read(client, token) == VALUE
