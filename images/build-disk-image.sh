#!/usr/bin/env bash
# Recipe for a full bootable disk image for the appliance (x86_64, UEFI): Debian 12 from
# debootstrap, GRUB with A/B root slots and boot counting in grubenv, RAUC with the grub
# backend. NOT run in CI (it needs a Debian mirror, ~10 minutes and root): CI builds and
# tests the Cordon rootfs image and bundles in the file-backed lab (tests/update/).
#
# Usage (root): images/build-disk-image.sh OUT.img ROOTFS_OUT_DIR KEYRING_CA.pem
#   ROOTFS_OUT_DIR  output of images/build-rootfs.sh (rootfs.img, sbom.cdx.json)
#   KEYRING_CA.pem  the production update CA: the only key RAUC will trust
# Needs: debootstrap gdisk dosfstools e2fsprogs squashfs-tools grub-efi-amd64-bin
#        grub-common rauc
#
# Disk layout (GPT):
#   1 ESP   256 MiB  vfat  GRUB (EFI/BOOT/BOOTX64.EFI), grub.cfg, grubenv
#   2 A     1 GiB    squashfs root, slot rootfs.0 (bootname A): Debian + Cordon
#   3 B     1 GiB    squashfs root, slot rootfs.1 (bootname B)
#   4 data  rest     ext4, /var: policy, users, keys, audit (survive updates)
# The update bundle for this hardware carries the same squashfs as slot A (OUT.slot.img).
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 OUT.img ROOTFS_OUT_DIR KEYRING_CA.pem" >&2; exit 2; }
out=$1 rootfs_dir=$2 keyring=$3
work=$(mktemp -d)
loop=""
cleanup() {
  for m in "$work/esp" "$work/data" "$work/os/dev" "$work/os/proc" "$work/os/sys"; do
    mountpoint -q "$m" && umount "$m"
  done
  [ -z "$loop" ] || losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT

# 1. Debian base with the packages the Cordon binaries load (from the SBOM), a kernel,
#    RAUC, and the tools the appliance runs (nftables, WireGuard).
debs=$(/usr/bin/python3 -c 'import json,sys
print(",".join(c["name"] for c in json.load(open(sys.argv[1]))["components"]
               if c.get("purl","").startswith("pkg:deb/")))' "$rootfs_dir/sbom.cdx.json")
debootstrap --variant=minbase \
  --include="linux-image-amd64,systemd-sysv,initramfs-tools,rauc,dbus,nftables,wireguard-tools,$debs" \
  bookworm "$work/os" http://deb.debian.org/debian

# 2. Cordon's files on top (binaries, units, defaults, /etc/cordon-release, SBOM).
unsquashfs -f -d "$work/os" "$rootfs_dir/rootfs.img" >/dev/null
chroot "$work/os" systemctl enable cordon-dataplane.service cordon-controld.service \
  cordon-webd.service

# 3. RAUC on the appliance: GRUB backend, verity bundles only, the production CA.
install -D -m 0644 "$keyring" "$work/os/etc/rauc/keyring.pem"
cat > "$work/os/etc/rauc/system.conf" <<'CONF'
[system]
compatible=cordon-appliance-x86_64
bootloader=grub
grubenv=/boot/efi/grubenv
statusfile=/var/lib/rauc/central.raucs
bundle-formats=-plain
[keyring]
path=/etc/rauc/keyring.pem
check-purpose=codesign
[handlers]
pre-install=/usr/lib/cordon/update-pre-install
[slot.rootfs.0]
device=/dev/disk/by-partlabel/rootfs-A
type=raw
bootname=A
[slot.rootfs.1]
device=/dev/disk/by-partlabel/rootfs-B
type=raw
bootname=B
CONF
# The version floor / size check (the same handler the lab runs), for the appliance.
install -m 0755 "$(dirname "$0")/update-pre-install.sh" \
  "$work/os/usr/lib/cordon/update-pre-install"
cat > "$work/os/etc/cordon/update.conf" <<'CONF'
version_floor=/var/lib/cordon/update/version-floor
max_image_bytes=1073741824
keyring=/etc/rauc/keyring.pem
downgrade_allowance=/var/lib/cordon/update/downgrade-allowance.pem
admin_downgrade_allowance=/var/lib/cordon/update/admin-downgrade-allowance
rejection=/run/cordon/update-rejection
CONF

# 4. Read-only squashfs root: squashfs in the initramfs, writable /var on the data
#    partition, the ESP for grubenv.
echo squashfs >> "$work/os/etc/initramfs-tools/modules"
cat > "$work/os/etc/fstab" <<'FSTAB'
PARTLABEL=data   /var       ext4  defaults,nodev,nosuid  0 2
PARTLABEL=ESP    /boot/efi  vfat  umask=0077             0 2
tmpfs            /tmp       tmpfs nodev,nosuid           0 0
FSTAB
mkdir -p "$work/os/boot/efi"
for fs in dev proc sys; do mount --bind "/$fs" "$work/os/$fs"; done
chroot "$work/os" update-initramfs -u
for fs in dev proc sys; do umount "$work/os/$fs"; done
mksquashfs "$work/os" "$out.slot.img" -noappend -comp zstd -quiet

# 5. The disk.
truncate -s 4G "$out"
sgdisk -Z -n1:0:+256M -t1:ef00 -c1:ESP -n2:0:+1G -c2:rootfs-A -n3:0:+1G -c3:rootfs-B \
  -n4:0:0 -c4:data "$out"
loop=$(losetup -P --show -f "$out")
mkfs.vfat -F 32 -n ESP "${loop}p1"
dd if="$out.slot.img" of="${loop}p2" bs=4M conv=fsync status=none
dd if="$out.slot.img" of="${loop}p3" bs=4M conv=fsync status=none
mkfs.ext4 -q -L data "${loop}p4"
# The version floor starts at the factory image's version (pre-install refuses to run
# without one).
mkdir -p "$work/data"
mount "${loop}p4" "$work/data"
install -d "$work/data/lib/cordon/update"
cp "$rootfs_dir/rootfs.version" "$work/data/lib/cordon/update/version-floor"
umount "$work/data"
mkdir -p "$work/esp"
mount "${loop}p1" "$work/esp"
grub-install --target=x86_64-efi --removable --no-nvram --efi-directory="$work/esp" \
  --boot-directory="$work/esp" --modules="part_gpt squash4 fat loadenv"

# Boot counting: RAUC's grub backend sets <S>_OK=1 <S>_TRY=0 on set-primary and on
# mark-good, <S>_OK=0 on mark-bad. Each boot counts one try; a slot with 3 tries and no
# mark-good (controld marks good after its self-test, on every boot) is skipped.
cat > "$work/esp/grub/grub.cfg" <<'CFG'
set default=0
set timeout=0
load_env --file /grubenv ORDER A_OK A_TRY B_OK B_TRY
set chosen=""
for S in $ORDER; do
  if [ "$S" = A ]; then OK=$A_OK; TRY=$A_TRY; else OK=$B_OK; TRY=$B_TRY; fi
  if [ "$OK" = 1 -a "$TRY" != 3 ]; then
    if [ "$TRY" = 0 ]; then NEXT=1; elif [ "$TRY" = 1 ]; then NEXT=2; else NEXT=3; fi
    if [ "$S" = A ]; then A_TRY=$NEXT; else B_TRY=$NEXT; fi
    chosen=$S
    break
  fi
done
save_env --file /grubenv A_TRY B_TRY
if [ "$chosen" = A ]; then search --no-floppy --set=root --part-label rootfs-A
elif [ "$chosen" = B ]; then search --no-floppy --set=root --part-label rootfs-B
else echo "no bootable slot"; sleep 30; reboot; fi
linux /vmlinuz root=PARTLABEL=rootfs-$chosen rootfstype=squashfs ro rauc.slot=$chosen panic=10
initrd /initrd.img
boot
CFG
grub-editenv "$work/esp/grubenv" create
grub-editenv "$work/esp/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
echo "disk image: $out (slot image: $out.slot.img)"
