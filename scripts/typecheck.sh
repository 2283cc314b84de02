#!/usr/bin/env bash
# Type-check the collection with mypy (config: mypy.ini; strict on _client, _model and _ops/promotion).
# mypy must see this checkout as the package ansible_collections.ocireg.registry,
# so it runs on a symlink tree in a temp dir, as tests/conftest.py builds for pytest.
#   VENV=/path/to/venv bash scripts/typecheck.sh   (default: ./.venv)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python="${VENV:-$root/.venv}/bin/python"

tree=$(mktemp -d "${TMPDIR:-/tmp}/ocireg-typecheck-XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/ansible_collections/ocireg"
ln -s "$root" "$tree/ansible_collections/ocireg/registry"

cd "$tree"
"$python" -m mypy --config-file "$root/mypy.ini" --cache-dir "$tree/.mypy_cache" \
  ansible_collections/ocireg/registry/plugins "$@"
