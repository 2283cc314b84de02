#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection placed in the
# ansible_collections/ocireg/registry tree ansible-test requires.
# Usage: scripts/sanity.sh [extra ansible-test args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
py=$("$venv/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

# ansible-test downloads get-pip.py into every venv it makes; give it a cached
# stand-in for every pip version it might ask for.
cache=~/.ansible/test/cache
mkdir -p "$cache"
# Which pip version it asks for depends on the ansible-core release (2.19: 24.x, 2.21: 25.2):
# read it from the installed ansible-test.
versions=$("$venv/bin/python" - <<'PY'
import pathlib
import re

import ansible_test

source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(" ".join(sorted(set(re.findall(r"pip='([0-9.]+)'", source.read_text())))))
PY
)
[ -n "$versions" ] || { echo "sanity: cannot tell which pip version ansible-test bootstraps" >&2; exit 1; }
for v in $versions; do cp "$root/scripts/get_pip_shim.py" "$cache/get_pip_${v//./_}.py"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ocireg/registry"
mkdir -p "$dest"
# Only what git would ship: tracked files plus untracked ones that are not ignored.
# (A tracked file deleted in the working tree is left out.)
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do if [ -e "$f" ]; then cp --parents "$f" "$dest/"; fi; done)
cd "$dest"
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm sanity
export PATH="$venv/bin:$PATH"
ansible-test sanity --venv --python "$py" --color no "$@"
