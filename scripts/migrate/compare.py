"""Comparing the two versions snapshot by snapshot: the visible text (after the steps file's
``normalize`` rules), the screenshots pixel by pixel (in a small Chromium page), new console errors and
the bytes exchanged; the control run tells a migration difference from a page unstable on its own."""
from __future__ import annotations

import base64
import difflib
import re
from pathlib import Path

from .browser import new_driver

# Share of pixels whose channels differ by more than 8 between two PNGs (None if the sizes differ)
PIXEL_JS = """
var done = arguments[arguments.length - 1];
function load(b64) { return new Promise(function (ok, bad) {
  var i = new Image(); i.onload = function () { ok(i); }; i.onerror = bad; i.src = 'data:image/png;base64,' + b64; }); }
Promise.all([load(arguments[0]), load(arguments[1])]).then(function (imgs) {
  var a = imgs[0], b = imgs[1];
  if (a.width !== b.width || a.height !== b.height)
    return done({same_size: false, a: [a.width, a.height], b: [b.width, b.height], diff: null});
  function px(img) { var c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
    var x = c.getContext('2d'); x.drawImage(img, 0, 0); return x.getImageData(0, 0, img.width, img.height).data; }
  var p = px(a), q = px(b), n = 0;
  for (var k = 0; k < p.length; k += 4)
    if (Math.abs(p[k] - q[k]) > 8 || Math.abs(p[k+1] - q[k+1]) > 8 || Math.abs(p[k+2] - q[k+2]) > 8) n++;
  done({same_size: true, a: [a.width, a.height], b: [b.width, b.height], diff: n / (a.width * a.height)});
}).catch(function (e) { done({error: String(e)}); });
"""


def pixel_compare(driver, a: str, b: str) -> dict:
    return driver.execute_async_script(PIXEL_JS, base64.b64encode(Path(a).read_bytes()).decode(),
                                       base64.b64encode(Path(b).read_bytes()).decode())


def normalize(text: str, rules: list) -> str:
    """The steps file's (pattern, replacement) rules: text that differs between any two runs (times, ids)."""
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text)
    return text


def byte_totals(snap: dict) -> dict:
    """What one snapshot exchanged with the server, summed over the counted endpoints."""
    st = snap["stats"]
    return {
        "requests": sum(st["requests"].values()),
        "req": sum(st["request_bytes"].values()),
        "resp": sum(st["response_bytes"].values()),
        "layout_resp": st["response_bytes"]["/_dash-layout"],
        "update_req": st["request_bytes"]["/_dash-update-component"],
        "update_resp": st["response_bytes"]["/_dash-update-component"],
        "cookie": st["cookie_bytes"] + st["set_cookie_bytes"],
        "errors": len(st["errors"]),
    }


def compare(runs: dict, cfg: dict, out: Path, pixel_threshold: float) -> list[dict]:
    """One row per snapshot of ``before``: its status (equal, unstable, DIFFERENT, MISSING) and why."""
    rules = cfg.get("normalize", [])
    rows = []
    driver = new_driver(400, 300)
    try:
        for name, before in runs["before"].items():
            after = runs["after"].get(name)
            control = runs.get("control", {}).get(name)
            row = {"snapshot": name, "bytes_before": byte_totals(before)}
            if after is None:
                row.update(status="MISSING", text_equal=False)
                rows.append(row)
                continue
            row["bytes_after"] = byte_totals(after)
            tb, ta = normalize(before["text"], rules), normalize(after["text"], rules)
            row["text_equal"] = tb == ta
            row["text_equal_raw"] = before["text"] == after["text"]
            if not row["text_equal"]:
                row["text_diff"] = "".join(list(difflib.unified_diff(
                    tb.splitlines(keepends=True), ta.splitlines(keepends=True), "before", "after", n=1))[:60])
            row["pixels"] = pixel_compare(driver, before["screenshot"], after["screenshot"])
            row["screenshots"] = [before["screenshot"], after["screenshot"]]
            row["console_before"], row["console_after"] = before["console"], after["console"]
            pixel_diff = row["pixels"].get("diff")
            pixels_equal = row["pixels"].get("same_size") and pixel_diff is not None and pixel_diff <= pixel_threshold
            row["pixels_equal"] = bool(pixels_equal)
            stable = True
            if control is not None:
                row["bytes_control"] = byte_totals(control)
                row["control_text_equal"] = normalize(control["text"], rules) == tb
                cp = pixel_compare(driver, before["screenshot"], control["screenshot"])
                row["control_pixels"] = cp
                row["control_pixels_equal"] = bool(cp.get("same_size") and cp.get("diff") is not None
                                                   and cp["diff"] <= pixel_threshold)
                stable = row["control_text_equal"] and row["control_pixels_equal"]
            seen = set(before["console"]) | set(control["console"] if control else [])
            new_errors = sorted({c for c in after["console"] if c not in seen})
            row["new_console_errors"] = new_errors
            same_lines = sorted(tb.splitlines()) == sorted(ta.splitlines())
            clean = not new_errors and not row["bytes_after"]["errors"] > row["bytes_before"]["errors"]
            if row["text_equal"] and pixels_equal and clean:
                row["status"] = "equal"
            elif same_lines and pixels_equal and clean:  # e.g. plotly's SVG texts in another DOM order
                row["status"] = "equal (same screen; the same text lines in another DOM order)"
            elif not stable and (not row["text_equal"] or not pixels_equal) and not new_errors:
                row["status"] = "unstable (the original differs between two runs too)"
            else:
                row["status"] = "DIFFERENT"
            rows.append(row)
    finally:
        driver.quit()
    return rows
