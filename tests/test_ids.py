"""One stringification of store ids (dash_state.core.ids.store_key), the same as Dash's own."""
import pytest
from dash import ALL, MATCH
from dash._utils import stringify_id
from hypothesis import given
from hypothesis import strategies as st

from dash_state.core.ids import store_key

json_scalars = st.one_of(st.text(), st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False))


@given(st.text())
def test_a_string_id_is_itself(store_id):
    assert store_key(store_id) == store_id


@given(st.dictionaries(st.text(min_size=1), json_scalars, min_size=1, max_size=5))
def test_a_dict_id_is_written_as_dash_writes_it(store_id):
    assert store_key(store_id) == stringify_id(store_id)


@pytest.mark.parametrize("wildcard", [ALL, MATCH])
def test_a_wildcard_id_is_written_as_dash_writes_it(wildcard):
    store_id = {"type": "notes", "index": wildcard}
    assert store_key(store_id) == stringify_id(store_id) == '{"index":["%s"],"type":"notes"}' % wildcard


def test_key_order_does_not_matter():
    assert store_key({"b": 1, "a": "é"}) == store_key({"a": "é", "b": 1}) == '{"a":"\\u00e9","b":1}'
