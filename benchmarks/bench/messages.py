"""How the run talks: progress lines on stderr (stdout carries the report) and exceptions in one line."""
from __future__ import annotations

import sys


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def short_error(exc: BaseException) -> str:
    """The exception's type and its last meaningful line, short enough for a table cell."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    line = next((t for t in reversed(lines) if not t.startswith(" ")), lines[0] if lines else "")
    return f"{type(exc).__name__}: {line[:240]}"
