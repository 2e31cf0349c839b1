// Audit log: every change on the appliance (controld's hash-chained log, with its
// verification) and the console's own log of logins.
import { useState } from 'preact/hooks';
import { Loading, formatTime, useGet } from '../ui';

interface Entry {
  seq: number;
  at: string;
  actor: string;
  origin: string;
  action: string;
  target: string;
  outcome: string;
  detail: string;
}
interface Verify {
  intact: boolean;
  entries: number;
  first_bad_seq?: number;
  problem?: string;
}
interface LoginEntry {
  [k: string]: unknown;
}

export function AuditPage() {
  const verify = useGet<Verify>('audit/verify');
  const [after, setAfter] = useState(0);
  const log = useGet<{ entries: Entry[] }>(`audit?after=${after}&limit=200`);
  const logins = useGet<{ entries: LoginEntry[] }>('login-audit');
  const [tab, setTab] = useState<'changes' | 'logins'>('changes');
  const v = verify.data;
  const entries = log.data?.entries ?? [];
  const loginEntries = logins.data?.entries ?? [];
  const loginKeys = loginEntries.length ? Object.keys(loginEntries[0]) : [];

  return (
    <section>
      <h1>Audit log</h1>
      <Loading loaded={verify} what="the audit log check" />
      {v ? (
        v.intact ? (
          <div class="notice notice-ok" data-testid="audit-verify">
            Verified: all {v.entries} entries are intact (the hash chain is unbroken).
          </div>
        ) : (
          <div class="error" role="alert" data-testid="audit-verify">
            The audit log has been tampered with or damaged{v.first_bad_seq ? ` from entry ${v.first_bad_seq}` : ''}:{' '}
            {v.problem}
          </div>
        )
      ) : null}
      <div class="tabs">
        <button class={tab === 'changes' ? 'active' : ''} onClick={() => setTab('changes')}>
          Changes
        </button>
        <button class={tab === 'logins' ? 'active' : ''} onClick={() => setTab('logins')}>
          Console logins
        </button>
      </div>
      {tab === 'changes' ? (
        <>
          <Loading loaded={log} what="the audit log" />
          <table class="audit">
            <thead>
              <tr>
                <th>#</th>
                <th>When</th>
                <th>Who</th>
                <th>From</th>
                <th>What</th>
                <th>On</th>
                <th>Result</th>
                <th>Detail</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr>
                  <td>{e.seq}</td>
                  <td>{formatTime(e.at)}</td>
                  <td>{e.actor}</td>
                  <td>{e.origin}</td>
                  <td>{e.action}</td>
                  <td>{e.target}</td>
                  <td class={e.outcome === 'ok' ? '' : 'bad-text'}>{e.outcome}</td>
                  <td class="wrap">{e.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="actions">
            <button disabled={after === 0} onClick={() => setAfter(Math.max(0, after - 200))}>
              Earlier
            </button>
            <button disabled={entries.length < 200} onClick={() => setAfter(after + 200)}>
              Later
            </button>
          </div>
        </>
      ) : (
        <>
          <Loading loaded={logins} what="the login log" />
          <table>
            <thead>
              <tr>
                {loginKeys.map((k) => (
                  <th>{k}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {loginEntries.map((e) => (
                <tr>
                  {loginKeys.map((k) => (
                    <td>{String(e[k] ?? '')}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
