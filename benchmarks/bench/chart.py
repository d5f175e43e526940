"""``--chart``: a grouped bar chart (matplotlib, PNG, log scale) of the matrix's medians, one group per
size and one bar per scenario, in the interleaved mode (or the first mode run)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .matrix import MODES
from .scenarios import LABELS, SCENARIOS

# hatched: a read by another worker, or no Dash at all
HATCHED = ("ss_redis_other", "raw_redis_pickle", "ss_sqlite_other", "ss_postgres_other", "ss_local_other",
           "ss_redis_near_other")
COLORS = {"ss_sqlite_other": "#a5d6a7", "ss_postgres_other": "#80cbc4", "dispatch": "#9e9e9e", "dcc_store": "#6d4c41",
          "serverside_fs": "#fb8c00", "serverside_redis": "#e53935",
          "raw_redis_pickle": "#fdd835", "ss_memory": "#1e88e5", "ss_redis": "#8e24aa", "ss_redis_other": "#ce93d8",
          "ss_sqlite": "#43a047", "ss_postgres": "#00897b", "ss_local": "#3949ab", "ss_local_other": "#9fa8da",
          "ss_redis_near_other": "#f48fb1"}


def chart(result: dict, path: Path) -> str | None:
    """Writes the chart; returns why it could not (matplotlib missing), or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no chart"
    matrix, sizes = result["matrix"], result["sizes"]
    mode = "interleaved" if "interleaved" in result["parameters"]["modes"] else result["parameters"]["modes"][0]
    keys = [k for k, *_ in SCENARIOS if k in result["parameters"]["scenarios"]]
    fig, ax = plt.subplots(figsize=(16, 7.5), dpi=110)
    width = 0.84 / max(1, len(keys))
    x = np.arange(len(matrix))
    cells = {k: [matrix[s].get(k, {}).get("modes", {}).get(mode, {}) for s in matrix] for k in keys}
    finite = [c["median_ms"] for row in cells.values() for c in row if c.get("status") == "ok"]
    bottom = (min(finite) / 2) if finite else 0.1
    for i, key in enumerate(keys):
        xs = x - 0.42 + width * (i + 0.5)
        heights, errs = [], []
        for j, c in enumerate(cells[key]):
            if c.get("status") == "ok":
                heights.append(c["median_ms"])
                errs.append(max(0.0, c["p95_ms"] - c["median_ms"]))
            else:
                heights.append(np.nan)
                errs.append(0.0)
                ax.text(xs[j], bottom * 1.1, "n/a", rotation=90, ha="center", va="bottom", fontsize=7,
                        color=COLORS[key])
        bars = ax.bar(xs, heights, width * 0.95, label=LABELS[key], color=COLORS[key], edgecolor="white", linewidth=0.3,
                      hatch="//" if key in HATCHED else None,
                      yerr=[np.zeros(len(errs)), errs], capsize=2, error_kw={"elinewidth": 0.7, "alpha": 0.7})
        for rect, h, e in zip(bars, heights, errs):
            if not np.isnan(h):
                ax.text(rect.get_x() + rect.get_width() / 2, (h + e) * 1.08, f"{h:.0f}" if h >= 100 else f"{h:.1f}",
                        ha="center", va="bottom", fontsize=6.5, rotation=90)
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom, top=(max(finite) if finite else 10) * 15)
    ax.set_xticks(x)
    ax.set_xticklabels([sizes[s]["label"] for s in matrix], fontsize=11)
    ax.set_ylabel("write + read round trip, median ms (log scale; whisker = p95)")
    env = result["environment"]
    ax.set_title(f"dash-state: write+read callback round trip per scenario and size ({MODES[mode]} mode, Flask test "
                 f"client)\n{env['cpu_count']} CPUs, Python {env['python']}, dash {env['packages'].get('dash')}, "
                 f"dash-extensions {env['packages'].get('dash-extensions')}, run {result['parameters']['run_id']}",
                 fontsize=10.5)
    ax.grid(axis="y", which="major", alpha=0.35)
    ax.grid(axis="y", which="minor", alpha=0.12)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", fontsize=8.5, ncol=2, framealpha=0.9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return None
