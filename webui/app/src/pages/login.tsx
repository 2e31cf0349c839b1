// Login (with the one-time code when the server asks for it), first-run setup, and
// the authenticator-app (TOTP) enrolment used here and on the System page.
import { useState } from 'preact/hooks';
import { api, type ApiError, type Session } from '../api';
import { ErrorBox, Notice } from '../ui';

export function LoginPage({ onLogin, notice }: { onLogin: () => void; notice: string }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, string> = { user, password };
    if (needTotp) body.totp = totp;
    const r = await api('POST', 'login', body, { quiet401: true });
    setBusy(false);
    if (r.ok) {
      onLogin();
      return;
    }
    if (r.error.code === 'totp_required' || r.error.code === 'totp_invalid') {
      setNeedTotp(true);
      setError(
        r.error.code === 'totp_required'
          ? null
          : { ...r.error, message: 'That code was not accepted. Enter the current code from your authenticator app.' },
      );
      return;
    }
    if (r.error.status === 401)
      setError({ ...r.error, message: 'Wrong user name or password.' });
    else if (r.error.status === 429)
      setError({ ...r.error, message: 'Too many failed attempts: login is locked for a while. ' + r.error.message });
    else setError(r.error);
  };

  return (
    <div class="center">
      <form class="card login" onSubmit={submit} aria-label="Log in">
        <h1>Cordon console</h1>
        {notice ? <Notice kind="info">{notice}</Notice> : null}
        <label>
          User name
          <input name="user" autoComplete="username" value={user} onInput={(e) => setUser(e.currentTarget.value)} required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            required
          />
        </label>
        {needTotp ? (
          <label>
            Code from your authenticator app
            <input
              name="totp"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="[0-9]{6}"
              value={totp}
              onInput={(e) => setTotp(e.currentTarget.value)}
              required
            />
          </label>
        ) : null}
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <p class="muted small">
          New appliance with no account yet? <a href="#/setup">First-run setup</a>
        </p>
      </form>
    </div>
  );
}

export function SetupPage() {
  const [token, setToken] = useState('');
  const [user, setUser] = useState('admin');
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    if (password !== again) {
      setError({ status: 0, code: 'invalid', message: 'The two passwords are not the same.', path: '/password' });
      return;
    }
    setBusy(true);
    const r = await api('POST', 'setup', { token: token.trim(), user, password }, { quiet401: true });
    setBusy(false);
    if (r.ok) setDone(true);
    else if (r.error.status === 409) setError({ ...r.error, message: 'Setup is already done: an administrator exists. Log in instead.' });
    else setError(r.error);
  };

  if (done)
    return (
      <div class="center">
        <div class="card">
          <h1>Setup complete</h1>
          <Notice kind="ok">The administrator account “{user}” has been created.</Notice>
          <a class="button primary" href="#/">
            Go to the login page
          </a>
        </div>
      </div>
    );
  return (
    <div class="center">
      <form class="card login" onSubmit={submit} aria-label="First-run setup">
        <h1>First-run setup</h1>
        <p class="small">
          Create the first administrator. The one-time setup token is in the file <code>setup-token</code> in the
          console's state directory on the appliance (it disappears once setup is done).
        </p>
        <label>
          Setup token
          <input name="token" value={token} onInput={(e) => setToken(e.currentTarget.value)} required autoComplete="off" />
        </label>
        <label>
          Administrator user name
          <input name="user" value={user} onInput={(e) => setUser(e.currentTarget.value)} required autoComplete="username" />
        </label>
        <label>
          Password (at least 12 characters)
          <input
            name="password"
            type="password"
            minLength={12}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            required
            autoComplete="new-password"
          />
        </label>
        <label>
          Password again
          <input
            name="password2"
            type="password"
            value={again}
            onInput={(e) => setAgain(e.currentTarget.value)}
            required
            autoComplete="new-password"
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          Create administrator
        </button>
        <p class="small">
          <a href="#/">Back to login</a>
        </p>
      </form>
    </div>
  );
}

// Authenticator-app enrolment: ask the server for a secret, show it, confirm a code.
export function TotpEnrol({ onDone }: { onDone: () => void }) {
  const [secret, setSecret] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState(false);

  const start = async () => {
    setError(null);
    const r = await api<{ secret: string; otpauth_uri: string }>('POST', 'session/totp', {});
    if (r.ok) setSecret(r.data);
    else setError(r.error);
  };
  const confirm = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const r = await api('POST', 'session/totp/confirm', { code: code.trim() });
    if (r.ok) {
      setDone(true);
      onDone();
    } else setError(r.error);
  };
  if (done) return <Notice kind="ok">Two-factor login is on: from now on you will be asked for a code.</Notice>;
  return (
    <div>
      {!secret ? (
        <button onClick={start}>Set up an authenticator app</button>
      ) : (
        <form onSubmit={confirm}>
          <p>
            Add this account to your authenticator app with the secret <code class="secret">{secret.secret}</code>{' '}
            (or the link <code class="wrap">{secret.otpauth_uri}</code>), then enter the code it shows.
          </p>
          <label>
            Code
            <input inputMode="numeric" pattern="[0-9]{6}" value={code} onInput={(e) => setCode(e.currentTarget.value)} required />
          </label>
          <button type="submit" class="primary">
            Confirm
          </button>
        </form>
      )}
      <ErrorBox error={error} />
    </div>
  );
}

export function TotpEnrolmentRequired({ session, onDone }: { session: Session; onDone: () => void }) {
  return (
    <div class="center">
      <div class="card">
        <h1>Two-factor login required</h1>
        <p>
          Administrators of this appliance must use a one-time code at login. Set it up now, {session.user}, to continue.
        </p>
        <TotpEnrol onDone={onDone} />
      </div>
    </div>
  );
}
