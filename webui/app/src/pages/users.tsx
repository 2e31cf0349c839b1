// Users and roles (administrators only): list, create, delete console accounts.
import { useState } from 'preact/hooks';
import { api, atLeast, type ApiError, type Session } from '../api';
import { Confirm, ErrorBox, Loading, Notice, formatTime, useGet } from '../ui';

interface User {
  user: string;
  role: string;
  created_at: string;
}

const roleWords: Record<string, string> = {
  auditor: 'Auditor: can look at everything, change nothing',
  operator: 'Operator: can change device rules, apply and roll back policy, open vendor access',
  admin: 'Administrator: everything, including users, firmware and system settings',
};

export function UsersPage({ session }: { session: Session }) {
  const users = useGet<{ users: User[] }>(atLeast(session.role, 'admin') ? 'users' : null);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('operator');
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState('');
  const [remove, setRemove] = useState<string | null>(null);

  if (!atLeast(session.role, 'admin'))
    return (
      <section>
        <h1>Users and roles</h1>
        <Notice kind="info">Only administrators can manage users.</Notice>
      </section>
    );

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDone('');
    const r = await api('POST', 'users', { user: name, password, role });
    if (r.ok) {
      setDone(`User “${name}” created as ${role}.`);
      setName('');
      setPassword('');
      users.reload();
    } else setError(r.error);
  };
  const doRemove = async (user: string) => {
    setError(null);
    setDone('');
    const r = await api('DELETE', `users/${encodeURIComponent(user)}`);
    setRemove(null);
    if (r.ok) {
      setDone(`User “${user}” deleted.`);
      users.reload();
    } else setError(r.error);
  };

  return (
    <section>
      <h1>Users and roles</h1>
      <ul class="small">
        {Object.values(roleWords).map((w) => (
          <li>{w}</li>
        ))}
      </ul>
      <Loading loaded={users} what="the users" />
      <table>
        <thead>
          <tr>
            <th>User</th>
            <th>Role</th>
            <th>Created</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(users.data?.users ?? []).map((u) => (
            <tr data-testid={`user-${u.user}`}>
              <td>{u.user}</td>
              <td>{u.role}</td>
              <td>{formatTime(u.created_at)}</td>
              <td>
                {u.user !== session.user ? (
                  <button class="small danger" onClick={() => setRemove(u.user)}>
                    Delete
                  </button>
                ) : (
                  <span class="muted small">you</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {remove ? (
        <Confirm question={`Delete the user “${remove}”? They are logged out at once.`} yes="Yes, delete" onYes={() => doRemove(remove)} onNo={() => setRemove(null)} />
      ) : null}
      <form class="card" onSubmit={create} aria-label="New user">
        <h2>New user</h2>
        <label>
          User name (letters, digits, . _ -)
          <input name="new_user" value={name} onInput={(e) => setName(e.currentTarget.value)} required autoComplete="off" />
        </label>
        <label>
          Initial password (at least 12 characters)
          <input name="new_password" type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required autoComplete="new-password" />
        </label>
        <label>
          Role
          <select name="new_role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            <option value="auditor">auditor</option>
            <option value="operator">operator</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" class="primary">
          Create user
        </button>
      </form>
      <ErrorBox error={error} what="Refused" />
      {done ? <Notice kind="ok">{done}</Notice> : null}
    </section>
  );
}
