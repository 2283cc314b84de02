#!/usr/bin/env bash
# Build the collection tarball and install it into a temp collections path,
# proving `ansible-galaxy collection build` + `install` work on what is committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$venv/bin/ansible-galaxy" collection build "$root" --output-path "$out" --force
tarball=$(ls "$out"/ocireg-registry-*.tar.gz)
"$venv/bin/ansible-galaxy" collection install "$tarball" -p "$out/collections" --force
ANSIBLE_COLLECTIONS_PATH="$out/collections" "$venv/bin/ansible-doc" -l ocireg.registry | tee "$out/doc.txt"
echo "built and installed $(basename "$tarball")"
