#!/usr/bin/env bash
# Builds the appliance's root filesystem image (squashfs) and its SBOM.
#
# Usage: images/build-rootfs.sh OUT_DIR [--bin-dir DIR] [--version V]
#   --bin-dir  where the Cordon binaries are (default: build/bin of this tree)
#   --version  firmware version (default: images/version.sh, from git describe)
#
# Writes into OUT_DIR:
#   rootfs.img        squashfs: /usr/lib/cordon/{cordon-dataplane,cordon-controld,cordon-webd},
#                     /usr/bin/cordonctl, systemd units and defaults (images/rootfs/),
#                     the update self-test (/usr/lib/cordon/update-self-test, run_case and
#                     the validation corpus of tests/packets in /usr/share/cordon/validation),
#                     /etc/cordon-release, /usr/share/cordon/sbom.cdx.json
#   rootfs.version    the version, one line (what make-bundle.sh puts in the manifest)
#   rootfs.contents   which Cordon binaries the image holds (controld/webd may not be
#                     built yet: they are left out, and said so here and in the SBOM)
#   sbom.cdx.json     CycloneDX 1.5: our binaries + every Debian package they load
#
# The image holds Cordon's own files only; the Debian base system that provides the
# libraries listed in the SBOM comes from the full-image recipe (build-disk-image.sh).
# Reproducible: file times and owners are fixed (SOURCE_DATE_EPOCH = last commit time).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=""
bin_dir="$top/build/bin"
version=""
while [ $# -gt 0 ]; do
  case $1 in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    -*) echo "build-rootfs: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "build-rootfs: one OUT_DIR only" >&2; exit 2; }; out=$1; shift ;;
  esac
done
[ -n "$out" ] || { echo "usage: $0 OUT_DIR [--bin-dir DIR] [--version V]" >&2; exit 2; }
[ -n "$version" ] || version=$("$here/version.sh")
describe=$(git -C "$top" describe --always --dirty)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct)}

mkdir -p "$out"
staging=$(mktemp -d "$out/staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT

# Binaries: the dataplane and the CLI are required; controld and webd are added when built.
install -d "$staging/usr/lib/cordon" "$staging/usr/bin" "$staging/usr/share/cordon"
binaries=()
missing=()
for b in cordon-dataplane cordonctl cordon-controld cordon-webd run_case; do
  if [ -x "$bin_dir/$b" ]; then
    binaries+=("$bin_dir/$b")
  elif [ "$b" = cordon-dataplane ] || [ "$b" = cordonctl ]; then
    echo "build-rootfs: $bin_dir/$b is missing (build it first)" >&2
    exit 1
  else
    missing+=("$b")
  fi
done
for b in "${binaries[@]}"; do
  case $(basename "$b") in
    cordonctl) install -m 0755 "$b" "$staging/usr/bin/" ;;
    *) install -m 0755 "$b" "$staging/usr/lib/cordon/" ;;
  esac
done

# Units, system.conf.d, default configuration, the update self-test.
cp -a "$here/rootfs/." "$staging/"

# The validation corpus the update self-test replays (with run_case) before a new slot
# is marked good: every case folder of tests/packets.
install -d "$staging/usr/share/cordon/validation"
for case in "$top"/tests/packets/*/; do
  [ -f "$case/expected.json" ] || continue
  name=$(basename "$case")
  install -d "$staging/usr/share/cordon/validation/$name"
  install -m 0644 "$case"/policy.json "$case"/frames.pcap "$case"/expected.json \
    "$staging/usr/share/cordon/validation/$name/"
done

names=$(for b in "${binaries[@]}"; do basename "$b"; done | tr '\n' ' ')
cat > "$staging/etc/cordon-release" <<REL
NAME=Cordon
VERSION=$version
GIT_DESCRIBE=$describe
BINARIES="${names% }"
MISSING="${missing[*]}"
REL

plugin_args=()
pmds=$(ls -d /usr/lib/*-linux-gnu/dpdk/pmds-* 2>/dev/null | head -1 || true)
[ -z "$pmds" ] || plugin_args=(--plugins "cordon-dataplane=$pmds")
/usr/bin/python3 "$here/sbom.py" --version "$version" --out "$out/sbom.cdx.json" \
  "${plugin_args[@]}" "${binaries[@]}"
cp "$out/sbom.cdx.json" "$staging/usr/share/cordon/sbom.cdx.json"

find "$staging" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$out/rootfs.img"
mksquashfs "$staging" "$out/rootfs.img" -noappend -all-root -quiet -no-progress \
  -comp gzip >/dev/null

echo "$version" > "$out/rootfs.version"
{
  echo "version $version"
  echo "git-describe $describe"
  for b in "${binaries[@]}"; do echo "included $(basename "$b")"; done
  for m in "${missing[@]}"; do echo "missing $m"; done
} > "$out/rootfs.contents"
echo "build-rootfs: $out/rootfs.img ($version; ${names% }${missing:+; not built: ${missing[*]}})"
