#!/usr/bin/env bash
# Browser tests of the console (tests/browser/console.test.mjs): brings a fresh lab up
# (first-run setup needs a webd without users), runs Debian's Chromium headless from the
# `admin` host through playwright-core, and takes the lab down again. Needs root and the
# lab's lock like every netns test: `flock /tmp/cordon-lab.lock ctest -L browser`.
# Screenshots: build/browser-artifacts/. CORDON_E2E_KEEP_LAB=1 leaves the lab up.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${CORDON_BUILD_DIR:-$REPO/build}
LAB=$REPO/tests/topology/lab.sh
die() { echo "browser tests: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "need root (network namespaces)"
[ -f "$BUILD/webui-app/index.html" ] || die "no built app in $BUILD/webui-app (cmake --build --target webui-app)"
[ -x "${CORDON_CHROMIUM:-/usr/bin/chromium}" ] || die "no Chromium (scripts/setup installs Debian's chromium)"
command -v node >/dev/null || die "no node (scripts/setup installs nodejs)"

# playwright-core from the committed lockfile, reinstalled when the lock changes.
if [ ! -f "$HERE/node_modules/.package-lock.json" ] ||
   [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --prefer-offline)
fi

mkdir -p "$BUILD/browser-artifacts"
rm -f "$BUILD/browser-artifacts"/*.png
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up || die "lab.sh up failed"
if [ "${CORDON_E2E_KEEP_LAB:-0}" != 1 ]; then
  trap '"$LAB" down >/dev/null 2>&1 || true' EXIT
fi
CORDON_BROWSER_ARTIFACTS=$BUILD/browser-artifacts \
  ip netns exec admin node "$HERE/console.test.mjs"
