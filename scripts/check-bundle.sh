#!/usr/bin/env bash
# Rebuild the bundle and the generated component files and fail if they differ
# from the committed ones (i.e. someone changed src_js/ or package.json without
# rebuilding and committing the output).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build-js.sh

# Files produced by the build. Besides this fixed list, every dash_state/*.py
# that dash-generate-components wrote (it starts with its AUTO GENERATED header)
# is checked, so components added later are covered too.
generated=(
    package-lock.json
    dash_state/dash_state.min.js
    dash_state/_imports_.py
    dash_state/metadata.json
    dash_state/package-info.json
)
for f in dash_state/*.py; do
    [ -f "$f" ] || continue
    if head -n 1 "$f" | grep -q '^# AUTO GENERATED FILE - DO NOT EDIT'; then
        generated+=("$f")
    fi
done

# Also catch generated files that were deleted from the work tree: any tracked
# file git reports for these paths.
changes="$(git status --porcelain --untracked-files=all -- "${generated[@]}")"

if [ -n "$changes" ]; then
    echo "check-bundle.sh: the build output differs from the committed files:" >&2
    echo "$changes" >&2
    echo "Run scripts/build-js.sh and commit the files listed above." >&2
    exit 1
fi
echo "check-bundle.sh: generated files match the committed ones."
