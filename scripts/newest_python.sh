#!/usr/bin/env bash
# Print the path of the newest Python on this machine that the newest ansible-core we test
# (see NEWEST_CORE in scripts/test.sh) supports on the controller: 3.12 to 3.14.
# Exit 1, printing nothing, when there is none (then scripts/test.sh uses a Debian 13 root).
#
# Where it looks, each candidate checked by running it (a pyenv shim for a version that is not
# selected exists on PATH but fails):
#   1. python3 itself (Debian 13: 3.13 from apt)
#   2. python3.14, python3.13, python3.12 on PATH
#   3. pyenv's installed versions ($PYENV_ROOT or ~/.pyenv)
# The newest version wins; on a tie the earlier place wins.
set -uo pipefail
min=12
max=14

version_of() {  # prints the minor version N when $1 runs, has venv, and is 3.N within range
  "$1" -c "import sys, venv, ensurepip
v = sys.version_info
print(v[1])
sys.exit(0 if v[0] == 3 and $min <= v[1] <= $max else 1)" 2>/dev/null
}

candidates=(python3)
for minor in $(seq "$max" -1 "$min"); do candidates+=("python3.$minor"); done
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for dir in $(ls -d "$pyenv_root"/versions/3.* 2>/dev/null | sort -V -r); do
  candidates+=("$dir/bin/python3")
done

best=""
best_minor=0
for candidate in "${candidates[@]}"; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  minor=$(version_of "$path") || continue
  if [ "$minor" -gt "$best_minor" ]; then
    best=$path
    best_minor=$minor
  fi
done
[ -n "$best" ] || exit 1
echo "$best"
