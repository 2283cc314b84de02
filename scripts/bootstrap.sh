#!/usr/bin/env bash
# Install what the tests and the demo need on a Debian/Ubuntu machine:
# Distribution (docker-registry), skopeo, umoci and git from apt, and a Python venv
# at .venv with tests/requirements.txt. Safe to run again: it skips what is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

need=()
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
# umoci: the interop check of registry_unpack (it unpacks the same image from an OCI layout).
command -v umoci >/dev/null 2>&1 || need+=(umoci)
command -v git >/dev/null 2>&1 || need+=(git)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 - <<'PY' || { echo "bootstrap: Python 3.11 or newer is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

venv=${VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
read -r -a extra <<< "${EXTRA_PIP:-}"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/tests/requirements.txt" "${extra[@]}"
