#!/usr/bin/env bash
# Generate the plugin and role reference (docs/reference/*.rst) from the
# modules', lookup's and roles' own documentation with antsibull-docs, so the
# reference can never drift from DOCUMENTATION / argument_specs.
#
# Usage: scripts/docs.sh           regenerate docs/reference/
#        scripts/docs.sh --check   fail if docs/reference/ is stale or a page of
#                                  docs/ is missing from docs/index.md
#        DOCS_FROM=head scripts/docs.sh   document the last commit instead of
#                                  the working tree (tracked + untracked files)
#
# antsibull-docs needs the collection installed in a collections path, so the
# shippable files (tracked + untracked-unignored, like scripts/sanity.sh) are
# built and installed into a temp dir first, as scripts/build.sh does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
mode=${1:-write}
case "$mode" in write|--check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

if [ ! -x "$venv/bin/antsibull-docs" ]; then
    "$venv/bin/pip" install --quiet -r "$root/docs/requirements.txt"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/out"
if [ "${DOCS_FROM:-worktree}" = head ]; then
    # What is committed, untouched by work in progress: for the committed reference.
    git -C "$root" archive HEAD | tar -x -C "$work/src"
else
    # A file deleted but still in the index cannot be copied; skip it, as sanity.sh does.
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -I{} cp --parents {} "$work/src/" 2>/dev/null) || true
fi
"$venv/bin/ansible-galaxy" collection build "$work/src" --output-path "$work" >/dev/null
"$venv/bin/ansible-galaxy" collection install "$work"/ocireg-registry-*.tar.gz -p "$work/collections" >/dev/null 2>&1

# antsibull-docs calls `ansible` and `ansible-doc` from PATH.
# Its report is kept and shown when it fails: a plugin whose DOCUMENTATION does not parse is named there.
if ! PATH="$venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$work/collections" \
    "$venv/bin/antsibull-docs" collection --use-current --squash-hierarchy \
    --output-format simplified-rst --no-add-antsibull-docs-version --fail-on-error \
    --dest-dir "$work/out" ocireg.registry >"$work/antsibull-docs.log" 2>&1; then
    cat "$work/antsibull-docs.log" >&2
    echo "antsibull-docs failed (its output is above): a plugin's or role's documentation does not parse" >&2
    exit 1
fi

status=0
if [ "$mode" = --check ]; then
    if ! diff -ru "$root/docs/reference" "$work/out"; then
        echo "docs/reference/ is stale: run scripts/docs.sh and commit the result" >&2
        status=1
    fi
    for page in "$root"/docs/*.md; do
        name=$(basename "$page")
        [ "$name" = index.md ] && continue
        if ! grep -q "($name)" "$root/docs/index.md"; then
            echo "docs/$name is not listed in docs/index.md" >&2
            status=1
        fi
    done
    [ "$status" = 0 ] && echo "docs/reference/ is up to date and docs/index.md lists every page"
else
    rm -rf "$root/docs/reference"
    mkdir -p "$root/docs/reference"
    cp "$work"/out/*.rst "$root/docs/reference/"
    echo "wrote $(find "$root/docs/reference" -name '*.rst' | wc -l) files to docs/reference/"
fi
exit "$status"
