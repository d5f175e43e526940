"""What several commands share: which backends to look at, whose namespace ``--user`` means, output."""
from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from dash_state.cli.main import Failure

if TYPE_CHECKING:
    from dash_state.backends import Backend
    from dash_state.core.manager import StateManager

PROCESS_LOCAL = ("memory", "client")  # their data is in an app's process or in browsers: nothing to reach


def backends(manager: "StateManager", only: str | None = None) -> list["Backend"]:
    """The server backends the app's settings use (or ``only`` that one), connected."""
    names = sorted(manager.config.backends_in_use() - set(PROCESS_LOCAL)) if only is None else [only]
    for name in names:
        if name in PROCESS_LOCAL:
            raise Failure(f"the {name!r} backend keeps its data {'in the app process' if name == 'memory' else 'in browsers'}"
                          ": a command line cannot reach it")
    if not names:
        raise Failure("this app keeps every store on 'memory' or 'client': there is nothing on a server to look at")
    return [manager.backend(name) for name in names]


def namespace(user: str | None) -> str | None:
    """``--user``: a login id (``alice``), or a namespace as logs and ``inspect`` show it (``u.…``, ``a.…``,
    ``@app``)."""
    if user is None:
        return None
    if user == "@app" or user.startswith(("u.", "a.")) and len(user) > 10:
        return user
    from dash_state.identity import user_namespace

    return user_namespace(user)


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def console() -> Any:
    from rich.console import Console

    return Console(stderr=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
