"""The Markdown report (printed and written with --markdown), one function per section, and the
writing of the outputs: Markdown, JSON (--json) and the chart (--chart)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .chart import chart
from .matrix import MODES
from .messages import say
from .scenarios import LABELS, SCENARIOS
from .sizes import fmt_bytes, rows_label
from .targets import median


def fmt_cell(cell: dict) -> str:
    if cell.get("status") != "ok":
        return cell.get("status", "")
    text = f"{cell['median_ms']:.2f} ({cell['p95_ms']:.2f})"
    if cell.get("note", "").startswith("slow"):
        text += " ¹"
    elif cell.get("note"):
        text += " ²"
    return text


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("**MET**" if met else "**MISSED**")


def markdown(result: dict) -> str:
    """The whole report; a section whose results are absent (not in --sections) is left out."""
    lines: list[str] = []
    for section in (_header, _targets, _matrix, _floor, _clicks, _rss, _big, _codecs, _backend_vs_raw):
        lines += section(result)
    for text in result.get("profiles", []):
        lines += [text, ""]
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def _header(result: dict) -> list[str]:
    """What ran, how it was timed, on which versions and how busy the machine was."""
    p = result["parameters"]
    sizes = result["sizes"]
    lines = [f"# dash-state benchmark (`benchmarks/run.py`{' --quick' if p['quick'] else ''})", "",
             f"Command: `{p['command']}`. Run {p['run_id']}, {result['environment']['cpu_count']} CPUs, Python "
             f"{result['environment']['python']}, elapsed {result.get('elapsed_s', 0) / 60:.1f} min.",
             "Round trip = wall time of the write callback's POST + the read callback's POST (Flask test client); "
             "median (p95) in ms. Runs per size: " + ", ".join(
                 f"{sizes[k]['label']} {p['runs_per_size'][k]}" for k in sizes) + f" after {p['warmup']} warm-up(s); "
             f"idle mode sleeps {p['idle_seconds']:g} s before each round trip. Replaced references are released "
             + ("in R's request (piggyback, timed)." if p.get("release") == "piggyback" else
                "by POST /_dash-state/v1/release after each round trip (untimed)."), ""]
    env = result["environment"]
    git = env.get("git") or {}
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v) + ". Servers: "
                 + ", ".join(f"{k} {v}" for k, v in env.get("servers", {}).items()) + "."
                 + (f" dash-state at commit {git['commit']}" + (f" with {git['dash_state_uncommitted_files']} "
                    "uncommitted file(s) in dash_state/" if git.get("dash_state_uncommitted_files") else "") + "."
                    if git.get("commit") else ""))
    if result.get("load_average"):
        lines.append("Load average (1, 5, 15 min): " + "; ".join(
            f"{label} {'/'.join(f'{x:.2f}' for x in la)}" for label, la in result["load_average"] if la) + ".")
    lines.append("")
    return lines


def _targets(result: dict) -> list[str]:
    """Every target of the run, MET / MISSED, with the numbers it was computed from."""
    targets = result.get("targets", [])
    if not targets:
        return []
    lines: list[str] = []
    lines += ["## Targets", "", "| target | size | mode | value | limit | numbers | result |",
              "|---|---|---|---:|---:|---|---|"]
    for t in targets:
        unit = t["unit"]
        value = "n/a" if t["value"] is None else (f"{t['value']:.3f}x" if unit == "x" else
                                                 f"{t['value']:.2f} {unit}")
        limit = f"≤ {t['limit']:g}x" if unit == "x" else f"≤ {t['limit']:g} {unit}"
        lines.append(f"| {t['name']} | {t.get('size_label') or ''} | {MODES.get(t['mode'], t['mode'])} | {value} "
                     f"| {limit} | {t['numbers']} | {verdict(t['met'])} |")
    lines.append("")
    return lines


def _matrix(result: dict) -> list[str]:
    """Ratios at every size, one table per mode, bytes per round trip and the W / R split."""
    matrix = result.get("matrix", {})
    if not matrix:
        return []
    p, sizes = result["parameters"], result["sizes"]
    lines: list[str] = []
    mode = "interleaved" if "interleaved" in p["modes"] else p["modes"][0]
    ratios = [
        ("ServerStore(memory) − dispatch floor, ms", lambda s: sub(s, "ss_memory", "dispatch")),
        ("ServerStore(local, same process) − dispatch floor, ms", lambda s: sub(s, "ss_local", "dispatch")),
        ("ServerStore(local, another process) − dispatch floor, ms",
         lambda s: sub(s, "ss_local_other", "dispatch")),
        ("ServerStore(local, another process) / ServerStore(memory)",
         lambda s: div(s, "ss_local_other", "ss_memory")),
        ("ServerStore(local, another process) / Serverside(Redis)",
         lambda s: div(s, "ss_local_other", "serverside_redis")),
        ("ServerStore(redis + near, another process) / ServerStore(local, another process)",
         lambda s: div(s, "ss_redis_near_other", "ss_local_other")),
        ("ServerStore(redis + near, another process) / ServerStore(redis, another worker, no near)",
         lambda s: div(s, "ss_redis_near_other", "ss_redis_other")),
        ("ServerStore(redis) / Serverside(Redis)", lambda s: div(s, "ss_redis", "serverside_redis")),
        ("ServerStore(redis, another worker) / Serverside(Redis)",
         lambda s: div(s, "ss_redis_other", "serverside_redis")),
        ("ServerStore(redis, another worker) / (raw pickle + floor)",
         lambda s: div2(s, "ss_redis_other", "raw_redis_pickle", "dispatch")),
        ("ServerStore(postgres) / ServerStore(redis)", lambda s: div(s, "ss_postgres", "ss_redis")),
        ("ServerStore(memory) / Serverside(FileSystem)", lambda s: div(s, "ss_memory", "serverside_fs")),
        ("dcc.Store / ServerStore(memory)", lambda s: div(s, "dcc_store", "ss_memory")),
    ]

    def med(s: str, k: str) -> float | None:
        return median(matrix, s, k, mode)

    def sub(s: str, a: str, b: str) -> str:
        x, y = med(s, a), med(s, b)
        return "" if None in (x, y) else f"{x - y:.2f}"

    def div(s: str, a: str, b: str) -> str:
        x, y = med(s, a), med(s, b)
        return "" if None in (x, y) or not y else f"{x / y:.3f}x"

    def div2(s: str, a: str, b: str, c: str) -> str:
        x, y, z = med(s, a), med(s, b), med(s, c)
        return "" if None in (x, y, z) else f"{x / (y + z):.3f}x"

    lines += [f"## Ratios at every size ({MODES[mode]} mode, medians; context for the targets)", "",
              "| ratio | " + " | ".join(sizes[k]["label"] for k in matrix) + " |", "|---|" + "---:|" * len(matrix)]
    for name, fn in ratios:
        lines.append(f"| {name} | " + " | ".join(fn(s) for s in matrix) + " |")
    lines.append("")
    for mode in [m for m in ("b2b", "interleaved", "idle") if m in p["modes"]]:
        lines += [f"## Round trips, {MODES[mode]} mode: median (p95) ms", "",
                  "| scenario | " + " | ".join(sizes[k]["label"] for k in matrix) + " |",
                  "|---|" + "---:|" * len(matrix)]
        for key in [k for k, *_ in SCENARIOS if k in p["scenarios"]]:
            cells = [fmt_cell(matrix[s].get(key, {}).get("modes", {}).get(mode, {})) for s in matrix]
            lines.append(f"| {LABELS[key]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["¹ slower than the slow limit: measured once in this mode, skipped in the others. "
              "² cut short by the time budget.", ""]
    lines += ["## Bytes per round trip (last round trip)", "",
              "W response = what the browser receives from the write callback; R request = what it sends to the "
              "read callback (raw redis: the pickle's size).", "",
              "| scenario | " + " | ".join(f"{sizes[k]['label']} W response | R request" for k in matrix) + " |",
              "|---|" + "---:|---:|" * len(matrix)]
    for key in [k for k, *_ in SCENARIOS if k in p["scenarios"]]:
        cells = []
        for s in matrix:
            entry = matrix[s].get(key, {})
            cells += [fmt_bytes(entry.get("bytes_to_browser")), fmt_bytes(entry.get("bytes_back"))]
        lines.append(f"| {LABELS[key]} | " + " | ".join(cells) + " |")
    lines.append("")
    mode = "interleaved" if "interleaved" in p["modes"] else p["modes"][0]
    lines += [f"## Write / read split, {MODES[mode]} mode: W median + R median ms", "",
              "| scenario | " + " | ".join(sizes[k]["label"] for k in matrix) + " |",
              "|---|" + "---:|" * len(matrix)]
    for key in [k for k, *_ in SCENARIOS if k in p["scenarios"]]:
        cells = []
        for s in matrix:
            cell = matrix[s].get(key, {}).get("modes", {}).get(mode, {})
            ok = cell.get("status") == "ok"
            cells.append(f"{cell['w_median_ms']:.2f} + {cell['r_median_ms']:.2f}" if ok else "")
        lines.append(f"| {LABELS[key]} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _floor(result: dict) -> list[str]:
    """One line of context: the floor without ServerStore imported."""
    floor = result.get("floor_without_server_store")
    if not floor:
        return []
    lines: list[str] = []
    if floor.get("status") == "ok":
        lines += ["Context: the dispatch floor in a separate process that never imported `ServerStore` "
                  f"(dash-state's plugin loaded but inactive): median {floor['median_ms']:.2f} ms, p95 "
                  f"{floor['p95_ms']:.2f} ms over {floor['n']} round trips (the matrix's floor runs in this "
                  "process, with the plugin active).", ""]
    else:
        lines += [f"Context: dispatch floor without ServerStore: {floor['status']}", ""]
    return lines


def _clicks(result: dict) -> list[str]:
    clicks = result.get("clicks")
    if not clicks:
        return []
    lines: list[str] = []
    c0 = next((c for c in clicks["rows"] if c.get("status") == "ok"), {})
    lines += [f"## Server-side bytes after {c0.get('clicks', clicks.get('clicks'))} clicks on one store in one tab "
              f"({clicks['size_label']}, releasing each replaced reference)", "",
              "| backend | one value (bytes) | values kept | bytes kept | kept / one value | target ≤ 2x | "
              "released | storage check | read cache bytes |", "|---|---:|---:|---:|---:|---|---:|---|---:|"]
    for c in clicks["rows"]:
        if c.get("status") != "ok":
            lines.append(f"| {c['backend']} | {c['status']} | | | | | | | |")
            continue
        storage = "; ".join(f"{k}: {v:,}" for k, v in c["storage"].items())
        lines.append(f"| {c['backend']} | {c['one_value_bytes']:,} | {c['values_kept']} | {c['bytes_kept']:,} | "
                     f"{c['ratio']:.2f}x | {verdict(c['met'])} | {c['released']} | {storage} | "
                     f"{'' if c['read_cache_bytes'] is None else format(c['read_cache_bytes'], ',')} |")
    lines.append("")
    return lines


def _rss(result: dict) -> list[str]:
    rss = result.get("rss")
    if not rss:
        return []
    lines: list[str] = []
    lines += ["## Memory backend RSS (child process, psutil)", "",
              "| variant | users | writes | frame | cap (STATE_MEMORY_MAX_BYTES) | RSS before | RSS peak | "
              "RSS after | peak − before | backend bytes at end | writes stored / refused (413) | "
              "target: peak − before ≤ cap |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rss:
        name = "release the replaced reference" if r.get("release") else "never release"
        if r.get("status") != "ok":
            lines.append(f"| {name} | {r.get('status')} | | | | | | | | | | |")
            continue
        c = r["counts"]
        lines.append(f"| {name} | {r['users']} | {r['writes']} | {fmt_bytes(r['frame_bytes'])} | "
                     f"{fmt_bytes(r['cap'])} "
                     f"| {fmt_bytes(r['rss_before'])} | {fmt_bytes(r['rss_peak_sampled'])} | "
                     f"{fmt_bytes(r['rss_after'])} | {fmt_bytes(r['peak_growth'])} | "
                     f"{fmt_bytes(r['backend_bytes'])} | "
                     f"{c['ok']} / {c['refused_413']}"
                     + (f" (+{c['other_errors']} errors)" if c['other_errors'] else "")
                     + (f" ({c['wrong_value']} wrong values)" if c['wrong_value'] else "")
                     + f" | {verdict(r['met'])} |")
    lines.append("")
    return lines


def _big(result: dict) -> list[str]:
    big = result.get("big")
    if not big:
        return []
    lines: list[str] = []
    lim = big["limits"]
    lines += ["## Big frames against gunicorn's 30 s timeout", "",
              f"Measured with STATE_MAX_VALUE_BYTES = {fmt_bytes(lim['STATE_MAX_VALUE_BYTES'])}, "
              f"STATE_MAX_USER_BYTES = {fmt_bytes(lim['STATE_MAX_USER_BYTES'])}, "
              f"STATE_MEMORY_MAX_BYTES = {fmt_bytes(lim['STATE_MEMORY_MAX_BYTES'])}. "
              "Headroom = 30 s / the longest single request (W or R) of the runs.", "",
              "| rows | with default limits | scenario | runs | W median s | R median s | round trip median s | "
              "longest request s | headroom | < 30 s |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for rows, entry in big["rows"].items():
        if entry.get("status"):
            lines.append(f"| {rows_label(int(rows))} | {entry['status']} | | | | | | | | |")
            continue
        defaults = "; ".join(f"{k}: {v}" for k, v in entry["defaults"].items())
        for key, s in entry["scenarios"].items():
            if s.get("status") != "ok":
                lines.append(f"| {entry['label']} | {defaults} | {LABELS[key]} | {s.get('status')} | | | | | | |")
                defaults = ""
                continue
            lines.append(f"| {entry['label']} | {defaults} | {LABELS[key]} | {s['n']} | {s['w_median_s']:.3f} | "
                         f"{s['r_median_s']:.3f} | {s['round_trip_median_s']:.3f} | {s['longest_request_s']:.3f} | "
                         f"{s['headroom_x']:.0f}x | {verdict(s['met'])} |")
            defaults = ""
    lines.append("")
    return lines


def _codecs(result: dict) -> list[str]:
    codecs = result.get("codecs")
    if not codecs:
        return []
    lines: list[str] = []
    lines += ["## Codec costs per value (median ms)", ""]
    if codecs.get("status"):
        lines += [codecs["status"], ""]
    else:
        lines += ["| size | ServerStore stored bytes | freeze | freeze+encode | freeze+encode+seal | "
                  "unseal+decode | "
                  "pickle bytes | pickle.dumps | pickle.loads |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for c in codecs.values():
            if c.get("status"):
                lines.append(f"| {c['label']} | {c['status']} | | | | | | | |")
                continue
            lines.append(f"| {c['label']} | {fmt_bytes(c['stored_bytes'])} | {c['freeze_ms']:.2f} | "
                         f"{c['encode_ms']:.2f} "
                         f"| {c['seal_ms']:.2f} | {c['unseal_decode_ms']:.2f} | {fmt_bytes(c['pickle_bytes'])} | "
                         f"{c['pickle_dumps_ms']:.2f} | {c['pickle_loads_ms']:.2f} |")
        lines.append("")
    return lines


def _backend_vs_raw(result: dict) -> list[str]:
    raw = result.get("backend_vs_raw")
    if not raw:
        return []
    lines: list[str] = []
    lines += ["## Backend set+get vs the raw client moving the same sealed bytes (median ms, p95)", "",
              "| backend | value | bytes moved | runs | backend set+get | raw set+get | backend / raw |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for row in raw:
        if row.get("status") != "ok":
            lines.append(f"| {row['backend']} | {row.get('size', '')} | {row['status']} | | | | |")
            continue
        lines.append(f"| {row['backend']} | {row['size']} | {row['bytes_moved']:,} | {row['runs']} | "
                     f"{row['backend_median_ms']:.3f} ({row['backend_p95_ms']:.3f}) | {row['raw_median_ms']:.3f} "
                     f"({row['raw_p95_ms']:.3f}) | {row['ratio']:.2f}x |")
    lines.append("")
    return lines


def json_default(obj: Any) -> Any:
    """numpy numbers as plain ones; anything else JSON cannot hold as its str()."""
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return str(obj)


def write_outputs(result: dict, args: argparse.Namespace) -> None:
    """The report to stdout, then the files the options asked for."""
    text = markdown(result)
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
        say(f"markdown written to {args.markdown}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=json_default) + "\n")
        say(f"JSON written to {args.json}")
    if args.chart and result.get("matrix"):
        problem = chart(result, Path(args.chart))
        say(problem or f"chart written to {args.chart}")
