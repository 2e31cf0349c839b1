// Dataplane events (GET /api/v1/events) and the live feed: the WebSocket
// /api/v1/events/ws when the server offers it, else long polls of /api/v1/events.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api';

export interface CordonEvent {
  id: number;
  time: string;
  kind: string; // drop, would-drop, flow-observed
  reason: string;
  device: string;
  rule?: string;
  detail?: string;
  ingress?: string;
  dir?: string;
  protocol?: number;
  src_mac?: string;
  src?: string;
  dst?: string;
  src_port?: number;
  dst_port?: number;
  policy_version?: number;
}

export interface EventsAnswer {
  events: CordonEvent[];
  last_id: number;
}

export type FeedMode = 'connecting' | 'websocket' | 'polling' | 'error';

// Plain words for the dataplane's reasons; unknown ones are shown as they are.
const reasonWords: Record<string, string> = {
  'no-matching-rule': 'not allowed by any rule',
  'spoofed-source': 'sender pretended to be the device (spoofed address)',
  'spoofed-arp': 'spoofed ARP',
  'unknown-device': 'unknown device',
  'not-for-a-device': 'LAN traffic for no device behind the appliance',
  'app-not-allowed': 'application message not allowed',
  'app-malformed': 'malformed application message',
  'virtual-patch': 'blocked by a virtual patch',
  'icmp-type-not-allowed': 'ICMP type not allowed',
  'policy-revoked': 'connection ended by a policy change',
  'flow-blocked': 'connection blocked',
  'tcp-handshake-data': 'data hidden in a TCP handshake (refused on inspected connections)',
  'tcp-urgent-data': 'TCP urgent data on an inspected connection (an evasion)',
  'tcp-out-of-window': 'forged TCP reset or close outside the connection (the connection goes on)',
  'ip-source-route': 'source-routed packet (a way to receive a forged sender\'s replies)',
};
export function reasonText(reason: string): string {
  return reasonWords[reason] ?? reason;
}

export function kindText(kind: string): string {
  if (kind === 'drop') return 'blocked';
  if (kind === 'would-drop') return 'would be blocked';
  if (kind === 'flow-observed') return 'observed';
  return kind;
}

// Keeps the newest `keep` events, fed live. Every failure is visible in `error`.
export function useLiveEvents(keep = 500): {
  events: CordonEvent[];
  mode: FeedMode;
  error: string;
} {
  const [events, setEvents] = useState<CordonEvent[]>([]);
  const [mode, setMode] = useState<FeedMode>('connecting');
  const [error, setError] = useState('');
  const lastId = useRef(0);

  useEffect(() => {
    let stopped = false;
    let socket: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    // Leaving the page ends the long poll at once (it would hold a connection for 25 s).
    const abort = new AbortController();

    const add = (batch: CordonEvent[]) => {
      const fresh = batch.filter((e) => e.id > lastId.current);
      if (!fresh.length) return;
      lastId.current = Math.max(lastId.current, ...fresh.map((e) => e.id));
      setEvents((old) => [...fresh.reverse(), ...old].slice(0, keep));
    };

    const poll = async () => {
      while (!stopped) {
        const r = await api<EventsAnswer>('GET', `events?after=${lastId.current}&wait=25&limit=1000`, undefined, {
          signal: abort.signal,
        });
        if (stopped) return;
        if (r.ok) {
          setMode('polling');
          setError('');
          add(r.data.events);
          if (r.data.last_id > lastId.current && !r.data.events.length) lastId.current = r.data.last_id;
        } else {
          setMode('error');
          setError(`Live updates interrupted: ${r.error.message}. Retrying…`);
          await new Promise<void>((resolve) => {
            retry = setTimeout(resolve, 5000);
          });
        }
      }
    };

    const start = async () => {
      const first = await api<EventsAnswer>('GET', 'events?limit=' + keep);
      if (stopped) return;
      if (first.ok) {
        add(first.data.events);
        lastId.current = Math.max(lastId.current, first.data.last_id);
      } else {
        setError(`Could not load events: ${first.error.message}`);
      }
      let opened = false;
      try {
        socket = new WebSocket(`wss://${location.host}/api/v1/events/ws`);
      } catch {
        socket = null;
      }
      if (!socket) {
        poll();
        return;
      }
      socket.onopen = () => {
        opened = true;
        setMode('websocket');
        setError('');
      };
      socket.onmessage = (m) => {
        try {
          const e = JSON.parse(String(m.data)) as CordonEvent;
          if (typeof e.id === 'number') add([e]);
        } catch {
          setError('A live event could not be read (not JSON).');
        }
      };
      socket.onclose = () => {
        socket = null;
        if (stopped) return;
        // No WebSocket on this server (or it went away): long polling works everywhere.
        if (!opened) setMode('polling');
        poll();
      };
    };
    start();
    return () => {
      stopped = true;
      abort.abort();
      if (retry) clearTimeout(retry);
      if (socket) socket.close();
    };
  }, [keep]);

  return { events, mode, error };
}
