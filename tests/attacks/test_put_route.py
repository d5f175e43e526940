"""Security review 15, findings 4 and 8 on ``/put``: a ``text/plain`` POST (which a page of another site
can send with the victim's cookies, no CORS preflight) planted the value the victim's ``get_store()``
returned; a dict id nested 990 deep was a 500. Now: JSON only (415), same origin only (403), flat ids
only (400), and the store keeps its value."""
from __future__ import annotations

import pytest

import dash_state
from routes_kit import BACKENDS, post, refused, world

PLANTED = {"role": "admin"}
WRITTEN = {"clicks": 2, "rows": [0, 1]}


def latest(app, client):
    return dash_state.get_state_manager(app).latest("s", client.namespace())


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "", "application/jsonx", "text/json"])
def test_a_put_that_is_not_json_plants_nothing(content_type, warnings_log):
    with world() as (app, client, _):
        warnings_log.clear()
        refused(post(client, "put", {"id": "s", "data": PLANTED}, content_type), 415, "application/json",
                log=warnings_log)
        assert latest(app, client) == WRITTEN


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "http://sub.localhost"},
                                     {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "https://localhost", "Sec-Fetch-Site": "same-site"}])
def test_a_put_from_another_origin_plants_nothing(headers, warnings_log):
    with world() as (app, client, _):
        warnings_log.clear()
        refused(post(client, "put", {"id": "s", "data": PLANTED}, **headers), 403, "refused", log=warnings_log)
        assert latest(app, client) == WRITTEN


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"},
                                     {"Origin": "https://app.example", "Sec-Fetch-Site": "same-origin"}])
def test_the_component_own_puts_still_work(headers):
    """Same origin, or the browser's word for it (a TLS proxy without ProxyFix makes the app see http)."""
    with world() as (app, client, _):
        response = post(client, "put", {"id": "s", "data": {"from": "browser"}}, "application/json; charset=utf-8",
                        **headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert latest(app, client) == {"from": "browser"}


@pytest.mark.parametrize("raw_id", [["s"], 5, None, {"type": None}, {"type": ["s"]}, {"a": {"b": 1}}, {"²": None}])
def test_an_id_that_is_no_store_id_is_a_400_naming_it(raw_id, warnings_log):
    with world() as (app, client, _):
        warnings_log.clear()
        refused(post(client, "put", {"id": raw_id, "data": PLANTED}), 400, "'id'", log=warnings_log)
        assert latest(app, client) == WRITTEN


def test_a_dict_id_nested_990_deep_is_a_400_not_a_500(warnings_log):
    deep = '{"a":' * 990 + '"s"' + "}" * 990
    with world() as (app, client, _):
        warnings_log.clear()
        refused(post(client, "put", '{"id":%s,"data":{"role":"admin"}}' % deep), 400, "dict id", log=warnings_log)
        assert latest(app, client) == WRITTEN


@pytest.mark.parametrize("kind", BACKENDS)
def test_planting_is_refused_on_every_backend(kind):
    with world(kind) as (app, client, _):
        refused(post(client, "put", {"id": "s", "data": PLANTED}, "text/plain"), 415, "application/json")
        refused(post(client, "put", {"id": "s", "data": PLANTED}, Origin="https://evil.example"), 403, "Origin")
        assert latest(app, client) == WRITTEN
