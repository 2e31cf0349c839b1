// Overview: health, the protected devices with mode and counters, blocked and
// would-block events over the last hour (a small SVG chart), recent alerts.
import { useEffect } from 'preact/hooks';
import { kindText, reasonText, useLiveEvents, type CordonEvent } from '../events';
import type { ActivePolicy } from '../policy';
import { Loading, formatTime, useGet } from '../ui';

interface Health {
  controld: string;
  active_version: number;
  dataplane: string;
  dataplane_version?: number;
}

interface DeviceStats {
  forwarded_packets: number;
  dropped: Record<string, number>;
  would_drop: Record<string, number>;
}
interface Stats {
  devices: Record<string, DeviceStats>;
  version: number;
  packets: number;
  forwarded: number;
}

const sum = (o: Record<string, number> | undefined) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

const modeWords: Record<string, string> = {
  enforce: 'Protected (blocking)',
  monitor: 'Monitoring only (not blocking)',
  learn: 'Learning (not blocking)',
};

// Events per minute over the last `minutes`, blocked and would-block separately.
export function EventChart({ events, minutes = 60 }: { events: CordonEvent[]; minutes?: number }) {
  const now = Date.now();
  const start = now - minutes * 60_000;
  const blocked = new Array<number>(minutes).fill(0);
  const would = new Array<number>(minutes).fill(0);
  for (const e of events) {
    const t = Date.parse(e.time);
    if (isNaN(t) || t < start) continue;
    const i = Math.min(minutes - 1, Math.floor((t - start) / 60_000));
    if (e.kind === 'drop') blocked[i]++;
    else if (e.kind === 'would-drop') would[i]++;
  }
  const W = 600, H = 140, pad = 28;
  const max = Math.max(1, ...blocked, ...would);
  const x = (i: number) => pad + (i * (W - pad - 6)) / (minutes - 1);
  const y = (v: number) => H - pad + 4 - (v * (H - pad - 8)) / max;
  const line = (vals: number[]) => vals.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Blocked and would-be-blocked connections per minute, last ${minutes} minutes`}>
        <line class="axis" x1={pad} y1={H - pad + 4} x2={W - 6} y2={H - pad + 4} />
        <line class="axis" x1={pad} y1={4} x2={pad} y2={H - pad + 4} />
        <text class="tick" x={pad - 4} y={12} text-anchor="end">
          {max}
        </text>
        <text class="tick" x={pad - 4} y={H - pad + 4} text-anchor="end">
          0
        </text>
        <text class="tick" x={pad} y={H - 6}>
          {minutes} min ago
        </text>
        <text class="tick" x={W - 6} y={H - 6} text-anchor="end">
          now
        </text>
        <path class="series-blocked" d={line(blocked)} />
        <path class="series-would" d={line(would)} />
      </svg>
      <figcaption>
        <span class="key key-blocked" /> blocked ({blocked.reduce((a, b) => a + b, 0)}) <span class="key key-would" /> would
        be blocked in monitor/learn mode ({would.reduce((a, b) => a + b, 0)}) — per minute, last {minutes} minutes
      </figcaption>
    </figure>
  );
}

export function OverviewPage() {
  const health = useGet<Health>('health');
  const policy = useGet<ActivePolicy>('policy');
  const stats = useGet<Stats>('dataplane/stats');
  const live = useLiveEvents(1000);
  useEffect(() => {
    const t = setInterval(() => {
      health.reload();
      stats.reload();
    }, 10_000);
    return () => clearInterval(t);
  }, []);

  const alerts = live.events.filter((e) => e.kind !== 'flow-observed').slice(0, 8);
  const h = health.data;
  return (
    <section>
      <h1>Overview</h1>
      <Loading loaded={health} what="the appliance's health" />
      {h ? (
        <div class="tiles">
          <div class={'tile ' + (h.controld === 'ok' ? 'good' : 'bad')}>
            Control service: <strong>{h.controld === 'ok' ? 'running' : h.controld}</strong>
          </div>
          <div class={'tile ' + (h.dataplane === 'ok' ? 'good' : 'bad')} data-testid="dataplane-health">
            Traffic filter: <strong>{h.dataplane === 'ok' ? 'running' : 'NOT REACHABLE'}</strong>
          </div>
          <div class={'tile ' + (h.dataplane_version === h.active_version ? 'good' : 'bad')}>
            Policy version <strong data-testid="active-version">{h.active_version}</strong>
            {h.dataplane_version !== undefined && h.dataplane_version !== h.active_version
              ? ` (filter enforces ${h.dataplane_version})`
              : ' enforced'}
          </div>
        </div>
      ) : null}

      <h2>Devices</h2>
      <Loading loaded={policy} what="the devices" />
      <Loading loaded={stats} what="traffic counters" />
      {policy.data && !policy.data.policy ? <p>No policy has been applied yet: no device is protected.</p> : null}
      {policy.data?.policy ? (
        <table class="devices">
          <thead>
            <tr>
              <th>Device</th>
              <th>Address</th>
              <th>Mode</th>
              <th>Passed</th>
              <th>Blocked</th>
              <th>Would be blocked</th>
            </tr>
          </thead>
          <tbody>
            {policy.data.policy.devices.map((d) => {
              const s = stats.data?.devices?.[d.name];
              return (
                <tr>
                  <td>
                    <a href={'#/device/' + encodeURIComponent(d.name)}>{d.name}</a>
                  </td>
                  <td>{d.ip.join(', ')}</td>
                  <td>
                    <span class={'mode mode-' + d.mode}>{modeWords[d.mode] ?? d.mode}</span>
                  </td>
                  <td>{s ? s.forwarded_packets : '–'}</td>
                  <td>{s ? sum(s.dropped) : '–'}</td>
                  <td>{s ? sum(s.would_drop) : '–'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}

      <h2>Blocked connections over time</h2>
      <EventChart events={live.events} />
      {live.error ? <div class="error">{live.error}</div> : null}

      <h2>Recent alerts</h2>
      {alerts.length === 0 ? <p class="muted">Nothing blocked recently.</p> : null}
      <ul class="alerts">
        {alerts.map((e) => (
          <li>
            <span class="muted">{formatTime(e.time)}</span> <strong>{e.device || 'unknown device'}</strong>: {kindText(e.kind)}{' '}
            {e.src}
            {e.src_port ? ':' + e.src_port : ''} → {e.dst}
            {e.dst_port ? ':' + e.dst_port : ''} — {reasonText(e.reason)}
          </li>
        ))}
      </ul>
      <p>
        <a href="#/events">All live events</a>
      </p>
    </section>
  );
}
