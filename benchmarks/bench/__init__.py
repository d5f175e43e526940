"""The pieces of ``benchmarks/run.py``, one concern per module (``benchmarks/README.md`` explains the
measurements; ``run.py`` is the command line).

The modules import ``benchdata`` and ``roundtrip`` from ``benchmarks/`` and ``dash_client`` from
``tests/`` as top-level modules: neither folder is an installed package, so both go on ``sys.path``
here, whoever imports the package first.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
REPO = HERE.parent
RUN_SCRIPT = HERE / "run.py"  # the entry point; the RSS section starts it again as a child process

for _path in (REPO / "tests", HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
