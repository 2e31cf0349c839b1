// Browser tests of the Cordon console (webui/app) against the lab: Debian's Chromium,
// headless, driven by playwright-core, from the `admin` host (run.sh starts this file in
// that network namespace with the lab up). The tests run in order and build on each
// other: setup creates the admin, the admin creates an operator and an auditor, ...
// Every wait is for a condition (locator.waitFor / waitForFunction), never a fixed sleep.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');
const LAB = resolve(REPO, 'tests/topology/lab.sh');
const BASE = process.env.CORDON_CONSOLE_URL || 'https://10.60.0.1:8443';
const ARTIFACTS = process.env.CORDON_BROWSER_ARTIFACTS || resolve(REPO, 'build/browser-artifacts');
const TOKEN_FILE = '/run/cordon-lab/webd/setup-token';
const CHROMIUM = process.env.CORDON_CHROMIUM || '/usr/bin/chromium';
const WAIT = 30_000;

const ADMIN = { user: 'admin', password: 'correct horse battery staple' };
const OPERATOR = { user: 'op1', password: 'operator password 123' };
const AUDITOR = { user: 'aud1', password: 'auditor password 456' };

let browser;
const contexts = [];

async function newPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  // A console error (a CSP refusal, an exception) is a test failure, not noise.
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(m.text())) page.errors.push(m.text());
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
}

async function login(page, who) {
  await page.goto(BASE + '/');
  await page.getByLabel('User name').fill(who.user);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('who').filter({ hasText: who.user }).waitFor();
}

// A call of the console's API from inside the page (its cookie, its CSRF token).
async function apiFromPage(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const s = await (await fetch('/api/v1/session')).json();
      const r = await fetch('/api/v1/' + path, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    { method, path, body },
  );
}

async function activeVersion(page) {
  const r = await apiFromPage(page, 'GET', 'policy');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

function labExec(host, ...cmd) {
  return spawnSync(LAB, ['exec', host, '--', ...cmd], { encoding: 'utf8', timeout: 60_000 });
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const args = ['--disable-dev-shm-usage'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  if (browser) await browser.close();
});

test('first-run setup with the one-time token creates the first admin', async () => {
  assert.ok(existsSync(TOKEN_FILE), `no setup token at ${TOKEN_FILE} (is this a fresh lab?)`);
  const token = readFileSync(TOKEN_FILE, 'utf8').trim();
  const page = await newPage();
  await page.goto(BASE + '/#/setup');
  // A wrong token is refused with the server's reason, and nothing is created.
  await page.getByLabel('Setup token').fill('not-the-token');
  await page.getByLabel('Administrator user name').fill(ADMIN.user);
  await page.getByLabel('Password (at least 12 characters)').fill(ADMIN.password);
  await page.getByLabel('Password again').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong setup token' }).waitFor();
  await shot(page, 'setup');
  await page.getByLabel('Setup token').fill(token);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await page.getByText('Setup complete').waitFor();
  assert.ok(!existsSync(TOKEN_FILE), 'the setup token file is removed after setup');
  assert.deepEqual(page.errors, []);
});

test('login, a wrong password refused, logout ends the session on the server', async () => {
  const page = await newPage();
  await page.goto(BASE + '/');
  await page.getByLabel('User name').fill(ADMIN.user);
  await page.getByLabel('Password').fill('wrong password!!');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong user name or password' }).waitFor();
  await shot(page, 'login');
  await login(page, ADMIN);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.locator('table.devices').getByRole('link', { name: 'ct-1' }).waitFor();
  await page.getByTestId('dataplane-health').filter({ hasText: 'running' }).waitFor();
  await shot(page, 'overview');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByText('You have logged out.').waitFor();
  const after = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
  assert.equal(after, 401, 'the session is gone on the server after logout');
  await page.reload();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.deepEqual(page.errors, []);
});

test('the admin creates an operator and an auditor on the users page', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.getByRole('link', { name: 'Users and roles' }).click();
  for (const [who, role] of [
    [OPERATOR, 'operator'],
    [AUDITOR, 'auditor'],
  ]) {
    await page.getByLabel('User name (letters, digits, . _ -)').fill(who.user);
    await page.getByLabel('Initial password (at least 12 characters)').fill(who.password);
    await page.locator('select[name=new_role]').selectOption(role);
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByTestId(`user-${who.user}`).filter({ hasText: role }).waitFor();
  }
  // A too short password: the server's reason is shown, nobody is created.
  await page.getByLabel('User name (letters, digits, . _ -)').fill('shorty');
  await page.getByLabel('Initial password (at least 12 characters)').fill('short');
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.getByRole('alert').filter({ hasText: 'Refused' }).waitFor();
  assert.equal(await page.getByTestId('user-shorty').count(), 0);
  await shot(page, 'users');
  assert.deepEqual(page.errors, []);
});

test('an auditor sees the policy but cannot change it, and the server refuses if tried', async () => {
  const page = await newPage();
  await login(page, AUDITOR);
  assert.equal(await page.getByRole('link', { name: 'Users and roles' }).count(), 0, 'no users page for an auditor');
  const before = await activeVersion(page);
  await page.goto(BASE + '/#/device/ct-1');
  await page.getByText('Your role can view the rules but not change them.').waitFor();
  assert.ok(await page.getByLabel('Rule 1 peer').isDisabled(), 'rule fields are read-only');
  assert.equal(await page.getByRole('button', { name: 'Review the change…' }).count(), 0);
  await page.goto(BASE + '/#/review');
  await page.getByText('can review changes but not apply or roll back policy').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Roll back to this' }).count(), 0);
  // The server refuses even when the page is bypassed.
  const tried = await apiFromPage(page, 'POST', 'policy', { document: before.policy, comment: 'auditor tries' });
  assert.equal(tried.status, 403, JSON.stringify(tried.body));
  assert.match(tried.body.error.message, /operator/);
  assert.equal((await activeVersion(page)).version, before.version);
  assert.deepEqual(page.errors, []);
});

test('a rule with an invalid network is refused next to the field, nothing applied', async () => {
  const page = await newPage();
  await login(page, OPERATOR);
  const before = await activeVersion(page);
  await page.goto(BASE + '/#/device/ct-1');
  const peer = page.getByLabel('Rule 1 peer');
  await peer.fill('10.50.0.300/32');
  await page.getByRole('button', { name: 'Review the change…' }).click();
  const fieldError = page.getByTestId('error-rules-0-peer');
  await fieldError.waitFor();
  assert.match(await fieldError.innerText(), /not a CIDR/);
  await page.getByText('Nothing was changed').waitFor();
  assert.equal(new URL(page.url()).hash, '#/device/ct-1', 'stays on the device page');
  await shot(page, 'device-invalid-rule');
  const now = await activeVersion(page);
  assert.equal(now.version, before.version, 'the policy version is unchanged');
  assert.equal(now.sha256, before.sha256);
  assert.deepEqual(page.errors, []);
});

test('a rule change: dry-run per device, apply on trial, keep it; the history shows the diff', async () => {
  const page = await newPage();
  await login(page, OPERATOR);
  const before = await activeVersion(page);
  // NTP traffic from the modality, allowed today by the rule `ntp` (recorded as a flow), so
  // that the dry-run has something the change would newly block.
  const ntp = labExec('modality', '/usr/bin/python3', '-c',
    'import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b"x"*48, ("10.50.0.1", 123))');
  assert.equal(ntp.status, 0, ntp.stderr);
  await page.waitForFunction(async () => {
    const r = await (await fetch('/api/v1/devices/ct-1/flows')).json();
    return r.flows.some((f) => f.rule === 'ntp');
  }, null, { polling: 1000, timeout: 60_000 });
  await page.goto(BASE + '/#/device/ct-1');
  await page.locator('td', { hasText: /^ntp$/ }).waitFor();
  await shot(page, 'device');
  // Remove the ntp rule (one rule of the lab policy).
  const ntpRow = page.locator('tr[data-rule="ntp"]');
  await ntpRow.getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('button', { name: 'Review the change…' }).click();
  await page.getByRole('heading', { name: 'Change review' }).waitFor();
  await page.getByText('- ntp: UDP port 123').waitFor();
  // Apply is not offered before the dry-run has been seen.
  assert.ok(await page.getByRole('button', { name: 'Apply…' }).isDisabled());
  await page.getByRole('button', { name: /Dry-run/ }).click();
  const dry = page.getByTestId('dry-run-ct-1');
  await dry.waitFor();
  assert.match(await dry.innerText(), /UDP 10\.50\.0\.10 → 10\.50\.0\.1 port 123/, 'the ntp flow would newly be blocked');
  await shot(page, 'review-dry-run');
  await page.getByLabel('Why (recorded in the audit log)').fill('browser test: ntp no longer needed');
  await page.getByLabel(/Safety timer/).selectOption('60');
  await page.getByRole('button', { name: 'Apply…' }).click();
  await page.getByRole('button', { name: 'Yes, apply' }).click();
  await page.getByTestId('confirm-countdown').waitFor();
  await shot(page, 'review-confirm-countdown');
  const provisional = await activeVersion(page);
  assert.equal(provisional.version, before.version + 1);
  assert.ok(provisional.confirm_by_unix_ms, 'the apply is provisional until kept');
  await page.getByRole('button', { name: 'Keep this change' }).click();
  await page.getByText('The change is kept').waitFor();
  await page.waitForFunction(async () => {
    const p = await (await fetch('/api/v1/policy')).json();
    return p.confirm_by_unix_ms === undefined;
  });
  const kept = await activeVersion(page);
  assert.equal(kept.version, before.version + 1);
  assert.ok(!kept.policy.devices[0].rules.some((r) => r.name === 'ntp'));
  // The history lists it with the operator and the comment, and shows the diff.
  const row = page.getByTestId(`version-${kept.version}`);
  await row.filter({ hasText: 'web:op1' }).waitFor();
  await row.getByRole('button', { name: 'Changes' }).click();
  await page.getByTestId('history-diff').filter({ hasText: 'ntp' }).waitFor();
  await shot(page, 'review-history');
  // Roll back to the version before: a new version with the ntp rule again.
  await page.getByTestId(`version-${before.version}`).getByRole('button', { name: 'Roll back to this' }).click();
  await page.getByRole('button', { name: 'Yes, roll back' }).click();
  await page.getByTestId('applied-version').filter({ hasText: String(before.version + 2) }).waitFor();
  const rolledBack = await activeVersion(page);
  assert.equal(rolledBack.version, before.version + 2);
  assert.equal(rolledBack.sha256, before.sha256, 'the same document as before the change');
  assert.deepEqual(page.errors, []);
});

test('an attack from the attacker host shows up live on the events page', async () => {
  const page = await newPage();
  await login(page, AUDITOR);
  await page.goto(BASE + '/#/events');
  await page.getByTestId('feed-mode').filter({ hasText: 'Live' }).waitFor();
  const port = 2300 + Math.floor(Math.random() * 600); // a port the policy does not allow
  await page.getByLabel(/Search/).fill(String(port));
  const rows = page.getByTestId('event-row').filter({ hasText: `10.50.0.10:${port}` });
  assert.equal(await rows.count(), 0, 'no such event before the attack');
  // A TCP connection attempt from the compromised LAN host to the modality.
  const r = labExec('attacker', '/usr/bin/python3', '-c',
    `import socket\ns=socket.socket(); s.settimeout(2)\ntry: s.connect(("10.50.0.10", ${port}))\nexcept OSError: pass`);
  assert.equal(r.status, 0, r.stderr);
  await rows.first().waitFor();
  assert.match(await rows.first().innerText(), /blocked/);
  assert.match(await rows.first().innerText(), /10\.50\.0\.66/);
  await shot(page, 'events');
  assert.deepEqual(page.errors, []);
});

// Applies the current draft from the review page: dry-run, no safety timer, confirm.
async function applyDraft(page, comment) {
  await page.getByRole('heading', { name: 'Change review' }).waitFor();
  await page.getByRole('button', { name: /Dry-run/ }).click();
  await page.getByTestId('dry-run-ct-1').waitFor();
  await page.getByLabel('Why (recorded in the audit log)').fill(comment);
  await page.getByLabel(/Safety timer/).selectOption('0');
  await page.getByRole('button', { name: 'Apply…' }).click();
  await page.getByRole('button', { name: 'Yes, apply' }).click();
  await page.getByTestId('applied-version').waitFor();
}

test('learn mode: the proposal from recorded traffic is taken into the editor, edited and applied', async () => {
  const page = await newPage();
  await login(page, OPERATOR);
  await page.goto(BASE + '/#/device/ct-1');
  await page.locator('select[name=mode]').selectOption('learn');
  await page.getByRole('button', { name: 'Review the change…' }).click();
  await page.getByText('mode: enforce → learn').waitFor();
  await applyDraft(page, 'browser test: learn');
  // Traffic no rule allows: forwarded in learn mode and recorded.
  const port = 5000 + Math.floor(Math.random() * 500);
  const r = labExec('modality', '/usr/bin/python3', '-c',
    `import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b"hello", ("10.50.0.1", ${port}))`);
  assert.equal(r.status, 0, r.stderr);
  await page.waitForFunction(async () => {
    const p = await (await fetch('/api/v1/devices/ct-1/proposal')).json();
    return p.rules_added > 0;
  }, null, { polling: 1000, timeout: 60_000 });
  await page.goto(BASE + '/#/');
  await page.goto(BASE + '/#/device/ct-1');
  await page.getByTestId('proposal-diff').filter({ hasText: String(port) }).waitFor();
  await shot(page, 'device-proposal');
  await page.getByRole('button', { name: /Take the proposal into the editor/ }).click();
  await page.waitForFunction((p) => Array.from(document.querySelectorAll('input[name$=".dport"]')).some((i) => i.value === String(p)), port);
  // Edit: back to protecting the device, with the learned rule.
  await page.locator('select[name=mode]').selectOption('enforce');
  await page.getByRole('button', { name: 'Review the change…' }).click();
  await page.getByText(`+ `).filter({ hasText: `port ${port} to ` }).first().waitFor();
  await page.getByText('mode: learn → enforce').waitFor();
  await applyDraft(page, 'browser test: learned rule');
  const now = await activeVersion(page);
  const device = now.policy.devices[0];
  assert.equal(device.mode, 'enforce');
  assert.ok(device.rules.some((x) => x.proto === 'udp' && x.dport === port), JSON.stringify(device.rules));
  assert.deepEqual(page.errors, []);
});

test('a change applied on trial and not kept is undone when the countdown runs out', async () => {
  const page = await newPage();
  await login(page, OPERATOR);
  const before = await activeVersion(page);
  await page.goto(BASE + '/#/device/ct-1');
  await page.locator('select[name=mode]').selectOption('monitor');
  await page.getByRole('button', { name: 'Review the change…' }).click();
  await page.getByRole('heading', { name: 'Change review' }).waitFor();
  await page.getByRole('button', { name: /Dry-run/ }).click();
  await page.getByTestId('dry-run-ct-1').waitFor();
  await page.getByLabel(/Safety timer/).selectOption('60');
  await page.getByRole('button', { name: 'Apply…' }).click();
  await page.getByRole('button', { name: 'Yes, apply' }).click();
  await page.getByTestId('confirm-countdown').waitFor();
  assert.equal((await activeVersion(page)).policy.devices[0].mode, 'monitor');
  // Nobody keeps it: after the minute, controld goes back and the page says so.
  await page.getByText('was not kept in time and has been undone').waitFor({ timeout: 150_000 });
  await shot(page, 'review-undone');
  const now = await activeVersion(page);
  assert.equal(now.sha256, before.sha256, 'the document before the trial is active again');
  assert.equal(now.policy.devices[0].mode, 'enforce');
  assert.equal(now.confirm_by_unix_ms, undefined);
  assert.deepEqual(page.errors, []);
});

test('a vendor session is created and revoked', async (t) => {
  const page = await newPage();
  await login(page, OPERATOR);
  await page.goto(BASE + '/#/vendor');
  await page.getByRole('heading', { name: 'Vendor access' }).waitFor();
  await page.locator('.notice, .muted, form').first().waitFor();
  await shot(page, 'vendor');
  if (await page.getByText('not available from this web console yet').count()) {
    t.skip('webd does not forward /api/v1/vendor-sessions to controld (webui/routes/app.cpp)');
    return;
  }
  const key = execFileSync('bash', ['-c', 'wg genkey | wg pubkey'], { encoding: 'utf8' }).trim();
  await page.getByLabel(/public key/).fill(key);
  await page.getByLabel(/Ports on the device/).fill('22, 443');
  await page.getByLabel(/For how long/).fill('1');
  await page.getByRole('button', { name: 'Open the session' }).click();
  await page.getByText(/Session \d+ is open/).waitFor();
  // The vendor's WireGuard configuration, with where to dial (the lab's settings name
  // 192.0.2.1; the port is the settings' wireguard_port).
  const config = await page.getByTestId('vendor-wireguard-config').textContent();
  assert.match(config, /^Endpoint = 192\.0\.2\.1:51820$/m, config);
  assert.match(config, /^AllowedIPs = 10\.50\.0\.10\/32$/m, config);
  assert.match(config, /^PrivateKey = <your private key>$/m, config);
  const row = page.locator('tr[data-testid^="vendor-session-"]').filter({ hasText: '22, 443' });
  await row.waitFor();
  await shot(page, 'vendor-session');
  await row.getByRole('button', { name: 'End now' }).click();
  await page.getByRole('button', { name: 'Yes, end it' }).click();
  await row.waitFor({ state: 'detached' });
  assert.deepEqual(page.errors, []);
});

// Remote-management peers (#/remote): admins add and remove them, everybody sees them.
const PEER = { name: 'noc-laptop', address: '10.99.0.200' };
const TUNNEL_PEER = { name: 'tunnel-laptop', address: '10.99.0.201' };

function wgKeyPair() {
  const secret = execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim();
  const pub = execFileSync('wg', ['pubkey'], { input: secret + '\n', encoding: 'utf8' }).trim();
  return { secret, pub };
}

async function managementPeers(page) {
  const r = await apiFromPage(page, 'GET', 'management-peers');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.peers;
}

// Fills the add form of #/remote and submits it.
async function addPeerForm(page, name, key, address) {
  await page.getByLabel(/^Name/).fill(name);
  await page.getByLabel(/public key/).fill(key);
  await page.getByLabel(/tunnel address/).fill(address);
  await page.getByRole('button', { name: 'Add the peer' }).click();
}

test('an admin adds a management peer; a bad key and a bad address are refused at their field', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.getByRole('link', { name: 'Remote management' }).click();
  await page.getByRole('heading', { name: 'Remote management' }).waitFor();
  // What the peer's configuration needs: the appliance's key (the one `wg` runs with) and port.
  const wg = await apiFromPage(page, 'GET', 'wireguard');
  assert.equal(wg.status, 200, JSON.stringify(wg.body));
  await page.getByTestId('appliance-public-key').filter({ hasText: wg.body.public_key }).waitFor();
  assert.equal(wg.body.appliance_endpoint, '192.0.2.1:51820', JSON.stringify(wg.body));
  await page.getByTestId('appliance-endpoint').filter({ hasText: '192.0.2.1:51820' }).waitFor();
  // The tunnel's network and the appliance's address in it (controld's --wireguard-address).
  const before = await apiFromPage(page, 'GET', 'management-peers');
  assert.equal(before.body.tunnel_network, '10.99.0.0/24', JSON.stringify(before.body));
  assert.equal(before.body.appliance_tunnel_address, '10.99.0.1', JSON.stringify(before.body));
  const network = page.getByTestId('appliance-tunnel-network');
  await network.filter({ hasText: '10.99.0.0/24' }).waitFor();
  assert.match(await network.innerText(), /the appliance is 10\.99\.0\.1 in it/);
  await page.getByText('No remote-management peer has been added.').waitFor();
  const { pub } = wgKeyPair();

  // A key that is not a WireGuard key: the server's reason under the key field.
  await addPeerForm(page, PEER.name, 'not-a-wireguard-key', PEER.address);
  const keyError = page.getByTestId('error-public_key');
  await keyError.waitFor();
  assert.match(await keyError.innerText(), /WireGuard public key/);
  assert.equal(await page.getByTestId('error-tunnel_address').count(), 0);
  await page.getByText('Nothing was changed').waitFor();
  assert.deepEqual(await managementPeers(page), []);

  // A real key, but an address outside the tunnel network: under the address field.
  await addPeerForm(page, PEER.name, pub, '10.60.0.9');
  const addressError = page.getByTestId('error-tunnel_address');
  await addressError.waitFor();
  assert.match(await addressError.innerText(), /tunnel network 10\.99\.0\.0\/24/);
  assert.equal(await page.getByTestId('error-public_key').count(), 0, 'the key error is gone');
  await shot(page, 'remote-invalid-address');
  assert.deepEqual(await managementPeers(page), []);

  // When and by whom are the appliance's to say: a client's added_at is refused at its path.
  const forged = await apiFromPage(page, 'POST', 'management-peers', {
    name: PEER.name, public_key: pub, tunnel_address: PEER.address, added_at: '2020-01-01T00:00:00.000Z',
  });
  assert.equal(forged.status, 400, JSON.stringify(forged.body));
  assert.equal(forged.body.error.path, '/added_at', JSON.stringify(forged.body));
  assert.match(forged.body.error.message, /set by the appliance/);
  assert.deepEqual(await managementPeers(page), []);

  await page.getByLabel(/tunnel address/).fill(PEER.address);
  const addedFrom = Date.now();
  await page.getByRole('button', { name: 'Add the peer' }).click();
  const row = page.getByTestId(`management-peer-${PEER.name}`);
  await row.waitFor();
  // The row says when and by whom (the console's user, as the audit log names them).
  const addedText = row.getByTestId(`management-peer-added-${PEER.name}`);
  await addedText.waitFor();
  assert.match(await addedText.innerText(), new RegExp(`^added .+ by web:${ADMIN.user}$`));
  assert.match(await row.innerText(), new RegExp(`${PEER.address}`));
  assert.ok((await row.innerText()).includes(pub), 'the row shows the key');
  await page.getByText(`${PEER.name} was added`).waitFor();
  assert.equal(await page.getByTestId('error-tunnel_address').count(), 0);
  await shot(page, 'remote');
  // Installed for real: controld's list and the WireGuard interface have it.
  const listed = (await managementPeers(page)).map((p) => ({ name: p.name, public_key: p.public_key, tunnel_address: p.tunnel_address }));
  assert.deepEqual(listed, [{ name: PEER.name, public_key: pub, tunnel_address: PEER.address }]);
  const [stored] = await managementPeers(page);
  assert.equal(stored.added_by, `web:${ADMIN.user}`);
  assert.match(stored.added_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // The lab's controld runs on this machine's clock.
  const at = Date.parse(stored.added_at);
  assert.ok(at >= addedFrom - 5_000 && at <= Date.now() + 5_000, `added_at ${stored.added_at}`);
  const after = await apiFromPage(page, 'GET', 'wireguard');
  assert.ok(after.body.peers.some((p) => p.public_key === pub), JSON.stringify(after.body.peers));
  assert.deepEqual(page.errors, []);
});

test('an admin names the WireGuard endpoint on the system page; a host with a port is refused', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.goto(BASE + '/#/system');
  const form = page.getByRole('form', { name: 'WireGuard endpoint' });
  const field = form.getByLabel('Name or address');
  await field.waitFor();
  assert.equal(await field.inputValue(), '192.0.2.1');
  await field.fill('vpn.hospital.example:51820');
  await form.getByRole('button', { name: 'Save endpoint' }).click();
  await form.getByText(/without a port/).waitFor();
  assert.equal((await apiFromPage(page, 'GET', 'wireguard')).body.appliance_endpoint, '192.0.2.1:51820');
  await field.fill('vpn.hospital.example');
  await form.getByRole('button', { name: 'Save endpoint' }).click();
  await form.getByText('Saved.').waitFor();
  await page.goto(BASE + '/#/remote');
  await page.getByTestId('appliance-endpoint').filter({ hasText: 'vpn.hospital.example:51820' }).waitFor();
  await shot(page, 'remote-endpoint');
  // Back to the lab's, for the tests after this one.
  await page.goto(BASE + '/#/system');
  await field.fill('192.0.2.1');
  await form.getByRole('button', { name: 'Save endpoint' }).click();
  await form.getByText('Saved.').waitFor();
  assert.equal((await apiFromPage(page, 'GET', 'wireguard')).body.appliance_endpoint, '192.0.2.1:51820');
  assert.deepEqual(page.errors, []);
});

test('an auditor sees the management peers without the add and remove controls', async () => {
  const page = await newPage();
  await login(page, AUDITOR);
  await page.getByRole('link', { name: 'Remote management' }).click();
  const row = page.getByTestId(`management-peer-${PEER.name}`);
  await row.waitFor();
  assert.match(await row.innerText(), new RegExp(PEER.address));
  await page.getByTestId('appliance-public-key').waitFor();
  await page.getByText('Only administrators can add or remove management peers').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Remove' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Add the peer' }).count(), 0);
  assert.equal(await page.locator('input[name=public_key]').count(), 0);
  await shot(page, 'remote-auditor');
  // The server refuses the auditor in any case, and nothing changes.
  const tried = await apiFromPage(page, 'DELETE', `management-peers/${PEER.name}`);
  assert.equal(tried.status, 403, JSON.stringify(tried.body));
  assert.equal((await managementPeers(page)).length, 1);
  assert.deepEqual(page.errors, []);
});

test('an admin removes a management peer after confirming', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.goto(BASE + '/#/remote');
  const row = page.getByTestId(`management-peer-${PEER.name}`);
  await row.waitFor();
  const key = (await managementPeers(page))[0].public_key;
  // Cancel keeps it.
  await row.getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('dialog').filter({ hasText: `Remove the management peer ${PEER.name}` }).waitFor();
  await shot(page, 'remote-confirm-removal');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  assert.equal((await managementPeers(page)).length, 1, 'cancelled: still there');
  await row.getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('button', { name: 'Yes, remove it' }).click();
  await row.waitFor({ state: 'detached' });
  await page.getByText(`The management peer ${PEER.name} was removed`).waitFor();
  assert.deepEqual(await managementPeers(page), []);
  const wg = await apiFromPage(page, 'GET', 'wireguard');
  assert.ok(!wg.body.peers.some((p) => p.public_key === key), 'the WireGuard peer is gone');
  assert.deepEqual(page.errors, []);
});

// A Chromium in the `vendor` namespace whose only way to the console is a WireGuard tunnel
// (wireguard-go, as tests/e2e/test_vendor.py does), made a management peer: removing that
// peer from its own browser is refused, and the page says why.
const TUNNEL_IF = 'wg-s5browser';
test('removing the peer the admin came through is refused in plain words', async (t) => {
  const admin = await newPage();
  await login(admin, ADMIN);
  await admin.goto(BASE + '/#/remote');
  await admin.getByRole('heading', { name: 'Remote management' }).waitFor();
  const { secret, pub } = wgKeyPair();
  const applianceKey = (await apiFromPage(admin, 'GET', 'management-peers')).body.appliance_public_key;
  const work = mkdtempSync(join(tmpdir(), 'cordon-browser-wg-'));
  writeFileSync(join(work, 'peer.key'), secret + '\n', { mode: 0o600 });
  // Chromium started inside the vendor namespace (playwright talks to it over its pipes).
  const wrapper = join(work, 'chromium-in-vendor');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec vendor ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  const go = spawn('ip', ['netns', 'exec', 'vendor', 'wireguard-go', '-f', TUNNEL_IF], { stdio: 'ignore' });
  let tunnelBrowser;
  t.after(async () => {
    if (tunnelBrowser) await tunnelBrowser.close().catch(() => {});
    go.kill();
    await apiFromPage(admin, 'DELETE', `management-peers/${TUNNEL_PEER.name}`).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  });
  const inVendor = (...cmd) => execFileSync('ip', ['netns', 'exec', 'vendor', ...cmd], { encoding: 'utf8' });
  const deadline = Date.now() + 20_000;
  while (spawnSync('ip', ['netns', 'exec', 'vendor', 'ip', 'link', 'show', TUNNEL_IF]).status !== 0) {
    assert.ok(Date.now() < deadline, 'wireguard-go made no interface within 20 s');
    await new Promise((r) => setTimeout(r, 100)); // polling for the interface, not a fixed wait
  }
  inVendor('wg', 'set', TUNNEL_IF, 'private-key', join(work, 'peer.key'), 'peer', applianceKey,
    'endpoint', '192.0.2.1:51820', 'allowed-ips', '10.60.0.1/32', 'persistent-keepalive', '1');
  inVendor('ip', 'address', 'add', `${TUNNEL_PEER.address}/32`, 'dev', TUNNEL_IF);
  inVendor('ip', 'link', 'set', TUNNEL_IF, 'up');
  inVendor('ip', 'route', 'replace', '10.60.0.1/32', 'dev', TUNNEL_IF);

  // The admin (on the management network) adds the tunnel's key as a peer.
  await addPeerForm(admin, TUNNEL_PEER.name, pub, TUNNEL_PEER.address);
  await admin.getByTestId(`management-peer-${TUNNEL_PEER.name}`).waitFor();

  // The admin again, now from the laptop through the tunnel.
  tunnelBrowser = await chromium.launch({ executablePath: wrapper, headless: true, args: ['--disable-dev-shm-usage', '--no-sandbox'] });
  const context = await tunnelBrowser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const remote = await context.newPage();
  remote.setDefaultTimeout(WAIT);
  remote.errors = [];
  remote.on('pageerror', (e) => remote.errors.push(String(e)));
  await login(remote, ADMIN);
  await remote.goto(BASE + '/#/remote');
  const row = remote.getByTestId(`management-peer-${TUNNEL_PEER.name}`);
  await row.getByText('received').waitFor(); // the handshake the page shows
  await row.getByRole('button', { name: 'Remove' }).click();
  await remote.getByRole('button', { name: 'Yes, remove it' }).click();
  const refusal = remote.getByRole('alert').filter({ hasText: `connected to this console through ${TUNNEL_PEER.name}'s tunnel` });
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /would cut you off/);
  await shot(remote, 'remote-refused-own-peer');
  await row.waitFor(); // still listed
  assert.equal((await managementPeers(admin)).length, 1, 'the peer is still there');
  assert.deepEqual(remote.errors, []);

  // From the management network it can be removed.
  const adminRow = admin.getByTestId(`management-peer-${TUNNEL_PEER.name}`);
  await adminRow.getByRole('button', { name: 'Remove' }).click();
  await admin.getByRole('button', { name: 'Yes, remove it' }).click();
  await adminRow.waitFor({ state: 'detached' });
  assert.deepEqual(await managementPeers(admin), []);
  assert.deepEqual(admin.errors, []);
});

test('a tampered firmware bundle is refused with its reason', async (t) => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.goto(BASE + '/#/firmware');
  await page.getByRole('heading', { name: 'Firmware' }).waitFor();
  await page.locator('.notice, .error, form').first().waitFor();
  await shot(page, 'firmware');
  // run.sh starts the update lab and gives the lab's controld its update service when
  // RAUC and squashfs-tools are installed; without them controld has no /v1/update.
  if (await page.getByText('not available from this web console yet').count()) {
    t.skip('the lab controld has no update service (run.sh could not start the update lab: see its output)');
    return;
  }
  const bundle = process.env.CORDON_BROWSER_BUNDLE;
  if (!bundle) {
    t.skip('no signed bundle to tamper with (run.sh sets CORDON_BROWSER_BUNDLE when it starts the update lab)');
    return;
  }
  // The slots come from RAUC (the update lab): slot A runs, B is the one an update fills.
  const running = page.locator('tbody tr').filter({ has: page.locator('.badge', { hasText: 'running' }) });
  await running.waitFor();
  assert.match(await running.innerText(), /^A/);
  // One byte changed in the middle of a signed bundle (over webd's ordinary 1 MiB body
  // limit, so this also goes through the upload path that checks the session first).
  const bytes = readFileSync(bundle);
  assert.ok(bytes.length > 1 << 20, `the bundle is ${bytes.length} bytes`);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await page.locator('input[type=file][name=bundle]').setInputFiles({ name: 'tampered.raucb', mimeType: 'application/octet-stream', buffer: bytes });
  await page.getByRole('button', { name: 'Upload and install' }).click();
  const refusal = page.getByTestId('last-result').filter({ hasText: /refused/ });
  await refusal.waitFor({ timeout: 120_000 });
  const said = await refusal.innerText();
  assert.match(said, /altered or is not signed by the manufacturer \(signature verification failed/, `the reason is given: ${said}`);
  await shot(page, 'firmware-refused');
  // Nothing was installed: slot A still runs and is still the next boot.
  assert.match(await running.innerText(), /^A.*running.*next boot/s);
  assert.deepEqual(page.errors, []);
});

test('screenshots of the other main pages, each without errors', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  const pages = [
    ['patches', 'Patch catalog', () => page.getByTestId('patch-smb1-block').waitFor()],
    ['audit', 'Audit log', () => page.getByTestId('audit-verify').filter({ hasText: 'Verified' }).waitFor()],
    ['system', 'System settings', () => page.getByLabel(/Networks \(one per line/).waitFor()],
  ];
  for (const [hash, heading, ready] of pages) {
    await page.goto(`${BASE}/#/${hash}`);
    await page.getByRole('heading', { name: heading }).waitFor();
    await ready();
    await shot(page, hash);
  }
  // The audit log shows the operator's change made through the console.
  await page.goto(`${BASE}/#/audit`);
  await page.locator('table.audit tr', { hasText: 'web:op1' }).first().waitFor();
  assert.deepEqual(page.errors, []);
});
