#!/usr/bin/env bash
# Run a command inside a Debian 13 (trixie) root kept in this checkout (.debian13/, gitignored),
# with this checkout mounted at the same path. The root is made once with debootstrap (minbase,
# about a minute) and reused by later runs. It brings Debian 13's python3 (3.13), docker-registry,
# skopeo and umoci, so the tests see what a Debian 13 machine has.
#
# Usage: scripts/debian13.sh COMMAND [ARGS...]    e.g. scripts/debian13.sh bash scripts/test.sh
# Needs root (debootstrap, mount, chroot). DEBIAN13_ROOT=/path overrides where the root lives.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DEBIAN13_ROOT:-$root/.debian13}
mirror=${DEBIAN13_MIRROR:-http://deb.debian.org/debian}
# debootstrap does not resolve virtual packages (skopeo needs one), so the tools come from apt inside.
base=python3,python3-venv,ca-certificates
tools=(docker-registry skopeo umoci git)

fail() { echo "debian13: $*" >&2; exit 1; }
[ $# -gt 0 ] || fail "usage: $0 COMMAND [ARGS...]"
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, mount and chroot); run as root or with sudo"
for tool in unshare mount chroot; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (util-linux / coreutils)"
done

if [ ! -e "$dir/.ocireg-ready" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "debian13: apt-get install debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  command -v debootstrap >/dev/null 2>&1 || fail "debootstrap is missing and could not be installed"
  echo "debian13: debootstrap --variant=minbase trixie into $dir (once; reused by later runs)"
  rm -rf "$dir.partial"
  debootstrap --variant=minbase --include="$base" trixie "$dir.partial" "$mirror" >"$root/.debian13.log" 2>&1 \
    || fail "debootstrap failed; see $root/.debian13.log"
  # No service starts inside the root: the tests start their own registries.
  printf '#!/bin/sh\nexit 101\n' >"$dir.partial/usr/sbin/policy-rc.d"
  chmod +x "$dir.partial/usr/sbin/policy-rc.d"
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
fi

# This machine's package-index settings and CA bundle, so pip inside reaches the same index.
for f in /etc/pip.conf /etc/resolv.conf /etc/hosts; do
  if [ -e "$f" ]; then cp -L "$f" "$dir$f"; fi
done
if [ -d /etc/xdg/pip ]; then mkdir -p "$dir/etc/xdg" && cp -rL /etc/xdg/pip "$dir/etc/xdg/"; fi
if [ -e /etc/ssl/certs/ca-certificates.crt ]; then
  cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
fi

# The checkout, and its git directory when it lives elsewhere (a worktree), at the same paths.
binds=("$root")
common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
case "$common" in ""|"$root"/*) ;; *) binds+=("$common") ;; esac

# A private mount namespace: every mount below disappears when the command ends.
enter() {
unshare --mount --propagation private -- bash -euo pipefail -c '
dir=$1; shift
n=$1; shift
for ((i = 0; i < n; i++)); do
  mkdir -p "$dir$1"
  mount --bind "$1" "$dir$1"
  shift
done
cwd=$1; shift
mount -t proc proc "$dir/proc"
mount --rbind /dev "$dir/dev"
mount -t tmpfs tmpfs "$dir/tmp"
exec chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI="${CI:-}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
' debian13 "$dir" "${#binds[@]}" "${binds[@]}" "$PWD" "$@"
}

if [ ! -e "$dir/.ocireg-ready" ]; then
  echo "debian13: apt-get install ${tools[*]} inside the root"
  enter bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"' \
    apt "${tools[@]}" >>"$root/.debian13.log" 2>&1 || fail "apt-get install inside the root failed; see $root/.debian13.log"
  touch "$dir/.ocireg-ready"
fi
enter "$@"
