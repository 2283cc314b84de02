#!/usr/bin/env bash
# Install what the tests and the demo need on a Debian/Ubuntu machine (Debian 12 and 13 alike):
# Distribution (docker-registry), skopeo, umoci and git from apt, and a Python venv with
# tests/requirements.txt. Safe to run again: it skips what is there.
#
#   PYTHON=/path/to/python3   the interpreter of the venv (default: the newest one
#                             scripts/newest_python.sh finds, else python3)
#   VENV=/path/to/venv        where the venv goes (default: .venv); a venv made by another
#                             Python version is made again
#   EXTRA_PIP="pkg ..."       more requirements for the same pip run (e.g. an ansible-core pin)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

fail() { echo "bootstrap: $*" >&2; exit 1; }

need=()
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
# umoci: the interop check of registry_unpack (it unpacks the same image from an OCI layout).
command -v umoci >/dev/null 2>&1 || need+=(umoci)
command -v git >/dev/null 2>&1 || need+=(git)
command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# A tool that is still missing fails here, by name, instead of turning into skipped tests.
[ -x /usr/bin/docker-registry ] || fail "docker-registry (CNCF Distribution) is missing after apt-get install"
for tool in skopeo umoci git; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing after apt-get install"
done

python=${PYTHON:-$(bash "$root/scripts/newest_python.sh" || command -v python3)}
"$python" - <<'PY' || fail "Python 3.11 or newer with venv and ensurepip is required ($python)"
import sys, venv, ensurepip  # noqa: F401
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

venv=${VENV:-$root/.venv}
want=$("$python" -c 'import sys; print(*sys.version_info[:2], sep=".")')
have=$("$venv/bin/python" -c 'import sys; print(*sys.version_info[:2], sep=".")' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  [ -z "$have" ] || echo "bootstrap: $venv has Python ${have}; making it again with Python $want"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
read -r -a extra <<< "${EXTRA_PIP:-}"
# pip prints a warning for every package the machine's extra local indexes lack; keep real errors.
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/tests/requirements.txt" "${extra[@]}" 2>&1 \
  | { grep -v "^WARNING: Location '.*' is ignored" || true; }
