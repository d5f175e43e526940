"""Start-up checks and messages: :func:`check_requirements` (missing packages, unparsable URLs),
:func:`describe_backends` (the start-up line), :func:`unknown_store_warnings` and :func:`used_by`."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

from dash_state.config.model import Config
from dash_state.config.validate import _did_you_mean, mask_url
from dash_state.core.references import dict_id
from dash_state.errors import ConfigError


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
    parsed = dict_id(store_id)
    if parsed is None:
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
        from dash_state.backends.redis.connection import parse_url

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
    from dash_state.backends.database.engines import DRIVERS, check_url

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
