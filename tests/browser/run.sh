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

# The firmware test: the update lab (tests/update/update-lab.sh: RAUC on a private D-Bus
# with two file slots), the lab's controld pointed at it (CORDON_LAB_CONTROLD_ARGS), and a
# signed bundle for the test to tamper with (CORDON_BROWSER_BUNDLE). The images hold only
# the dataplane and cordonctl from $BUILD/bin (what build-rootfs.sh requires), so they are
# quick to make; a fresh throwaway PKI each run, as tests/update does. Skipped (the test
# says why) where RAUC or squashfs-tools are missing or the binaries are not built.
UPDATE_DIR=$BUILD/browser-update
UPDATE_LAB=$REPO/tests/update/update-lab.sh
update_lab_down() { [ -d "$UPDATE_DIR/lab" ] && "$UPDATE_LAB" down "$UPDATE_DIR/lab" >/dev/null 2>&1 || true; }
start_update_lab() {
  local bin
  for bin in rauc mksquashfs unsquashfs dbus-daemon; do
    command -v "$bin" >/dev/null || { echo "browser tests: no $bin: firmware test skipped" >&2; return 0; }
  done
  for bin in cordon-dataplane cordonctl; do
    [ -x "$BUILD/bin/$bin" ] || { echo "browser tests: no $BUILD/bin/$bin: firmware test skipped" >&2; return 0; }
  done
  update_lab_down
  rm -rf "$UPDATE_DIR"
  mkdir -p "$UPDATE_DIR/bin"
  ln -s "$BUILD/bin/cordon-dataplane" "$BUILD/bin/cordonctl" "$UPDATE_DIR/bin/"
  "$REPO/images/test-pki.sh" "$UPDATE_DIR/pki" >/dev/null
  local v
  for v in 1.0.0 1.1.0; do
    "$REPO/images/build-rootfs.sh" "$UPDATE_DIR/img-$v" --bin-dir "$UPDATE_DIR/bin" --version "$v" >/dev/null
  done
  "$REPO/images/make-bundle.sh" --rootfs "$UPDATE_DIR/img-1.1.0/rootfs.img" \
    --out "$UPDATE_DIR/1.1.0.raucb" --cert "$UPDATE_DIR/pki/signing.cert.pem" \
    --key "$UPDATE_DIR/pki/signing.key.pem" --keyring "$UPDATE_DIR/pki/ca.cert.pem" \
    --version 1.1.0 --compatible cordon-appliance-x86_64 --format plain >/dev/null
  "$UPDATE_LAB" up "$UPDATE_DIR/lab" --keyring "$UPDATE_DIR/pki/ca.cert.pem" \
    --image "$UPDATE_DIR/img-1.0.0/rootfs.img" >/dev/null || die "update-lab.sh up failed"
  export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$UPDATE_DIR/lab/bus.sock
  export CORDON_LAB_CONTROLD_ARGS="--update-bundle-dir $UPDATE_DIR/bundles --update-rejection-file $UPDATE_DIR/lab/data/last-rejection"
  export CORDON_BROWSER_BUNDLE=$UPDATE_DIR/1.1.0.raucb
}

mkdir -p "$BUILD/browser-artifacts"
rm -f "$BUILD/browser-artifacts"/*.png
"$LAB" down >/dev/null 2>&1 || true
if [ "${CORDON_E2E_KEEP_LAB:-0}" != 1 ]; then
  trap '"$LAB" down >/dev/null 2>&1 || true; update_lab_down' EXIT
fi
start_update_lab
"$LAB" up || die "lab.sh up failed"
CORDON_BROWSER_ARTIFACTS=$BUILD/browser-artifacts \
  ip netns exec admin node "$HERE/console.test.mjs"
