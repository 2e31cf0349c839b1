// Policy document types (schema/policy-v1.schema.json, docs/policy.md) and the draft:
// the candidate policy being edited in this browser tab, waiting for review and apply.
import { useEffect, useState } from 'preact/hooks';

export interface Rule {
  name: string;
  dir: 'in' | 'out';
  proto: 'tcp' | 'udp' | 'icmp';
  peer: string;
  dport?: number | string;
  [other: string]: unknown; // app constraints etc. are kept as they are
}

export interface Device {
  name: string;
  mac: string;
  ip: string[];
  mode: 'enforce' | 'monitor' | 'learn';
  deny_action?: string;
  rules: Rule[];
  patches?: string[];
  [other: string]: unknown;
}

export interface CustomPatch {
  id: string;
  cve?: string;
  dir: string;
  proto: string;
  dport?: number | string;
  action?: string;
  [other: string]: unknown;
}

export interface PolicyDocument {
  schema: string;
  unknown_devices: string;
  devices: Device[];
  patches?: CustomPatch[];
  [other: string]: unknown;
}

export interface ActivePolicy {
  version: number;
  sha256: string;
  policy: PolicyDocument | null;
  confirm_by_unix_ms?: number;
}

// The built-in virtual patches (contract in docs/policy.md; what each matches is in
// dataplane/engine/patches/catalog.cpp). No API lists them, so they are named here.
export const builtinPatches = [
  {
    id: 'smb1-block',
    title: 'Block SMB version 1',
    cves: 'MS17-010, CVE-2017-0143, CVE-2017-0144, CVE-2017-0145, CVE-2017-0146, CVE-2017-0148',
    ports: 'tcp/139, tcp/445',
    matches: "any SMB1 message (the WannaCry/NotPetya family)",
    action: 'reset',
  },
  {
    id: 'ms17-010',
    title: 'EternalBlue / DoublePulsar indicators',
    cves: 'MS17-010, CVE-2017-0144, CVE-2017-0145',
    ports: 'tcp/139, tcp/445',
    matches: 'SMB1 Trans2/NT Trans requests with inconsistent counts and the DoublePulsar ping',
    action: 'reset',
  },
  {
    id: 'cve-2019-0708',
    title: 'BlueKeep: RDP MS_T120 channel request',
    cves: 'CVE-2019-0708',
    ports: 'tcp/3389',
    matches: 'an RDP connection request asking for the MS_T120 virtual channel',
    action: 'reset',
  },
  {
    id: 'dicom-pdu-sanity',
    title: 'DICOM upper-layer PDU sanity',
    cves: 'PS3.8 section 9 (malformed DICOM messages)',
    ports: 'any DICOM rule port',
    matches: 'DICOM messages with inconsistent lengths, unknown types or illegal AE titles',
    action: 'drop',
  },
];

// The draft lives in this tab's memory: one candidate policy, edited on device pages,
// reviewed and applied on the Change review page.
let draft: PolicyDocument | null = null;
let draftBase = 0; // the active version the draft was made from
const listeners = new Set<() => void>();

export function getDraft(): { doc: PolicyDocument | null; base: number } {
  return { doc: draft, base: draftBase };
}

export function setDraft(doc: PolicyDocument | null, base: number): void {
  draft = doc ? structuredClone(doc) : null;
  draftBase = base;
  listeners.forEach((l) => l());
}

export function useDraft(): { doc: PolicyDocument | null; base: number } {
  const [, setN] = useState(0);
  useEffect(() => {
    const l = () => setN((n) => n + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return getDraft();
}

// A readable, per-device summary of what a candidate changes against the active policy.
export interface DeviceChange {
  device: string;
  change: 'added' | 'removed' | 'changed';
  lines: string[];
}

export function describeRule(r: Rule): string {
  const port = r.dport !== undefined ? ` port ${r.dport}` : '';
  const way = r.dir === 'out' ? 'to' : 'from';
  return `${r.name}: ${r.proto.toUpperCase()}${port} ${way} ${r.peer} (${r.dir === 'out' ? 'device connects out' : 'connections to the device'})`;
}

export function compareDocuments(active: PolicyDocument | null, candidate: PolicyDocument): DeviceChange[] {
  const out: DeviceChange[] = [];
  const before = new Map((active?.devices ?? []).map((d) => [d.name, d]));
  const after = new Map(candidate.devices.map((d) => [d.name, d]));
  for (const [name, d] of after) {
    const old = before.get(name);
    if (!old) {
      out.push({ device: name, change: 'added', lines: d.rules.map((r) => '+ ' + describeRule(r)) });
      continue;
    }
    const lines: string[] = [];
    if (old.mode !== d.mode) lines.push(`mode: ${old.mode} → ${d.mode}`);
    if (JSON.stringify(old.ip) !== JSON.stringify(d.ip)) lines.push(`addresses: ${old.ip.join(', ')} → ${d.ip.join(', ')}`);
    if (old.mac !== d.mac) lines.push(`MAC: ${old.mac} → ${d.mac}`);
    const oldRules = new Map(old.rules.map((r) => [r.name, r]));
    const newRules = new Map(d.rules.map((r) => [r.name, r]));
    for (const [rn, r] of newRules) {
      const o = oldRules.get(rn);
      if (!o) lines.push('+ ' + describeRule(r));
      else if (JSON.stringify(o) !== JSON.stringify(r)) {
        lines.push('- ' + describeRule(o));
        lines.push('+ ' + describeRule(r));
      }
    }
    for (const [rn, o] of oldRules) if (!newRules.has(rn)) lines.push('- ' + describeRule(o));
    if (JSON.stringify(old.patches ?? []) !== JSON.stringify(d.patches ?? []))
      lines.push(`patches: ${(old.patches ?? []).join(', ') || 'none'} → ${(d.patches ?? []).join(', ') || 'none'}`);
    if (lines.length) out.push({ device: name, change: 'changed', lines });
  }
  for (const [name, d] of before)
    if (!after.has(name))
      out.push({ device: name, change: 'removed', lines: d.rules.map((r) => '- ' + describeRule(r)) });
  return out;
}
