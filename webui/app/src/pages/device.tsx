// One device: identity, the rules editor (errors from the server shown next to the
// field they concern), virtual patches with their CVEs, observed flows, and the learning
// proposal as a diff that can be taken into the editor.
import { useEffect, useState } from 'preact/hooks';
import { api, atLeast, type ApiError, type ApiErrorDetail, type Session } from '../api';
import { builtinPatches, getDraft, setDraft, type ActivePolicy, type Device, type PolicyDocument, type Rule } from '../policy';
import { ErrorBox, FieldError, Loading, Notice, formatTime, useGet } from '../ui';

interface Flow {
  dir: string;
  protocol: string;
  peer: string;
  port: number;
  rule: string;
  first_seen: string;
  last_seen: string;
  count: number;
}

interface Proposal {
  device: string;
  rules_added: number;
  policy: PolicyDocument;
  text: string;
}

const ruleFields = ['name', 'dir', 'proto', 'peer', 'dport'] as const;
type RuleField = (typeof ruleFields)[number];

// "devices[0].rules[2].peer" -> {rule: 2, field: "peer"} for device index 0.
function placeErrors(details: ApiErrorDetail[], deviceIndex: number) {
  const byField = new Map<string, string[]>();
  const general: ApiErrorDetail[] = [];
  for (const d of details) {
    const m = /^devices\[(\d+)\]\.rules\[(\d+)\](?:\.(\w+))?/.exec(d.path ?? '');
    if (m && Number(m[1]) === deviceIndex) {
      const key = `${m[2]}.${m[3] ?? 'name'}`;
      byField.set(key, [...(byField.get(key) ?? []), d.message]);
    } else general.push(d);
  }
  return { byField, general };
}

function withDevice(base: PolicyDocument, device: Device): { doc: PolicyDocument; index: number } {
  const doc: PolicyDocument = structuredClone(base);
  let index = doc.devices.findIndex((d) => d.name === device.name);
  if (index < 0) {
    doc.devices.push(device);
    index = doc.devices.length - 1;
  } else doc.devices[index] = device;
  return { doc, index };
}

function cleanRule(r: Rule): Rule {
  const out: Rule = { ...r };
  if (out.dport === '' || out.dport === undefined || out.proto === 'icmp') delete out.dport;
  else if (typeof out.dport === 'string' && /^\d+$/.test(out.dport)) out.dport = Number(out.dport);
  return out;
}

function RulesEditor(props: {
  device: Device;
  base: PolicyDocument;
  baseVersion: number;
  canEdit: boolean;
  fromDraft: boolean;
}) {
  const [rules, setRules] = useState<Rule[]>(props.device.rules.map((r) => ({ ...r })));
  const [mode, setMode] = useState(props.device.mode);
  const [fieldErrors, setFieldErrors] = useState(new Map<string, string[]>());
  const [error, setError] = useState<ApiError | null>(null);
  const [general, setGeneral] = useState<ApiErrorDetail[]>([]);
  const [valid, setValid] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setRules(props.device.rules.map((r) => ({ ...r })));
    setMode(props.device.mode);
  }, [props.device]);

  const edit = (i: number, field: RuleField, value: string) => {
    setValid(false);
    setRules(rules.map((r, j) => (j === i ? { ...r, [field]: value } : r)));
  };
  const candidate = () => withDevice(props.base, { ...props.device, mode, rules: rules.map(cleanRule) });

  const check = async (thenReview: boolean) => {
    setBusy(true);
    setError(null);
    setGeneral([]);
    setFieldErrors(new Map());
    setValid(false);
    const { doc, index } = candidate();
    const r = await api('POST', 'policy/validate', { document: doc });
    setBusy(false);
    if (!r.ok) {
      const details = r.error.details?.length ? r.error.details : r.error.path ? [r.error] : [];
      const placed = placeErrors(details, index);
      setFieldErrors(placed.byField);
      setGeneral(placed.general);
      if (!details.length || placed.general.length) setError(r.error);
      else setError({ ...r.error, message: 'The rules have errors; see the marked fields below. Nothing was changed.' , path: undefined, details: undefined });
      return;
    }
    setValid(true);
    if (thenReview) {
      setDraft(doc, props.baseVersion);
      location.hash = '#/review';
    }
  };

  const fieldError = (i: number, f: RuleField) => (
    <FieldError messages={fieldErrors.get(`${i}.${f}`)} testId={`error-rules-${i}-${f}`} />
  );

  return (
    <div class="editor">
      {props.fromDraft ? <Notice kind="info">Showing your unapplied draft for this device.</Notice> : null}
      {!props.canEdit ? (
        <Notice kind="info">Your role can view the rules but not change them.</Notice>
      ) : null}
      <label class="inline">
        Mode{' '}
        <select name="mode" value={mode} disabled={!props.canEdit} onChange={(e) => { setValid(false); setMode(e.currentTarget.value as Device['mode']); }}>
          <option value="enforce">Protect: block what the rules do not allow</option>
          <option value="monitor">Monitor: allow everything, report what would be blocked</option>
          <option value="learn">Learn: allow everything, record connections to propose rules</option>
        </select>
      </label>
      <table class="rules">
        <thead>
          <tr>
            <th>Rule name</th>
            <th>Direction</th>
            <th>Protocol</th>
            <th>Other end (address or network)</th>
            <th>Port</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rules.map((r, i) => (
            <tr data-testid={`rule-${i}`} data-rule={r.name}>
              <td>
                <input aria-label={`Rule ${i + 1} name`} name={`rules.${i}.name`} value={r.name} disabled={!props.canEdit} onInput={(e) => edit(i, 'name', e.currentTarget.value)} />
                {fieldError(i, 'name')}
              </td>
              <td>
                <select aria-label={`Rule ${i + 1} direction`} name={`rules.${i}.dir`} value={r.dir} disabled={!props.canEdit} onChange={(e) => edit(i, 'dir', e.currentTarget.value)}>
                  <option value="out">device connects out</option>
                  <option value="in">connections to the device</option>
                </select>
                {fieldError(i, 'dir')}
              </td>
              <td>
                <select aria-label={`Rule ${i + 1} protocol`} name={`rules.${i}.proto`} value={r.proto} disabled={!props.canEdit} onChange={(e) => edit(i, 'proto', e.currentTarget.value)}>
                  <option value="tcp">TCP</option>
                  <option value="udp">UDP</option>
                  <option value="icmp">ICMP (ping)</option>
                </select>
                {fieldError(i, 'proto')}
              </td>
              <td>
                <input aria-label={`Rule ${i + 1} peer`} name={`rules.${i}.peer`} value={r.peer} disabled={!props.canEdit} onInput={(e) => edit(i, 'peer', e.currentTarget.value)} />
                {fieldError(i, 'peer')}
              </td>
              <td>
                <input
                  aria-label={`Rule ${i + 1} port`}
                  name={`rules.${i}.dport`}
                  class="port"
                  value={r.dport === undefined ? '' : String(r.dport)}
                  disabled={!props.canEdit || r.proto === 'icmp'}
                  placeholder={r.proto === 'icmp' ? '' : 'any'}
                  onInput={(e) => edit(i, 'dport', e.currentTarget.value)}
                />
                {fieldError(i, 'dport')}
              </td>
              <td>
                {props.canEdit ? (
                  <button class="small" onClick={() => { setValid(false); setRules(rules.filter((_, j) => j !== i)); }}>
                    Remove
                  </button>
                ) : null}
                {Object.keys(r).some((k) => !(ruleFields as readonly string[]).includes(k)) ? (
                  <div class="muted small">+ application checks kept</div>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorBox error={error} what="Not valid" />
      {general.length && !error ? (
        <ul class="error">
          {general.map((g) => (
            <li>
              {g.path ? <code>{g.path}</code> : null} {g.message}
            </li>
          ))}
        </ul>
      ) : null}
      {valid ? <Notice kind="ok">The rules are valid.</Notice> : null}
      {props.canEdit ? (
        <div class="actions">
          <button onClick={() => { setValid(false); setRules([...rules, { name: `rule-${rules.length + 1}`, dir: 'out', proto: 'tcp', peer: '', dport: '' }]); }}>
            Add a rule
          </button>
          <button disabled={busy} onClick={() => check(false)}>
            Check the rules
          </button>
          <button class="primary" disabled={busy} onClick={() => check(true)}>
            Review the change…
          </button>
        </div>
      ) : null}
    </div>
  );
}

export function DevicePage({ name, session }: { name: string; session: Session }) {
  const active = useGet<ActivePolicy>('policy');
  const flows = useGet<{ flows: Flow[] }>(`devices/${encodeURIComponent(name)}/flows`);
  const proposal = useGet<Proposal>(`devices/${encodeURIComponent(name)}/proposal`);
  const [fromProposal, setFromProposal] = useState<Device | null>(null);
  const canEdit = atLeast(session.role, 'operator');

  const draft = getDraft();
  const base: PolicyDocument | null = draft.doc ?? active.data?.policy ?? null;
  const baseVersion = draft.doc ? draft.base : active.data?.version ?? 0;
  const device = fromProposal ?? base?.devices.find((d) => d.name === name) ?? null;

  return (
    <section>
      <p>
        <a href="#/">← Overview</a>
      </p>
      <h1>Device {name}</h1>
      <Loading loaded={active} what="the policy" />
      {active.data && !device ? <div class="error">There is no device “{name}” in the policy.</div> : null}
      {device && base ? (
        <>
          <dl class="identity">
            <dt>Name</dt>
            <dd>{device.name}</dd>
            <dt>Hardware (MAC) address</dt>
            <dd>{device.mac}</dd>
            <dt>IP addresses</dt>
            <dd>{device.ip.join(', ')}</dd>
            <dt>What happens to other traffic</dt>
            <dd>{device.mode === 'enforce' ? (device.deny_action === 'reset' ? 'refused (reset)' : 'dropped') : 'allowed, but reported'}</dd>
          </dl>
          <h2>Allowed connections (rules)</h2>
          <p class="small muted">
            Each rule allows one kind of connection. Everything else is blocked when the device is protected.
          </p>
          <RulesEditor
            device={device}
            base={base}
            baseVersion={baseVersion}
            canEdit={canEdit}
            fromDraft={!!draft.doc && !fromProposal}
          />

          <h2>Virtual patches</h2>
          {(device.patches ?? []).length === 0 ? <p class="muted">No virtual patch is switched on for this device.</p> : null}
          <ul class="patches">
            {(device.patches ?? []).map((id) => {
              const b = builtinPatches.find((p) => p.id === id);
              const c = base.patches?.find((p) => p.id === id);
              return (
                <li>
                  <strong>{id}</strong>: {b ? b.title : c ? `custom patch (${c.proto}/${c.dport ?? 'any'})` : 'unknown patch'}
                  <span class="cve"> {b ? b.cves : c?.cve ?? ''}</span>
                </li>
              );
            })}
          </ul>
        </>
      ) : null}

      <h2>Observed connections</h2>
      <Loading loaded={flows} what="observed connections" />
      {flows.data && flows.data.flows.length === 0 ? <p class="muted">No connection recorded yet.</p> : null}
      {flows.data && flows.data.flows.length ? (
        <table>
          <thead>
            <tr>
              <th>Direction</th>
              <th>Protocol</th>
              <th>Other end</th>
              <th>Port</th>
              <th>Allowed by rule</th>
              <th>Count</th>
              <th>Last seen</th>
            </tr>
          </thead>
          <tbody>
            {flows.data.flows.map((f) => (
              <tr>
                <td>{f.dir === 'out' ? 'device connects out' : 'to the device'}</td>
                <td>{f.protocol}</td>
                <td>{f.peer}</td>
                <td>{f.port || ''}</td>
                <td>{f.rule || <span class="warn-text">none</span>}</td>
                <td>{f.count}</td>
                <td>{formatTime(f.last_seen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}

      <h2>Learning proposal</h2>
      <Loading loaded={proposal} what="the learning proposal" />
      {proposal.data ? (
        <div>
          <p>
            {proposal.data.rules_added === 0
              ? 'The recorded connections are all covered by the current rules: nothing to propose.'
              : `From the recorded connections, ${proposal.data.rules_added} rule(s) would be added:`}
          </p>
          <pre class="diff" data-testid="proposal-diff">
            {proposal.data.text.split('\n').map((l) => (
              <span class={l.trimStart().startsWith('+') ? 'add' : l.trimStart().startsWith('-') ? 'del' : ''}>{l + '\n'}</span>
            ))}
          </pre>
          {canEdit && proposal.data.rules_added > 0 ? (
            <button
              onClick={() => {
                const d = proposal.data!.policy.devices.find((x) => x.name === name);
                if (d) setFromProposal(d);
              }}
            >
              Take the proposal into the editor (then check, edit and review)
            </button>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
