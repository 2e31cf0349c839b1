// Change review: what the draft changes, a dry-run against recorded traffic (per device:
// what would newly be blocked) before applying, the apply with a confirm-or-revert
// countdown, and the version history with diffs and rollback.
import { useEffect, useState } from 'preact/hooks';
import { api, atLeast, type ApiError, type Session } from '../api';
import { compareDocuments, setDraft, useDraft, type ActivePolicy } from '../policy';
import { Confirm, ErrorBox, Loading, Notice, formatDuration, formatTime, useGet, useTick } from '../ui';

interface FlowReport {
  protocol: string;
  initiator: string;
  responder: string;
  port: number;
  connections: number;
  packets: number;
  direction: string | null;
  stricter: { reason: string; reason_description: string } | null;
  looser: { reason: string; reason_description: string } | null;
}
interface DeviceReport {
  name: string | null;
  active_mode: string | null;
  candidate_mode: string | null;
  flows: number;
  unchanged_flows: number;
  newly_blocked: FlowReport[];
  newly_blocked_total: number;
  newly_allowed: FlowReport[];
  newly_allowed_total: number;
}
interface DryRun {
  report: { pcap: string; devices: DeviceReport[]; totals: { flows: number; newly_blocked_flows: number; newly_allowed_flows: number } };
  text: string;
}
interface Version {
  version: number;
  created_at: string;
  author: string;
  origin: string;
  comment: string;
  status: string;
}

function describeFlow(f: FlowReport): string {
  const port = f.port ? ` port ${f.port}` : '';
  return `${f.protocol.toUpperCase()} ${f.initiator} → ${f.responder}${port} (${f.connections} connection${f.connections === 1 ? '' : 's'})`;
}

function DryRunResult({ result }: { result: DryRun }) {
  const r = result.report;
  return (
    <div class="dryrun" data-testid="dry-run-result">
      <p class="small muted">Tested against {r.pcap}.</p>
      <p>
        <strong>{r.totals.newly_blocked_flows}</strong> kind(s) of connection would newly be blocked,{' '}
        <strong>{r.totals.newly_allowed_flows}</strong> newly allowed, of {r.totals.flows} seen.
      </p>
      <table>
        <thead>
          <tr>
            <th>Device</th>
            <th>Mode</th>
            <th>Newly blocked</th>
            <th>Newly allowed</th>
            <th>Unchanged</th>
          </tr>
        </thead>
        <tbody>
          {r.devices.map((d) => (
            <tr data-testid={`dry-run-${d.name}`}>
              <td>{d.name}</td>
              <td>
                {d.active_mode === d.candidate_mode ? d.candidate_mode : `${d.active_mode ?? 'new'} → ${d.candidate_mode ?? 'removed'}`}
              </td>
              <td class={d.newly_blocked_total ? 'bad-text' : ''}>
                {d.newly_blocked_total}
                <ul class="small">
                  {d.newly_blocked.map((f) => (
                    <li>
                      {describeFlow(f)}
                      {f.stricter ? ` — ${f.stricter.reason_description}` : ''}
                    </li>
                  ))}
                </ul>
              </td>
              <td>
                {d.newly_allowed_total}
                <ul class="small">
                  {d.newly_allowed.map((f) => (
                    <li>{describeFlow(f)}</li>
                  ))}
                </ul>
              </td>
              <td>{d.unchanged_flows}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <details>
        <summary>Full dry-run report (text)</summary>
        <pre>{result.text}</pre>
      </details>
    </div>
  );
}

// The provisional apply: keep it before the deadline, or the server undoes it by itself.
function PendingConfirm(props: { confirmBy: number; canConfirm: boolean; onKept: () => void; onExpired: () => void }) {
  const now = useTick(1000);
  const [error, setError] = useState<ApiError | null>(null);
  const left = Math.ceil((props.confirmBy - now) / 1000);
  useEffect(() => {
    if (left <= 0) props.onExpired();
  }, [left <= 0]);
  const keep = async () => {
    const r = await api('POST', 'policy/confirm', {});
    if (r.ok) props.onKept();
    else setError(r.error);
  };
  return (
    <div class="pending" role="status" data-testid="confirm-countdown">
      <p>
        <strong>The new policy is active on trial.</strong> Check that the devices still work. Unless you keep it, it is
        undone automatically in <strong data-testid="seconds-left">{left > 0 ? formatDuration(left) : '0 s'}</strong>.
      </p>
      {props.canConfirm ? (
        <button class="primary" onClick={keep}>
          Keep this change
        </button>
      ) : null}
      <ErrorBox error={error} what="Could not keep the change" />
    </div>
  );
}

export function ReviewPage({ session }: { session: Session }) {
  const draft = useDraft();
  const active = useGet<ActivePolicy>('policy');
  const versions = useGet<{ active: number | null; versions: Version[] }>('policy/versions?limit=50');
  const canChange = atLeast(session.role, 'operator');
  const [dry, setDry] = useState<DryRun | null>(null);
  const [dryError, setDryError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState('');
  const [comment, setComment] = useState('');
  const [trialSeconds, setTrialSeconds] = useState(120);
  const [askApply, setAskApply] = useState(false);
  const [applyError, setApplyError] = useState<ApiError | null>(null);
  const [applied, setApplied] = useState<number | null>(null);
  const [diffOf, setDiffOf] = useState<{ version: number; text: string } | null>(null);
  const [historyError, setHistoryError] = useState<ApiError | null>(null);
  const [rollbackTo, setRollbackTo] = useState<number | null>(null);
  const [outcome, setOutcome] = useState<{ kind: 'ok' | 'warn'; text: string } | null>(null);
  const [waitingForRevert, setWaitingForRevert] = useState(false);

  const refresh = () => {
    active.reload();
    versions.reload();
  };

  // After the trial deadline, follow the server until it has undone the change.
  useEffect(() => {
    if (!waitingForRevert) return;
    if (active.data && !active.data.confirm_by_unix_ms) {
      setWaitingForRevert(false);
      setOutcome({
        kind: 'warn',
        text: `The change was not kept in time and has been undone: version ${active.data.version} is active.`,
      });
      versions.reload();
      return;
    }
    const t = setTimeout(active.reload, 1000);
    return () => clearTimeout(t);
  }, [waitingForRevert, active.data]);

  const dryRun = async () => {
    if (!draft.doc) return;
    setBusy('dry-run');
    setDry(null);
    setDryError(null);
    const r = await api<DryRun>('POST', 'policy/dry-run', { document: draft.doc, recorded_seconds: 86400 });
    setBusy('');
    if (r.ok) setDry(r.data);
    else setDryError(r.error);
  };

  const apply = async () => {
    if (!draft.doc) return;
    setBusy('apply');
    setApplyError(null);
    const body: Record<string, unknown> = { document: draft.doc, comment: comment || 'changed in the web console' };
    if (trialSeconds > 0) body.confirm_within = trialSeconds;
    const r = await api<{ version: number; confirm_by_unix_ms?: number }>('POST', 'policy', body);
    setBusy('');
    setAskApply(false);
    if (r.ok) {
      setApplied(r.data.version);
      setOutcome(null);
      setDraft(null, 0);
      setDry(null);
      setComment('');
      refresh();
    } else setApplyError(r.error);
  };

  const showDiff = async (v: Version, previous: Version | undefined) => {
    setHistoryError(null);
    if (!previous) {
      setDiffOf({ version: v.version, text: 'The first recorded version: nothing to compare with.' });
      return;
    }
    const r = await api<{ text: string }>('GET', `policy/diff?from=${previous.version}&to=${v.version}`);
    if (r.ok) setDiffOf({ version: v.version, text: r.data.text });
    else setHistoryError(r.error);
  };

  const rollback = async (version: number) => {
    setBusy('rollback');
    setHistoryError(null);
    const r = await api<{ version: number }>('POST', 'policy/rollback', { version, comment: `rollback to version ${version} from the web console` });
    setBusy('');
    setRollbackTo(null);
    if (r.ok) {
      setApplied(r.data.version);
      setOutcome(null);
      refresh();
    } else setHistoryError(r.error);
  };

  const changes = draft.doc ? compareDocuments(active.data?.policy ?? null, draft.doc) : [];
  const stale = draft.doc && active.data && draft.base !== active.data.version;
  const list = versions.data?.versions ?? [];

  return (
    <section>
      <h1>Change review</h1>
      <Loading loaded={active} what="the active policy" />
      {active.data?.confirm_by_unix_ms ? (
        <PendingConfirm
          confirmBy={active.data.confirm_by_unix_ms}
          canConfirm={canChange}
          onKept={() => {
            setOutcome({ kind: 'ok', text: `The change is kept: version ${active.data!.version} stays active.` });
            refresh();
          }}
          onExpired={() => setWaitingForRevert(true)}
        />
      ) : null}
      {applied !== null && !active.data?.confirm_by_unix_ms && !outcome ? (
        <Notice kind="ok">
          Policy version <strong data-testid="applied-version">{applied}</strong> was applied.
        </Notice>
      ) : null}
      {outcome ? <Notice kind={outcome.kind}>{outcome.text}</Notice> : null}

      <h2>Pending change</h2>
      {!draft.doc ? (
        <p class="muted">
          There is no change waiting. Edit a device's rules (from the <a href="#/">overview</a>) and choose “Review the change”.
        </p>
      ) : (
        <div>
          {stale ? (
            <Notice kind="warn">
              The active policy changed (now version {active.data!.version}) since this draft was made from version {draft.base}.
              Applying replaces it with the draft.
            </Notice>
          ) : null}
          {changes.length === 0 ? <p>The draft is the same as the active policy.</p> : null}
          {changes.map((c) => (
            <div class="change">
              <h3>
                {c.device} <span class="muted">({c.change})</span>
              </h3>
              <pre class="diff">
                {c.lines.map((l) => (
                  <span class={l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : ''}>{l + '\n'}</span>
                ))}
              </pre>
            </div>
          ))}
          <div class="actions">
            <button disabled={!!busy || !canChange} onClick={dryRun}>
              {busy === 'dry-run' ? 'Testing against recorded traffic…' : 'Dry-run: test against the last 24 h of traffic'}
            </button>
            <button disabled={!!busy} onClick={() => { setDraft(null, 0); setDry(null); }}>
              Discard the draft
            </button>
          </div>
          <ErrorBox error={dryError} what="The dry-run failed" />
          {dry ? <DryRunResult result={dry} /> : null}
          <h3>Apply</h3>
          {!dry ? <p class="muted small">Run the dry-run first: applying is possible once you have seen its result.</p> : null}
          <label>
            Why (recorded in the audit log)
            <input name="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} maxLength={1000} />
          </label>
          <label>
            Safety timer{' '}
            <select name="trial" value={String(trialSeconds)} onChange={(e) => setTrialSeconds(Number(e.currentTarget.value))}>
              <option value="60">undo automatically unless kept within 1 minute</option>
              <option value="120">undo automatically unless kept within 2 minutes</option>
              <option value="600">undo automatically unless kept within 10 minutes</option>
              <option value="0">no safety timer (apply for good)</option>
            </select>
          </label>
          {askApply ? (
            <Confirm
              question={`Apply this policy to the appliance now? ${trialSeconds ? `It will be undone after ${formatDuration(trialSeconds)} unless you keep it.` : 'It takes effect immediately.'}`}
              yes="Yes, apply"
              busy={busy === 'apply'}
              onYes={apply}
              onNo={() => setAskApply(false)}
            />
          ) : (
            <button class="primary" disabled={!canChange || !dry || !!busy} onClick={() => setAskApply(true)} title={canChange ? '' : 'Your role cannot apply policy'}>
              Apply…
            </button>
          )}
          <ErrorBox error={applyError} what="Not applied" />
        </div>
      )}
      {!canChange ? <Notice kind="info">Your role ({session.role}) can review changes but not apply or roll back policy.</Notice> : null}

      <h2>History</h2>
      <Loading loaded={versions} what="the version history" />
      <ErrorBox error={historyError} />
      <table class="history">
        <thead>
          <tr>
            <th>Version</th>
            <th>When</th>
            <th>Who</th>
            <th>Why</th>
            <th>Status</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((v, i) => {
            const previous = list.slice(i + 1).find((p) => p.status === 'applied');
            return (
              <tr data-testid={`version-${v.version}`}>
                <td>
                  {v.version}
                  {versions.data?.active === v.version ? <span class="badge">active</span> : null}
                </td>
                <td>{formatTime(v.created_at)}</td>
                <td>
                  {v.author} <span class="muted small">{v.origin}</span>
                </td>
                <td>{v.comment}</td>
                <td>{v.status}</td>
                <td>
                  <button class="small" onClick={() => showDiff(v, previous)}>
                    Changes
                  </button>{' '}
                  {canChange && v.status === 'applied' && versions.data?.active !== v.version ? (
                    <button class="small" disabled={!!busy} onClick={() => setRollbackTo(v.version)}>
                      Roll back to this
                    </button>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rollbackTo !== null ? (
        <Confirm
          question={`Make version ${rollbackTo} active again (as a new version)?`}
          yes="Yes, roll back"
          busy={busy === 'rollback'}
          onYes={() => rollback(rollbackTo)}
          onNo={() => setRollbackTo(null)}
        />
      ) : null}
      {diffOf ? (
        <div class="change">
          <h3>Changes in version {diffOf.version}</h3>
          <pre class="diff" data-testid="history-diff">
            {diffOf.text}
          </pre>
        </div>
      ) : null}
    </section>
  );
}
