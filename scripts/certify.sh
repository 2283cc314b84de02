#!/usr/bin/env bash
# Certification-style checks, as Red Hat's partner certification and Automation Hub run them:
#   1. meta/ee-requirements.txt (the execution environment's Python requirements) has no upper
#      bound and no pin, and meta/execution-environment.yml points at it;
#   2. ansible-builder: `introspect` of the installed collection finds those requirements, and
#      `create` writes a build context for an execution environment with this collection
#      (no container engine needed; the image build itself needs podman or docker);
#   3. galaxy-importer (the importer of Galaxy and Automation Hub) imports the built tarball,
#      with flake8 on and version >= 1.0.0 required, as Automation Hub has it. It runs in its
#      own venv (.venv-importer beside .venv): it pins attrs and flake8 below what the test venv has.
#      Its ansible-lint pass is off here: scripts/lint.sh runs ansible-lint, stricter.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
cd "$root"
fail() { echo "certify: $*" >&2; exit 1; }

# 1. EE requirements without upper bounds.
grep -qx '  python: meta/ee-requirements.txt' meta/execution-environment.yml \
  || fail "meta/execution-environment.yml must point python: at meta/ee-requirements.txt"
"$venv/bin/python" - <<'PY' || fail "meta/ee-requirements.txt: see above"
import sys
from packaging.requirements import Requirement

bad = []
for number, line in enumerate(open("meta/ee-requirements.txt", encoding="utf-8"), 1):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    req = Requirement(line)
    capped = [str(s) for s in req.specifier if s.operator in ("<", "<=", "==", "===", "~=")]
    if capped:
        bad.append(f"line {number}: {req.name} {', '.join(capped)}")
for entry in bad:
    print(f"meta/ee-requirements.txt {entry}: no upper bound or pin (certification rule)", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
echo "meta/ee-requirements.txt: no upper bounds"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/ansible-galaxy" collection build "$root" --output-path "$work" >/dev/null
tarball=$(ls "$work"/ocireg-registry-*.tar.gz)
"$venv/bin/ansible-galaxy" collection install "$tarball" -p "$work/collections" >/dev/null

# 2. ansible-builder.
"$venv/bin/ansible-builder" introspect --sanitize "$work/collections" | tee "$work/introspect.txt"
while IFS= read -r req; do
  req=${req%%#*}; req=$(echo "$req" | tr -d ' ')
  [ -z "$req" ] && continue
  grep -qF -- "$req" "$work/introspect.txt" || fail "ansible-builder introspect did not find '$req' from meta/ee-requirements.txt"
done < meta/ee-requirements.txt
cp "$tarball" "$work/ocireg-registry.tar.gz"
cat > "$work/execution-environment.yml" <<'EOF'
version: 3
images:
  base_image:
    name: quay.io/fedora/python-313:latest
dependencies:
  python_interpreter:
    package_system: python3
  ansible_core:
    package_pip: ansible-core
  ansible_runner:
    package_pip: ansible-runner
  galaxy:
    collections:
      - name: ocireg-registry.tar.gz
        type: file
EOF
(cd "$work" && "$venv/bin/ansible-builder" create -f execution-environment.yml -c context --output-filename Containerfile)
[ -s "$work/context/Containerfile" ] || fail "ansible-builder create wrote no Containerfile"
grep -q "ansible-galaxy collection install" "$work/context/_build/scripts/assemble" "$work/context/Containerfile" 2>/dev/null \
  || grep -rq "galaxy" "$work/context/Containerfile" || fail "ansible-builder create: the Containerfile installs no collection"
echo "ansible-builder create: build context in place"

# 3. galaxy-importer.
importer=$venv-importer  # beside the test venv: .venv-importer, or .venv-debian13-importer in the Debian 13 root
python=$("$venv/bin/python" -c 'import sys; print(sys._base_executable)')
want=$("$python" -c 'import sys; print(sys.version_info[:2])')
[ "$("$importer/bin/python" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" = "$want" ] \
  || { rm -rf "$importer"; "$python" -m venv "$importer"; }
"$importer/bin/python" -m pip install -q --disable-pip-version-check galaxy-importer 2>&1 \
  | { grep -v "^WARNING: Location '.*' is ignored" || true; }
(cd "$work" && PATH="$importer/bin:$PATH" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" \
  GALAXY_IMPORTER_RUN_FLAKE8=1 GALAXY_IMPORTER_REQUIRE_V1_OR_GREATER=1 GALAXY_IMPORTER_RUN_ANSIBLE_LINT=0 \
  GALAXY_IMPORTER_TMP_ROOT_DIR="$work" \
  "$importer/bin/python" -m galaxy_importer.main "$tarball" > "$work/importer.log" 2>&1) || {
    cat "$work/importer.log"; fail "galaxy-importer refused the collection"; }
grep -E "^(WARNING|ERROR)" "$work/importer.log" || true
grep -q "Importer processing completed successfully" "$work/importer.log" \
  || { cat "$work/importer.log"; fail "galaxy-importer did not complete"; }
echo "galaxy-importer: the import completed"
