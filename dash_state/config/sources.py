"""Where settings come from: defaults, then ``config.toml``, then environment variables, then
app/init_app settings, merged by :func:`build_config` (later sources win) and validated once."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dash_state.config.model import Config
from dash_state.config.validate import _did_you_mean, _merge_stores, _validate
from dash_state.defaults import DEFAULTS
from dash_state.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


#: STATE_* environment variables that dash-state reads besides its settings: the config file's path,
#: and (by prefix) the variables of its own test-suite and benchmarks. Every other STATE_* variable
#: that is not a setting is refused at start-up: it is almost always a misspelt setting.
ENVIRONMENT_ALSO_READ = ("STATE_CONFIG_FILE",)
ENVIRONMENT_PREFIXES_ALSO_READ = ("STATE_TEST_",)


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
