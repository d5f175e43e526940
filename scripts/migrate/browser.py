"""Driving headless Chromium: the steps of the steps file (goto, click, type, select, wait, reload,
snapshot) against one server, and at each snapshot the visible text, a screenshot, the stores the
renderer holds, session/local storage and what the server sent since the last snapshot."""
from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import time
from pathlib import Path

from .log import log
from .serve import AppServer

# True once Dash's renderer has a layout, no callback pending and is not loading
IDLE_JS = """
var s = window.store && window.store.getState();
if (!s || !s.layout) return false;
var cb = Object.assign({}, s.callbacks || {}); delete cb.stored; delete cb.completed;
var pending = [].concat.apply([], Object.values(cb)).length;
return pending === 0 && !s.isLoading;
"""

# Every Store / ServerStore in the renderer's layout with its data as JSON, both web storages, and the
# ServerStores the server says the browser holds
AUDIT_JS = """
var out = {stores: [], storage: [], held: {}};
try {  // the stores dash-state keeps in the browser (client backend, mirrored): see dash_state/glue/mirror.py
  out.held = JSON.parse(document.getElementById('_dash-config').textContent).dash_state || {};
} catch (e) { out.held = {}; }
var s = window.store && window.store.getState();
function walk(node) {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) { node.forEach(walk); return; }
  if (node.type && node.props && (node.type === 'Store' || node.type === 'ServerStore')) {
    var d = node.props.data, j = d === undefined ? 'undefined' : JSON.stringify(d);
    out.stores.push({id: JSON.stringify(node.props.id), type: node.type, namespace: node.namespace,
                     storage_type: node.props.storage_type || 'memory', json: j});
  }
  for (var k in node) { var v = node[k]; if (v && typeof v === 'object') walk(v); }
}
if (s) walk(s.layout);
[['session', window.sessionStorage], ['local', window.localStorage]].forEach(function (pair) {
  for (var i = 0; i < pair[1].length; i++) {
    var k = pair[1].key(i); out.storage.push({area: pair[0], key: k, value: pair[1].getItem(k)});
  }
});
return JSON.stringify(out);
"""


def new_driver(width: int, height: int):
    """Headless Chromium at a fixed size and scale (so two runs' screenshots line up), console logged."""
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1",
                 "--disable-extensions", "--no-first-run", "--mute-audio"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


class Driver:
    """Runs the declarative steps of one app against one server and records every snapshot."""

    def __init__(self, server: AppServer, cfg: dict, label: str, shots: Path):
        self.server, self.cfg, self.label, self.shots = server, cfg, label, shots
        self.driver = new_driver(cfg.get("width", 1280), cfg.get("height", 1000))
        self.snapshots: dict[str, dict] = {}
        self.console: list[str] = []
        self.server.stats()  # start counting from here

    def close(self):
        with contextlib.suppress(Exception):
            self.driver.quit()

    # -- waiting
    def idle(self, timeout: float | None = None):
        """Wait until the renderer was idle three checks in a row, then ``settle`` seconds more."""
        from selenium.common.exceptions import WebDriverException

        timeout = timeout or self.cfg.get("idle_timeout", 20)
        deadline, stable = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            try:
                stable = stable + 1 if self.driver.execute_script(IDLE_JS) else 0
            except WebDriverException:
                stable = 0
            if stable >= 3:
                break
            time.sleep(0.2)
        time.sleep(self.cfg.get("settle", 0.8))

    def find(self, css: str, timeout: float = 15):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))

    # -- steps
    def run(self, steps: list[dict], prefix: str = ""):
        """The steps in order; each waits for the renderer to be idle. A failing step raises."""
        from selenium.common.exceptions import ElementClickInterceptedException
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        for step in steps:
            if "goto" in step:
                self.drain_console()  # what the previous page logs after its snapshot is not this page's
                self.driver.get(self.server.url + step["goto"])
                self.find("#react-entry-point", 30)
                self.idle()
            elif "click" in step:
                el = self.find(step["click"])
                self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
                ActionChains(self.driver).move_to_element(el).click().perform()
                self.idle()
            elif "click_link" in step:
                el = self.driver.find_element(By.LINK_TEXT, step["click_link"])
                el.click()
                self.idle()
            elif "type" in step:
                el = self.find(step["type"])
                self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
                try:
                    el.click()
                except ElementClickInterceptedException:  # e.g. another picker's open calendar
                    ActionChains(self.driver).send_keys(Keys.ESCAPE).perform()
                    self.driver.execute_script("arguments[0].focus()", el)
                if step.get("clear", True):
                    el.send_keys(Keys.CONTROL, "a")
                    el.send_keys(Keys.DELETE)
                el.send_keys(step["text"])
                if step.get("enter"):
                    el.send_keys(Keys.ENTER)
                    el.send_keys(Keys.ESCAPE)
                if step.get("blur", True):
                    self.driver.execute_script("document.activeElement && document.activeElement.blur()")
                self.idle()
            elif "select" in step:  # a dcc.Dropdown (Dash 4): open it, search, click the option
                self.find(step["select"]).click()
                time.sleep(0.3)
                for search in self.driver.find_elements(By.CSS_SELECTOR, "input.dash-dropdown-search"):
                    search.send_keys(step["text"])
                time.sleep(0.3)
                xpath = f"//*[@role='option'][normalize-space(.)={json.dumps(step['text'])}]"
                option = self.driver.find_elements(By.XPATH, xpath)
                if not option:
                    raise ValueError(f"no option {step['text']!r} in {step['select']}")
                option[0].click()
                time.sleep(0.2)
                ActionChains(self.driver).send_keys(Keys.ESCAPE).perform()
                self.idle()
            elif "wait" in step:
                time.sleep(float(step["wait"]))
                self.idle()
            elif "wait_text" in step:
                deadline = time.monotonic() + step.get("timeout", 15)
                while time.monotonic() < deadline and step["wait_text"] not in self.text():
                    time.sleep(0.3)
            elif "reload" in step:
                self.driver.refresh()
                self.find("#react-entry-point", 30)
                self.idle()
            elif "snapshot" in step:
                self.snapshot(prefix + step["snapshot"])
            else:
                raise ValueError(f"unknown step {step}")

    def drain_console(self) -> list[str]:
        with contextlib.suppress(Exception):
            return [f"{e.get('level')}: {e.get('message')}" for e in self.driver.get_log("browser")]
        return []

    def text(self) -> str:
        return self.driver.execute_script("return document.body ? document.body.innerText : ''")

    def snapshot(self, name: str):
        """Text, screenshot, stores, storage and the server's counts since the previous snapshot."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "root"
        shot = self.shots / f"{safe}.png"
        text = self.text()
        hide = self.cfg.get("screenshot_hide", [])
        if hide:  # parts the migration changes on purpose (e.g. the app's own source code on screen)
            self.driver.execute_script(
                "arguments[0].forEach(function (sel) { document.querySelectorAll(sel).forEach("
                "function (e) { e.setAttribute('data-harness-hidden', e.style.display); e.style.display = 'none'; }); });",
                hide)
        self.driver.save_screenshot(str(shot))
        if hide:
            self.driver.execute_script(
                "document.querySelectorAll('[data-harness-hidden]').forEach(function (e) {"
                " e.style.display = e.getAttribute('data-harness-hidden'); e.removeAttribute('data-harness-hidden'); });")
        audit = json.loads(self.driver.execute_script(AUDIT_JS))
        stats = self.server.stats()
        ignore = [re.compile(p) for p in self.cfg.get("ignore_console", [r"net::ERR_NAME_NOT_RESOLVED"])]
        console = [clean_console(c, self.server.url) for c in self.drain_console() if c.startswith("SEVERE")]
        self.snapshots[name] = {
            "text": text, "screenshot": str(shot), "audit": audit, "stats": stats,
            "console": [c for c in console if not any(p.search(c) for p in ignore)],
            "url": self.driver.current_url,
        }
        log(f"  {self.label:8s} {name}: {len(self.snapshots[name]['text'])} chars, "
            f"{sum(stats['response_bytes'].values())} B out, {len(stats['errors'])} errors")


def clean_console(message: str, url: str) -> str:
    """A console message without what differs between two servers (port, request ids)."""
    message = message.replace(url, "SERVER")
    message = re.sub(r"endId=[^\s&]+", "endId=*", message)
    # line:column inside the index page shift by one line with ServerStore's script tag
    return re.sub(r"(SERVER/[^\s)]*):\d+:\d+", r"\1:*", message)


def drive(server: AppServer, cfg: dict, label: str, out: Path, deadline: float) -> tuple[dict, list]:
    """Every page, then every scenario. A step that fails ends its scenario (recorded), not the run."""
    shots = out / "screens" / label
    shots.mkdir(parents=True, exist_ok=True)
    d = Driver(server, cfg, label, shots)
    errors = []
    try:
        pages = cfg.get("pages", [])
        if pages == "registry":
            pages = sorted(server.get("/__harness/pages"))
            pages = [p for p in pages if not any(fnmatch.fnmatch(p, g) for g in cfg.get("skip_pages", []))]
        work = [(f"page {p}", [{"goto": p}, {"snapshot": f"page {p}"}], "") for p in pages]
        work += [(s["name"], s["steps"], f"{s['name']}: ") for s in cfg.get("scenarios", [])
                 if cfg.get("only_scenarios") is None or s["name"] in cfg["only_scenarios"]]
        for name, steps, prefix in work:
            if time.monotonic() > deadline:
                errors.append(f"{name}: not run, --timeout reached")
                continue
            try:
                d.run(steps, prefix=prefix)
            except Exception as exc:  # noqa: BLE001 - a failed scenario is a result, the run goes on
                message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                errors.append(f"{name}: {type(exc).__name__}: {message}")
                log(f"  {label:8s} {name} failed: {message}")
        return d.snapshots, errors
    finally:
        d.close()
