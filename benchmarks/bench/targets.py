"""The targets: ratios between medians of the same run and mode (so the machine's speed cancels out),
and the limits the clicks, RSS and big-frame sections are held to. Each is reported MET or MISSED."""
from __future__ import annotations

from .matrix import MODE_ORDER
from .scenarios import LABELS
from .sizes import fmt_bytes, rows_label

MEMORY_ABOVE_FLOOR_MS = 0.5
REDIS_VS_SERVERSIDE = 0.5
OTHER_VS_SERVERSIDE = 0.8
OTHER_VS_RAW = 1.2
POSTGRES_VS_REDIS = 1.5
BIG_REDIS_VS_SERVERSIDE = 0.7
# issue 16: the local backend (the default) read by another process of the host, and redis's near tier
LOCAL_ABOVE_FLOOR_MS = 0.5
LOCAL_OTHER_VS_MEMORY = 1.3
LOCAL_OTHER_VS_SERVERSIDE = 0.2
NEAR_OTHER_VS_LOCAL_OTHER = 1.3
CLICKS_BYTES_FACTOR = 2.0
GUNICORN_TIMEOUT_S = 30.0


def median(matrix: dict, size: str | None, key: str, mode: str) -> float | None:
    """The matrix's median round trip of one scenario, size and mode; None if it was not measured."""
    if size is None:
        return None
    cell = matrix.get(size, {}).get(key, {}).get("modes", {}).get(mode, {})
    return cell.get("median_ms") if cell.get("status") == "ok" else None


def ratio_targets(matrix: dict, modes: list[str], mid: str | None, big: str | None, labels: dict) -> list[dict]:
    """The matrix's targets, per mode: at the mid size (100k rows) and the big one (1M rows)."""
    out = []

    def add(name: str, size: str | None, mode: str, value: float | None, limit: float, unit: str, numbers: str,
            definition: str) -> None:
        out.append({"name": name, "size": size, "size_label": labels.get(size, size), "mode": mode, "value": value,
                    "limit": limit, "unit": unit, "met": None if value is None else value <= limit,
                    "numbers": numbers, "definition": definition})

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} ms"

    for mode in modes:
        for size in (mid, big):
            if size is None:
                continue
            m, d = median(matrix, size, "ss_memory", mode), median(matrix, size, "dispatch", mode)
            add("ServerStore(memory) above the dispatch floor", size, mode, None if None in (m, d) else m - d,
                MEMORY_ABOVE_FLOOR_MS, "ms", f"memory {fmt(m)} - floor {fmt(d)}",
                "median round trip of ServerStore(memory) minus that of the dispatch floor")
        s, x = median(matrix, mid, "ss_redis", mode), median(matrix, mid, "serverside_redis", mode)
        add("ServerStore(redis, same worker) / Serverside(Redis)", mid, mode, None if None in (s, x) else s / x,
            REDIS_VS_SERVERSIDE, "x", f"{fmt(s)} / {fmt(x)}", "ratio of median round trips")
        o = median(matrix, mid, "ss_redis_other", mode)
        add("ServerStore(redis, another worker reads) / Serverside(Redis)", mid, mode,
            None if None in (o, x) else o / x, OTHER_VS_SERVERSIDE, "x", f"{fmt(o)} / {fmt(x)}",
            "ratio of median round trips")
        raw, d = median(matrix, mid, "raw_redis_pickle", mode), median(matrix, mid, "dispatch", mode)
        add("ServerStore(redis, another worker reads) / (raw redis-py pickle SET+GET + dispatch floor)", mid, mode,
            None if None in (o, raw, d) else o / (raw + d), OTHER_VS_RAW, "x",
            f"{fmt(o)} / ({fmt(raw)} + {fmt(d)})",
            "median round trip / (median of pickle+SET+GET+unpickle + median of the dispatch floor)")
        p = median(matrix, mid, "ss_postgres", mode)
        add("ServerStore(postgres) / ServerStore(redis, same worker)", mid, mode, None if None in (p, s) else p / s,
            POSTGRES_VS_REDIS, "x", f"{fmt(p)} / {fmt(s)}", "ratio of median round trips")
        for size in (mid, big):  # issue 16: the default backend, another process of the host reads
            if size is None:
                continue
            lo, mem = median(matrix, size, "ss_local_other", mode), median(matrix, size, "ss_memory", mode)
            add("ServerStore(local, another process reads) / ServerStore(memory, same process)", size, mode,
                None if None in (lo, mem) else lo / mem, LOCAL_OTHER_VS_MEMORY, "x", f"{fmt(lo)} / {fmt(mem)}",
                "ratio of median round trips: W in another process, R here, against memory in this process")
            xs = median(matrix, size, "serverside_redis", mode)
            add("ServerStore(local, another process reads) / Serverside(Redis)", size, mode,
                None if None in (lo, xs) else lo / xs, LOCAL_OTHER_VS_SERVERSIDE, "x", f"{fmt(lo)} / {fmt(xs)}",
                "ratio of median round trips")
        lc, d = median(matrix, mid, "ss_local", mode), median(matrix, mid, "dispatch", mode)
        add("ServerStore(local, same process) above the dispatch floor", mid, mode,
            None if None in (lc, d) else lc - d, LOCAL_ABOVE_FLOOR_MS, "ms", f"local {fmt(lc)} - floor {fmt(d)}",
            "median round trip of ServerStore(local) minus that of the dispatch floor")
        for size in (mid, big):
            if size is None:
                continue
            nr, lo = median(matrix, size, "ss_redis_near_other", mode), median(matrix, size, "ss_local_other", mode)
            add("ServerStore(redis + near tier, another process reads) / ServerStore(local, another process "
                "reads)", size, mode, None if None in (nr, lo) else nr / lo, NEAR_OTHER_VS_LOCAL_OTHER, "x",
                f"{fmt(nr)} / {fmt(lo)}", "ratio of median round trips, both written by another process of the host")
        if big is not None:
            sb, xb = median(matrix, big, "ss_redis", mode), median(matrix, big, "serverside_redis", mode)
            add("ServerStore(redis, same worker) / Serverside(Redis)", big, mode, None if None in (sb, xb) else sb / xb,
                BIG_REDIS_VS_SERVERSIDE, "x", f"{fmt(sb)} / {fmt(xb)}", "ratio of median round trips")
    return out


def sort_targets(targets: list[dict]) -> None:
    """Group the rows of one target and size together, modes in execution order."""
    order = {}
    for t in targets:
        order.setdefault((t["name"], t["size"]), len(order))
    targets.sort(key=lambda t: (order[(t["name"], t["size"])], MODE_ORDER.index(t["mode"])
                                if t["mode"] in MODE_ORDER else 9))


def click_targets(rows: list[dict], clicks: int, size_label: str) -> list[dict]:
    return [{"name": f"bytes kept after {clicks} clicks ({c['backend']})", "size": None,
             "size_label": size_label, "mode": "-", "value": c["ratio"], "limit": CLICKS_BYTES_FACTOR,
             "unit": "x", "met": c["met"],
             "numbers": f"{c['bytes_kept']:,} B kept / {c['one_value_bytes']:,} B",
             "definition": "sum of the backend's usage(namespace) after the clicks / after the first click"}
            for c in rows if c.get("status") == "ok"]


def rss_targets(rows: list[dict]) -> list[dict]:
    return [{"name": f"memory backend RSS growth, {r['users']} users × {r['writes'] // r['users']} writes, "
                     f"{'releasing' if r['release'] else 'never releasing'}",
             "size": None, "size_label": fmt_bytes(r["frame_bytes"]) + " frame", "mode": "-",
             "value": r["peak_growth"] / (1 << 20), "limit": r["cap"] / (1 << 20), "unit": "MiB",
             "met": r["met"], "numbers": f"peak {fmt_bytes(r['rss_peak_sampled'])} − before "
                                         f"{fmt_bytes(r['rss_before'])}; cap {fmt_bytes(r['cap'])}",
             "definition": "peak RSS during the writes minus RSS before them, against "
                           "STATE_MEMORY_MAX_BYTES"}
            for r in rows if r.get("status") == "ok"]


def big_targets(big: dict) -> list[dict]:
    out = []
    for rows, entry in big["rows"].items():
        for key, s in entry.get("scenarios", {}).items():
            if s.get("status") == "ok":
                out.append({
                    "name": f"longest request under gunicorn's 30 s timeout, {LABELS[key]}", "size": None,
                    "size_label": rows_label(int(rows)), "mode": "-", "value": s["longest_request_s"],
                    "limit": GUNICORN_TIMEOUT_S, "unit": "s", "met": s["met"],
                    "numbers": f"headroom {s['headroom_x']:.0f}x (round trip median "
                               f"{s['round_trip_median_s']:.2f} s)",
                    "definition": "the longest single callback request (W or R) of the runs"})
    return out
