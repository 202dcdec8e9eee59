#!/usr/bin/env bash
# Install Debian packages the tests need, idempotently: nothing happens when they are all present,
# and a dpkg lock held by another apt run is waited for (retried) instead of failing the build.
set -euo pipefail

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

retry() {
  local attempt
  for attempt in $(seq 1 30); do
    "$@" && return 0
    echo "apt-install: '$*' failed (attempt $attempt; dpkg may be locked), retrying in 10 s" >&2
    sleep 10
  done
  return 1
}

retry $sudo apt-get -o DPkg::Lock::Timeout=120 update -qq
retry $sudo apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${missing[@]}"
