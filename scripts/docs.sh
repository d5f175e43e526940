#!/usr/bin/env bash
# Build the documentation site into site/ with warnings as errors (mkdocs build --strict).
#
#   bash scripts/docs.sh [extra mkdocs build arguments]
#
# Installs dash-state's [docs] extra into .venv when mkdocs is missing there. Serve the docs with
# live reload with `.venv/bin/mkdocs serve`. The exit code is mkdocs's: non-zero on any warning.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv"
    "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/mkdocs ] || ! .venv/bin/python -c 'import material, mkdocstrings_handlers.python' 2>/dev/null; then
    echo "installing dash-state[docs] into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[docs]"
fi
# Material prints a banner about its successor on every build; it is news, not a problem of these docs.
export NO_MKDOCS_2_WARNING="${NO_MKDOCS_2_WARNING:-1}"
exec .venv/bin/mkdocs build --strict "$@"
