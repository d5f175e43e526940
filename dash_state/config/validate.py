"""Validation of each setting and of ``STATE_STORES`` tables, with did-you-mean hints for misspelt
names and :func:`mask_url` for URLs put in messages."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dash_state.core.ids import store_key
from dash_state.core.references import dict_id
from dash_state.defaults import BACKEND_NAMES, STORE_CHOICES, STORE_DEFAULTS
from dash_state.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_STORE_KEYS = {"backend", "ttl", *STORE_DEFAULTS, *STORE_CHOICES}
_WHOLE_NUMBERS = {"STATE_MEMORY_MAX_BYTES": 1, "STATE_COMPRESSION_MIN_BYTES": 0, "STATE_RETRIES": 0,
                  "STATE_READ_CACHE_BYTES": 0, "STATE_MAX_VALUE_BYTES": 1, "STATE_MAX_USER_BYTES": 1,
                  "STATE_COOKIE_MAX_AGE": 60, "STATE_NEW_VISITOR_SECONDS": 0, "STATE_LOCAL_MAX_BYTES": 1 << 20,
                  "STATE_VALUES_PER_STORE": 1, "STATE_NEAR_TIER_BYTES": 0,
                  "STATE_LIVE_MAX_STREAMS": 0}
_BOOLEANS = {"STATE_ENABLE_USER_ISOLATION", "STATE_LOGIN_CARRY_OVER", "STATE_LOGOUT_DELETE",
             "STATE_COOKIE_HOST_PREFIX", "STATE_METRICS", "STATE_PROMETHEUS"}
_CHOICES = {"STATE_COMPRESSION": ("off", "zstd"), "STATE_ENCRYPTION": ("aes-gcm", "hmac"),
            "STATE_LIVE_TRANSPORT": ("auto", "sse", "poll")}


def _did_you_mean(word: str, choices: Iterable[str], quote: bool = False) -> str:
    """`` (did you mean X?)`` for the closest of ``choices``, or an empty string."""
    choices = list(choices)
    if word.startswith("STATE_"):  # the shared prefix would make every name look alike: compare the rest
        by_rest = {c[len("STATE_"):]: c for c in choices if c.startswith("STATE_")}
        close = [by_rest[c] for c in difflib.get_close_matches(word[len("STATE_"):], list(by_rest), n=1, cutoff=0.75)]
    else:
        close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quote else f" (did you mean {close[0]}?)"


def _validate(key: str, value: Any, label: str) -> Any:
    where = f"{key} (in {label})"
    if key == "STATE_BACKEND":
        return _backend(value, where)
    if key == "STATE_TTL_DEFAULT":
        return _ttl(value, where)
    if key in _BOOLEANS:
        return _boolean(value, where)
    if key in _WHOLE_NUMBERS:
        number, least = _number(value, where), _WHOLE_NUMBERS[key]
        if number < least or number != int(number):
            raise ConfigError(f"{where} must be a whole number of at least {least}, got {value!r}")
        return int(number)
    if key == "STATE_TOUCH_FRACTION":
        number = _number(value, where)
        if not 0 < number < 1:
            raise ConfigError(f"{where} must be between 0 and 1 (a fraction of the TTL), got {value!r}")
        return number
    if key in ("STATE_LIVE_POLL_SECONDS", "STATE_LIVE_STREAM_SECONDS"):
        number = _number(value, where)
        least, most = (0.2, 3600) if key == "STATE_LIVE_POLL_SECONDS" else (5, 86400)
        if not least <= number <= most:
            raise ConfigError(f"{where} must be a number of seconds between {least} and {most}, got {value!r}")
        return number
    if key == "STATE_BACKEND_TIMEOUT":
        number = _number(value, where)
        if not 0 < number <= 300:
            raise ConfigError(f"{where} must be a number of seconds between 0 and 300, got {value!r}")
        return number
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            hint = _did_you_mean(value, _CHOICES[key], quote=True) if isinstance(value, str) else ""
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, _CHOICES[key]))}, got {value!r}{hint}")
        return value
    if key == "STATE_COOKIE_SECURE":
        return "auto" if value == "auto" else _boolean(value, where)
    if key == "STATE_USER_RESOLVER":
        if callable(value) or (isinstance(value, str) and value):
            return value
        raise ConfigError(f"{where} must be a resolver name, 'module:function' or a callable, got {value!r}")
    if key == "STATE_AUDIT_LOG":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be 'off', 'logger' or a file path, got {value!r}")
        return value
    if key == "STATE_COOKIE_NAME":
        if not isinstance(value, str) or not value or not all(c.isalnum() or c in "_-" for c in value):
            raise ConfigError(f"{where} must be a cookie name of letters, digits, '_' and '-', got {value!r}")
        return value
    if key in ("STATE_KEY_PREFIX", "STATE_DATABASE_TABLE", "STATE_LOCAL_PATH", "STATE_NEAR_TIER_PATH"):
        if not isinstance(value, str) or (key == "STATE_DATABASE_TABLE" and not value.isidentifier()):
            raise ConfigError(f"{where} must be a {'table name' if 'TABLE' in key else 'string'}, got {value!r}")
        return value
    if key in ("STATE_REDIS_URL", "STATE_DATABASE_URL"):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a URL such as scheme://host/..., got {type(value).__name__}")
        if "://" not in value:
            raise ConfigError(f"{where} must be a URL such as scheme://host/..., got {mask_url(value)!r}")
        return value
    return value


def _merge_stores(stores: dict[str, dict], value: Any, label: str, sources: dict[str, str]) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"STATE_STORES (in {label}) must be a table of store ids, got {type(value).__name__}")
    for raw_id, settings in value.items():
        store_id = canonical_store_id(str(raw_id))
        name = f"STATE_STORES.{raw_id}"
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{name} (in {label}) must be a table with any of {', '.join(sorted(_STORE_KEYS))}")
        unknown = sorted(set(settings) - _STORE_KEYS)
        if unknown:
            named = ", ".join(f"{name}.{key}{_did_you_mean(key, _STORE_KEYS)}" for key in unknown)
            raise ConfigError(f"unknown per-store setting {named} (in {label}); allowed: "
                              f"{', '.join(sorted(_STORE_KEYS))}")
        merged = stores.setdefault(store_id, {})
        if "backend" in settings:
            merged["backend"] = _backend(settings["backend"], f"{name}.backend (in {label})")
        if "ttl" in settings:
            merged["ttl"] = _ttl(settings["ttl"], f"{name}.ttl (in {label})")
        for flag in STORE_DEFAULTS:
            if flag in settings:
                merged[flag] = _boolean(settings[flag], f"{name}.{flag} (in {label})")
        for key, choices in STORE_CHOICES.items():
            if key in settings:
                merged[key] = store_choice(key, settings[key], f"{name}.{key} (in {label})")
        for key in settings:
            sources[f"STATE_STORES.{store_id}.{key}"] = label
        sources[f"STATE_STORES.{store_id}"] = label


def canonical_store_id(store_id: str) -> str:
    """A pattern-matching id written as JSON (``{"type": "row", "index": 1}``) in Dash's own spelling
    (sorted keys, no spaces: ``{"index":1,"type":"row"}``), the form store settings are looked up by;
    any other id as it is."""
    parsed = dict_id(store_id)
    return store_id if parsed is None else store_key(parsed)


def store_choice(key: str, value: Any, where: str) -> str:
    """A per-store word setting (``scope``), checked against :data:`STORE_CHOICES`."""
    choices = STORE_CHOICES[key]
    word = value.strip().lower() if isinstance(value, str) else value
    if word not in choices:
        hint = _did_you_mean(word, choices, quote=True) if isinstance(word, str) else ""
        raise ConfigError(f"{where} must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}")
    return word


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{where} must be true or false, got {value!r}")


def _backend(value: Any, where: str) -> str:
    name = value.strip().lower() if isinstance(value, str) else value
    if name not in BACKEND_NAMES:
        hint = _did_you_mean(name, BACKEND_NAMES, quote=True) if isinstance(name, str) else ""
        raise ConfigError(f"{where}: unknown backend {value!r}{hint}; choose one of {', '.join(BACKEND_NAMES)}")
    return name


def _ttl(value: Any, where: str) -> float:
    number = _number(value, where)
    if number <= 0:
        raise ConfigError(f"{where} must be a positive number of seconds, got {value!r}")
    return number


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {value!r}") from None


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (``redis://:***@host:6379/0``); errs on masking too
    much, never too little. Use it wherever a URL is logged or put in an error message."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{hosts}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", scheme + sep + rest)
