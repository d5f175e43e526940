#!/usr/bin/env bash
# Install everything the test suite needs on a Debian/Ubuntu machine, then run the whole suite.
#
#   bash scripts/test.sh [extra pytest arguments]
#
# 1. Debian packages: chromium + chromium-driver (browser tests), nodejs + npm (bundle check),
#    installed with apt-get when missing (as root, or through sudo).
# 2. A virtual environment in .venv with dash-state and its [test] extra.
# 3. The bundle check: rebuilds the JavaScript and the generated component files from src_js/
#    with `npm ci` and fails if they differ from the committed ones.
# 4. pytest over tests/, headless. "No tests ran" (pytest's exit code 5) is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf '\nscripts/test.sh: %s\n' "$*" >&2; exit 1; }

# -- 1. system packages -------------------------------------------------------------------------
need_apt=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    say "installing Debian packages: ${need_apt[*]}"
    if ! command -v apt-get >/dev/null 2>&1; then
        die "missing ${need_apt[*]} and no apt-get to install them: install them with your package manager"
    fi
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
say "installing dash-state[test] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# -- 3. the committed bundle matches src_js/ ----------------------------------------------------
say "checking that the committed bundle and generated files match src_js/"
bash scripts/check-bundle.sh

# -- 4. the suite -------------------------------------------------------------------------------
say "running pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    die "pytest collected no tests: that is a failure, not a pass"
fi
exit "$status"
