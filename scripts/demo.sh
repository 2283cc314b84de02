#!/usr/bin/env bash
# The README's demo command: installs what it needs, then runs scripts/demo.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/python" "$root/scripts/demo.py"
