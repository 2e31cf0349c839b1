// Patch catalog: the built-in virtual patches and the policy's own, with their CVEs and
// the devices that use each.
import { builtinPatches, type ActivePolicy } from '../policy';
import { Loading, useGet } from '../ui';

export function PatchesPage() {
  const active = useGet<ActivePolicy>('policy');
  const devices = active.data?.policy?.devices ?? [];
  const usedBy = (id: string) => devices.filter((d) => (d.patches ?? []).includes(id)).map((d) => d.name);
  const custom = active.data?.policy?.patches ?? [];
  return (
    <section>
      <h1>Patch catalog</h1>
      <p class="small">
        Virtual patches block known attacks on the network before they reach a device that cannot be updated. They are
        switched on per device in the policy.
      </p>
      <Loading loaded={active} what="the policy" />
      <h2>Built in</h2>
      <table>
        <thead>
          <tr>
            <th>Patch</th>
            <th>Protects against</th>
            <th>Traffic</th>
            <th>What it stops</th>
            <th>Action</th>
            <th>Used by</th>
          </tr>
        </thead>
        <tbody>
          {builtinPatches.map((p) => (
            <tr data-testid={`patch-${p.id}`}>
              <td>
                <strong>{p.id}</strong>
                <div class="small">{p.title}</div>
              </td>
              <td class="cve">{p.cves}</td>
              <td>{p.ports}</td>
              <td>{p.matches}</td>
              <td>{p.action === 'reset' ? 'connection refused' : 'dropped'}</td>
              <td>{usedBy(p.id).map((n) => <a href={'#/device/' + encodeURIComponent(n)}>{n} </a>)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>This appliance's own patches</h2>
      {custom.length === 0 ? <p class="muted">None in the active policy.</p> : null}
      {custom.length ? (
        <table>
          <thead>
            <tr>
              <th>Patch</th>
              <th>CVE</th>
              <th>Traffic</th>
              <th>Action</th>
              <th>Used by</th>
            </tr>
          </thead>
          <tbody>
            {custom.map((p) => (
              <tr>
                <td>
                  <strong>{p.id}</strong>
                </td>
                <td class="cve">{p.cve ?? ''}</td>
                <td>
                  {p.proto}/{p.dport ?? 'any'} ({p.dir === 'in' ? 'to the device' : 'from the device'})
                </td>
                <td>{p.action ?? 'drop'}</td>
                <td>{usedBy(p.id).join(', ') || <span class="muted">no device yet</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
