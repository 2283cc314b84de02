#!/usr/bin/env bash
# Run every test of the collection. This is the README's test command and exactly what CI
# (.ci/run) runs, unchanged on Debian 12 and Debian 13. It installs what it needs first.
#
# Newest end: ansible-core $NEWEST_CORE on the newest Python 3.12+ the machine has
# (scripts/newest_python.sh; python3 itself on Debian 13, pyenv's on a Debian 12 that has one).
# A machine with none runs this part inside a Debian 13 root made once with debootstrap
# (scripts/debian13.sh, .debian13/, gitignored) and reused:
#   1. the whole pytest suite: unit and integration (real Distribution registries, skopeo, umoci)
#   2. mypy, ansible-test sanity, the docs check, the changelog lint, reuse lint, ansible-lint (production),
#      the certification checks (scripts/certify.sh), collection build + install
# Oldest end: ansible-core $OLDEST_CORE (meta/runtime.yml's requires_ansible) on the host's python3:
#   3. the unit tree and the playbook-level smoke subset (pytest -m oldest_core)
# The whole suite does not run twice: on 2 cores that would not fit CI's hour (README, Tests).
#
# OCIREG_STAGES="newest oldest" (default) selects the ends; scripts/debian13.sh uses it.
# OCIREG_PYTEST_ARGS="tests/unit ..." narrows the whole-suite step to those paths, to try the
# other steps quickly; CI never sets it, and a run with it says so and does not claim to pass.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

NEWEST_CORE=2.21
OLDEST_CORE=2.19
stages=${OCIREG_STAGES:-newest oldest}

started=$SECONDS
stage_started=$SECONDS
stage_name=""
step() {
  [ -z "$stage_name" ] || printf '==== %s: %ds\n' "$stage_name" $((SECONDS - stage_started))
  stage_name=$*
  stage_started=$SECONDS
  printf '\n==== %s ====\n' "$*"
}

run_pytest() {  # pytest's "no tests collected" (exit 5) is a failure here
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; return 1; fi
  return "$rc"
}

core_of() { "$1/bin/python" -c 'import ansible, sys; print(f"ansible-core {ansible.__version__}, Python {sys.version.split()[0]}")'; }

# The range meta/runtime.yml claims is the range tested here: its lower bound is OLDEST_CORE.
claimed=$(sed -n 's/^requires_ansible: *"\(.*\)"$/\1/p' meta/runtime.yml)
if [ "$claimed" != ">=$OLDEST_CORE.0" ]; then
  echo "meta/runtime.yml requires_ansible is '$claimed' but this script tests $OLDEST_CORE as the oldest core: keep them equal" >&2
  exit 1
fi

newest() {
  local venv=${VENV:-$root/.venv}
  step "setup: ansible-core $NEWEST_CORE venv ($venv)"
  PYTHON=$python VENV=$venv EXTRA_PIP="ansible-core==$NEWEST_CORE.* ansible-lint" bash scripts/bootstrap.sh
  export VENV=$venv

  if [ -n "${OCIREG_PYTEST_ARGS:-}" ]; then
    step "pytest: ONLY $OCIREG_PYTEST_ARGS (OCIREG_PYTEST_ARGS), not the whole suite ($(core_of "$venv"))"
    read -r -a narrowed <<< "$OCIREG_PYTEST_ARGS"
    run_pytest "$venv/bin/python" -m pytest "${narrowed[@]}"
  else
    step "pytest: the whole suite, unit and integration ($(core_of "$venv"))"
    run_pytest "$venv/bin/python" -m pytest
  fi

  step "mypy: strict on _client and _model"
  bash scripts/typecheck.sh

  step "ansible-test sanity ($(core_of "$venv"))"
  bash scripts/sanity.sh

  step "docs: the generated reference is current and docs/index.md lists every page"
  bash scripts/docs.sh --check

  step "changelog fragments"
  "$venv/bin/antsibull-changelog" lint

  step "licence information (reuse lint)"
  "$venv/bin/reuse" lint --quiet

  step "ansible-lint (production profile, meta-runtime rules)"
  bash scripts/lint.sh

  step "certification checks: EE requirements, ansible-builder create, galaxy-importer"
  bash scripts/certify.sh

  step "collection build and install"
  bash scripts/build.sh
}

oldest() {
  local venv=$root/.venv-oldest
  step "setup: ansible-core $OLDEST_CORE venv ($venv, the host's python3)"
  PYTHON=$(command -v python3) VENV=$venv EXTRA_PIP="ansible-core==$OLDEST_CORE.*" bash scripts/bootstrap.sh

  step "pytest: unit tree and playbook-level smoke subset ($(core_of "$venv"))"
  run_pytest "$venv/bin/python" -m pytest -p no:cacheprovider tests/unit
  run_pytest "$venv/bin/python" -m pytest -p no:cacheprovider -m oldest_core tests/integration
}

for stage in $stages; do
  case "$stage" in
    newest)
      if python=$(bash scripts/newest_python.sh); then
        newest
      else
        step "no Python 3.12+ here: the newest end runs in a Debian 13 root (scripts/debian13.sh)"
        bash scripts/debian13.sh env OCIREG_STAGES=newest VENV="$root/.venv-debian13" \
          OCIREG_PYTEST_ARGS="${OCIREG_PYTEST_ARGS:-}" bash scripts/test.sh
      fi
      ;;
    oldest) oldest ;;
    *) echo "unknown stage '$stage' in OCIREG_STAGES (newest, oldest)" >&2; exit 2 ;;
  esac
done
printf '==== %s: %ds\n' "$stage_name" $((SECONDS - stage_started))
if [ -n "${OCIREG_PYTEST_ARGS:-}" ]; then
  printf '\nthe steps passed in %ds, but pytest ran only %s: not a full run\n' $((SECONDS - started)) "$OCIREG_PYTEST_ARGS"
else
  printf '\nall test steps passed in %ds\n' $((SECONDS - started))
fi
