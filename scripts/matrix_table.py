"""The version matrix as a table: one row per Dash release, one column per server, from the JUnit XML
files the nox sessions write (.nox/results/dash-<version>-<server>.xml).

    .venv/bin/python scripts/matrix_table.py [.nox/results] > benchmarks/results/matrix.md
"""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SERVERS = ("flask", "fastapi", "quart")


def counts(path: Path) -> dict[str, float]:
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "xfailed": 0, "time": 0.0}
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        for key in ("tests", "failures", "errors", "skipped"):
            total[key] += int(suite.get(key, 0))
        total["time"] += float(suite.get("time", 0))
        for case in suite.iter("testcase"):
            skipped = case.find("skipped")
            if skipped is not None and (skipped.get("type") == "pytest.xfail" or "xfail" in (skipped.get("message") or "")):
                total["xfailed"] += 1
    total["skipped"] -= total["xfailed"]
    total["passed"] = total["tests"] - total["failures"] - total["errors"] - total["skipped"] - total["xfailed"]
    return total


def cell(total: dict[str, float] | None) -> str:
    if total is None:
        return "—"
    failed = int(total["failures"] + total["errors"])
    text = f"{int(total['passed'])} passed"
    if failed:
        text += f", **{failed} failed**"
    if total["skipped"]:
        text += f", {int(total['skipped'])} skipped"
    if total["xfailed"]:
        text += f", {int(total['xfailed'])} xfail"
    return text + f" ({total['time'] / 60:.1f} min)"


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".nox/results")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for path in folder.glob("dash-*.xml"):
        match = re.fullmatch(r"dash-(.+)-(flask|fastapi|quart)\.xml", path.name)
        if match:
            version, server = match.groups()
            results.setdefault(version, {})[server] = counts(path)
    if not results:
        print(f"no results in {folder}", file=sys.stderr)
        return 1
    print("| Dash | " + " | ".join(SERVERS) + " |")
    print("|---|" + "---|" * len(SERVERS))
    for version in sorted(results, key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v))):
        print(f"| {version} | " + " | ".join(cell(results[version].get(s)) for s in SERVERS) + " |")
    failed = sum(t["failures"] + t["errors"] for row in results.values() for t in row.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
