"""Configuration: defaults, then ``config.toml``, then environment variables, then app/init_app settings.

Later sources win. Every value is validated once, when the app starts, and an error names the key and
the source it came from, so a typo in production fails loudly instead of silently using a default.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .defaults import BACKEND_NAMES, DEFAULTS, STORE_DEFAULTS
from .errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_STORE_KEYS = {"backend", "ttl", *STORE_DEFAULTS}
_WHOLE_NUMBERS = {"STATE_MEMORY_MAX_BYTES": 1, "STATE_COMPRESSION_MIN_BYTES": 0, "STATE_RETRIES": 0,
                  "STATE_READ_CACHE_BYTES": 0, "STATE_MAX_VALUE_BYTES": 1, "STATE_MAX_USER_BYTES": 1,
                  "STATE_COOKIE_MAX_AGE": 60, "STATE_NEW_VISITOR_SECONDS": 0, "STATE_LOCAL_MAX_BYTES": 1 << 20,
                  "STATE_VALUES_PER_STORE": 1, "STATE_NEAR_TIER_BYTES": 0}
_BOOLEANS = {"STATE_ENABLE_USER_ISOLATION", "STATE_LOGIN_CARRY_OVER", "STATE_LOGOUT_DELETE",
             "STATE_COOKIE_HOST_PREFIX", "STATE_METRICS", "STATE_PROMETHEUS"}
_CHOICES = {"STATE_COMPRESSION": ("off", "zstd"), "STATE_ENCRYPTION": ("aes-gcm", "hmac")}


@dataclass(frozen=True)
class StoreSettings:
    backend: str
    ttl: float
    latest_only: bool = False
    client_read: bool = False
    client_write: bool = True


@dataclass(frozen=True)
class Config:
    """Validated settings. ``sources`` tells, per key, where the value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def store(self, store_id: str) -> StoreSettings:
        """Backend and TTL for one store id (stringified as Dash does for dict ids)."""
        own = self.values["STATE_STORES"].get(store_id, {})
        flags = {name: own.get(name, default) for name, default in STORE_DEFAULTS.items()}
        if flags["latest_only"]:
            flags["client_write"] = False  # server-decided facts are never taken from the browser
        return StoreSettings(backend=own.get("backend", self.values["STATE_BACKEND"]),
                             ttl=own.get("ttl", self.values["STATE_TTL_DEFAULT"]), **flags)

    def backends_in_use(self) -> set[str]:
        used = {self.values["STATE_BACKEND"]}
        used.update(s["backend"] for s in self.values["STATE_STORES"].values() if "backend" in s)
        return used


def config_file_path() -> tuple[Path, bool]:
    """The config file and whether the user named it explicitly (then it must exist and parse)."""
    named = os.environ.get("STATE_CONFIG_FILE")
    if named:
        return Path(named), True
    return Path.cwd() / "config.toml", False


def read_config_file() -> tuple[dict, str]:
    path, explicit = config_file_path()
    label = f"config file {path}"
    if not path.exists():
        if explicit:
            raise ConfigError(f"STATE_CONFIG_FILE names {path}, which does not exist")
        return {}, label
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # An unrelated, broken config.toml must not break apps that do not configure dash-state.
        if explicit or "STATE_" in text:
            raise ConfigError(f"{label} is not valid TOML: {exc}") from None
        return {}, label
    return {k: v for k, v in data.items() if k.startswith("STATE_")}, label


def read_environment(environ: Mapping[str, str] | None = None) -> dict:
    environ = os.environ if environ is None else environ
    found = {}
    for key in DEFAULTS:
        if key in environ:
            raw = environ[key]
            if key == "STATE_STORES":
                try:
                    raw = json.loads(raw)
                except ValueError as exc:
                    raise ConfigError(f"environment variable STATE_STORES is not valid JSON: {exc}") from None
            found[key] = raw
    return found


def build_config(*layers: tuple[Mapping[str, Any], str]) -> Config:
    """Merge ``(values, source_label)`` layers over the defaults and validate the result."""
    values: dict[str, Any] = {k: v for k, v in DEFAULTS.items() if k != "STATE_STORES"}
    stores: dict[str, dict] = {}
    sources = {k: "default" for k in DEFAULTS}
    for layer, label in layers:
        for key, value in layer.items():
            if not key.startswith("STATE_") or key == "STATE_CONFIG_FILE":
                continue
            if key not in DEFAULTS:
                raise ConfigError(f"unknown setting {key} in {label}; known settings: {', '.join(DEFAULTS)}")
            sources[key] = label
            if key == "STATE_STORES":
                _merge_stores(stores, value, label)
            else:
                values[key] = _validate(key, value, label)
    values["STATE_STORES"] = stores
    return Config(values=values, sources=sources)


def load_config(server_config: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    file_values, file_label = read_config_file()
    return build_config(
        (file_values, file_label),
        (read_environment(), "the environment"),
        (server_config or {}, "app.server.config"),
        (overrides or {}, "init_app()"),
    )


def _validate(key: str, value: Any, label: str) -> Any:
    where = f"{key} in {label}"
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
    if key == "STATE_BACKEND_TIMEOUT":
        number = _number(value, where)
        if not 0 < number <= 300:
            raise ConfigError(f"{where} must be a number of seconds between 0 and 300, got {value!r}")
        return number
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, _CHOICES[key]))}, got {value!r}")
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
        if not isinstance(value, str) or "://" not in value:
            raise ConfigError(f"{where} must be a URL such as scheme://host/..., got {type(value).__name__}")
        return value
    return value


def _merge_stores(stores: dict[str, dict], value: Any, label: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"STATE_STORES in {label} must be a table of store ids, got {type(value).__name__}")
    for store_id, settings in value.items():
        where = f"STATE_STORES.{store_id} in {label}"
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where} must be a table with any of {', '.join(sorted(_STORE_KEYS))}")
        unknown = set(settings) - _STORE_KEYS
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(_STORE_KEYS))}")
        merged = stores.setdefault(str(store_id), {})
        if "backend" in settings:
            merged["backend"] = _backend(settings["backend"], f"{where}.backend")
        if "ttl" in settings:
            merged["ttl"] = _ttl(settings["ttl"], f"{where}.ttl")
        for flag in STORE_DEFAULTS:
            if flag in settings:
                merged[flag] = _boolean(settings[flag], f"{where}.{flag}")


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{where} must be true or false, got {value!r}")


def _backend(value: Any, where: str) -> str:
    name = value.strip().lower() if isinstance(value, str) else value
    if name not in BACKEND_NAMES:
        raise ConfigError(f"{where}: unknown backend {value!r}; choose one of {', '.join(BACKEND_NAMES)}")
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
