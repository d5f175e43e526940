#!/usr/bin/env bash
# Install everything the test suite needs on a Debian/Ubuntu machine, then run the whole suite.
#
#   bash scripts/test.sh [extra pytest arguments]
#   bash scripts/test.sh --bench [benchmarks/run.py arguments]   # same set-up, then the benchmark
#   bash scripts/test.sh --matrix [nox arguments]       # same set-up, then every Dash minor x server (noxfile.py)
#
# 1. Debian packages: chromium + chromium-driver (browser tests), nodejs + npm (bundle check),
#    redis-server and postgresql (service tests), installed with apt-get when missing (as root, or
#    through sudo). Without apt-get, a missing one is named, and its tests skip loudly (or fail, with
#    DASH_STATE_REQUIRE_SERVICES=1).
# 2. A virtual environment in .venv with dash-state and its [test] extra.
# 3. The bundle check: rebuilds the JavaScript and the generated component files from src_js/
#    with `npm ci` and fails if they differ from the committed ones.
# 3b. The docs build (scripts/docs.sh: mkdocs build --strict, warnings are errors).
# 4. Redis and PostgreSQL: started if installed but stopped.
# 5. pytest over tests/, headless. "No tests ran" (pytest's exit code 5) is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=test
extra="test"
if [ "${1:-}" = "--bench" ]; then
    mode=bench
    extra="bench"
    shift
elif [ "${1:-}" = "--matrix" ]; then
    mode=matrix
    shift
fi

say() { printf '\n== %s\n' "$*"; }
die() { printf '\nscripts/test.sh: %s\n' "$*" >&2; exit 1; }

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"

# -- 1. system packages -------------------------------------------------------------------------
need_apt=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
{ command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; } || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
    say "installing Debian packages: ${need_apt[*]}"
    if ! command -v apt-get >/dev/null 2>&1; then
        die "missing ${need_apt[*]} and no apt-get to install them: install them with your package manager"
    fi
    export RUNLEVEL=1  # Debian's postinst scripts: install services without trying to start them via systemd
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${need_apt[*]}: run as root or install sudo"
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
export DASH_TEST_CHROMEPATH="${DASH_TEST_CHROMEPATH:-/usr/bin/chromium}"
[ -x "$DASH_TEST_CHROMEPATH" ] || die "Chromium not found at $DASH_TEST_CHROMEPATH (set DASH_TEST_CHROMEPATH)"
command -v chromedriver >/dev/null 2>&1 || export PATH="/usr/bin:$PATH"

# -- 2. Python environment ----------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10"
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv || die "could not create a virtual environment (Debian: apt-get install python3-venv)"
fi
say "installing dash-state[$extra] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extra$([ "$mode" = test ] && echo ,docs)]"

# -- 3. the committed bundle matches src_js/ ----------------------------------------------------
if [ "$mode" = test ]; then
    say "checking that the committed bundle and generated files match src_js/"
    bash scripts/check-bundle.sh
fi

# -- 3b. the docs build: mkdocs build --strict, warnings are errors -------------------------------
if [ "$mode" = test ]; then
    say "building the docs"
    bash scripts/docs.sh
fi

# -- 4. services: Redis and PostgreSQL for the service tests --------------------------------------
# Started here when installed but not running. Tests that need a server that is still missing are
# skipped with a loud message, or fail when DASH_STATE_REQUIRE_SERVICES=1 (as in CI).
say "checking Redis and PostgreSQL"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 6379; then
    if command -v redis-server >/dev/null 2>&1; then
        echo "starting redis-server on 127.0.0.1:6379"
        mkdir -p "${TMPDIR:-/tmp}/dash-state-redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            --dir "${TMPDIR:-/tmp}/dash-state-redis" --logfile "${TMPDIR:-/tmp}/dash-state-redis/redis.log"
    else
        echo "MISSING: redis-server (Debian: apt-get install redis-server); Redis tests will not run"
    fi
fi
if ! port_open 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        echo "starting PostgreSQL $version cluster 'main'"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || $sudo_cmd pg_ctlcluster "$version" main start || true
    else
        echo "MISSING: PostgreSQL (Debian: apt-get install postgresql); PostgreSQL tests will not run"
    fi
fi
for _ in $(seq 1 20); do port_open 6379 && port_open 5432 && break; sleep 0.5; done
if port_open 5432 && command -v psql >/dev/null 2>&1 && [ -z "${STATE_TEST_DATABASE_URL:-}" ]; then
    # The tests use database "test" as user postgres (a machine with trust auth on 127.0.0.1). On a
    # stock Debian cluster (password auth on TCP) they get a role and database of their own instead.
    if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
        runuser -u postgres -- createdb test 2>/dev/null || true
    fi
    if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then
        as_postgres() { runuser -u postgres -- "$@" 2>/dev/null || $sudo_cmd -u postgres "$@"; }
        as_postgres psql -qc "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dash_state_test') THEN
            CREATE ROLE dash_state_test LOGIN PASSWORD 'dash-state-test'; END IF; END\$\$;" >/dev/null || true
        as_postgres createdb -O dash_state_test dash_state_test 2>/dev/null || true
        if PGPASSWORD=dash-state-test psql -h 127.0.0.1 -U dash_state_test -d dash_state_test -c 'select 1' >/dev/null 2>&1; then
            export STATE_TEST_DATABASE_URL="postgresql+psycopg://dash_state_test:dash-state-test@127.0.0.1:5432/dash_state_test"
            echo "PostgreSQL tests use role and database dash_state_test"
        else
            echo "NOTE: could not reach PostgreSQL as postgres or dash_state_test; set STATE_TEST_DATABASE_URL"
        fi
    fi
fi

# -- 5. the suite (or the benchmark, or the version matrix) ----------------------------------------
if [ "$mode" = matrix ]; then
    say "running the version matrix (noxfile.py): each Dash minor x each server"
    exec .venv/bin/python -m nox "$@"
fi
if [ "$mode" = bench ]; then
    say "running benchmarks/run.py"
    if [ $# -eq 0 ]; then
        set -- --json benchmarks/results/run.json --markdown benchmarks/results/run.md \
            --chart benchmarks/results/run.png
    fi
    exec .venv/bin/python benchmarks/run.py "$@"
fi
say "running pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    die "pytest collected no tests: that is a failure, not a pass"
fi
if [ "$status" -eq 0 ] && [ "${DASH_STATE_MATRIX:-}" = ci ]; then
    say "running the CI subset of the version matrix (nox -s matrix_ci)"
    .venv/bin/python -m nox -s matrix_ci || die "the version matrix subset failed (see above)"
fi
exit "$status"
