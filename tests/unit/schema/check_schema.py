#!/usr/bin/python3
"""Checks schema/policy-v1.schema.json against the documents the project ships.

* the schema is a valid draft 2020-12 schema;
* every example policy and every valid-* seed of the policy fuzz corpus validates;
* a table of structurally invalid documents does not;
* the built-in patch ids the schema forbids as policy patch ids are exactly those of
  dataplane/engine/patches/catalog.cpp.

Run with Debian's interpreter (python3-jsonschema): /usr/bin/python3 check_schema.py
"""
import copy
import json
import pathlib
import re
import sys

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "schema" / "policy-v1.schema.json"

DEVICE = {"name": "d", "mac": "02:00:00:00:00:01", "ip": ["10.0.0.1"]}
RULE = {"name": "r", "dir": "out", "proto": "tcp", "peer": "10.0.0.2/32", "dport": 104}
PATCH = {"id": "p", "dir": "in", "proto": "tcp", "match": {"content": "x"}}


def doc(devices=None, patches=None, **top):
    d = {"schema": "cordon.policy/v1", "devices": devices if devices is not None else []}
    if patches is not None:
        d["patches"] = patches
    d.update(top)
    return d


def with_device(**fields):
    return doc([{**DEVICE, **fields}])


def with_rule(**fields):
    """RULE with fields replaced; a field set to None is left out."""
    rule = {k: v for k, v in {**RULE, **fields}.items() if v is not None}
    return with_device(rules=[rule])


def with_patch(**fields):
    return doc(patches=[{**PATCH, **fields}])


def without(d, key):
    d = copy.deepcopy(d)
    del d[key]
    return d


VALID = [
    ("minimal", doc()),
    ("defaults", doc([DEVICE])),
    ("port range", with_rule(dport="1000-2000")),
    ("icmp without dport", with_rule(proto="icmp", dport=None)),
    ("dicom any", with_rule(app={"dicom": {}})),
    ("ae with inner space", with_rule(app={"dicom": {"called_ae": ["MY PACS"]}})),
    ("hl7", with_rule(app={"hl7": {"message_types": ["ADT", "ORU^R01"],
                                   "sending_facilities": ["LAB"]}})),
    ("patch regex", with_patch(match={"regex": "^GET"})),
    ("patch alert udp", with_patch(proto="udp", action="alert")),
]

INVALID = [
    ("no schema", without(doc(), "schema")),
    ("wrong schema", doc(schema="cordon.policy/v2")),
    ("no devices", without(doc(), "devices")),
    ("unknown top field", doc(device=[])),
    ("unknown_devices value", doc(unknown_devices="allow")),
    ("unknown device field", with_device(nmae="x")),
    ("device name charset", doc([{**DEVICE, "name": "ct 1"}])),
    ("device name too long", doc([{**DEVICE, "name": "a" * 64}])),
    ("device without mac", doc([without(DEVICE, "mac")])),
    ("multicast mac", doc([{**DEVICE, "mac": "01:00:5e:00:00:01"}])),
    ("all-zero mac", doc([{**DEVICE, "mac": "00:00:00:00:00:00"}])),
    ("no addresses", doc([{**DEVICE, "ip": []}])),
    ("17 addresses", doc([{**DEVICE, "ip": [f"10.0.0.{i}" for i in range(1, 18)]}])),
    ("mode value", with_device(mode="block")),
    ("deny_action value", with_device(deny_action="reject")),
    ("repeated patch id", with_device(patches=["ms17-010", "ms17-010"])),
    ("rule without peer", with_device(rules=[without(RULE, "peer")])),
    ("rule dir", with_rule(dir="both")),
    ("rule proto", with_rule(proto="sctp")),
    ("dport zero", with_rule(dport=0)),
    ("dport too big", with_rule(dport=65536)),
    ("dport string", with_rule(dport="80")),
    ("dport on icmp", with_rule(proto="icmp")),
    ("app on udp", with_rule(proto="udp", app={"hl7": {}})),
    ("app empty", with_rule(app={})),
    ("app both", with_rule(app={"dicom": {}, "hl7": {}})),
    ("empty ae list", with_rule(app={"dicom": {"calling_ae": []}})),
    ("ae leading space", with_rule(app={"dicom": {"calling_ae": [" CT1"]}})),
    ("ae backslash", with_rule(app={"dicom": {"calling_ae": ["A\\B"]}})),
    ("ae too long", with_rule(app={"dicom": {"calling_ae": ["A" * 17]}})),
    ("command", with_rule(app={"dicom": {"commands": ["C-PUSH"]}})),
    ("uid leading zero", with_rule(app={"dicom": {"sop_classes": ["1.02"]}})),
    ("uid too long", with_rule(app={"dicom": {"sop_classes": ["1" * 65]}})),
    ("message type", with_rule(app={"hl7": {"message_types": ["oru^r01"]}})),
    ("facility delimiter", with_rule(app={"hl7": {"sending_facilities": ["A|B"]}})),
    ("facility too long", with_rule(app={"hl7": {"sending_facilities": ["x" * 228]}})),
    ("patch id built in", with_patch(id="smb1-block")),
    ("patch cve", with_patch(cve="CVE-21-1")),
    ("patch proto icmp", with_patch(proto="icmp")),
    ("patch without match", doc(patches=[without(PATCH, "match")])),
    ("match empty", with_patch(match={})),
    ("offset without content", with_patch(match={"regex": "x", "offset": 1})),
    ("depth zero", with_patch(match={"content": "x", "depth": 0})),
    ("regex too long", with_patch(match={"regex": "a" * 1025})),
    ("reset on udp", with_patch(proto="udp", action="reset")),
    ("action value", with_patch(action="block")),
]


def main():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    passed, failed = 0, []

    def expect(name, document, valid):
        nonlocal passed
        errors = list(validator.iter_errors(document))
        if bool(errors) != (not valid):
            detail = "; ".join(e.message for e in errors[:3]) or "accepted"
            failed.append(f"{name}: expected {'valid' if valid else 'invalid'}: {detail}")
        else:
            passed += 1

    files = sorted((ROOT / "examples" / "policies").glob("*.json"))
    files += sorted((ROOT / "tests" / "fuzz" / "corpus" / "policy").glob("valid-*.json"))
    files += sorted((ROOT / "tests" / "fuzz" / "corpus" / "policy").glob("example-*.json"))
    if len(files) < 5:
        failed.append(f"only {len(files)} example files found under {ROOT}")
    for path in files:
        expect(str(path.relative_to(ROOT)), json.loads(path.read_text()), True)
    for name, document in VALID:
        expect(f"valid: {name}", document, True)
    for name, document in INVALID:
        expect(f"invalid: {name}", document, False)

    catalog = (ROOT / "dataplane" / "engine" / "patches" / "catalog.cpp").read_text()
    builtin = set(re.findall(r'CatalogPatch\{"([^"]+)"', catalog))
    forbidden = set(schema["$defs"]["policy_patch"]["properties"]["id"]["not"]["enum"])
    if builtin and builtin == forbidden:
        passed += 1
    else:
        failed.append(f"built-in ids: catalog.cpp has {sorted(builtin)}, schema {sorted(forbidden)}")

    for f in failed:
        print("FAIL", f)
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
