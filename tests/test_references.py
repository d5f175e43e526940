import pytest

from dash_state import references

SECRET = references.derive_secret(b"app secret")


def test_reference_round_trip_and_size():
    key = references.new_key()
    token = references.make(SECRET, "alice", "memory", key)
    assert len(token) <= references.MAX_LENGTH and len(token) < 80
    ref = references.parse(token)
    assert ref.backend == "memory" and ref.key == key
    assert references.verify(SECRET, "alice", ref)


def test_signature_binds_user_backend_key_and_secret():
    key = references.new_key()
    ref = references.parse(references.make(SECRET, "alice", "memory", key))
    assert not references.verify(SECRET, "bob", ref)
    assert not references.verify(references.derive_secret(b"other"), "alice", ref)
    assert not references.verify(SECRET, "alice", ref._replace(backend="redis"))
    assert not references.verify(SECRET, "alice", ref._replace(key=references.new_key()))


@pytest.mark.parametrize("token", [None, 1, "", "dsr1", "dsr2.memory.x.y", "dsr1.memory.x.y.z",
                                   "dsr1.mem0ry." + "A" * 22 + ".s", "dsr1.memory." + "A" * 21 + ".s",
                                   "dsr1.memory." + "A" * 22 + ".", "dsr1.memory." + "A" * 300 + ".s"])
def test_malformed_tokens_do_not_parse(token):
    assert references.parse(token) is None


def test_keys_are_random_and_digests_are_stable():
    assert len({references.new_key() for _ in range(1000)}) == 1000
    assert references.digest_key(b"a", b"b") == references.digest_key(b"a", b"b")
    assert references.digest_key(b"a", b"b") != references.digest_key(b"a", b"c")
