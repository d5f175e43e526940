"""The ``dash-state`` command line, for operators and for migrating an app (the ``[cli]`` extra:
``pip install "dash-state[cli]"``). One module per command; :mod:`.main` holds the group, the shared
options and the exit codes (0 done, 1 failure, 2 usage), :mod:`.context` finds the app's settings."""
from dash_state.cli.main import cli, main

__all__ = ["cli", "main"]
