"""The ``dash-state`` group: shared options, exit codes, and errors as one clear line.

Exit codes: 0 done, 1 a failure (an unreachable backend, a refused file; the message names it),
2 a usage error (click's own: an unknown option, a missing argument)."""
from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import click

from dash_state.errors import DashStateError

HELPERS = {"main", "context", "dsx", "common"}  # every other module of this package adds one command to the group
EXAMPLES = """\b
Examples:
  dash-state --app myapp:app audit          which dcc.Store to move, and why
  dash-state migrate app.py --stores a,b --dry-run
"""


class Failure(click.ClickException):
    """A command that could not do its job: exit code 1 and one line naming what is wrong."""

    exit_code = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=EXAMPLES)
@click.option("--app", "app_path", metavar="MODULE:APP",
              help="Take settings and store declarations from this Dash app (module:attribute, or a .py path).")
@click.option("-v", "--verbose", is_flag=True, help="Also print dash-state's log lines (connections, retries).")
@click.version_option(package_name="dash-state", prog_name="dash-state")
@click.pass_context
def cli(ctx: click.Context, app_path: str | None, verbose: bool) -> None:
    """Inspect, back up, clean and migrate the ServerStore data of a Dash app."""
    import logging

    quiet, audit = logging.getLogger("dash_state"), logging.getLogger("dash_state.audit")
    levels = quiet.level, audit.level
    quiet.setLevel(logging.INFO if verbose else logging.CRITICAL)  # errors: the command's one line
    audit.setLevel(logging.INFO)  # STATE_AUDIT_LOG = "logger" still records

    def restore() -> None:  # run in-process (tests, scripts), the command leaves logging as it found it
        quiet.setLevel(levels[0])
        audit.setLevel(levels[1])

    ctx.call_on_close(restore)
    ctx.obj = ctx.obj if isinstance(ctx.obj, dict) else {}  # tests pass {"app": app} through CliRunner(obj=)
    ctx.obj.setdefault("app_path", app_path)


def failures(command: Callable[..., Any]) -> Callable[..., Any]:
    """dash-state's own errors (configuration, backends, values) become exit code 1 with their message."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DashStateError as exc:
            raise Failure(str(exc)) from None
    return run


def main(argv: list[str] | None = None) -> Any:
    """The console entry point (``dash-state``)."""
    load_commands()
    return cli.main(args=argv, prog_name="dash-state")


def load_commands() -> click.Group:
    """Import each command module of this package (each one adds its command to :data:`cli`)."""
    import pkgutil
    from pathlib import Path

    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in HELPERS and not module.name.startswith("_"):
            importlib.import_module(f"{__package__}.{module.name}")
    return cli
