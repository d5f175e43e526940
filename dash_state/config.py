"""Configuration: defaults, then ``config.toml``, then environment variables, then app/init_app settings.

Later sources win. Every value is validated once, when the app starts, and an error names the key and
the source it came from, so a typo in production fails loudly instead of silently using a default.
"""
from __future__ import annotations

import difflib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
#: STATE_* environment variables that dash-state reads besides its settings: the config file's path,
#: and (by prefix) the variables of its own test-suite and benchmarks. Every other STATE_* variable
#: that is not a setting is refused at start-up: it is almost always a misspelt setting.
ENVIRONMENT_ALSO_READ = ("STATE_CONFIG_FILE",)
ENVIRONMENT_PREFIXES_ALSO_READ = ("STATE_TEST_",)


@dataclass(frozen=True)
class StoreSettings:
    backend: str
    ttl: float
    latest_only: bool = False
    client_read: bool = False
    client_write: bool = True
    mirror: bool = True  # the setting: clientside users make it held in the browser too
    mirrored: bool = False  # the outcome (set by the manager): held in the browser because of them


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
    """The settings among the environment variables. A ``STATE_*`` variable that is neither a setting
    nor in :data:`ENVIRONMENT_ALSO_READ` is an error: a misspelt ``STATE_REDIS_ULR`` must not silently
    leave the app on the default Redis URL."""
    environ = os.environ if environ is None else environ
    found = {}
    unknown = []
    for key in sorted(environ):
        if not key.startswith("STATE_"):
            continue
        if key not in DEFAULTS:
            if key not in ENVIRONMENT_ALSO_READ and not key.startswith(ENVIRONMENT_PREFIXES_ALSO_READ):
                unknown.append(key)
            continue
        raw = environ[key]
        if key == "STATE_STORES":
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ConfigError(f"environment variable STATE_STORES is not valid JSON: {exc}") from None
        found[key] = raw
    if unknown:
        hints = [_did_you_mean(key, DEFAULTS) for key in unknown]
        named = "; ".join(f"{key}{hint}" for key, hint in zip(unknown, hints))
        listed = "" if all(hints) else f" Settings: {', '.join(DEFAULTS)}."
        raise ConfigError(
            f"unknown dash-state setting{'s' if len(unknown) > 1 else ''} in the environment: {named}. dash-state "
            f"reads every STATE_* environment variable, so one that is not a setting is taken for a typo: rename "
            f"or unset it. (Besides the settings, {', '.join(ENVIRONMENT_ALSO_READ)} and "
            f"{', '.join(p + '*' for p in ENVIRONMENT_PREFIXES_ALSO_READ)} are allowed.){listed}")
    return found


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
                hint = _did_you_mean(key, DEFAULTS)
                listed = "" if hint else f"; known settings: {', '.join(DEFAULTS)}"
                raise ConfigError(f"unknown setting {key} (in {label}){hint}{listed}")
            sources[key] = label
            if key == "STATE_STORES":
                _merge_stores(stores, value, label, sources)
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
        for key in settings:
            sources[f"STATE_STORES.{store_id}.{key}"] = label
        sources[f"STATE_STORES.{store_id}"] = label


def canonical_store_id(store_id: str) -> str:
    """A pattern-matching id written as JSON (``{"type": "row", "index": 1}``) in Dash's own spelling
    (sorted keys, no spaces: ``{"index":1,"type":"row"}``), the form store settings are looked up by;
    any other id as it is."""
    if not store_id.startswith("{"):
        return store_id
    try:
        parsed = json.loads(store_id)
    except ValueError:
        return store_id
    if not isinstance(parsed, dict):
        return store_id
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(parsed[k])}" for k in sorted(parsed)) + "}"


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


# -- start-up checks and messages ----------------------------------------------------------------------

def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (``redis://:***@host:6379/0``); errs on masking too
    much, never too little. Use it wherever a URL is logged or put in an error message."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{hosts}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", scheme + sep + rest)


def unknown_store_warnings(config: Config, known_ids: Iterable[str]) -> list[str]:
    """One message per ``[STATE_STORES.<id>]`` whose id is no ServerStore id in ``known_ids`` (ids as
    Dash stringifies them), with the closest known ids: a misspelt ``[STATE_STORES.filtres]`` otherwise
    leaves ``filters`` on the default settings without a word. A pattern-matching id counts as known
    when a known id has the same keys and string values (its numbers may differ: those stores are often
    made later by callbacks)."""
    known = [str(k) for k in known_ids]
    families = {_family(k) for k in known} - {None}
    messages = []
    for store_id in config["STATE_STORES"]:
        if store_id in known or (_family(store_id) is not None and _family(store_id) in families):
            continue
        source = config.sources.get(f"STATE_STORES.{store_id}", "the configuration")
        hint = _did_you_mean(store_id, known, quote=True)
        listed = ", ".join(repr(k) for k in sorted(known)[:20]) or "none"
        messages.append(f"[STATE_STORES.{store_id}] (in {source}) names no ServerStore of this app{hint}; its "
                        f"settings apply to no store. ServerStore ids in the layout: {listed}")
    return messages


def _family(store_id: str) -> tuple | None:
    if not store_id.startswith("{"):
        return None
    try:
        parsed = json.loads(store_id)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return frozenset(parsed), frozenset((k, v) for k, v in parsed.items() if isinstance(v, str))


_WHERE = {"memory": "in this process", "client": "in the browser"}


def describe_backends(config: Config, local_path: str | None = None) -> str:
    """The start-up line: each backend in use, the stores on it and where it keeps them, e.g.
    ``dash-state: stores on local (/dev/shm/dash-state-...); merged-store, filters on redis
    (redis://:***@127.0.0.1:6379/0); table-cache on client (in the browser)``."""
    default = config["STATE_BACKEND"]
    families: dict[str, list[str]] = {default: []}
    for store_id, own in config["STATE_STORES"].items():
        if own.get("backend", default) != default:
            families.setdefault(own["backend"], []).append(store_id)
    parts = []
    for name, ids in families.items():
        who = ", ".join(ids) if name != default else ("other stores" if len(families) > 1 else "stores")
        parts.append(f"{who} on {name} ({backend_location(config, name, local_path)})")
    return "dash-state: " + "; ".join(parts)


def backend_location(config: Config, name: str, local_path: str | None = None) -> str:
    if name == "redis":
        return mask_url(config["STATE_REDIS_URL"])
    if name == "database":
        return mask_url(config["STATE_DATABASE_URL"])
    if name == "local":
        return config["STATE_LOCAL_PATH"] or local_path or "a directory per app under /dev/shm or the temp dir"
    return _WHERE[name]


# pip extras; the database ones by URL dialect
_DATABASE_EXTRAS = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_SEALED = ("redis", "database", "local")
_DRIVER_PACKAGES = {"MySQLdb": "mysqlclient", "psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]"}  # backends whose values pass through the seal (AES-GCM)


def _install(extra: str | None, package: str) -> str:
    return f'pip install "dash-state[{extra}]"' if extra else f"pip install {package}"


def _database_extra(config: Config) -> str:
    scheme = config["STATE_DATABASE_URL"].partition("://")[0].partition("+")[0].lower()
    return _DATABASE_EXTRAS.get(scheme, "database")


def used_by(config: Config, name: str) -> str:
    """Which setting puts backend ``name`` in use, and where it was set."""
    if config["STATE_BACKEND"] == name:
        return f"STATE_BACKEND = {name!r} ({_source(config, 'STATE_BACKEND')})"
    for store_id, own in config["STATE_STORES"].items():
        if own.get("backend") == name:
            source = config.sources.get(f"STATE_STORES.{store_id}.backend", "the configuration")
            return f"STATE_STORES.{store_id}.backend = {name!r} (from {source})"
    return f"the {name} backend"


def _importable(module: str) -> str | None:
    """None if ``module`` imports, else the name of the missing package."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return (getattr(exc, "name", None) or module).partition(".")[0]
    return None


def _source(config: Config, key: str) -> str:
    source = config.sources.get(key, "default")
    return "the default" if source == "default" else f"from {source}"


def check_requirements(config: Config) -> list[str]:
    """Refuse, with a ConfigError naming the package and the pip extra to install, a configuration whose
    client libraries are missing or whose URLs cannot be parsed. Connects to nothing, so an app may
    start before its Redis or database does. Returns warnings (to log) for what may only be needed later."""
    in_use = config.backends_in_use()
    if "redis" in in_use:
        missing = _importable("redis")
        if missing:
            raise ConfigError(f"{used_by(config, 'redis')} needs the {missing} package, which is not installed: "
                              f"{_install('redis', 'redis')}")
        from .backends.redis.connection import parse_url

        try:
            parse_url(config["STATE_REDIS_URL"])
        except ValueError as exc:
            source = _source(config, "STATE_REDIS_URL")
            raise ConfigError(f"STATE_REDIS_URL ({source}) cannot be parsed ({exc}): "
                              f"{mask_url(config['STATE_REDIS_URL'])}") from None
    if "database" in in_use:
        _check_database(config)
    if config["STATE_ENCRYPTION"] == "aes-gcm" and in_use & set(_SEALED):
        missing = _importable("cryptography.hazmat.primitives.ciphers.aead")
        if missing:
            name = next(n for n in ("redis", "database", "local") if n in in_use)
            extra = {"redis": "redis", "database": _database_extra(config), "local": None}[name]
            raise ConfigError(
                f"{used_by(config, name)} seals values with AES-GCM (STATE_ENCRYPTION = 'aes-gcm', "
                f"{_source(config, 'STATE_ENCRYPTION')}), which needs the {missing} package, not installed "
                f"here: {_install(extra, 'cryptography')}, or set STATE_ENCRYPTION = 'hmac'")
    if config["STATE_COMPRESSION"] == "zstd" and in_use & set(_SEALED) and _importable("zstandard"):
        raise ConfigError(f"STATE_COMPRESSION = 'zstd' ({_source(config, 'STATE_COMPRESSION')}) needs the "
                          f"zstandard package, which is not installed: {_install('zstd', 'zstandard')}")
    if config["STATE_PROMETHEUS"] and _importable("prometheus_client"):
        raise ConfigError(f"STATE_PROMETHEUS = true ({_source(config, 'STATE_PROMETHEUS')}) needs the "
                          f"prometheus-client package, which is not installed: {_install('metrics', 'prometheus-client')}")
    warnings = []
    byte_backends = sorted(in_use & set(_SEALED))  # every backend but memory and client encodes frames as Arrow
    if byte_backends and ("pandas" in sys.modules or "numpy" in sys.modules) and _importable("pyarrow"):
        warnings.append(f"dash-state: {used_by(config, byte_backends[0])}: DataFrames, Series and numpy arrays "
                        f"stored there travel as Arrow IPC, and pyarrow is not installed: such writes will be "
                        f"refused. {_install('arrow', 'pyarrow')}")
    return warnings


def _check_database(config: Config) -> None:
    extra = _database_extra(config)
    missing = _importable("sqlalchemy")
    if missing:
        raise ConfigError(f"{used_by(config, 'database')} needs the {missing} package, which is not installed: "
                          f"{_install(extra, 'sqlalchemy')}")
    from .backends.database.engines import DRIVERS, check_url

    url = check_url(config["STATE_DATABASE_URL"], config.sources.get("STATE_DATABASE_URL", "default"))
    where = f"STATE_DATABASE_URL ({_source(config, 'STATE_DATABASE_URL')}) = {mask_url(config['STATE_DATABASE_URL'])}"
    try:
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except ImportError as exc:
        module = (getattr(exc, "name", None) or str(exc)).partition(".")[0]
        extra = {"psycopg": "postgres", "pymysql": "mysql"}.get(module)
        package = _DRIVER_PACKAGES.get(module, module)
        other = "" if extra else f" (or {DRIVERS})"
        raise ConfigError(
            f"{where} needs the {package} package (the {url.drivername} driver), which is not installed: "
            f"{_install(extra, package)}{other}") from None
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's NoSuchModuleError for an unknown driver name
        raise ConfigError(f"{where}: {exc}; {DRIVERS}") from None
