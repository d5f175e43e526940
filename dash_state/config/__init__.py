"""Configuration: defaults, then ``config.toml``, then environment variables, then app/init_app settings.

Later sources win. Every value is validated once, when the app starts, and an error names the key and
the source it came from, so a typo in production fails loudly instead of silently using a default.
"""
from dash_state.config.model import Config, StoreSettings
from dash_state.config.sources import (
    ENVIRONMENT_ALSO_READ,
    ENVIRONMENT_PREFIXES_ALSO_READ,
    build_config,
    config_file_path,
    load_config,
    read_config_file,
    read_environment,
)
from dash_state.config.startup import (
    backend_location,
    check_requirements,
    describe_backends,
    unknown_store_warnings,
    used_by,
)
from dash_state.config.validate import canonical_store_id, mask_url

__all__ = [
    "ENVIRONMENT_ALSO_READ",
    "ENVIRONMENT_PREFIXES_ALSO_READ",
    "Config",
    "StoreSettings",
    "backend_location",
    "build_config",
    "canonical_store_id",
    "check_requirements",
    "config_file_path",
    "describe_backends",
    "load_config",
    "mask_url",
    "read_config_file",
    "read_environment",
    "unknown_store_warnings",
    "used_by",
]
