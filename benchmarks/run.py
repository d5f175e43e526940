"""dash-state benchmark: one entry point, every scenario measured in the same process and the same run.

What it measures (benchmarks/README.md has the details and how to read the output):

* **Round trips** (the matrix). A write callback W (button -> store ``data``) and a read callback R
  (store ``data`` -> a Div), driven through Flask's test client as Dash's renderer sends them, for
  these scenarios: Dash's dispatch floor (two trivial callbacks), dcc.Store, dash-extensions
  ``Serverside`` with ``FileSystemBackend`` and with ``RedisBackend``, a raw redis-py
  pickle + SET + GET + unpickle (no Dash), and ServerStore on memory, local (same process, and written
  by another process of the host, read here), redis (same worker: read cache on), redis (another
  worker reads: a second app in this process, read cache and near tier off, reading the references
  the first one wrote), redis with its near tier written by another process and read here, sqlite
  and postgres. Values: 10 KB of JSON and DataFrames of
  1k, 100k and 1M rows. Three modes: back to back, interleaved (round robin) and idle (a 1 s sleep
  before each round trip). Like the browser, each ServerStore tab releases the reference it replaced.
* **Targets**: ratios between those medians, from this run (MET / MISSED, with the numbers).
* **Clicks**: server-side bytes after one user clicks 100 times on one store (memory, redis, sqlite,
  postgres), against one value's bytes.
* **RSS**: memory backend, 1,000 writes of a 13 MB frame by 10 users, with and without releases, in
  a child process, against ``STATE_MEMORY_MAX_BYTES``.
* **Big frames**: 1M and 2M rows on memory and redis, per request against gunicorn's 30 s timeout.
* **Codecs** and **backend vs raw client** (what ``backends.py`` measured): Arrow/seal vs pickle,
  and each byte backend's ``set``+``get`` against its raw client moving the same sealed bytes.

Run from the repo root::

    .venv/bin/python benchmarks/run.py --quick                 # smoke run, < 2 minutes (CI)
    .venv/bin/python benchmarks/run.py --json benchmarks/results/run.json \\
        --markdown benchmarks/results/run.md --chart benchmarks/results/run.png    # full run, ~20 min
    .venv/bin/python benchmarks/run.py --profile ss_redis --profile-size 100k   # cProfile of one scenario

The exit code is 0 whether targets are met or missed; it is not 0 only if the script itself crashes
(1) or its watchdog had to stop it (3).

The measurements live in ``benchmarks/bench/``, one module per concern (``runner.py`` calls them in
order); this file is only the command line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from bench.matrix import MODE_ORDER, MODES
from bench.runner import Plan, run
from bench.sizes import parse_rows
from bench.scenarios import DEFAULT_SCENARIOS, LABELS, QUICK_SCENARIOS, SCENARIOS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (CI): 10 KB JSON, 1k, 10k and 20k rows, 2 runs, 0.2 s idle, small sections; "
                             "under 2 minutes")
    parser.add_argument("--sizes", help="comma list of json and row counts (1k, 100k, 1m, 250000); "
                                        "default json,1k,100k,1m")
    parser.add_argument("--modes", help="comma list of b2b, interleaved, idle (default all three)")
    parser.add_argument("--scenarios", help="comma list of scenario keys (default all but the last two; --quick "
                                            "also leaves out ss_local, ss_local_other, ss_redis_near_other): " +
                        ", ".join(k for k, *_ in SCENARIOS))
    parser.add_argument("--host-sizes", default="100k,1m",
                        help="sizes at which ss_local, ss_local_other and ss_redis_near_other run (default 100k,1m; "
                             "'all': every size)")
    parser.add_argument("--runs", type=int, help="measured round trips per scenario, mode and size (default 11)")
    parser.add_argument("--big-runs", type=int, help="the same for sizes of 500k rows or more (default 5)")
    parser.add_argument("--warmup", type=int, help="unmeasured round trips first (default 2; 1 at >= 500k rows)")
    parser.add_argument("--idle-seconds", type=float, help="idle mode's sleep before each round trip (default 1)")
    parser.add_argument("--slow-seconds", type=float, default=10.0,
                        help="a scenario whose first round trip at a size takes longer is measured once (default 10)")
    parser.add_argument("--release", choices=("route", "piggyback"), default="route",
                        help="how a tab releases the reference a write replaced: POST /_dash-state/v1/release after "
                             "the round trip, untimed (route, default), or in R's request as the component's "
                             "renderer hook does (piggyback)")
    parser.add_argument("--sections", help="comma list of matrix, clicks, rss, big, floor, codecs, raw "
                                           "(default all)")
    parser.add_argument("--clicks", type=int, help="clicks in the bytes-kept section (default 100)")
    parser.add_argument("--max-minutes", type=float, help="time budget: no new measurement starts after it "
                                                          "(default 25; --quick 1.75); a watchdog stops the process "
                                                          "5 minutes later")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the Markdown report (also printed to stdout)")
    parser.add_argument("--chart", metavar="PATH", help="write a grouped bar chart (matplotlib, PNG) of the "
                                                        "interleaved medians")
    parser.add_argument("--profile", metavar="SCENARIO", help="profile one scenario instead of the benchmark; "
                                                               "its key, e.g. ss_memory or ss_redis")
    parser.add_argument("--profile-size", default="100k", help="size for --profile (default 100k)")
    parser.add_argument("--profile-runs", type=int, default=20, help="round trips profiled (default 20)")
    parser.add_argument("--profile-tool", choices=("cprofile", "py-spy"), default="cprofile")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--redis-url", default=os.environ.get("STATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--postgres-url", default=os.environ.get(
        "STATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--_rss-child", dest="rss_child", help=argparse.SUPPRESS)
    return parser


def plan_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Plan:
    """The options with their defaults (--quick's or the full run's) applied; bad values end here."""
    quick = args.quick
    size_tokens = (args.sizes or ("json,1k,10k,20k" if quick else "json,1k,100k,1m")).split(",")
    modes = [m.strip() for m in (args.modes or "b2b,interleaved,idle").split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    modes = [m for m in MODE_ORDER if m in modes]
    default_keys = QUICK_SCENARIOS if quick else DEFAULT_SCENARIOS
    keys = [k.strip() for k in (args.scenarios or ",".join(default_keys)).split(",") if k.strip()]
    for key in keys + ([args.profile] if args.profile else []):
        if key not in LABELS:
            parser.error(f"unknown scenario {key!r}; choose from {', '.join(LABELS)}")
    sections = [s.strip() for s in (args.sections or "matrix,clicks,rss,big,floor,codecs,raw").split(",")]
    runs = args.runs or (2 if quick else 11)
    big_runs = args.big_runs or (2 if quick else 5)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    idle_s = args.idle_seconds if args.idle_seconds is not None else (0.2 if quick else 1.0)
    clicks = args.clicks or (10 if quick else 100)
    budget = args.max_minutes or (1.75 if quick else 25.0)
    if min(runs, big_runs, clicks) < 1 or warmup < 0:
        parser.error("runs and clicks must be >= 1, warm-ups >= 0")
    host_sizes = None if args.host_sizes.strip().lower() == "all" else \
        {parse_rows(t) for t in args.host_sizes.split(",") if t.strip() and t.strip().lower() != "json"}
    return Plan(quick=quick, size_tokens=size_tokens, modes=modes, keys=keys, sections=sections, runs=runs,
                big_runs=big_runs, warmup=warmup, idle_s=idle_s, clicks=clicks, budget=budget,
                host_sizes=host_sizes)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rss_child:  # the child process of the RSS section (bench/rss.py)
        from bench.report import json_default
        from bench.rss import rss_child

        print("RSS-RESULT " + json.dumps(rss_child(json.loads(args.rss_child)), default=json_default), flush=True)
        return 0
    plan = plan_from(args, parser)
    command = " ".join(["python benchmarks/run.py"] + (argv if argv is not None else sys.argv[1:]))
    return run(plan, args, command)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
