"""References (``dsr2.<backend>.<key>.<scope><tag7>.<sig>``): bound to one user and one store, strictly
parsed, and tagged with the same FNV-1a hash of the store id that src_js/references.js computes."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from dash._utils import stringify_id
from hypothesis import given, settings, strategies as st

from dash_state.core import references
from dash_state.core.keys import Keys

SECRETS = Keys((b"app secret",)).all("references v2")
SECRET = SECRETS[0]
ROOT = Path(__file__).resolve().parents[1]

# (store id as Dash stringifies it in Python, tag): computed with storeTag(idKey(id)) from
# src_js/references.js under Node 20 (dict ids: the browser's object, idKey sorts its keys).
VECTORS = [
    ("s", "1w9pcoy"),
    ("my-store", "1fyquvv"),
    ("", "0ztntfp"),
    ("ünïcødé", "1btong4"),
    ("漢字", "0gzakty"),
    ("🚀", "0kv4k6w"),  # outside the BMP: two UTF-16 code units, as in JavaScript
    ("a\u2028b", "1m29u96"),
    (stringify_id({"type": "store", "index": 1}), "05jpk3f"),
    (stringify_id({"index": "é🚀", "type": "ünï"}), "0ztywq0"),  # Python escapes, the browser does not
    (stringify_id({"b": 2, "a": "x"}), "1wq0hg6"),
    (stringify_id({"b": 1, "10": 2, "9": 3}), "1a0l123"),  # a JS object lists array-index keys first
    (stringify_id({"01": 1, "1": 2}), "0ink5uo"),
    (stringify_id({"\uffff": 1, "🚀": 2}), "0kmz32y"),  # keys sorted by UTF-16 code units, not code points
    (stringify_id({"a": "x\ud800"}), "0ksuxlr"),  # JSON.stringify escapes a lone surrogate
]
JS_IDS = ["s", "my-store", "", "ünïcødé", "漢字", "🚀", "a\u2028b", {"type": "store", "index": 1},
          {"index": "é🚀", "type": "ünï"}, {"b": 2, "a": "x"}, {"b": 1, "10": 2, "9": 3}, {"01": 1, "1": 2},
          {"\uffff": 1, "🚀": 2}, {"a": "x\ud800"}]


def make(owner="alice", store_id="s", backend="memory", key=None, scope=references.SERVER, secret=SECRET):
    key = key or references.new_key()
    return references.make(secret, owner, store_id, backend, key, scope), key


def test_reference_round_trip_and_size():
    for backend in ("memory", "redis", "database"):
        for scope in (references.SERVER, references.CLIENT, references.APP):
            token, key = make(backend=backend, scope=scope)
            assert token.isascii() and len(token) == 60 + len(backend) <= 68  # whatever the size of the data
            ref = references.parse(token)
            assert (ref.backend, ref.key, ref.scope, ref.tag) == (backend, key, scope, references.store_tag("s"))
            assert isinstance(ref.signature, bytes) and len(ref.signature) == 22
            assert references.verify(SECRETS, "alice", "s", ref)
            assert references.looks_like_reference(token)


def test_signature_binds_owner_store_backend_key_scope_and_secret():
    token, _ = make()
    ref = references.parse(token)
    assert references.verify(SECRETS, "alice", "s", ref)
    assert not references.verify(SECRETS, "bob", "s", ref)
    assert not references.verify(SECRETS, references.APP_OWNER, "s", ref)
    assert not references.verify(SECRETS, "alice", "other-store", ref)
    assert not references.verify(SECRETS, "alice", "other-store", ref._replace(tag=references.store_tag("other-store")))
    assert not references.verify(SECRETS, "alice", "s", ref._replace(backend="redis"))
    assert not references.verify(SECRETS, "alice", "s", ref._replace(key=references.new_key()))
    assert not references.verify(SECRETS, "alice", "s", ref._replace(scope=references.APP))
    assert not references.verify(SECRETS, "alice", "s", ref._replace(scope=references.CLIENT))
    assert not references.verify(Keys((b"other",)).all("references v2"), "alice", "s", ref)
    assert not references.verify((), "alice", "s", ref)


def test_separators_cannot_be_shifted_between_fields():
    """The signed message joins fields with NUL: moving characters between owner and store id fails."""
    token, _ = make(owner="ab", store_id="c")
    ref = references.parse(token)
    assert not references.verify(SECRETS, "a", "bc", ref._replace(tag=references.store_tag("bc")))
    assert not references.verify(SECRETS, "ab\0c", "", ref._replace(tag=references.store_tag("")))


def test_fallback_secrets_verify_old_references_during_a_rotation():
    old = Keys((b"old secret",)).all("references v2")
    rotated = Keys((b"new secret", b"old secret")).all("references v2")
    token, _ = make(secret=old[0])
    ref = references.parse(token)
    assert references.verify(rotated, "alice", "s", ref)
    assert not references.verify(Keys((b"new secret",)).all("references v2"), "alice", "s", ref)
    new_token, _ = make(secret=rotated[0])
    assert not references.verify(old, "alice", "s", references.parse(new_token))


@pytest.mark.parametrize("store_id, tag", VECTORS)
def test_store_tag_matches_the_javascript_vectors(store_id, tag):
    assert references.store_tag(store_id) == tag
    token, _ = make(store_id=store_id)
    assert references.parse(token).tag == tag
    assert references.verify(SECRETS, "alice", store_id, references.parse(token))


def test_a_dict_id_hashes_like_the_browser_writes_it():
    python_form = stringify_id({"type": "ünï", "index": "é🚀"})
    assert "\\u00e9" in python_form  # Dash's Python side escapes non-ASCII...
    assert references.js_key(python_form) == '{"index":"é🚀","type":"ünï"}'  # ...the browser does not
    assert references.store_tag(python_form) == references.store_tag('{"index":"é🚀","type":"ünï"}') == "0ztywq0"
    assert references.js_key("{not json") == "{not json"  # a string id that only looks like JSON


NODE = shutil.which("node")
JS_TAGS = """
const fs = require('fs');
const source = fs.readFileSync(process.argv[1], 'utf8');
import('data:text/javascript;base64,' + Buffer.from(source).toString('base64')).then(m => {
    const ids = JSON.parse(fs.readFileSync(0, 'utf8'));
    process.stdout.write(JSON.stringify(ids.map(id => m.storeTag(m.idKey(id)))));
});
"""


def js_tags(ids: list) -> list[str]:
    done = subprocess.run([NODE, "-e", JS_TAGS, str(ROOT / "src_js" / "references.js")], input=json.dumps(ids),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


ID_TEXT = st.text(max_size=12) | st.text(alphabet="09a\uffff\U0001f680\ud800\udc00é", max_size=4)
ID_KEYS = st.text(min_size=1, max_size=6) | st.from_regex(r"\A(0|[1-9][0-9]{0,10}|0[0-9])\Z") | \
    st.text(alphabet="9a\uffff\U0001f680\ud800", min_size=1, max_size=3)


@pytest.mark.skipif(NODE is None, reason="needs node to run src_js/references.js")
@settings(max_examples=10, deadline=None)
@given(st.lists(ID_TEXT | st.dictionaries(ID_KEYS, ID_TEXT | st.integers(-10**6, 10**6) | st.booleans(),
                                          min_size=1, max_size=4),
                min_size=30, max_size=60))
def test_store_tag_equals_the_javascript_implementation(ids):
    """The browser's own code, run by Node, on ids it would hold (strings, and dicts as Dash sends them)."""
    python = [references.store_tag(i if isinstance(i, str) else stringify_id(i)) for i in ids]
    assert python == js_tags(ids)


@pytest.mark.skipif(NODE is None, reason="needs node to run src_js/references.js")
def test_the_recorded_vectors_are_what_the_javascript_computes():
    assert js_tags(JS_IDS) == [tag for _, tag in VECTORS]
    assert [references.store_tag(i if isinstance(i, str) else stringify_id(i)) for i in JS_IDS] == js_tags(JS_IDS)


def test_lone_surrogates_in_a_string_id_are_hashed_as_code_units():
    assert references.store_tag("\ud800") == references.store_tag("\ud800")  # no UnicodeEncodeError
    token, _ = make(store_id="x\udfff")
    assert references.verify(SECRETS, "alice", "x\udfff", references.parse(token))


VALID = "dsr2.memory." + "A" * 22 + ".s" + "0ztntfp" + "." + "B" * 22


@pytest.mark.parametrize("token", [
    None, 1, 1.5, b"dsr2.memory", ["dsr2"], {"dsr2": 1}, "", "dsr1", "dsr2", "dsr2.memory.x.y", "dsr2.memory.x.y.z",
    "dsr2.mem0ry." + "A" * 22 + ".s0ztntfp." + "B" * 22,
    "dsr2.memory." + "A" * 21 + ".s0ztntfp." + "B" * 22,
    "dsr2.memory." + "A" * 23 + ".s0ztntfp." + "B" * 22,
    "dsr2.memory." + "A" * 22 + ".x0ztntfp." + "B" * 22,  # unknown scope
    "dsr2.memory." + "A" * 22 + ".s0ztnt." + "B" * 22,  # six-digit tag
    "dsr2.memory." + "A" * 22 + ".s0ZTNTFP." + "B" * 22,  # tags are lower case
    "dsr2.memory." + "A" * 22 + ".s0ztntfp." + "B" * 21,
    "dsr2.memory." + "A" * 22 + ".s0ztntfp." + "B" * 23,
    "dsr2.memory." + "A" * 22 + ".s0ztntfp.",
    "dsr2.Memory." + "A" * 22 + ".s0ztntfp." + "B" * 22,
    "dsr2.abcdefghijklmnopq." + "A" * 22 + ".s0ztntfp." + "B" * 22,  # 17-letter backend
    "dsr1.memory." + "A" * 22 + ".s",
    VALID[:-1] + "é",  # non-ASCII in the signature
    VALID[:-1] + "Ｂ",  # a fullwidth letter
    VALID.replace("0ztntfp", "0ztntf٣"),  # an Arabic-Indic digit in the tag
    VALID.replace("A" * 22, "A" * 21 + "é"),
    VALID + "\n", " " + VALID, VALID + " ", VALID + "\x00", VALID.replace(".", "\u2024"),
    VALID + "." + "C" * 200, "dsr2.memory." + "A" * 300 + ".s0ztntfp." + "B" * 22,
    VALID[:-1] + "\ud800",  # a lone surrogate
])
def test_malformed_tokens_do_not_parse_and_do_not_raise(token):
    assert references.parse(token) is None


def test_the_valid_shape_parses():
    ref = references.parse(VALID)
    assert ref == references.Reference("memory", "A" * 22, "s", "0ztntfp", b"B" * 22)
    assert not references.verify(SECRETS, "alice", "", ref)  # well-formed, but nobody signed it


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120) | st.text(alphabet="dsr2.memoryAB_-sca0123456789é", max_size=90))
def test_parse_never_raises_and_accepts_only_the_exact_shape(token):
    ref = references.parse(token)
    if ref is not None:
        rebuilt = f"dsr2.{ref.backend}.{ref.key}.{ref.scope}{ref.tag}.{ref.signature.decode('ascii')}"
        assert rebuilt == token and token.isascii()
    assert references.looks_like_reference(token) == (token.startswith("dsr2.") or token.startswith("dsr1."))


def test_a_tampered_signature_compares_as_bytes_and_fails_quietly():
    token, _ = make()
    ref = references.parse(token)
    for signature in (b"A" * 22, ref.signature[:-1] + b"A" if ref.signature[-1:] != b"A" else ref.signature[:-1] + b"B",
                      b"", ref.signature + b"A", "é".encode() * 11):
        assert not references.verify(SECRETS, "alice", "s", ref._replace(signature=signature))


def test_store_ids_too_long_to_carry_a_tag_are_refused():
    store_id = "x" * (references.MAX_STORE_ID + 1)
    token, _ = make(store_id=store_id)
    assert not references.verify(SECRETS, "alice", store_id, references.parse(token))


def test_keys_are_random_and_digests_are_stable():
    assert len({references.new_key() for _ in range(1000)}) == 1000
    assert all(len(references.new_key()) == 22 for _ in range(100))
    assert references.digest_key(b"a", b"b") == references.digest_key(b"a", b"b")
    assert references.digest_key(b"a", b"b") != references.digest_key(b"a", b"c")
    assert references.parse(f"dsr2.memory.{references.digest_key(b'x')}.a0ztntfp.{'B' * 22}") is not None
