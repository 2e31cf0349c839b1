// Small shared pieces: loading a resource, showing errors, confirmation, formatting.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, type ApiError, type ApiResult } from './api';

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

// GETs path on mount and whenever reload() is called (or path changes).
export function useGet<T>(path: string | null): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: path !== null,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    api<T>('GET', path).then((r: ApiResult<T>) => {
      if (!live) return;
      if (r.ok) setState({ data: r.data, error: null, loading: false });
      else setState({ data: null, error: r.error, loading: false });
    });
    return () => {
      live = false;
    };
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function ErrorBox({ error, what }: { error: ApiError | null; what?: string }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {what ? <strong>{what}: </strong> : null}
      {error.message}
      {error.path ? <span class="error-path"> (at {error.path})</span> : null}
      {error.details && error.details.length > 1 ? (
        <ul>
          {error.details.map((d) => (
            <li>
              {d.path ? <code>{d.path}</code> : null} {d.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

// A server error shown under the form field it concerns (the API's `path`).
export function FieldError({ messages, testId }: { messages: string[] | undefined; testId: string }) {
  if (!messages || !messages.length) return null;
  return (
    <div class="field-error" role="alert" data-testid={testId}>
      {messages.join('; ')}
    </div>
  );
}

export function Notice({ kind, children }: { kind: 'ok' | 'warn' | 'info'; children: ComponentChildren }) {
  return (
    <div class={'notice notice-' + kind} role="status">
      {children}
    </div>
  );
}

export function Loading({ loaded, what }: { loaded: Loaded<unknown>; what: string }) {
  if (loaded.loading && !loaded.data) return <p class="muted">Loading {what}…</p>;
  return <ErrorBox error={loaded.error} what={`Could not load ${what}`} />;
}

// An in-page confirmation (no native dialog): the question and two buttons.
export function Confirm(props: {
  question: ComponentChildren;
  yes: string;
  onYes: () => void;
  onNo: () => void;
  busy?: boolean;
}) {
  return (
    <div class="confirm" role="dialog" aria-label="Confirm">
      <p>{props.question}</p>
      <button class="danger" disabled={props.busy} onClick={props.onYes}>
        {props.yes}
      </button>{' '}
      <button onClick={props.onNo} disabled={props.busy}>
        Cancel
      </button>
    </div>
  );
}

export function formatTime(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { hour12: false });
}

export function formatDuration(seconds: number): string {
  if (seconds <= 0) return 'expired';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s} s`;
  return `${s} s`;
}

// Re-renders every interval ms (countdowns).
export function useTick(intervalMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs]);
  return now;
}

export const protocolNames: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };
