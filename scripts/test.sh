#!/usr/bin/env bash
# Run every test of the collection. This is the README's test command and
# exactly what CI (.ci/run) runs. It installs what it needs first.
#   1. unit + integration tests (pytest, real Distribution registries, skopeo)
#   2. a smoke subset on the oldest ansible-core we claim (2.16)
#   3. ansible-test sanity, the docs check, ansible-lint, collection build + install
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

EXTRA_PIP="ansible-lint" bash scripts/bootstrap.sh

step() { printf '\n==== %s ====\n' "$*"; }

run_pytest() {  # pytest's "no tests collected" (exit 5) is a failure here
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; return 1; fi
  return "$rc"
}

step "pytest: unit and integration (ansible-core $(.venv/bin/python -c 'import ansible; print(ansible.__version__)'))"
run_pytest .venv/bin/python -m pytest

step "mypy: strict on _client and _model"
bash scripts/typecheck.sh

step "pytest: smoke subset on ansible-core 2.16"
VENV="$root/.venv-2.16" EXTRA_PIP="ansible-core==2.16.*" bash scripts/bootstrap.sh
run_pytest .venv-2.16/bin/python -m pytest -m ansible216 -p no:cacheprovider

step "ansible-test sanity"
bash scripts/sanity.sh

step "docs: the generated reference is current and docs/index.md lists every page"
bash scripts/docs.sh --check

step "changelog fragments"
.venv/bin/antsibull-changelog lint

step "ansible-lint (production profile)"
bash scripts/lint.sh

step "collection build and install"
bash scripts/build.sh

echo
echo "all test steps passed"
