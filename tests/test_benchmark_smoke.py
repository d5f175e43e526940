"""Smoke test of ``benchmarks/run.py --quick``: the benchmark still runs end to end and its JSON keeps the
shape the README and the saved results rely on. Numbers are not checked: they depend on the machine."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from services import database_url, redis_url

pytestmark = pytest.mark.service

REPO = Path(__file__).resolve().parent.parent
SIZES = ["json", "1k", "10k", "20k"]  # --quick's sizes
SCENARIOS = ["dispatch", "dcc_store", "serverside_fs", "serverside_redis", "raw_redis_pickle", "ss_memory",
             "ss_redis", "ss_redis_other", "ss_sqlite", "ss_postgres"]  # the default scenarios
MODES = ["interleaved", "b2b", "idle"]


def test_quick_run_writes_every_scenario_and_the_targets(tmp_path):
    out = tmp_path / "quick.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--json", str(out), "--markdown", str(tmp_path / "quick.md"),
         "--redis-url", redis_url(), "--postgres-url", database_url()],
        cwd=REPO, capture_output=True, text=True, timeout=300)  # about a minute; its own budget is 1.75 min
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    assert result["parameters"]["modes"] == MODES
    assert result["parameters"]["scenarios"] == SCENARIOS
    assert list(result["matrix"]) == SIZES
    for size, row in result["matrix"].items():
        assert list(row) == SCENARIOS, size
        for key, entry in row.items():
            assert list(entry["modes"]) == MODES, (size, key)
            assert not entry.get("status", "").startswith("failed"), (size, key, entry.get("status"))

    targets = result["targets"]
    names = {t["name"] for t in targets}
    assert "ServerStore(memory) above the dispatch floor" in names
    assert "ServerStore(redis, same worker) / Serverside(Redis)" in names
    assert any(name.startswith("bytes kept after 10 clicks") for name in names)
    for target in targets:
        assert {"name", "size_label", "mode", "value", "limit", "unit", "met", "numbers"} <= set(target), target
    for section in ("clicks", "rss", "big", "backend_vs_raw"):
        assert section in result, section
    assert (tmp_path / "quick.md").read_text().startswith("# dash-state benchmark")


def test_live_fanout_smoke_reaches_every_page(tmp_path):
    """benchmarks/live_fanout.py at a tiny size (20 pages, 3 writes): it runs end to end, every page gets
    every write, and the report keeps its shape. Latencies are not checked: the machine decides them."""
    out = tmp_path / "live.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/live_fanout.py", "--pages", "20", "--writes", "3", "--idle-seconds", "1",
         "--budget", "120", "--redis-url", redis_url(), "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["transports"] == {"sse": 20, "poll": 0}
    assert (result["delivered"], result["expected"], result["missing"]) == (60, 60, 0)
    assert result["fanout_ms"]["p50"] > 0 and result["fanout_ms"]["p95"] >= result["fanout_ms"]["p50"]
    assert result["idle_server_cpu_percent"] >= 0 and result["page_errors"] == []
