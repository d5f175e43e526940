"""Run Dash's own test files, unchanged, with every ``dcc.Store`` replaced by ``ServerStore``.

    .venv/bin/python scripts/upstream_tests.py DASH_CHECKOUT [-k EXPRESSION] [TEST_FILE ...]

DASH_CHECKOUT is a clone of plotly/dash (ideally at the installed Dash's tag). The test files listed
in FILES (and the conftest.py and helper modules above each) are copied, untouched, into a temporary folder under a
conftest.py that swaps the class
(``dash.dcc.Store = ServerStore`` before the tests import dash), and run with pytest in headless
Chromium. The copies are deleted afterwards: nothing of Dash's tests is kept in this repository.
Needs ``pip install flaky`` (Dash's tests use it) and chromedriver on PATH.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = [
    "tests/integration/test_patch.py",
    "tests/integration/test_clientside_patch.py",
    "components/dash-core-components/tests/integration/dropdown/test_remove_option.py",
]
# Dash's dcc.Store suite (components/dash-core-components/tests/integration/store) also runs, but its
# tests that read window.localStorage directly differ by design (a ServerStore keeps its reference
# there): tests/test_dash_suite_parity.py compares those behaviours through callbacks instead.

CONFTEST = '''
import dash
from dash import dcc
from dash_state import ServerStore

dcc.Store = ServerStore  # the migration the README describes, applied to Dash's own tests
dash.dcc.Store = ServerStore
'''


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    checkout, rest = Path(argv[0]), list(argv[1:])
    keyword = None
    if "-k" in rest:
        at = rest.index("-k")
        keyword = rest[at + 1]
        del rest[at:at + 2]
    files = rest or FILES  # paths inside the checkout
    with tempfile.TemporaryDirectory(prefix="dash-upstream-") as tmp:
        copied = []
        for name in files:
            source = checkout / name
            if not source.exists():
                print(f"not in this checkout: {name}")
                continue
            target = Path(tmp, "t", name)  # their layout, with the conftest.py beside each file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            for folder in source.relative_to(checkout).parents:  # conftest.py and helpers on the way down
                if str(folder) == "." or not str(folder).startswith(("tests", "components")):
                    continue
                for helper in (checkout / folder).glob("*.py"):
                    if not helper.name.startswith("test_"):
                        Path(tmp, "t", folder).mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(helper, Path(tmp, "t", folder, helper.name))
            copied.append(str(target))
        Path(tmp, "conftest.py").write_text(CONFTEST)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--headless", "-q", *copied]
        if keyword:
            command += ["-k", keyword]
        return subprocess.call(command, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
