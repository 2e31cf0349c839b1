#!/usr/bin/env bash
# Smoke test of a running lab (tests/topology/lab.sh up), through the forwarder:
# C-ECHO and C-STORE from modality (AE CT1) to pacs (AE PACS), the stored file arrives;
# an ORU^R01 from modality to ris over MLLP is ACKed and recorded; pacs pings modality.
# With the testpmd stand-in (no policy) modality also pings pacs. Needs root.
#
#   tests/topology/smoke.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lab=$here/lab.sh
run=/run/cordon-lab
failed=0

check() { # DESCRIPTION CMD...
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then
    echo "ok    $what"
  else
    echo "FAIL  $what: $*"
    failed=1
  fi
}

"$lab" status >/dev/null || { echo "smoke: the lab is not (fully) up: $lab status" >&2; exit 1; }
kind=$(cat "$run/forwarder.kind")

check "C-ECHO CT1 -> PACS" "$lab" exec modality -- echoscu -aet CT1 -aec PACS 10.50.0.20 104

dcm=$run/smoke-ct.dcm
"$here/make_test_dicom.sh" "$dcm" >/dev/null
uid=$(dcmdump +P 0008,0018 "$dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p')
check "C-STORE CT1 -> PACS" "$lab" exec modality -- storescu -aet CT1 -aec PACS 10.50.0.20 104 "$dcm"
check "stored file in $run/pacs-store" test -s "$run/pacs-store/CT.$uid"

cid=SMOKE$$
check "HL7 ORU^R01 modality -> ris ACKed" \
  "$lab" exec modality -- /usr/bin/python3 "$here/mllp_send.py" 10.50.0.30 2575 --control-id "$cid"
check "HL7 message recorded in $run/ris-received.hl7" grep -q "|ORU^R01|$cid|" "$run/ris-received.hl7"

check "ping pacs -> modality" "$lab" exec pacs -- ping -n -c 1 -W 2 10.50.0.10
if [ "$kind" = testpmd ]; then
  check "ping modality -> pacs (stand-in forwards everything)" \
    "$lab" exec modality -- ping -n -c 1 -W 2 10.50.0.20
fi

if [ $failed -ne 0 ]; then
  echo "smoke: FAILED (forwarder: $kind)"
  exit 1
fi
echo "smoke: all passed (forwarder: $kind)"
