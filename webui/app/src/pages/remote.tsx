// Remote management: WireGuard peers (an administrator's or a NOC's laptop) whose tunnel
// address may reach this console's HTTPS through the tunnel, and nothing else. Everybody
// sees the list; administrators add and remove peers. Errors of the server's check are
// shown under the field they concern (the error's `path`); removing the peer the caller
// is connected through is refused by controld, and the page says so in plain words.
import { useState } from 'preact/hooks';
import { api, atLeast, notOffered, type ApiError, type Session } from '../api';
import { Confirm, ErrorBox, FieldError, Loading, Notice, formatTime, useGet } from '../ui';
import { NotOffered } from './vendor';

interface ManagementPeer {
  name: string;
  public_key: string;
  tunnel_address: string;
  // Set by controld when the peer is added; absent for peers added before it kept them.
  added_at?: string;
  added_by?: string;
  // From the WireGuard interface, when the peer has been seen.
  endpoint?: string;
  rx_bytes?: number;
  tx_bytes?: number;
  latest_handshake_unix?: number;
}

interface Peers {
  appliance_public_key: string;
  // The tunnel's network and the appliance's address in it, once WireGuard is up.
  tunnel_network?: string;
  appliance_tunnel_address?: string;
  // "host:port" that peers dial, when the management settings name the host.
  appliance_endpoint?: string;
  peers: ManagementPeer[];
}

// The management firewall's settings; only the ports matter here.
interface ManagementSettings {
  https_port: number;
  wireguard_port: number;
}

const peerFields = ['name', 'public_key', 'tunnel_address'] as const;
type PeerField = (typeof peerFields)[number];

// The field an error of POST management-peers is about ("/tunnel_address"), if any.
function fieldOf(error: ApiError): PeerField | null {
  const field = (error.path ?? '').replace(/^\//, '');
  return (peerFields as readonly string[]).includes(field) ? (field as PeerField) : null;
}

// What a refused removal means, in the words an administrator needs.
function removalRefusal(peer: ManagementPeer, error: ApiError): ApiError {
  if (error.status === 409)
    return {
      ...error,
      message:
        `You are connected to this console through ${peer.name}'s tunnel (${peer.tunnel_address}), so removing it ` +
        'would cut you off at once. Nothing was removed; remove it from the management network or through another peer.',
    };
  return error;
}

function formatBytes(n: number | undefined): string {
  if (n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function Added({ peer }: { peer: ManagementPeer }) {
  if (!peer.added_at) return <span class="muted small">not recorded (added by an earlier firmware)</span>;
  return (
    <span data-testid={`management-peer-added-${peer.name}`}>
      added {formatTime(peer.added_at)}
      {peer.added_by ? <> by {peer.added_by}</> : null}
    </span>
  );
}

function LastSeen({ peer }: { peer: ManagementPeer }) {
  if (!peer.latest_handshake_unix) return <span class="muted">not connected yet</span>;
  return (
    <>
      {formatTime(new Date(peer.latest_handshake_unix * 1000).toISOString())}
      {peer.endpoint ? <div class="muted small">from {peer.endpoint}</div> : null}
      <div class="muted small">
        received {formatBytes(peer.rx_bytes)}, sent {formatBytes(peer.tx_bytes)}
      </div>
    </>
  );
}

// What the peer's own WireGuard configuration needs from the appliance.
function ApplianceSide({ peers, settings }: { peers: Peers; settings: ManagementSettings | null }) {
  return (
    <div class="card" data-testid="appliance-wireguard">
      <h2>The appliance's side of the tunnel</h2>
      <dl class="identity">
        <dt>Appliance's public key</dt>
        <dd>
          <code class="secret" data-testid="appliance-public-key">
            {peers.appliance_public_key}
          </code>
        </dd>
        <dt>Endpoint</dt>
        <dd data-testid="appliance-endpoint">
          {peers.appliance_endpoint ? (
            <code>{peers.appliance_endpoint}</code>
          ) : settings ? (
            <>
              the appliance's address on the network the peer comes from, UDP port{' '}
              <code>{settings.wireguard_port}</code> (an administrator can name it under System, WireGuard endpoint)
            </>
          ) : (
            <span class="muted">the WireGuard port could not be read from the management settings</span>
          )}
        </dd>
        <dt>Tunnel network</dt>
        <dd data-testid="appliance-tunnel-network">
          {peers.tunnel_network ? (
            <>
              <code>{peers.tunnel_network}</code>
              {peers.appliance_tunnel_address ? (
                <>
                  ; the appliance is <code>{peers.appliance_tunnel_address}</code> in it
                </>
              ) : null}
            </>
          ) : (
            <span class="muted">not known: WireGuard is not up on this appliance</span>
          )}
        </dd>
        <dt>Through the tunnel</dt>
        <dd>
          only this console (HTTPS{settings ? <>, port <code>{settings.https_port}</code></> : null}); nothing else on the
          appliance or behind it
        </dd>
      </dl>
      <p class="small muted">
        The peer makes its own key pair (<code>wg genkey | wg pubkey</code>); its private key never leaves the peer. Give
        this appliance only the public key.
      </p>
    </div>
  );
}

export function RemoteManagementPage({ session }: { session: Session }) {
  const peers = useGet<Peers>('management-peers');
  const settings = useGet<ManagementSettings>('settings/management');
  const [name, setName] = useState('');
  const [key, setKey] = useState('');
  const [address, setAddress] = useState('');
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<PeerField, string[]>>>({});
  const [error, setError] = useState<ApiError | null>(null);
  const [added, setAdded] = useState<ManagementPeer | null>(null);
  const [remove, setRemove] = useState<ManagementPeer | null>(null);
  const [removed, setRemoved] = useState('');
  const [busy, setBusy] = useState(false);
  const canChange = atLeast(session.role, 'admin');

  const add = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setFieldErrors({});
    setAdded(null);
    setRemoved('');
    setBusy(true);
    const r = await api<ManagementPeer>('POST', 'management-peers', {
      name: name.trim(),
      public_key: key.trim(),
      tunnel_address: address.trim(),
    });
    setBusy(false);
    if (r.ok) {
      setAdded(r.data);
      setName('');
      setKey('');
      setAddress('');
      peers.reload();
      return;
    }
    const field = fieldOf(r.error);
    if (field) {
      setFieldErrors({ [field]: [r.error.message] });
      setError({ ...r.error, message: 'The peer was not added; see the marked field below. Nothing was changed.', path: undefined });
    } else setError(r.error);
  };

  const doRemove = async (p: ManagementPeer) => {
    setBusy(true);
    setError(null);
    setAdded(null);
    const r = await api('DELETE', `management-peers/${encodeURIComponent(p.name)}`);
    setBusy(false);
    setRemove(null);
    if (r.ok) setRemoved(p.name);
    else setError(removalRefusal(p, r.error));
    peers.reload();
  };

  if (peers.error && notOffered(peers.error))
    return (
      <section>
        <h1>Remote management</h1>
        <NotOffered what="Remote management" />
      </section>
    );
  // controld answers 404 (not_found) when it does not run the management firewall or
  // WireGuard: there is nothing to manage here then.
  if (peers.error && peers.error.status === 404)
    return (
      <section>
        <h1>Remote management</h1>
        <Notice kind="warn">Remote management through WireGuard is not set up on this appliance: {peers.error.message}.</Notice>
      </section>
    );

  const list = peers.data?.peers ?? [];
  return (
    <section>
      <h1>Remote management</h1>
      <p class="small">
        A remote-management peer is an administrator's computer (or a network operations centre's) that reaches this
        console through an encrypted WireGuard tunnel, from outside the management network. Through the tunnel it reaches
        the console and nothing else.
      </p>
      <Loading loaded={peers} what="management peers" />
      {peers.data ? <ApplianceSide peers={peers.data} settings={settings.data} /> : null}
      <h2>Peers</h2>
      {peers.data && list.length === 0 ? <p class="muted">No remote-management peer has been added.</p> : null}
      {list.length ? (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Public key</th>
              <th>Tunnel address</th>
              <th>Added</th>
              <th>Last handshake</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr data-testid={`management-peer-${p.name}`}>
                <td>{p.name}</td>
                <td>
                  <code class="wrap">{p.public_key}</code>
                </td>
                <td>{p.tunnel_address}</td>
                <td>
                  <Added peer={p} />
                </td>
                <td>
                  <LastSeen peer={p} />
                </td>
                <td>
                  {canChange ? (
                    <button class="small danger" onClick={() => setRemove(p)}>
                      Remove
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {remove ? (
        <Confirm
          question={`Remove the management peer ${remove.name} (${remove.tunnel_address})? Its tunnel and its access to this console end at once.`}
          yes="Yes, remove it"
          busy={busy}
          onYes={() => doRemove(remove)}
          onNo={() => setRemove(null)}
        />
      ) : null}
      <ErrorBox error={error} what="Refused" />
      {removed ? <Notice kind="ok">The management peer {removed} was removed; its tunnel has ended.</Notice> : null}
      {added ? (
        <Notice kind="ok">
          {added.name} was added. Configure it with its tunnel address <code>{added.tunnel_address}</code> and the
          appliance's public key and endpoint shown above.
        </Notice>
      ) : null}
      {canChange ? (
        <form class="card" onSubmit={add} aria-label="New management peer">
          <h2>Add a peer</h2>
          <label>
            Name (1 to 32 of letters, digits, . _ -)
            <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
          </label>
          <FieldError messages={fieldErrors.name} testId="error-name" />
          <label>
            The peer's WireGuard public key (44 characters, from <code>wg pubkey</code> on the peer)
            <input name="public_key" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
          </label>
          <FieldError messages={fieldErrors.public_key} testId="error-public_key" />
          <label>
            Its tunnel address (one IPv4 address of the appliance's tunnel network
            {peers.data?.tunnel_network ? <> {peers.data.tunnel_network}</> : null})
            <input name="tunnel_address" value={address} onInput={(e) => setAddress(e.currentTarget.value)} required />
          </label>
          <FieldError messages={fieldErrors.tunnel_address} testId="error-tunnel_address" />
          <button type="submit" class="primary" disabled={busy}>
            Add the peer
          </button>
        </form>
      ) : (
        <Notice kind="info">Only administrators can add or remove management peers; you can see them.</Notice>
      )}
    </section>
  );
}
