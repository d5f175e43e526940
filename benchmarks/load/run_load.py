"""Load test: gunicorn -w 4 serving benchmarks/load/app.py with ServerStore on each backend to compare
(local, the default; redis with its near tier, as deployed; redis with the near tier off) and with
dcc.Store, each driven by Locust users that behave like Dash's renderer (locustfile.py), one variant
after the other in one run.

For each variant it starts gunicorn on 127.0.0.1 (a free port), waits until the app answers, warms the
workers up, runs Locust headless for ``--duration`` seconds with ``--users`` users, stops gunicorn and
removes what it wrote (Redis keys, the local store and the near tier on /dev/shm). Then it reports
round trips per second (write+read pairs whose read returned the user's own value), p50/p95/p99
latency of those round trips, failures (HTTP errors and wrong values), and the targets:
ServerStore(local) / ServerStore(redis) throughput >= 1.5x with a lower p99 (issue 16), and
ServerStore(redis) / dcc.Store throughput >= 2x with a lower p99.

Run from the repo root (needs ``pip install locust``; Redis at 127.0.0.1:6379)::

    .venv/bin/python benchmarks/load/run_load.py                 # 50 users, 45 s per variant (~5 min)
    .venv/bin/python benchmarks/load/run_load.py --quick         # 5 users, 10 s per variant
    .venv/bin/python benchmarks/load/run_load.py --variants local,redis --duration 60
    .venv/bin/python benchmarks/load/run_load.py --json benchmarks/results/load.json \\
        --markdown benchmarks/results/load.md

The exit code is 0 whether or not the targets are met; 1 if something could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SECRET = f"load-test-{uuid.uuid4().hex}"
VARIANTS = {"local": "ServerStore (local)", "redis": "ServerStore (redis + near tier)",
            "redis_nonear": "ServerStore (redis, near tier off)", "dcc": "dcc.Store"}
ALIASES = {"serverstore": "redis"}  # the name of the redis variant before the local backend existed
THROUGHPUT_TARGET = 2.0  # ServerStore(redis) / dcc.Store
LOCAL_VS_REDIS_TARGET = 1.5  # ServerStore(local) / ServerStore(redis), issue 16
GUNICORN_TIMEOUT = 30  # gunicorn's default worker timeout, stated explicitly


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str | None:
    return shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)


def stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop a process this script started, and its children (its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def wait_ready(url: str, process: subprocess.Popen, seconds: float) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {process.returncode}")
        try:
            if requests.get(url + "/_dash-layout", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer within {seconds:.0f} s")


def warm_up(url: str, variant: str, rounds: int, rows: int) -> None:
    """A few write+read pairs from parallel sessions, so each worker has imported and connected."""
    import orjson
    import requests

    def one(i: int) -> None:
        session = requests.Session()
        session.get(url + "/_dash-layout", timeout=120)
        body = {"output": "store.data", "outputs": {"id": "store", "property": "data"},
                "inputs": [{"id": "go", "property": "n_clicks", "value": 1}],
                "state": [{"id": "who", "property": "value", "value": f"warm-{i}"}], "changedPropIds": ["go.n_clicks"]}
        written = session.post(url + "/_dash-update-component", data=orjson.dumps(body),
                               headers={"Content-Type": "application/json"}, timeout=120)
        value = written.json()["response"]["store"]["data"]
        read = {"output": "out.children", "outputs": {"id": "out", "property": "children"},
                "inputs": [{"id": "store", "property": "data", "value": value}], "state": [],
                "changedPropIds": ["store.data"]}
        got = session.post(url + "/_dash-update-component", data=orjson.dumps(read),
                           headers={"Content-Type": "application/json"}, timeout=120).json()
        assert got["response"]["out"]["children"] == f"warm-{i}|{rows}|1", got

    threads = [threading.Thread(target=one, args=(i,)) for i in range(rounds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)


def clear_redis(url: str, prefix: str) -> int:
    try:
        import redis

        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
        return len(keys)
    except Exception:
        return -1


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def run_variant(variant: str, args: argparse.Namespace, work: Path) -> dict:
    gunicorn, locust = tool("gunicorn"), tool("locust")
    if gunicorn is None or locust is None:
        return {"status": "unavailable: gunicorn and locust are needed (pip install gunicorn locust)"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prefix = f"load-{uuid.uuid4().hex[:8]}:"
    shm = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()) / f"dash-state-load-{prefix[5:13]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATE_")}
    env.update({"LOAD_VARIANT": "dcc" if variant == "dcc" else "serverstore", "LOAD_SECRET": SECRET,
                "LOAD_ROWS": str(args.rows), "PYTHONUNBUFFERED": "1"})
    if variant == "local":  # the default backend; its store on tmpfs, as its default place
        env.update({"STATE_BACKEND": "local", "STATE_LOCAL_PATH": str(shm)})
    else:  # redis (dcc.Store has the same settings and never uses them)
        env.update({"STATE_BACKEND": "redis", "STATE_REDIS_URL": args.redis_url, "STATE_KEY_PREFIX": prefix,
                    "STATE_NEAR_TIER_PATH": str(shm)})
        if variant == "redis_nonear":
            env["STATE_NEAR_TIER_BYTES"] = "0"
    log_path = work / f"gunicorn-{variant}.log"
    samples_path = work / f"samples-{variant}.json"
    out: dict = {"label": VARIANTS[variant], "url": url, "workers": args.workers, "users": args.users,
                 "duration_s": args.duration}
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [gunicorn, "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}", "--timeout",
             str(GUNICORN_TIMEOUT), "--chdir", str(work), "--pythonpath", str(HERE), "app:server"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            say(f"[{variant}] gunicorn -w {args.workers} on {url} ...")
            wait_ready(url, server, 120)
            say(f"[{variant}] warming up ({args.warmup} round trips) ...")
            warm_up(url, variant, args.warmup, args.rows)
            say(f"[{variant}] locust: {args.users} users, {args.duration} s ...")
            csv_prefix = work / f"locust-{variant}"
            locust_env = {**env, "LOAD_SAMPLES": str(samples_path), "LOAD_TIMEOUT": str(args.request_timeout),
                          "LOAD_RELEASE": args.release}
            command = [locust, "-f", str(HERE / "locustfile.py"), "--headless", "--users", str(args.users),
                       "--spawn-rate", str(args.spawn_rate), "--run-time", f"{args.duration}s", "--host", url,
                       "--csv", str(csv_prefix), "--only-summary", "--stop-timeout", "0", "--loglevel", "WARNING"]
            with open(work / f"locust-{variant}.log", "w") as locust_log:
                runner = subprocess.Popen(command, env=locust_env, stdout=locust_log, stderr=subprocess.STDOUT,
                                          start_new_session=True, cwd=str(work))
                try:
                    runner.wait(timeout=args.duration + 90)
                except subprocess.TimeoutExpired:
                    out["note"] = "locust did not stop by itself; it was stopped"
                finally:
                    stop(runner)
        finally:
            stop(server)
            out["redis_keys_removed"] = clear_redis(args.redis_url, prefix) if variant.startswith("redis") else 0
            shutil.rmtree(shm, ignore_errors=True)
    log_text = log_path.read_text(errors="replace")
    out["gunicorn_worker_timeouts"] = log_text.count("WORKER TIMEOUT")
    if not samples_path.exists():
        out["status"] = "failed: locust wrote no samples; see " + str(work / f"locust-{variant}.log")
        out["locust_log_tail"] = (work / f"locust-{variant}.log").read_text(errors="replace")[-1500:]
        return out
    data = json.loads(samples_path.read_text())
    counts, samples = data["counts"], data["samples"]
    window = counts.get("test_stop", time.time()) - counts.get("test_start", time.time())
    ok = [s["seconds"] * 1000 for s in samples if s["ok"]]
    unfinished = [age * 1000 for age in data.get("unfinished_ages", [])]
    censored = ok + unfinished  # unfinished round trips at their age: percentiles that are lower bounds
    out.update({
        "status": "ok", "window_s": window, "round_trips_ok": len(ok),
        "round_trips_failed": len(samples) - len(ok), "round_trips_unfinished": counts["started"] - len(samples),
        "wrong_values": counts["wrong_value"], "http_errors": counts["http_errors"],
        "release_errors": counts["release_errors"],
        "throughput_rps": len(ok) / window if window > 0 else None,
        "p50_ms": percentile(ok, 50), "p95_ms": percentile(ok, 95), "p99_ms": percentile(ok, 99),
        "mean_ms": statistics.fmean(ok) if ok else None, "max_ms": max(ok) if ok else None,
        "writes_ok": counts.get("writes_ok"), "unfinished_min_age_ms": min(unfinished) if unfinished else None,
        "p50_with_unfinished_ms": percentile(censored, 50), "p99_with_unfinished_ms": percentile(censored, 99),
        "failure_reasons": sorted({s["reason"] for s in samples if not s["ok"]})[:10],
    })
    stats_csv = work / f"locust-{variant}_stats.csv"
    if stats_csv.exists():
        out["locust_stats_csv"] = stats_csv.read_text()
    return out


def fmt(value, digits=1, unit="") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def markdown(result: dict) -> str:
    p = result["parameters"]
    lines = ["# Load test (`benchmarks/load/run_load.py`)", "",
             f"gunicorn -w {p['workers']} (sync workers, timeout {GUNICORN_TIMEOUT} s) on 127.0.0.1, Locust "
             f"{result['environment'].get('locust')} headless with {p['users']} users (spawn rate {p['spawn_rate']}/s) "
             f"for {p['duration']} s per variant (one after the other, in this order), on the same {result['environment']['cpu_count']}-CPU machine as the "
             f"server and Redis. Frame: {p['rows']:,} rows. A round trip is the write callback then the read callback "
             + ("(ServerStore's release rides on the read request). " if p.get("release") == "piggyback" else
                "(the release call of ServerStore follows it, untimed). ")
             + "Only round trips whose read returned the user's "
             "own value count; throughput = those / the test's wall time.", "",
             "| variant | round trips/s | p50 ms | p95 ms | p99 ms | max ms | OK | failed (HTTP / wrong value) | "
             "unfinished at stop (youngest age) | p50 / p99 with unfinished, ms (≥) | writes answered | "
             "release errors | gunicorn worker timeouts |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|"]
    for variant, r in result["variants"].items():
        if r.get("status") != "ok":
            lines.append(f"| {VARIANTS[variant]} | {r.get('status')} | | | | | | | | | | | |")
            continue
        young = r.get("unfinished_min_age_ms")
        lines.append(f"| {r['label']} | {fmt(r['throughput_rps'], 2)} | {fmt(r['p50_ms'], 0)} | {fmt(r['p95_ms'], 0)} "
                     f"| {fmt(r['p99_ms'], 0)} | {fmt(r['max_ms'], 0)} | {r['round_trips_ok']} | "
                     f"{r['round_trips_failed']} ({r['http_errors']} / {r['wrong_values']}) | "
                     f"{r['round_trips_unfinished']}" + (f" ({young / 1000:.1f} s)" if young is not None else "")
                     + f" | {fmt(r.get('p50_with_unfinished_ms'), 0)} / {fmt(r.get('p99_with_unfinished_ms'), 0)} | "
                     f"{r.get('writes_ok')} | {r['release_errors']} | {r['gunicorn_worker_timeouts']} |")
    lines += ["", "\"with unfinished\": the round trips still running when the test stopped, counted at their age "
              "then, which is a lower bound of their latency; these percentiles are lower bounds.", ""]
    t = result.get("target_local_vs_redis")
    if t:
        lines.append(f"- ServerStore(local) / ServerStore(redis + near tier) throughput: "
                     f"**{fmt(t['throughput_ratio'], 2, 'x')}** (target ≥ {LOCAL_VS_REDIS_TARGET:g}x); p99 "
                     f"{fmt(t['p99_local_ms'], 0)} ms vs {fmt(t['p99_redis_ms'], 0)} ms (target: lower): "
                     f"**{'MET' if t['met'] else 'MISSED'}**")
    t = result.get("target_local_vs_redis_nonear")
    if t:
        lines.append(f"- context, ServerStore(local) / ServerStore(redis, near tier off) throughput: "
                     f"{fmt(t['throughput_ratio'], 2, 'x')}; p99 {fmt(t['p99_local_ms'], 0)} ms vs "
                     f"{fmt(t['p99_redis_ms'], 0)} ms ({'MET' if t['met'] else 'MISSED'} against the same target)")
    t = result.get("target")
    if t:
        ratio = "unbounded (no dcc.Store round trip finished)" if t["throughput_ratio"] == float("inf") else \
            fmt(t["throughput_ratio"], 1, "x")
        lines.append(f"- ServerStore(redis + near tier) / dcc.Store throughput: **{ratio}** (target ≥ "
                     f"{THROUGHPUT_TARGET:g}x); p99 "
                     f"{fmt(t['p99_serverstore_ms'], 0)} ms (ServerStore, finished round trips) vs ≥ "
                     f"{fmt(t['p99_dcc_ms'], 0)} ms (dcc.Store, with its unfinished ones) (target: lower): "
                     f"**{'MET' if t['met'] else 'MISSED'}**")
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s per variant, 5 users")
    parser.add_argument("--duration", type=int, help="seconds of load per variant (default 45)")
    parser.add_argument("--users", type=int, help="concurrent users (default 50)")
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default: all in 1 s)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the frame (default 100000)")
    parser.add_argument("--variants", default="local,redis,redis_nonear,dcc",
                        help="comma list of local, redis (near tier on, as deployed), redis_nonear, dcc "
                             "(default all four, in this order)")
    parser.add_argument("--warmup", type=int, help="write+read pairs before the measurement (default 8)")
    parser.add_argument("--release", choices=("route", "piggyback"), default="route",
                        help="ServerStore users release the replaced reference by POST /_dash-state/v1/release "
                             "(route, default) or in the next read request (piggyback)")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="client timeout per request (s)")
    parser.add_argument("--redis-url", default=os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--markdown", metavar="PATH")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy gunicorn/locust logs and CSVs to DIR")
    args = parser.parse_args(argv)
    args.duration = args.duration or (10 if args.quick else 45)
    args.users = args.users or (5 if args.quick else 50)
    args.spawn_rate = args.spawn_rate or float(args.users)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 8)
    variants = [ALIASES.get(v.strip(), v.strip()) for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}")

    from importlib.metadata import version

    def pkg(name: str):
        try:
            return version(name)
        except Exception:
            return None

    result: dict = {"parameters": {"duration": args.duration, "users": args.users, "spawn_rate": args.spawn_rate,
                                   "workers": args.workers, "rows": args.rows, "variants": variants,
                                   "warmup": args.warmup, "redis_url": args.redis_url, "release": args.release},
                    "environment": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                                    "locust": pkg("locust"), "gunicorn": pkg("gunicorn"), "dash": pkg("dash"),
                                    "load_average_start": list(os.getloadavg())},
                    "variants": {}, "notes": []}
    work = Path(tempfile.mkdtemp(prefix="dash-state-load-"))
    try:
        for variant in variants:
            try:
                result["variants"][variant] = run_variant(variant, args, work)
            except Exception as exc:
                result["variants"][variant] = {"status": f"failed: {type(exc).__name__}: {exc}"}
            say(f"[{variant}] {result['variants'][variant].get('status')}")
        if args.keep_logs:
            target = Path(args.keep_logs)
            target.mkdir(parents=True, exist_ok=True)
            for item in work.iterdir():
                if item.suffix in (".log", ".csv"):
                    shutil.copy(item, target / item.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["environment"]["load_average_end"] = list(os.getloadavg())
    for other, name in (("redis", "target_local_vs_redis"), ("redis_nonear", "target_local_vs_redis_nonear")):
        lo, re_ = result["variants"].get("local", {}), result["variants"].get(other, {})
        if lo.get("status") == "ok" and re_.get("status") == "ok" and re_.get("throughput_rps"):
            ratio = lo["throughput_rps"] / re_["throughput_rps"]
            lower = None not in (lo["p99_ms"], re_["p99_ms"]) and lo["p99_ms"] < re_["p99_ms"]
            result[name] = {"throughput_ratio": ratio, "p99_local_ms": lo["p99_ms"], "p99_redis_ms": re_["p99_ms"],
                            "limit": LOCAL_VS_REDIS_TARGET, "met": ratio >= LOCAL_VS_REDIS_TARGET and lower}
    s, d = result["variants"].get("redis", {}), result["variants"].get("dcc", {})
    if s.get("status") == "ok" and d.get("status") == "ok" and s.get("throughput_rps"):
        # p99: ServerStore's finished round trips against dcc.Store's lower bound (unfinished ones at their age)
        ratio = s["throughput_rps"] / d["throughput_rps"] if d.get("throughput_rps") else float("inf")
        dcc_p99 = d.get("p99_with_unfinished_ms")
        lower = s["p99_ms"] is not None and dcc_p99 is not None and s["p99_ms"] < dcc_p99
        result["target"] = {"throughput_ratio": ratio, "p99_serverstore_ms": s["p99_ms"], "p99_dcc_ms": dcc_p99,
                            "met": ratio >= THROUGHPUT_TARGET and lower}
        if not d.get("throughput_rps"):
            result["notes"].append(f"no dcc.Store round trip finished within {args.duration} s ({d.get('writes_ok')} "
                                   "writes were answered): the throughput ratio is unbounded")
    if d.get("round_trips_unfinished"):
        result["notes"].append(f"dcc.Store: {d['round_trips_unfinished']} round trips were still waiting at the end "
                               "(their latency is not in the percentiles, which therefore flatter dcc.Store)")
    busy = result["environment"]["load_average_start"][0]
    if busy > (os.cpu_count() or 1):
        result["notes"].append(f"the machine was busy before the test (1-minute load average {busy:.2f} on "
                               f"{os.cpu_count()} CPUs)")
    text = markdown(result)
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0 if all(v.get("status") == "ok" for v in result["variants"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
