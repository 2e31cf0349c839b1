#!/usr/bin/env bash
# Prints the firmware version of the source tree, in a form that orders correctly under
# `dpkg --compare-versions` (the version floor of the update flow compares versions so):
#   tagged tree   v1.2.0-3-gabc1234[-dirty] -> 1.2.0+3.gabc1234[.dirty]
#   no tag yet    abc1234[-dirty]           -> 0.0.0+<commit count>.gabc1234[.dirty]
# CORDON_VERSION in the environment overrides it (release builds, tests).
set -euo pipefail
if [ -n "${CORDON_VERSION:-}" ]; then
  echo "$CORDON_VERSION"
  exit 0
fi
cd "$(dirname "$0")/.."
if describe=$(git describe --tags --long --dirty --match 'v[0-9]*' 2>/dev/null); then
  # v1.2.0-3-gabc1234[-dirty]
  dirty=""
  case $describe in *-dirty) dirty=".dirty"; describe=${describe%-dirty} ;; esac
  hash=${describe##*-}
  rest=${describe%-*}
  count=${rest##*-}
  tag=${rest%-*}
  echo "${tag#v}+${count}.${hash}${dirty}"
else
  describe=$(git describe --always --dirty)
  echo "0.0.0+$(git rev-list --count HEAD).g${describe/-dirty/.dirty}"
fi
