#!/usr/bin/env bash
# Packs a root filesystem image into a signed RAUC bundle.
#
# Usage: images/make-bundle.sh --rootfs IMG --out BUNDLE --cert CERT --key KEY
#            [--keyring CA_PEM] [--intermediate PEM] [--version V]
#            [--compatible NAME] [--format verity|plain]
#   --cert, --key  PEM file paths, or PKCS#11 URIs ("pkcs11:token=...;object=..."; the
#                  module comes from RAUC_PKCS11_MODULE, the PIN from RAUC_PKCS11_PIN):
#                  production keys stay in an HSM and never touch the build machine's disk
#   --keyring      verify the new bundle against this CA before handing it out
#   --version      default: the rootfs.version file next to IMG, else images/version.sh
#   --compatible   default cordon-appliance-x86_64: the hardware the image runs on;
#                  RAUC refuses a bundle whose compatible differs from its system.conf
#   --format       default verity (dm-verity: each block is checked when read, so the
#                  bundle cannot change between check and install). `plain` for targets
#                  without device-mapper, such as the CI lab (docs/update-flow.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rootfs="" out="" cert="" key="" keyring="" intermediate="" version=""
compatible="cordon-appliance-x86_64"
format="verity"
usage() {
  echo "usage: $0 --rootfs IMG --out BUNDLE --cert CERT --key KEY [--keyring CA]" \
       "[--intermediate PEM] [--version V] [--compatible NAME] [--format verity|plain]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --rootfs) rootfs=$2 ;;
    --out) out=$2 ;;
    --cert) cert=$2 ;;
    --key) key=$2 ;;
    --keyring) keyring=$2 ;;
    --intermediate) intermediate=$2 ;;
    --version) version=$2 ;;
    --compatible) compatible=$2 ;;
    --format) format=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[ -n "$rootfs" ] && [ -n "$out" ] && [ -n "$cert" ] && [ -n "$key" ] || usage
case $format in verity|plain) ;; *) echo "make-bundle: --format verity or plain" >&2; exit 2 ;; esac
[ -f "$rootfs" ] || { echo "make-bundle: $rootfs: no such image" >&2; exit 1; }
if [ -z "$version" ]; then
  if [ -f "$(dirname "$rootfs")/rootfs.version" ]; then
    version=$(cat "$(dirname "$rootfs")/rootfs.version")
  else
    version=$("$here/version.sh")
  fi
fi
# Versions are compared with dpkg's rules by the version floor: reject what it cannot order.
dpkg --validate-version "$version" 2>/dev/null ||
  { echo "make-bundle: version '$version' is not orderable (Debian version syntax)" >&2; exit 1; }

content=$(mktemp -d)
trap 'rm -rf "$content" "$content.conf"' EXIT
cp "$rootfs" "$content/rootfs.img"
{
  echo "[update]"
  echo "compatible=$compatible"
  echo "version=$version"
  echo "description=Cordon firmware $version"
  echo "build=$(git -C "$here/.." describe --always --dirty 2>/dev/null || echo unknown)"
  echo
  if [ "$format" = verity ]; then
    echo "[bundle]"
    echo "format=verity"
    echo
  fi
  echo "[image.rootfs]"
  echo "filename=rootfs.img"
} > "$content/manifest.raucm"

args=(--cert="$cert" --key="$key")
conf_args=()
if [ -n "$keyring" ]; then
  # Verify as the appliance will: the signer must chain to the keyring and carry the
  # codeSigning extended key usage (system.conf check-purpose=codesign).
  cat > "$content.conf" <<CONF
[system]
compatible=$compatible
bootloader=noop
[keyring]
path=$(realpath "$keyring")
check-purpose=codesign
CONF
  conf_args=(-c "$content.conf")
  args+=(--signing-keyring="$keyring")
fi
[ -z "$intermediate" ] || args+=(--intermediate="$intermediate")
rm -f "$out"
rauc "${conf_args[@]}" bundle "${args[@]}" "$content" "$out"
echo "make-bundle: $out ($compatible $version, $format)"
