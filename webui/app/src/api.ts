// The browser side of webd's /api/v1 (docs/webui.md). Every call answers an ApiResult:
// either the JSON body or the server's error {code, message, path?, details?}, so a page
// can always say what went wrong (and where, for policy errors) instead of failing
// silently. State-changing calls carry the session's CSRF token; the browser adds Origin.

export interface ApiErrorDetail {
  code: string;
  message: string;
  path?: string;
}

export interface ApiError extends ApiErrorDetail {
  status: number;
  details?: ApiErrorDetail[];
}

export type ApiResult<T> = { ok: true; status: number; data: T } | { ok: false; error: ApiError };

let csrfToken = '';

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

// Called when the server says the session is gone (401): the app shows the login page.
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

function errorOf(status: number, body: unknown, fallback: string): ApiError {
  const e = (body as { error?: Partial<ApiError> } | null)?.error;
  if (e && typeof e.message === 'string') {
    return {
      status,
      code: e.code ?? 'error',
      message: e.message,
      path: e.path,
      details: Array.isArray(e.details) ? e.details : undefined,
    };
  }
  return { status, code: 'error', message: fallback };
}

function describeStatus(status: number): string {
  if (status === 0) return 'the appliance did not answer (network problem?)';
  if (status === 401) return 'you are not logged in, or your session has ended';
  if (status === 403) return 'your account is not allowed to do this';
  if (status === 404) return 'the server does not offer this';
  if (status === 503) return 'the appliance service behind the console is not reachable';
  return `the server answered with status ${status}`;
}

export async function api<T = unknown>(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
  options: { raw?: Blob | ArrayBuffer; quiet401?: boolean; signal?: AbortSignal } = {},
): Promise<ApiResult<T>> {
  const headers: Record<string, string> = {};
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  let payload: BodyInit | undefined;
  if (options.raw !== undefined) {
    headers['Content-Type'] = 'application/octet-stream';
    payload = options.raw;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch('/api/v1/' + path, {
      method,
      headers,
      body: payload,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: options.signal,
    });
  } catch (e) {
    return { ok: false, error: { status: 0, code: 'network', message: describeStatus(0) } };
  }
  let data: unknown = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401 && !options.quiet401 && onUnauthorized) onUnauthorized();
    return { ok: false, error: errorOf(res.status, data, describeStatus(res.status)) };
  }
  return { ok: true, status: res.status, data: data as T };
}

// Upload with progress (fetch cannot report upload progress; XMLHttpRequest can).
export function upload<T = unknown>(
  path: string,
  file: Blob,
  onProgress: (fraction: number) => void,
): Promise<ApiResult<T>> {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/' + path);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('X-CSRF-Token', csrfToken);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () =>
      resolve({ ok: false, error: { status: 0, code: 'network', message: describeStatus(0) } });
    xhr.onload = () => {
      let data: unknown = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve({ ok: true, status: xhr.status, data: data as T });
      else resolve({ ok: false, error: errorOf(xhr.status, data, describeStatus(xhr.status)) });
    };
    xhr.send(file);
  });
}

// True when webd itself does not route this endpoint (as opposed to controld saying
// that a feature is not configured): the page then says the console cannot do it yet.
export function notOffered(e: ApiError): boolean {
  return e.status === 404 && /no such endpoint/.test(e.message);
}

export type Role = 'auditor' | 'operator' | 'admin';
const roleRank: Record<Role, number> = { auditor: 0, operator: 1, admin: 2 };
export function atLeast(role: Role, needed: Role): boolean {
  return roleRank[role] >= roleRank[needed];
}

export interface Session {
  user: string;
  role: Role;
  csrf_token: string;
  totp_enabled?: boolean;
  totp_enrollment_required?: boolean;
}
