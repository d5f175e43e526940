"""The report: ``report.json`` (everything) and ``report.md`` (a table per snapshot, the leak check, the
runs and each difference with its text diff and screenshots) in the --out folder."""
from __future__ import annotations

import json
from pathlib import Path


def fmt_bytes(n: int) -> str:
    return f"{n:,}"


def write_report(out: Path, meta: dict, rows: list[dict], leaks: dict, runs_ok: dict) -> None:
    (out / "report.json").write_text(json.dumps(
        {"meta": meta, "rows": rows, "leak_check": leaks, "runs": runs_ok}, indent=2, default=str))
    lines = [f"# {meta['app_name']}: dcc.Store vs ServerStore", "",
             f"- source: {meta.get('source', meta['app_dir'])}", f"- entry: `{meta['entry']}`",
             f"- migrated files: {len(meta['migration']['files'])}; SECRET_KEY: `{meta['migration']['secret_key_line']}`",
             f"- removed for offline use (both copies): {len(meta['removed'])} files",
             f"- control run of the original: {'yes' if meta['control'] else 'no'}",
             f"- duration: {meta['duration_s']:.0f} s", "",
             "| snapshot | equal? | text | pixels (diff %) | requests | req B before | req B after | resp B before | resp B after | cookie B after |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    tot = {"rb": 0, "ra": 0, "sb": 0, "sa": 0}
    for r in rows:
        bb, ba = r["bytes_before"], r.get("bytes_after", {})
        px = r.get("pixels", {})
        pxs = "size differs" if px and not px.get("same_size") else (f"{100 * px['diff']:.2f}" if px.get("diff") is not None else "?")
        lines.append(f"| {r['snapshot']} | {r['status']} | {'=' if r.get('text_equal') else '≠'} | {pxs} | "
                     f"{bb['requests']}/{ba.get('requests', '-')} | {fmt_bytes(bb['req'])} | {fmt_bytes(ba.get('req', 0))} | "
                     f"{fmt_bytes(bb['resp'])} | {fmt_bytes(ba.get('resp', 0))} | {fmt_bytes(ba.get('cookie', 0))} |")
        tot["rb"] += bb["req"]
        tot["ra"] += ba.get("req", 0)
        tot["sb"] += bb["resp"]
        tot["sa"] += ba.get("resp", 0)
    lines.append(f"| **total** | | | | | {fmt_bytes(tot['rb'])} | {fmt_bytes(tot['ra'])} | {fmt_bytes(tot['sb'])} | {fmt_bytes(tot['sa'])} | |")
    lines += ["", "## Leak check (migrated version)", ""]
    lines += [f"- store ids seen: {', '.join(leaks['after']['store_ids']) or 'none'}",
              f"- store values the server sent (after): {leaks['after']['store_values_seen']}"]
    for m, hits in leaks["after"]["markers"].items():
        before = leaks["before"]["markers"][m]
        lines.append(f"- marker `{m}`: in store values before {before['store_values']}, after {hits['store_values']}; "
                     f"in browser storage before {before['browser_storage']}, after {hits['browser_storage']}; "
                     f"anywhere in /_dash-* bodies before {before['raw_bodies']}, after {hits['raw_bodies']}")
    lines += [f"- note: {n}" for n in leaks["after"]["notes"]]
    lines += [f"- problem: {p}" for p in leaks["after"]["problems"]] or ["- no store data reached the browser"]
    lines += ["", "## Runs", ""]
    for label, run in runs_ok.items():
        if not run.get("ok"):
            lines.append(f"- {label}: FAILED: {run.get('error')}")
            continue
        lines.append(f"- {label}: {run['tracebacks_in_server_log']} tracebacks in the server log "
                     f"({Path(run['server_log']).name}); {len(run['step_errors'])} failed steps")
        lines += [f"  - {e}" for e in run["step_errors"]]
    diffs = [r for r in rows if r["status"] != "equal"]
    if diffs:
        lines += ["", "## Differences", ""]
        for r in diffs:
            lines += [f"### {r['snapshot']}: {r['status']}", ""]
            if r.get("text_diff"):
                lines += ["```diff", r["text_diff"].rstrip(), "```"]
            if r.get("new_console_errors"):
                lines += ["console errors only after migration:", ""] + [f"- `{c[:300]}`" for c in r["new_console_errors"]]
            lines += [f"screenshots: {r.get('screenshots')}", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
