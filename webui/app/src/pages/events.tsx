// Live events: what the traffic filter blocked (or would block), as it happens.
import { useState } from 'preact/hooks';
import { kindText, reasonText, useLiveEvents } from '../events';
import { formatTime, protocolNames } from '../ui';

export function EventsPage() {
  const live = useLiveEvents(1000);
  const [device, setDevice] = useState('');
  const [kind, setKind] = useState('');
  const [text, setText] = useState('');

  const devices = Array.from(new Set(live.events.map((e) => e.device).filter(Boolean))).sort();
  const needle = text.trim().toLowerCase();
  const shown = live.events.filter(
    (e) =>
      (!device || e.device === device) &&
      (!kind || e.kind === kind) &&
      (!needle ||
        [e.src, e.dst, String(e.src_port ?? ''), String(e.dst_port ?? ''), e.reason, e.rule, e.detail]
          .join(' ')
          .toLowerCase()
          .includes(needle)),
  );

  return (
    <section>
      <h1>Live events</h1>
      <p class="small" data-testid="feed-mode">
        {live.mode === 'websocket'
          ? 'Live: new events appear as they happen.'
          : live.mode === 'polling'
            ? 'Live: new events appear within seconds.'
            : live.mode === 'connecting'
              ? 'Connecting…'
              : 'Not live.'}
      </p>
      {live.error ? (
        <div class="error" role="alert">
          {live.error}
        </div>
      ) : null}
      <div class="filters">
        <label>
          Device{' '}
          <select name="device" value={device} onChange={(e) => setDevice(e.currentTarget.value)}>
            <option value="">all</option>
            {devices.map((d) => (
              <option value={d}>{d}</option>
            ))}
          </select>
        </label>
        <label>
          What{' '}
          <select name="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="">all</option>
            <option value="drop">blocked</option>
            <option value="would-drop">would be blocked</option>
            <option value="flow-observed">observed</option>
          </select>
        </label>
        <label>
          Search{' '}
          <input name="search" placeholder="address, port, reason" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <span class="muted small">
          {shown.length} of {live.events.length} shown
        </span>
      </div>
      <table class="events">
        <thead>
          <tr>
            <th>Time</th>
            <th>Device</th>
            <th>What</th>
            <th>From</th>
            <th>To</th>
            <th>Protocol</th>
            <th>Why</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((e) => (
            <tr class={'kind-' + e.kind} data-testid="event-row">
              <td>{formatTime(e.time)}</td>
              <td>{e.device || '—'}</td>
              <td>{kindText(e.kind)}</td>
              <td>
                {e.src}
                {e.src_port ? ':' + e.src_port : ''}
              </td>
              <td>
                {e.dst}
                {e.dst_port ? ':' + e.dst_port : ''}
              </td>
              <td>{e.protocol !== undefined ? protocolNames[e.protocol] ?? e.protocol : ''}</td>
              <td>
                {reasonText(e.reason)}
                {e.rule ? ` (rule ${e.rule})` : ''}
                {e.detail ? ` — ${e.detail}` : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {live.events.length === 0 && live.mode !== 'connecting' ? <p class="muted">No events yet.</p> : null}
    </section>
  );
}
