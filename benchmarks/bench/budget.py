"""The run's time budget: a soft deadline every section checks, and a watchdog as the hard stop."""
from __future__ import annotations

import os
import threading
import time

from .messages import say


class Clock:
    """A soft deadline: past it, no new measurement starts and the report shows what was measured."""

    def __init__(self, minutes: float):
        self.start = time.monotonic()
        self.deadline = self.start + minutes * 60

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def over(self) -> bool:
        return self.left() <= 0

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def start_watchdog(budget_minutes: float) -> threading.Timer:
    """A hung server call must not keep the process (or CI) forever: exit 3, 5 minutes past the budget."""

    def watchdog() -> None:
        say(f"watchdog: the run exceeded its time budget ({budget_minutes:g} min) by 5 minutes; stopping")
        os._exit(3)

    guard = threading.Timer(budget_minutes * 60 + 300, watchdog)
    guard.daemon = True
    guard.start()
    return guard
