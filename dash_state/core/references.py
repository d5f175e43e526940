"""References: the only thing the browser holds for a server-side store.

``dsr2.<backend>.<key>.<scope><tag>.<signature>``, 65 to 68 bytes whatever the size of the data:

* ``key``: 128 random bits (or a digest, for a layout's initial data), base64url;
* ``scope``: ``s`` written by a server callback, ``c`` written from the browser (a clientside callback,
  ``running=``, an upload), ``a`` initial layout data shared by every visitor of the app, ``u`` a
  user-scoped store's value and ``g`` an app-scoped store's value (:mod:`dash_state.core.shared`; their key
  carries the version, :mod:`dash_state.core.versions`);
* ``tag``: seven base-36 digits of the FNV-1a hash of the store id, so the component can tell a
  reference of another store (copied by clientside code) without asking the server. Not a secret;
* ``signature``: 128 bits of HMAC-SHA256 over (owner, store id, backend, key, scope) with a secret
  derived from the app's ``SECRET_KEY``. The owner is the user's namespace (``@app`` for scope ``a``).

So a reference is bound to one user *and* one store: replaying it in another session, or as the
value of another store, fails the signature check. :func:`parse` accepts only this exact ASCII
shape, so anything malformed is rejected before any crypto or backend call, and signatures are
compared as bytes. Nothing server-internal (user ids, hosts, paths) is in a reference.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, NamedTuple

from dash_state.core.ids import store_key
from dash_state.core.tokens import b64, base36, random_id

PREFIX = "dsr2."
OLD_PREFIXES = ("dsr1.",)  # references of earlier versions: recognised, never accepted
MAX_LENGTH = 256
MAX_STORE_ID = 1024  # characters of a stringified store id that may carry data
APP_OWNER = "@app"
SERVER, CLIENT, APP = "s", "c", "a"
USER_SCOPED, APP_SCOPED = "u", "g"  # values of scope="user" / scope="app" stores
SHARED_SCOPES = (USER_SCOPED, APP_SCOPED)
_SIG_BYTES = 16
PATTERN = re.compile(r"dsr2\.([a-z]{1,16})\.([A-Za-z0-9_-]{22})\.([scaug])([0-9a-z]{7})\.([A-Za-z0-9_-]{22})")
CORE = re.compile(r"[a-z]{1,16}\.[A-Za-z0-9_-]{22}\.[scaug][0-9a-z]{7}\.[A-Za-z0-9_-]{22}")  # after "dsr2."


class Reference(NamedTuple):
    backend: str
    key: str
    scope: str
    tag: str
    signature: bytes


def looks_like_reference(value: object) -> bool:
    """A string that claims to be a reference (well-formed or not): never treated as data."""
    return isinstance(value, str) and (value.startswith(PREFIX) or value.startswith(OLD_PREFIXES))


def id_problem(raw: Any) -> str | None:
    """What is wrong with a component id from a request as a store id, or None if it can be one: a
    string, or a flat dict (string keys; string, number or boolean values, as Dash allows for
    pattern-matching ids). Nothing else is a ServerStore's id, so it is never stringified."""
    if isinstance(raw, str):
        return None
    if not isinstance(raw, dict):
        return f"a component id is a string or a dict, not a {type(raw).__name__}"
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, _ID_VALUES) or value != value:
            return (f"a dict id takes string keys and string, number or boolean values; "
                    f"the value at {key!r:.40} is a {type(value).__name__}")
    return None


_ID_VALUES = (str, int, float)  # bool is an int


def id_key(raw: Any) -> str | None:
    """A store id as Dash stringifies it (a string as it is, a flat dict as sorted JSON), or None for
    anything that cannot be a ServerStore's id (see :func:`id_problem`)."""
    if isinstance(raw, str):
        return raw
    return store_key(raw) if id_problem(raw) is None else None


def dict_id(text: str) -> dict | None:
    """A pattern-matching id from the JSON string Dash keys it by (``{"index":1,"type":"row"}``), or
    None for a plain string id (or text that is no JSON object)."""
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def new_key() -> str:
    return random_id()


def digest_key(*parts: bytes) -> str:
    """A deterministic key, so serving the same initial data again reuses one entry."""
    return b64(hashlib.blake2b(b"\0".join(parts), digest_size=16).digest())


def store_tag(store_id: str) -> str:
    """FNV-1a (32 bit) of the store id's UTF-16 code units, in base 36: what ``storeTag`` in ``src_js/references.js`` computes.

    A dict id is hashed as JavaScript's ``JSON.stringify`` writes it (sorted keys, non-ASCII as is),
    which differs from Dash's Python ``stringify_id`` only in escaping.
    """
    store_id = js_key(store_id)
    value = 0x811C9DC5
    encoded = store_id.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(encoded), 2):
        value ^= encoded[i] | (encoded[i + 1] << 8)
        value = (value * 0x01000193) & 0xFFFFFFFF
    return base36(value).rjust(7, "0")


_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def js_key(store_id: str) -> str:
    """A stringified store id as the browser writes it (``idKey`` in ``src_js/references.js``): keys
    sorted by UTF-16 code units, but listed as a JavaScript object lists them (array-index keys first,
    in numeric order), and lone surrogates escaped as ``JSON.stringify`` escapes them."""
    if isinstance(store_id, str) and store_id.startswith("{"):
        try:
            parsed = json.loads(store_id)
        except (ValueError, RecursionError):  # not a dict id's JSON: a string id that starts with "{"
            return store_id
        if isinstance(parsed, dict):
            order = sorted(parsed, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
            index = sorted((k for k in order if _ARRAY_INDEX.fullmatch(k) and int(k) < 2 ** 32 - 1), key=int)
            ordered = {k: parsed[k] for k in index + [k for k in order if k not in index]}
            text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
            return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return store_id


def make(secret: bytes, owner: str, store_id: str, backend: str, key: str, scope: str = SERVER) -> str:
    signature = b64(_sign(secret, owner, store_id, backend, key, scope))
    return f"{PREFIX}{backend}.{key}.{scope}{store_tag(store_id)}.{signature}"


def parse(token: object) -> Reference | None:
    """The parts of a well-formed reference; None for anything else (the caller logs why)."""
    if not isinstance(token, str) or len(token) > MAX_LENGTH:
        return None
    match = PATTERN.fullmatch(token)
    if match is None:
        return None
    backend, key, scope, tag, signature = match.groups()
    return Reference(backend, key, scope, tag, signature.encode("ascii"))


def verify(secrets_: tuple[bytes, ...], owner: str, store_id: str, ref: Reference) -> bool:
    """True if ``ref`` was signed for ``owner`` and ``store_id`` with any of ``secrets_`` (the current
    secret first, then those of ``SECRET_KEY_FALLBACKS`` while keys rotate)."""
    if len(store_id) > MAX_STORE_ID or ref.tag != store_tag(store_id):
        return False
    for secret in secrets_:
        expected = b64(_sign(secret, owner, store_id, ref.backend, ref.key, ref.scope)).encode("ascii")
        if hmac.compare_digest(ref.signature, expected):
            return True
    return False


def _sign(secret: bytes, owner: str, store_id: str, backend: str, key: str, scope: str) -> bytes:
    message = "\0".join((owner, store_id, backend, key, scope)).encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).digest()[:_SIG_BYTES]


