#!/usr/bin/env bash
# ansible-lint with the production profile on roles, example playbooks and the collection's
# metadata: meta/runtime.yml (the meta-runtime rules: requires_ansible names a supported core)
# and galaxy.yml (the galaxy rules: version, changelog).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
cd "$root"
targets=()
for d in roles playbooks; do
  [ -n "$(find "$d" -name '*.yml' 2>/dev/null | head -1)" ] && targets+=("$d")
done
if [ ${#targets[@]} -eq 0 ]; then echo "ansible-lint: no roles or playbooks yet"; exit 0; fi
targets+=(meta/runtime.yml galaxy.yml)
# The playbooks use ocireg.registry.* names and the module_defaults group, so
# the syntax check needs this checkout reachable as that collection.
colls=$(mktemp -d)
trap 'rm -rf "$colls"' EXIT
mkdir -p "$colls/ansible_collections/ocireg"
ln -s "$root" "$colls/ansible_collections/ocireg/registry"
ANSIBLE_COLLECTIONS_PATH="$colls" PATH="$venv/bin:$PATH" ansible-lint --profile production --offline "${targets[@]}"
