#!/usr/bin/env bash
# RAUC pre-install handler ([handlers] pre-install), in the lab and on the appliance: runs
# after RAUC has verified the bundle's signature and compatible, before anything is
# written. A non-zero exit aborts the installation; the first line on stderr is the reason.
#
# RAUC 1.8 logs a handler's stderr but reports only "Pre-install handler error: Child
# process exited with code 1" as LastError, so the reason is also written to the file
# named by `rejection` (removed at the start of every check); clients read it from there.
# RAUC 1.8 passes no manifest fields to handlers: they are read from the verified,
# mounted bundle ($RAUC_BUNDLE_MOUNT_POINT/manifest.raucm).
#
# 1. Size limit: every image must fit the slot (max_image_bytes). RAUC 1.8 limits only
#    streamed downloads (max-bundle-download-size), not local bundles or image sizes.
# 2. Version floor: the bundle's version must not be below the highest version ever
#    marked good (version_floor, kept by boot-backend.sh on mark-good; dpkg ordering),
#    unless
#    a) admin_downgrade_allowance names the allowance controld wrote on an audited admin
#       request (POST /v1/update/allow-downgrade): `version=` exactly this version,
#       `expires=` (epoch seconds) not yet past, owned by root and writable by nobody
#       else. It is single use: removed here when it lets the bundle through; or
#    b) downgrade_allowance names a CMS-signed allowance, signed by a key the keyring
#       trusts, for exactly this compatible and version (docs/update-flow.md).
#    Either way RAUC has already checked the bundle's own signature.
# Configuration: $CORDON_UPDATE_CONF (default /etc/cordon/update.conf).
set -euo pipefail

conf=${CORDON_UPDATE_CONF:-/etc/cordon/update.conf}
conf_get() { sed -n "s/^$1=//p" "$conf" | tail -1; }
rejection=$(conf_get rejection)
[ -z "$rejection" ] || rm -f "$rejection"
reject() {
  echo "cordon pre-install: $*" >&2
  [ -z "$rejection" ] || echo "$*" > "$rejection"
  exit 1
}
manifest="${RAUC_BUNDLE_MOUNT_POINT:?}/manifest.raucm"
manifest_get() { # SECTION KEY
  sed -n "/^\[$1\]/,/^\[/{s/^$2=//p}" "$manifest" | head -1
}

max_image_bytes=$(conf_get max_image_bytes)
floor_file=$(conf_get version_floor)
allowance=$(conf_get downgrade_allowance)
admin_allowance=$(conf_get admin_downgrade_allowance)
keyring=$(conf_get keyring)
version=$(manifest_get update version)
compatible=$(manifest_get update compatible)
[ -n "$version" ] || reject "bundle has no version"
# An unorderable version would make the floor comparison fail open.
dpkg --validate-version "$version" 2>/dev/null ||
  reject "bundle version '$version' is not a valid (orderable) version"

for var in "${!RAUC_IMAGE_NAME_@}"; do
  image=${!var}
  size=$(stat -c %s "$RAUC_BUNDLE_MOUNT_POINT/$image")
  if [ -n "$max_image_bytes" ] && [ "$size" -gt "$max_image_bytes" ]; then
    reject "image $image is $size bytes, over the slot size limit of $max_image_bytes bytes"
  fi
done

# Fail closed: the factory image writes the floor; without it nothing is installed.
[ -n "$floor_file" ] && [ -s "$floor_file" ] ||
  reject "no version floor at '${floor_file:-<unset>}' (written at manufacturing)"
floor=$(cat "$floor_file")
if dpkg --compare-versions "$version" lt "$floor"; then
  below="version $version is below the version floor $floor (highest version marked good)"
  admin_refusal=""
  if [ -n "$admin_allowance" ] && [ -f "$admin_allowance" ]; then
    owner_mode=$(stat -c '%u %a' "$admin_allowance")
    allowed_version=$(sed -n 's/^version=//p' "$admin_allowance" | head -1)
    expires=$(sed -n 's/^expires=//p' "$admin_allowance" | head -1)
    if [ "${owner_mode%% *}" != 0 ] || [ $(( 8#${owner_mode#* } & 8#022 )) -ne 0 ]; then
      admin_refusal="the downgrade allowance $admin_allowance is not owned by root or is writable by others"
    elif ! [[ $expires =~ ^[0-9]+$ ]] || [ "$expires" -le "$(date +%s)" ]; then
      admin_refusal="the downgrade allowance for $allowed_version has expired"
    elif [ "$allowed_version" != "$version" ]; then
      admin_refusal="the downgrade allowance is for version $allowed_version"
    else
      rm -f "$admin_allowance"  # single use
      echo "cordon pre-install: downgrade to $version below floor $floor allowed by the administrator's allowance (now used)" >&2
      exit 0
    fi
  fi
  if [ -z "$allowance" ] || [ ! -f "$allowance" ]; then
    reject "$below; ${admin_refusal:-no downgrade allowance}"
  fi
  # The allowance is CMS signed data; openssl checks the signature and the chain.
  if ! content=$(openssl cms -verify -binary -inform PEM -in "$allowance" -CAfile "$keyring" \
                   -purpose any 2>/dev/null); then
    reject "$below; ${admin_refusal:+$admin_refusal; }the signed downgrade allowance $allowance is not signed by a trusted key"
  fi
  allowed_version=$(sed -n 's/^version=//p' <<<"$content")
  allowed_compatible=$(sed -n 's/^compatible=//p' <<<"$content")
  if [ "$allowed_version" != "$version" ] || [ "$allowed_compatible" != "$compatible" ]; then
    reject "$below; ${admin_refusal:+$admin_refusal; }the signed downgrade allowance is for $allowed_compatible $allowed_version"
  fi
  echo "cordon pre-install: downgrade to $version below floor $floor allowed by a signed allowance" >&2
fi
exit 0
