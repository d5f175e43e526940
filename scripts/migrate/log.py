"""Progress lines with the time of day, on stdout next to the printed diff."""
from __future__ import annotations

import time


def log(*parts):
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)
