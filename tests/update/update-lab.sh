#!/usr/bin/env bash
# The update lab: RAUC as a service on a private D-Bus, two file-backed A/B root slots,
# a boot-counting bootloader (boot-backend.sh) and a simulated reboot. Needs root (loop
# mounts). Everything lives under DIR; `down` removes every process, mount and loop
# device it started.
#
#   update-lab.sh up DIR --keyring CA_PEM --image ROOTFS_IMG [--max-image-bytes N]
#       factory state: slot A (rootfs.0) holds ROOTFS_IMG, committed; slot B empty;
#       version floor = the image's version. Then boots (see reboot).
#   update-lab.sh reboot DIR
#       stops the RAUC service, runs the boot rule on the bootloader state (using up one
#       trial attempt), mounts the chosen slot's squashfs read-only at DIR/root, writes
#       DIR/boot/booted (slot=, version=), starts RAUC again booted from that slot and
#       prints "booted SLOT VERSION". A slot that does not mount is a failed boot: the
#       next candidate is tried, as the watchdog reset would on hardware.
#   update-lab.sh env DIR      shell exports for clients (rauc CLI, controld)
#   update-lab.sh down DIR
#
# Clients: DBUS_SYSTEM_BUS_ADDRESS=unix:path=DIR/bus.sock, e.g. `rauc install BUNDLE`,
# `rauc status --output-format=json`, `rauc status mark-good booted`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
images=$(cd "$here/../../images" && pwd)
compatible=cordon-appliance-x86_64
deadline_s=${UPDATE_LAB_TIMEOUT:-30}

die() { echo "update-lab: $*" >&2; exit 1; }

wait_for() { # DESCRIPTION COMMAND...: poll COMMAND until it succeeds or the deadline passes
  local what=$1 end=$(( $(date +%s) + deadline_s ))
  shift
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${deadline_s}s waiting for $what"
    sleep 0.1
  done
}

bus_has_rauc() { # DIR
  dbus-send --bus="unix:path=$1/bus.sock" --print-reply --dest=org.freedesktop.DBus \
    /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:de.pengutronix.rauc \
    2>/dev/null | grep -q 'boolean true'
}

rauc_ready() { # DIR: RAUC owns its name; fails the wait at once if the service died
  pid_alive "$1/rauc.pid" || die "the RAUC service exited (log: $1/rauc.log)"
  bus_has_rauc "$1"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() { # PIDFILE: TERM, wait with a deadline, then KILL
  local pidfile=$1 pid end
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    end=$(( $(date +%s) + 10 ))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  rm -f "$pidfile"
}

image_version() { # IMG: VERSION= from the image's /etc/cordon-release
  unsquashfs -cat "$1" etc/cordon-release 2>/dev/null | sed -n 's/^VERSION=//p'
}

start_rauc() { # DIR BOOTNAME
  local dir=$1
  env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus.sock" CORDON_UPDATE_CONF="$dir/update.conf" \
    setsid rauc --conf="$dir/system.conf" --mount="$dir/rauc-mnt" \
    --override-boot-slot="$2" service >>"$dir/rauc.log" 2>&1 < /dev/null &
  echo $! > "$dir/rauc.pid"
  wait_for "RAUC on the private bus (log: $dir/rauc.log)" rauc_ready "$dir"
}

down_on_failure() {
  local rc=$?
  [ "$rc" -eq 0 ] || cmd_down "$up_dir"
  exit "$rc"
}

cmd_up() {
  local dir="" keyring="" image="" max_image_bytes=""
  while [ $# -gt 0 ]; do
    case $1 in
      --keyring) keyring=$2; shift 2 ;;
      --image) image=$2; shift 2 ;;
      --max-image-bytes) max_image_bytes=$2; shift 2 ;;
      -*) die "up: unknown option $1" ;;
      *) dir=$1; shift ;;
    esac
  done
  [ -n "$dir" ] && [ -n "$keyring" ] && [ -n "$image" ] ||
    die "usage: up DIR --keyring CA_PEM --image ROOTFS_IMG [--max-image-bytes N]"
  [ ! -e "$dir/bus.sock" ] || die "$dir already holds a lab (down it first)"
  mkdir -p "$dir"/{slots,boot,data,rauc-mnt,root}
  dir=$(cd "$dir" && pwd)
  cp "$keyring" "$dir/keyring.pem"
  cp "$image" "$dir/slots/rootfs.0.img"
  : > "$dir/slots/rootfs.1.img"
  local version
  version=$(image_version "$image")
  [ -n "$version" ] || die "$image has no VERSION in /etc/cordon-release"

  cat > "$dir/dbus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <!-- As on the appliance (/usr/share/dbus-1/system.d/de.pengutronix.rauc.conf):
       only root owns RAUC's name and calls it. -->
  <policy user="root">
    <allow own="de.pengutronix.rauc"/>
    <allow send_destination="de.pengutronix.rauc"/>
  </policy>
</busconfig>
CONF

  cat > "$dir/system.conf" <<CONF
[system]
compatible=$compatible
bootloader=custom
statusfile=$dir/data/central.raucs
# dm-verity is missing from the CI kernel; the appliance allows verity only.
bundle-formats=plain

[handlers]
bootloader-custom-backend=$here/boot-backend.sh
pre-install=$images/update-pre-install.sh

[keyring]
path=$dir/keyring.pem
check-purpose=codesign

[slot.rootfs.0]
device=$dir/slots/rootfs.0.img
type=raw
bootname=A

[slot.rootfs.1]
device=$dir/slots/rootfs.1.img
type=raw
bootname=B
CONF

  cat > "$dir/update.conf" <<CONF
boot_state=$dir/boot/state
booted_file=$dir/boot/booted
version_floor=$dir/data/version-floor
attempts=3
max_image_bytes=$max_image_bytes
keyring=$dir/keyring.pem
downgrade_allowance=$dir/data/downgrade-allowance.pem
admin_downgrade_allowance=$dir/data/admin-downgrade-allowance
rejection=$dir/data/last-rejection
CONF

  printf 'order=A B\nA_committed=1\nA_attempts=3\nB_committed=0\nB_attempts=0\n' > "$dir/boot/state"
  echo "$version" > "$dir/data/version-floor"

  # A failed start (any error or die) leaves nothing running behind.
  up_dir=$dir
  trap down_on_failure EXIT
  dbus-daemon --config-file="$dir/dbus.conf" --fork --print-pid > "$dir/dbus.pid"
  wait_for "the private bus" test -S "$dir/bus.sock"
  cmd_reboot "$dir"
}

cmd_reboot() {
  local dir=$1 conf order slot committed attempts tries=0 dev version
  conf="$dir/boot/state"
  stop_pid "$dir/rauc.pid"
  if mountpoint -q "$dir/root"; then umount "$dir/root"; fi
  rm -f "$dir/boot/booted"
  while :; do
    tries=$((tries + 1))
    [ "$tries" -le 10 ] || die "no slot boots"
    slot=""
    order=$(sed -n 's/^order=//p' "$conf")
    for s in $order; do
      committed=$(sed -n "s/^${s}_committed=//p" "$conf")
      attempts=$(sed -n "s/^${s}_attempts=//p" "$conf")
      if [ "$committed" = 1 ]; then slot=$s; break; fi
      if [ "$attempts" -gt 0 ]; then
        slot=$s
        sed -i "s/^${s}_attempts=.*/${s}_attempts=$((attempts - 1))/" "$conf"
        break
      fi
    done
    [ -n "$slot" ] || die "no bootable slot in $conf"
    case $slot in A) dev=$dir/slots/rootfs.0.img ;; B) dev=$dir/slots/rootfs.1.img ;; esac
    if mount -t squashfs -o loop,ro "$dev" "$dir/root" 2>/dev/null; then
      break
    fi
    echo "update-lab: slot $slot does not boot (its image does not mount)" >&2
  done
  version=$(sed -n 's/^VERSION=//p' "$dir/root/etc/cordon-release" 2>/dev/null || true)
  printf 'slot=%s\nversion=%s\n' "$slot" "$version" > "$dir/boot/booted"
  start_rauc "$dir" "$slot"
  echo "booted $slot $version"
}

cmd_down() {
  local dir=$1 m loop file
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  stop_pid "$dir/rauc.pid"
  stop_pid "$dir/dbus.pid"
  rm -f "$dir/bus.sock"
  # Every mount under DIR, deepest first (RAUC's bundle and slot mounts if it was killed).
  findmnt -rn -o TARGET | grep "^$dir/" | sort -r | while read -r m; do
    umount "$m" || umount -l "$m"
  done
  # Loop devices left on files under DIR.
  losetup -n -l -O NAME,BACK-FILE 2>/dev/null | while read -r loop file; do
    case $file in "$dir"/*) losetup -d "$loop" || true ;; esac
  done
}

cmd=${1:-}
[ $# -ge 2 ] || die "usage: $0 up|reboot|env|down DIR ..."
shift
case $cmd in
  up) cmd_up "$@" ;;
  reboot) cmd_reboot "$1" ;;
  env) echo "export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$(cd "$1" && pwd)/bus.sock" ;;
  down) cmd_down "$1" ;;
  *) die "unknown command $cmd" ;;
esac
