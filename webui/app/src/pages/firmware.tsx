// Firmware: the two system slots and their versions, uploading a signed update bundle
// (with progress), and the result of the last update (docs/update-flow.md).
import { useEffect, useState } from 'preact/hooks';
import { api, atLeast, notOffered, upload, type ApiError, type Session } from '../api';
import { ErrorBox, Loading, Notice, formatTime, useGet } from '../ui';

interface Slot {
  name: string;
  bootname: string;
  state: string;
  boot_status: string;
  bundle_version: string;
  installed_at: string;
}
interface UpdateState {
  state: string;
  progress: { percent: number; message: string };
  booted_version: string;
  max_bundle_bytes: number;
  booted_slot?: string;
  primary_slot?: string;
  slots?: Slot[];
  backend_error?: string;
  pending: { version?: string } | null;
  last_result: { outcome: string; version: string; reason: string; at: string } | null;
}

const stateWords: Record<string, string> = {
  idle: 'idle',
  installing: 'installing the update',
  'awaiting-reboot': 'installed; restarting soon to try it',
  'self-test': 'checking the new firmware',
  rebooting: 'restarting',
};
const outcomeWords: Record<string, string> = {
  committed: 'installed and in use',
  rejected: 'refused',
  rolled_back: 'tried, failed its checks, and the previous firmware was restored',
  interrupted: 'interrupted',
};

// RAUC names a slot both ways: controld's booted_slot is the boot name ("A"), its
// primary_slot the slot name ("rootfs.0").
function isSlot(sl: Slot, which?: string): boolean {
  return !!which && (sl.bootname === which || sl.name === which);
}

// RAUC's reasons are technical; the usual ones get a plain sentence first.
function plainReason(reason: string): string {
  if (/signature verification failed|invalid signature|no signature/i.test(reason))
    return `the bundle was altered or is not signed by the manufacturer (${reason})`;
  if (/compatible/i.test(reason)) return `the bundle is for other hardware (${reason})`;
  return reason;
}

function megabytes(n: number): string {
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

// The upload's refusals from the console server itself, in plain words.
function plainUploadError(e: ApiError, maxBundle?: number): ApiError {
  if (e.status === 413)
    return { ...e, message: `The file is too large to be an update bundle${maxBundle ? ` (at most ${megabytes(maxBundle)})` : ''}. Check that you chose the right file.` };
  if (e.status === 401) return { ...e, message: 'Your session has ended. Log in again, then upload the bundle again.' };
  if (e.status === 403 && /role/.test(e.message)) return { ...e, message: 'Only administrators can install firmware.' };
  if (e.status === 0) return { ...e, message: 'The upload did not complete: the connection to the appliance was lost. Try again.' };
  return e;
}

export function FirmwarePage({ session }: { session: Session }) {
  const status = useGet<UpdateState>('update');
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [started, setStarted] = useState(false);
  const [uploaded, setUploaded] = useState<string | null>(null);
  const canUpdate = atLeast(session.role, 'admin');

  // While an install runs, follow it.
  const busy = status.data && status.data.state !== 'idle';
  useEffect(() => {
    if (!busy && !started) return;
    const t = setInterval(status.reload, 2000);
    return () => clearInterval(t);
  }, [busy, started]);
  useEffect(() => {
    if (started && status.data?.state === 'idle') setStarted(false);
  }, [status.data]);

  const send = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setError(null);
    setUploaded(null);
    setProgress(0);
    const r = await upload<UpdateState>('update', file, setProgress);
    setProgress(null);
    if (r.ok) {
      setStarted(true);
      setUploaded(`${file.name} (${megabytes(file.size)}) was uploaded. The appliance now checks its signature and installs it; the result appears under "Last update".`);
      status.reload();
    } else setError(plainUploadError(r.error, status.data?.max_bundle_bytes));
  };
  const markGood = async () => {
    const r = await api('POST', 'update/mark-good', {});
    if (r.ok) status.reload();
    else setError(r.error);
  };

  if (status.error && notOffered(status.error))
    return (
      <section>
        <h1>Firmware</h1>
        <Notice kind="info">
          Firmware updates are not enabled on this appliance: its control service runs without the update service. Ask the administrator of the appliance.
        </Notice>
      </section>
    );
  const s = status.data;
  return (
    <section>
      <h1>Firmware</h1>
      <Loading loaded={status} what="the firmware state" />
      {s ? (
        <>
          <p>
            Running firmware <strong data-testid="booted-version">{s.booted_version || 'unknown'}</strong>
            {s.booted_slot ? ` from slot ${s.booted_slot}` : ''}. Update state: <strong>{stateWords[s.state] ?? s.state}</strong>
            {s.state !== 'idle' ? ` (${s.progress.percent}% ${s.progress.message})` : ''}
          </p>
          {s.backend_error ? <div class="error">The slots cannot be read: {s.backend_error}</div> : null}
          {s.slots ? (
            <table>
              <thead>
                <tr>
                  <th>Slot</th>
                  <th>Firmware version</th>
                  <th>State</th>
                  <th>Boot status</th>
                  <th>Installed</th>
                </tr>
              </thead>
              <tbody>
                {s.slots.map((sl) => (
                  <tr>
                    <td>
                      {sl.bootname || sl.name}
                      {isSlot(sl, s.booted_slot) ? <span class="badge">running</span> : null}
                      {isSlot(sl, s.primary_slot) ? <span class="badge">next boot</span> : null}
                    </td>
                    <td>{sl.bundle_version}</td>
                    <td>{sl.state}</td>
                    <td>{sl.boot_status}</td>
                    <td>{formatTime(sl.installed_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          <h2>Last update</h2>
          {s.last_result ? (
            <div data-testid="last-result" class={s.last_result.outcome === 'committed' ? 'notice notice-ok' : 'error'}>
              Version {s.last_result.version || '(unknown)'}: {outcomeWords[s.last_result.outcome] ?? s.last_result.outcome}
              {s.last_result.reason ? ` — ${plainReason(s.last_result.reason)}` : ''} <span class="muted small">{formatTime(s.last_result.at)}</span>
            </div>
          ) : (
            <p class="muted">No update yet.</p>
          )}
          {canUpdate && s.state === 'self-test' ? <button onClick={markGood}>The new firmware works: keep it</button> : null}
        </>
      ) : null}
      {canUpdate ? (
        <form class="card" onSubmit={send} aria-label="Upload firmware">
          <h2>Install an update</h2>
          <p class="small">Choose the signed update bundle from the manufacturer (.raucb). Bundles that are not signed by the manufacturer, altered, or older than the running firmware are refused.</p>
          <input type="file" name="bundle" accept=".raucb" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
          <button type="submit" class="primary" disabled={!file || progress !== null || !!busy}>
            Upload and install
          </button>
          {progress !== null ? (
            <div data-testid="upload-progress">
              Uploading… <progress max={1} value={progress} /> {Math.round(progress * 100)}%
            </div>
          ) : null}
          {uploaded ? <div data-testid="upload-done" class="notice notice-ok">{uploaded}</div> : null}
        </form>
      ) : (
        <Notice kind="info">Only administrators can install firmware.</Notice>
      )}
      <ErrorBox error={error} what="The update was refused" />
    </section>
  );
}
