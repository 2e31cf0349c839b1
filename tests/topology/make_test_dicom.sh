#!/usr/bin/env bash
# Writes a small valid DICOM file (default: a 4x4 CT Image Storage instance, SOP
# class 1.2.840.10008.5.1.4.1.1.2, the class the lab policy allows) with fresh UIDs,
# from a text dump through DCMTK's dump2dcm.
#
#   tests/topology/make_test_dicom.sh OUT.dcm [SOP_CLASS_UID [MODALITY]]
#
# e.g. an MR instance (1.2.840.10008.5.1.4.1.1.4, "MR") to test a SOP class filter.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "usage: $0 OUT.dcm [SOP_CLASS_UID [MODALITY]]" >&2
  exit 2
fi
out=$1
sop_class=${2:-1.2.840.10008.5.1.4.1.1.2}
modality=${3:-CT}

# 2.25.<decimal UUID> UIDs (ISO/IEC 9834-8), unique per call.
uid() { /usr/bin/python3 -c 'import uuid; print("2.25.%d" % uuid.uuid4().int)'; }
study=$(uid)
series=$(uid)
instance=$(uid)
now_date=$(date +%Y%m%d)
now_time=$(date +%H%M%S)

dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
cat >"$dump" <<EOF
(0002,0002) UI [${sop_class}]
(0002,0003) UI [${instance}]
(0002,0010) UI =LittleEndianExplicit
(0008,0016) UI [${sop_class}]
(0008,0018) UI [${instance}]
(0008,0020) DA [${now_date}]
(0008,0030) TM [${now_time}]
(0008,0050) SH [CORDONLAB1]
(0008,0060) CS [${modality}]
(0008,0070) LO [Cordon lab]
(0010,0010) PN [DOE^JANE]
(0010,0020) LO [123456]
(0010,0030) DA [19600101]
(0010,0040) CS [F]
(0020,000d) UI [${study}]
(0020,000e) UI [${series}]
(0020,0010) SH [1]
(0020,0011) IS [1]
(0020,0013) IS [1]
(0028,0002) US 1
(0028,0004) CS [MONOCHROME2]
(0028,0010) US 4
(0028,0011) US 4
(0028,0100) US 16
(0028,0101) US 12
(0028,0102) US 11
(0028,0103) US 0
(7fe0,0010) OW 0000\0100\0200\0300\0400\0500\0600\0700\0800\0900\0a00\0b00\0c00\0d00\0e00\0f00
EOF
rm -f "$out"
dump2dcm +te "$dump" "$out"
# dump2dcm exits 0 even when it reports errors and writes nothing: check.
[ -s "$out" ] || { echo "$0: dump2dcm did not write $out" >&2; exit 1; }
echo "$out: SOP class $sop_class, SOP instance $instance"
