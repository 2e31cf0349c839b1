// Vendor access: time-limited WireGuard sessions that let a device's vendor reach that
// device on given ports; create, see the time left, revoke.
import { useEffect, useState } from 'preact/hooks';
import { api, atLeast, notOffered, type ApiError, type Session } from '../api';
import type { ActivePolicy } from '../policy';
import { Confirm, ErrorBox, Loading, Notice, formatDuration, useGet, useTick } from '../ui';

interface VendorSession {
  id: number;
  public_key: string;
  device: string;
  device_ip: string;
  ports: number[];
  tunnel_address: string;
  created_by: string;
  seconds_left: number;
}

interface Created {
  id: number;
  tunnel_address: string;
  device_ip: string;
  ports: number[];
  appliance_public_key: string;
  // "host:port" the vendor dials, when the management settings name the host.
  appliance_endpoint?: string;
  seconds_left: number;
}

// The vendor's side of the tunnel, ready to paste: only the private key is theirs to fill in
// (it never leaves their laptop). Without a known endpoint, the line says what to ask for.
function vendorConfig(c: Created): string {
  return [
    '[Interface]',
    'PrivateKey = <your private key>',
    `Address = ${c.tunnel_address}/32`,
    '',
    '[Peer]',
    `PublicKey = ${c.appliance_public_key}`,
    c.appliance_endpoint ? `Endpoint = ${c.appliance_endpoint}` : "# Endpoint = <the appliance's public address>:<port>, from the hospital",
    `AllowedIPs = ${c.device_ip}/32`,
    'PersistentKeepalive = 25',
  ].join('\n');
}

export function NotOffered({ what }: { what: string }) {
  return (
    <Notice kind="warn">
      {what} is not available from this web console yet: the console server does not pass these requests on to the
      appliance. Use <code>cordonctl</code> on the appliance meanwhile.
    </Notice>
  );
}

export function VendorPage({ session }: { session: Session }) {
  const sessions = useGet<{ sessions: VendorSession[] }>('vendor-sessions');
  const active = useGet<ActivePolicy>('policy');
  const now = useTick(1000);
  const [loadedAt, setLoadedAt] = useState(Date.now());
  const [device, setDevice] = useState('');
  const [key, setKey] = useState('');
  const [ports, setPorts] = useState('');
  const [hours, setHours] = useState('2');
  const [error, setError] = useState<ApiError | null>(null);
  const [created, setCreated] = useState<Created | null>(null);
  const [revoke, setRevoke] = useState<VendorSession | null>(null);
  const [busy, setBusy] = useState(false);
  const canChange = atLeast(session.role, 'operator');

  useEffect(() => setLoadedAt(Date.now()), [sessions.data]);
  const devices = active.data?.policy?.devices ?? [];
  useEffect(() => {
    if (!device && devices.length) setDevice(devices[0].name);
  }, [devices.length]);

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setCreated(null);
    const portList = ports
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
    if (!portList.length || portList.some(isNaN)) {
      setError({ status: 0, code: 'invalid', message: 'Give one or more port numbers, separated by commas.', path: '/ports' });
      return;
    }
    setBusy(true);
    const r = await api<Created>('POST', 'vendor-sessions', {
      device,
      public_key: key.trim(),
      ports: portList,
      duration_seconds: Math.round(Number(hours) * 3600),
    });
    setBusy(false);
    if (r.ok) {
      setCreated(r.data);
      setKey('');
      sessions.reload();
    } else setError(r.error);
  };

  const doRevoke = async (s: VendorSession) => {
    setBusy(true);
    const r = await api('DELETE', `vendor-sessions/${s.id}`);
    setBusy(false);
    setRevoke(null);
    if (r.ok) sessions.reload();
    else setError(r.error);
  };

  if (sessions.error && notOffered(sessions.error))
    return (
      <section>
        <h1>Vendor access</h1>
        <NotOffered what="Vendor access" />
      </section>
    );

  const elapsed = Math.floor((now - loadedAt) / 1000);
  return (
    <section>
      <h1>Vendor access</h1>
      <p class="small">
        A vendor session lets a device maker's technician reach one device, on the ports you choose, through an encrypted
        tunnel, for a limited time. It ends by itself; you can end it earlier.
      </p>
      <Loading loaded={sessions} what="vendor sessions" />
      <h2>Open sessions</h2>
      {sessions.data && sessions.data.sessions.length === 0 ? <p class="muted">No vendor session is open.</p> : null}
      {sessions.data && sessions.data.sessions.length ? (
        <table>
          <thead>
            <tr>
              <th>Device</th>
              <th>Ports</th>
              <th>Vendor's tunnel address</th>
              <th>Opened by</th>
              <th>Time left</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {sessions.data.sessions.map((s) => (
              <tr data-testid={`vendor-session-${s.id}`}>
                <td>
                  {s.device} <span class="muted small">{s.device_ip}</span>
                </td>
                <td>{s.ports.join(', ')}</td>
                <td>{s.tunnel_address}</td>
                <td>{s.created_by}</td>
                <td>{formatDuration(s.seconds_left - elapsed)}</td>
                <td>
                  {canChange ? (
                    <button class="small danger" onClick={() => setRevoke(s)}>
                      End now
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {revoke ? (
        <Confirm
          question={`End the vendor session to ${revoke.device} now? The vendor is disconnected at once.`}
          yes="Yes, end it"
          busy={busy}
          onYes={() => doRevoke(revoke)}
          onNo={() => setRevoke(null)}
        />
      ) : null}
      {canChange ? (
        <form class="card" onSubmit={create} aria-label="New vendor session">
          <h2>New vendor session</h2>
          <label>
            Device
            <select name="device" value={device} onChange={(e) => setDevice(e.currentTarget.value)}>
              {devices.map((d) => (
                <option value={d.name}>{d.name}</option>
              ))}
            </select>
          </label>
          <label>
            Vendor's WireGuard public key (44 characters, from the vendor)
            <input name="public_key" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
          </label>
          <label>
            Ports on the device (e.g. 22, 443)
            <input name="ports" value={ports} onInput={(e) => setPorts(e.currentTarget.value)} required />
          </label>
          <label>
            For how long (hours)
            <input name="hours" type="number" min="0.25" max="72" step="0.25" value={hours} onInput={(e) => setHours(e.currentTarget.value)} required />
          </label>
          <button type="submit" class="primary" disabled={busy}>
            Open the session
          </button>
        </form>
      ) : (
        <Notice kind="info">Your role can see vendor sessions but not open or end them.</Notice>
      )}
      <ErrorBox error={error} what="Refused" />
      {created ? (
        <Notice kind="ok">
          Session {created.id} is open for {formatDuration(created.seconds_left)}. Give the vendor: tunnel address{' '}
          <code>{created.tunnel_address}</code>, the appliance's public key <code>{created.appliance_public_key}</code>, and
          the device at <code>{created.device_ip}</code> ports {created.ports.join(', ')}
          {created.appliance_endpoint ? (
            <>
              , and where to dial: <code>{created.appliance_endpoint}</code>
            </>
          ) : null}
          . As a WireGuard configuration (the vendor puts in their own private key):
          <pre data-testid="vendor-wireguard-config">{vendorConfig(created)}</pre>
        </Notice>
      ) : null}
    </section>
  );
}
