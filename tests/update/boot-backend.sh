#!/usr/bin/env bash
# Boot-counting bootloader for the lab, as a RAUC custom backend ([handlers]
# bootloader-custom-backend). It plays GRUB's part on real hardware (grubenv ORDER and
# per-slot try counters, images/build-disk-image.sh): same states, kept in a file.
#
# State (key=value, replaced atomically):
#   order=B A           boot order, primary first
#   A_committed=1       marked good since it was last written
#   A_attempts=3        trial boots left while not committed
# Boot rule (update-lab.sh reboot): the first slot in order that is committed, or that has
# attempts left (one is used up by this boot). A new slot not marked good within 3 boots
# is skipped from then on, and the previous slot boots again.
#
# RAUC's interface (RAUC 1.8 calls the first four; get-current is used by RAUC >= 1.10):
#   get-primary              print the bootname that boots next
#   set-primary BOOTNAME     boot it next, on trial: 3 attempts, not committed
#   get-state BOOTNAME       print good (bootable) or bad
#   set-state BOOTNAME good  commit it (a trial boot passed); raises the version floor to
#                            its version if it is the booted slot
#   set-state BOOTNAME bad   never boot it (RAUC does this before writing a slot)
#   get-current              print the booted bootname
# Configuration: $CORDON_UPDATE_CONF (default /etc/cordon/update.conf), keys boot_state,
# booted_file, version_floor, attempts.
set -euo pipefail

conf=${CORDON_UPDATE_CONF:-/etc/cordon/update.conf}
# Parsed with bash builtins only: RAUC calls this script several times per status query.
declare -A cfg=() st=()
# shellcheck disable=SC2034  # `into` is a nameref: assigning it fills the caller's array
load() { # FILE ARRAY_NAME
  local -n into=$2
  local k v
  while IFS='=' read -r k v; do
    [ -z "$k" ] || [ "${k:0:1}" = "#" ] || into[$k]=$v
  done < "$1"
}
[ -f "$conf" ] || { echo "boot-backend: no configuration at $conf" >&2; exit 1; }
load "$conf" cfg
for key in boot_state booted_file version_floor; do
  [ -n "${cfg[$key]:-}" ] || { echo "boot-backend: $conf has no $key" >&2; exit 1; }
done
state=${cfg[boot_state]}
booted_file=${cfg[booted_file]}
floor_file=${cfg[version_floor]}
max_attempts=${cfg[attempts]:-3}

get() { echo "${st[$1]:-}"; }
put() { # KEY VALUE: rewrite the state file atomically (a power cut leaves old or new)
  local k
  st[$1]=$2
  for k in "${!st[@]}"; do echo "$k=${st[$k]}"; done | sort > "$state.tmp"
  mv "$state.tmp" "$state"
}
check_slot() {
  case $1 in A|B) ;; *) echo "boot-backend: unknown bootname '$1'" >&2; exit 1 ;; esac
}
bootable() { [ "$(get "$1_committed")" = 1 ] || [ "$(get "$1_attempts")" -gt 0 ]; }
booted_key() { # KEY: from the booted file (slot=, version=)
  local k v
  [ -f "$booted_file" ] || return 0
  while IFS='=' read -r k v; do [ "$k" != "$1" ] || echo "$v"; done < "$booted_file"
}

[ -f "$state" ] || { echo "boot-backend: no boot state at $state" >&2; exit 1; }
load "$state" st
cmd=${1:-}
case $cmd in
  get-primary)
    for s in $(get order); do
      if bootable "$s"; then echo "$s"; exit 0; fi
    done
    echo "boot-backend: no bootable slot" >&2
    exit 1
    ;;
  set-primary)
    check_slot "${2:-}"
    rest=$(for s in $(get order); do [ "$s" = "$2" ] || printf '%s ' "$s"; done)
    put order "$2 ${rest% }"
    put "$2_committed" 0
    put "$2_attempts" "$max_attempts"
    ;;
  get-state)
    check_slot "${2:-}"
    if bootable "$2"; then echo good; else echo bad; fi
    ;;
  set-state)
    check_slot "${2:-}"
    case ${3:-} in
      good)
        put "$2_committed" 1
        put "$2_attempts" "$max_attempts"
        booted=$(booted_key slot)
        version=$(booted_key version)
        if [ "$booted" = "$2" ] && [ -n "$version" ]; then
          floor=$(cat "$floor_file" 2>/dev/null || echo 0)
          if dpkg --compare-versions "$version" gt "$floor"; then
            echo "$version" > "$floor_file.tmp" && mv "$floor_file.tmp" "$floor_file"
          fi
        fi
        ;;
      bad)
        put "$2_committed" 0
        put "$2_attempts" 0
        ;;
      *) echo "boot-backend: set-state $2 good|bad, not '${3:-}'" >&2; exit 1 ;;
    esac
    ;;
  get-current)
    booted_key slot
    ;;
  *)
    echo "boot-backend: unknown command '$cmd'" >&2
    exit 1
    ;;
esac
