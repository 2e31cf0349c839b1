// System settings: management networks, syslog target, WireGuard public key, the
// console's certificate, two-factor login and the password of the logged-in user.
import { useEffect, useState } from 'preact/hooks';
import { api, atLeast, notOffered, type ApiError, type Session } from '../api';
import { ErrorBox, Loading, Notice, useGet } from '../ui';
import { TotpEnrol } from './login';

interface Management {
  admin_networks: string[];
  [k: string]: unknown;
}
interface Syslog {
  settings: { enabled: boolean; host: string; port: number; transport: string; format: string; ca_file: string; server_name: string };
  sent: number;
  dropped: number;
  last_error: string;
}

function Unavailable({ what }: { what: string }) {
  return <p class="muted">{what}: not available from this web console yet (the console server does not offer it).</p>;
}

// One part of the management settings, edited in a form of its own: the whole document is
// read, that part replaced and the whole document put back (the server checks it as one).
function useManagementPart() {
  const m = useGet<Management>('settings/management');
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState(false);
  const save = async (body: Management) => {
    setError(null);
    setSaved(false);
    const r = await api('PUT', 'settings/management', body);
    if (r.ok) {
      setSaved(true);
      m.reload();
    } else setError(r.error);
  };
  const outcome = (
    <>
      <ErrorBox error={error} what="Not saved" />
      {saved ? <Notice kind="ok">Saved.</Notice> : null}
    </>
  );
  return { m, save, outcome };
}

function AdminNetworks({ canEdit }: { canEdit: boolean }) {
  const { m, save, outcome } = useManagementPart();
  const [text, setText] = useState('');
  useEffect(() => {
    if (m.data) setText(m.data.admin_networks.join('\n'));
  }, [m.data]);
  const submit = (e: Event) => {
    e.preventDefault();
    void save({ ...m.data!, admin_networks: text.split(/[\s,]+/).filter(Boolean) });
  };
  return (
    <form onSubmit={submit} aria-label="Management networks">
      <h2>Management networks</h2>
      <p class="small">
        Only computers in these networks can reach this console and the appliance's management services. Take care not to
        lock yourself out.
      </p>
      <Loading loaded={m} what="the management settings" />
      {m.data ? (
        <>
          <label>
            Networks (one per line, e.g. 10.60.0.0/24)
            <textarea name="admin_networks" rows={3} value={text} disabled={!canEdit} onInput={(e) => setText(e.currentTarget.value)} />
          </label>
          {canEdit ? <button type="submit">Save networks</button> : null}
        </>
      ) : null}
      {outcome}
    </form>
  );
}

// Where vendors and management peers reach the appliance's WireGuard port from (the
// hospital's public name or NAT address): shown to them with the port. The firewall does not
// use it, so a change cannot lock anybody out.
function WireGuardEndpoint({ canEdit }: { canEdit: boolean }) {
  const { m, save, outcome } = useManagementPart();
  const [host, setHost] = useState('');
  useEffect(() => {
    if (m.data) setHost(typeof m.data.wireguard_endpoint_host === 'string' ? m.data.wireguard_endpoint_host : '');
  }, [m.data]);
  const submit = (e: Event) => {
    e.preventDefault();
    const { wireguard_endpoint_host: _old, ...rest } = m.data!;
    void save(host.trim() ? { ...rest, wireguard_endpoint_host: host.trim() } : rest);
  };
  if (m.data && !m.data.wireguard_interface) return null; // no tunnel on this appliance
  return (
    <form onSubmit={submit} aria-label="WireGuard endpoint">
      <h2>WireGuard endpoint</h2>
      <p class="small">
        The name or address vendors and remote-management peers reach this appliance at (for example the hospital's
        public name), without the port: the port is UDP {m.data ? <code>{String(m.data.wireguard_port)}</code> : null}.
        They are shown it with the rest of their tunnel's configuration.
      </p>
      <Loading loaded={m} what="the management settings" />
      {m.data ? (
        <>
          <label>
            Name or address
            <input name="wireguard_endpoint_host" value={host} disabled={!canEdit} onInput={(e) => setHost(e.currentTarget.value)} />
          </label>
          {canEdit ? <button type="submit">Save endpoint</button> : null}
        </>
      ) : null}
      {outcome}
    </form>
  );
}

function SyslogTarget({ canEdit }: { canEdit: boolean }) {
  const s = useGet<Syslog>('settings/syslog');
  const [form, setForm] = useState<Syslog['settings'] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (s.data) setForm({ ...s.data.settings });
  }, [s.data]);
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const r = await api('PUT', 'settings/syslog', { ...form, port: Number(form!.port) });
    if (r.ok) {
      setSaved(true);
      s.reload();
    } else setError(r.error);
  };
  const set = (k: keyof Syslog['settings'], v: unknown) => setForm({ ...form!, [k]: v });
  return (
    <form onSubmit={save} aria-label="Syslog">
      <h2>Sending events to a log server (syslog)</h2>
      <Loading loaded={s} what="the syslog settings" />
      {form && s.data ? (
        <>
          <label class="inline">
            <input type="checkbox" name="syslog_enabled" checked={form.enabled} disabled={!canEdit} onChange={(e) => set('enabled', e.currentTarget.checked)} /> Send
            events to a log server
          </label>
          <label>
            Log server (name or address)
            <input name="syslog_host" value={form.host} disabled={!canEdit} onInput={(e) => set('host', e.currentTarget.value)} />
          </label>
          <label>
            Port
            <input name="syslog_port" type="number" value={String(form.port)} disabled={!canEdit} onInput={(e) => set('port', e.currentTarget.value)} />
          </label>
          <label>
            Transport
            <select name="syslog_transport" value={form.transport} disabled={!canEdit} onChange={(e) => set('transport', e.currentTarget.value)}>
              <option value="udp">UDP</option>
              <option value="tcp">TCP</option>
              <option value="tls">TLS (encrypted)</option>
            </select>
          </label>
          <p class="small muted">
            Sent {s.data.sent}, dropped {s.data.dropped}
            {s.data.last_error ? `; last problem: ${s.data.last_error}` : ''}
          </p>
          {canEdit ? <button type="submit">Save log server</button> : null}
        </>
      ) : null}
      <ErrorBox error={error} what="Not saved" />
      {saved ? <Notice kind="ok">Saved.</Notice> : null}
    </form>
  );
}

function WireGuardKey() {
  const wg = useGet<{ public_key: string }>('wireguard');
  return (
    <div>
      <h2>WireGuard public key (for vendor access)</h2>
      {wg.error && notOffered(wg.error) ? <Unavailable what="The WireGuard key" /> : <Loading loaded={wg} what="the WireGuard key" />}
      {wg.data ? (
        <p>
          <code class="secret" data-testid="wireguard-key">
            {wg.data.public_key}
          </code>
        </p>
      ) : null}
    </div>
  );
}

function Certificate({ canEdit }: { canEdit: boolean }) {
  const cert = useGet<Record<string, unknown>>('system/certificate');
  const [certText, setCertText] = useState('');
  const [keyText, setKeyText] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState(false);
  const readFile = (f: File | undefined, into: (s: string) => void) => {
    if (f) f.text().then(into);
  };
  const send = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const r = await api('POST', 'system/certificate', { certificate_pem: certText, private_key_pem: keyText });
    if (r.ok) {
      setSaved(true);
      cert.reload();
    } else setError(r.error);
  };
  return (
    <form onSubmit={send} aria-label="Certificate">
      <h2>Console certificate</h2>
      {cert.error && notOffered(cert.error) ? (
        <Unavailable what="Certificate upload" />
      ) : (
        <>
          <Loading loaded={cert} what="the certificate" />
          {cert.data ? (
            <dl class="identity">
              {Object.entries(cert.data).map(([k, v]) => (
                <>
                  <dt>{k}</dt>
                  <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
                </>
              ))}
            </dl>
          ) : null}
          {canEdit && cert.data ? (
            <>
              <label>
                Certificate (PEM file, with its chain)
                <input type="file" name="cert_file" accept=".pem,.crt" onChange={(e) => readFile(e.currentTarget.files?.[0], setCertText)} />
              </label>
              <label>
                Private key (PEM file)
                <input type="file" name="key_file" accept=".pem,.key" onChange={(e) => readFile(e.currentTarget.files?.[0], setKeyText)} />
              </label>
              <button type="submit" disabled={!certText || !keyText}>
                Replace the certificate
              </button>
            </>
          ) : null}
          <ErrorBox error={error} what="Refused" />
          {saved ? <Notice kind="ok">The certificate was replaced. Reload the page to use it.</Notice> : null}
        </>
      )}
    </form>
  );
}

function Password() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState(false);
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const r = await api('POST', 'session/password', { current_password: current, new_password: next });
    if (r.ok) {
      setSaved(true);
      setCurrent('');
      setNext('');
    } else setError(r.error);
  };
  return (
    <form onSubmit={save} aria-label="Change password">
      <h2>Your password</h2>
      <label>
        Current password
        <input type="password" name="current_password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} required autoComplete="current-password" />
      </label>
      <label>
        New password (at least 12 characters)
        <input type="password" name="new_password" value={next} onInput={(e) => setNext(e.currentTarget.value)} required autoComplete="new-password" />
      </label>
      <button type="submit">Change password</button>
      <ErrorBox error={error} what="Not changed" />
      {saved ? <Notice kind="ok">Password changed. Your other sessions were logged out.</Notice> : null}
    </form>
  );
}

export function SystemPage({ session }: { session: Session }) {
  const isAdmin = atLeast(session.role, 'admin');
  const [, setRefresh] = useState(0);
  return (
    <section class="settings">
      <h1>System settings</h1>
      {!isAdmin ? <Notice kind="info">Only administrators can change system settings; you can view them.</Notice> : null}
      <AdminNetworks canEdit={isAdmin} />
      <WireGuardEndpoint canEdit={isAdmin} />
      <SyslogTarget canEdit={isAdmin} />
      <WireGuardKey />
      <Certificate canEdit={isAdmin} />
      <div>
        <h2>Two-factor login</h2>
        {session.totp_enabled === undefined ? (
          <Unavailable what="Two-factor login" />
        ) : session.totp_enabled ? (
          <Notice kind="ok">Two-factor login is on for your account.</Notice>
        ) : (
          <TotpEnrol onDone={() => setRefresh((n) => n + 1)} />
        )}
      </div>
      <Password />
    </section>
  );
}
