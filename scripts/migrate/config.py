"""The steps file (``scripts/real_apps.toml``): one table per app, narrowed by --pages / --scenarios."""
from __future__ import annotations

from pathlib import Path

import tomllib

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "real_apps.toml"


def load_config(path: Path, name: str, args) -> dict:
    """The app's table (empty if absent); with neither pages nor scenarios, every registered page."""
    apps = tomllib.loads(path.read_text())["apps"] if path.exists() else {}
    cfg = dict(apps.get(name, {}))
    if args.pages is not None:  # pages named on the command line: only these, plus --scenarios
        cfg["pages"] = args.pages
        cfg["only_scenarios"] = args.scenarios or []
    elif args.scenarios is not None:
        cfg["pages"] = []
        cfg["only_scenarios"] = args.scenarios
    if not cfg.get("pages") and not cfg.get("scenarios"):
        cfg["pages"] = "registry"
    return cfg
