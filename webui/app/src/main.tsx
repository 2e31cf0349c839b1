// Cordon's browser app: the shell (session, navigation by URL hash, the pages).
// webd serves only files, so the pages are addressed as #/name and need no server routes.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './app.css';
import { api, atLeast, setCsrfToken, setUnauthorizedHandler, type Role, type Session } from './api';
import { LoginPage, SetupPage, TotpEnrolmentRequired } from './pages/login';
import { OverviewPage } from './pages/overview';
import { DevicePage } from './pages/device';
import { ReviewPage } from './pages/review';
import { EventsPage } from './pages/events';
import { PatchesPage } from './pages/patches';
import { VendorPage } from './pages/vendor';
import { RemoteManagementPage } from './pages/remote';
import { FirmwarePage } from './pages/firmware';
import { AuditPage } from './pages/audit';
import { UsersPage } from './pages/users';
import { SystemPage } from './pages/system';
import { useDraft } from './policy';

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

const nav: { hash: string; label: string; role: Role }[] = [
  { hash: '#/', label: 'Overview', role: 'auditor' },
  { hash: '#/review', label: 'Change review', role: 'auditor' },
  { hash: '#/events', label: 'Live events', role: 'auditor' },
  { hash: '#/patches', label: 'Patch catalog', role: 'auditor' },
  { hash: '#/vendor', label: 'Vendor access', role: 'auditor' },
  { hash: '#/remote', label: 'Remote management', role: 'auditor' },
  { hash: '#/firmware', label: 'Firmware', role: 'auditor' },
  { hash: '#/audit', label: 'Audit log', role: 'auditor' },
  { hash: '#/users', label: 'Users and roles', role: 'admin' },
  { hash: '#/system', label: 'System settings', role: 'auditor' },
];

function Page({ hash, session }: { hash: string; session: Session }) {
  const path = hash.replace(/^#/, '').split('?')[0];
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  switch (parts[0] ?? '') {
    case '':
      return <OverviewPage />;
    case 'device':
      return <DevicePage name={parts[1] ?? ''} session={session} />;
    case 'review':
      return <ReviewPage session={session} />;
    case 'events':
      return <EventsPage />;
    case 'patches':
      return <PatchesPage />;
    case 'vendor':
      return <VendorPage session={session} />;
    case 'remote':
      return <RemoteManagementPage session={session} />;
    case 'firmware':
      return <FirmwarePage session={session} />;
    case 'audit':
      return <AuditPage />;
    case 'users':
      return <UsersPage session={session} />;
    case 'system':
      return <SystemPage session={session} />;
    default:
      return (
        <section>
          <h1>Page not found</h1>
          <p>
            There is no page <code>{path}</code>. <a href="#/">Go to the overview.</a>
          </p>
        </section>
      );
  }
}

function App() {
  const hash = useHash();
  const draft = useDraft();
  const [session, setSession] = useState<Session | null>(null);
  const [checked, setChecked] = useState(false);
  const [loadError, setLoadError] = useState('');
  const [loggedOut, setLoggedOut] = useState(false);
  const [logoutError, setLogoutError] = useState('');

  const loadSession = async () => {
    const r = await api<Session>('GET', 'session', undefined, { quiet401: true });
    if (r.ok) {
      setCsrfToken(r.data.csrf_token);
      setSession(r.data);
      setLoadError('');
    } else if (r.error.status === 401) {
      setSession(null);
    } else {
      setLoadError(r.error.message);
    }
    setChecked(true);
  };

  useEffect(() => {
    setUnauthorizedHandler(() => setSession(null));
    loadSession();
  }, []);

  if (!checked) return <p class="boot">Connecting to the appliance…</p>;
  if (loadError)
    return (
      <div class="center">
        <div class="error" role="alert">
          Could not reach the console: {loadError}
        </div>
        <button onClick={loadSession}>Try again</button>
      </div>
    );
  if (hash.startsWith('#/setup')) return <SetupPage />;
  if (!session)
    return (
      <LoginPage
        notice={loggedOut ? 'You have logged out.' : ''}
        onLogin={() => {
          setLoggedOut(false);
          loadSession();
        }}
      />
    );
  if (session.totp_enrollment_required)
    return <TotpEnrolmentRequired session={session} onDone={loadSession} />;

  const logout = async () => {
    const r = await api('POST', 'logout');
    if (!r.ok && r.error.status !== 401) {
      // The server still has the session: say so rather than pretend.
      setLogoutError(`Logging out failed: ${r.error.message}`);
      return;
    }
    setLogoutError('');
    setCsrfToken('');
    setSession(null);
    setLoggedOut(true);
  };
  const current = '#/' + (hash.replace(/^#\//, '').split('/')[0] ?? '');
  return (
    <div class="shell">
      <header class="top">
        <span class="brand">Cordon</span>
        <span class="who" data-testid="who">
          {session.user} <span class={'role role-' + session.role}>{session.role}</span>
        </span>
        <button class="logout" onClick={logout}>
          Log out
        </button>
      </header>
      <nav class="side" aria-label="Pages">
        {nav
          .filter((n) => atLeast(session.role, n.role))
          .map((n) => (
            <a href={n.hash} class={current === n.hash || (n.hash === '#/' && current === '#/device') ? 'active' : ''}>
              {n.label}
              {n.hash === '#/review' && draft.doc ? <span class="badge">draft</span> : null}
            </a>
          ))}
      </nav>
      <main>
        {logoutError ? (
          <div class="error" role="alert">
            {logoutError}
          </div>
        ) : null}
        <Page hash={hash} session={session} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('root')!);
