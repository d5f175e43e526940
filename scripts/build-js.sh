#!/usr/bin/env bash
# Build the JavaScript bundle and the generated Python component classes:
#   npm ci            (exact versions from package-lock.json)
#   npm run build     = build:js (webpack -> dash_state/dash_state.min.js)
#                     + build:py (dash-generate-components -> dash_state/ServerStore.py,
#                       _imports_.py, metadata.json, package-info.json)
# build:py needs `dash-generate-components` (from dash[dev]) on PATH; this script
# puts the repository's .venv/bin first on PATH when that venv exists, otherwise
# the one already on PATH (e.g. an activated venv) is used.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd)"

if [ -d "$repo_root/.venv/bin" ]; then
    export PATH="$repo_root/.venv/bin:$PATH"
fi

if ! command -v dash-generate-components >/dev/null 2>&1; then
    echo "build-js.sh: dash-generate-components not found; install dash[dev] into .venv or put it on PATH" >&2
    exit 1
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
