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
# ansible-core 2.16-2.19 ask for pip 23.1.2 .. 24.2.
for v in 23_1_2 24_0 24_2; do cp "$root/scripts/get_pip_shim.py" "$cache/get_pip_$v.py"; done

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
