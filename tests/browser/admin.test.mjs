// The admin page (/tidings/admin) in Debian's chromium (playwright-core), on the real demo started with
// --Tidings:Admins=root: as root it shows the live session count change when a second person's browser connects, and
// its inspector disconnects that person's session; a signed-in non-admin gets 403 and a signed-out visitor 401.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { startServer, ARTIFACTS } from './server.mjs';

const CHROMIUM = '/usr/bin/chromium';
const TIMEOUT = 15_000;

/** Installs Debian's chromium when it is missing (CI machines start without it). */
function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  execFileSync('bash', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null'],
    { stdio: 'inherit', timeout: 300_000 });
}

describe('admin page in a real browser', { timeout: 300_000 }, () => {
  let server;
  let browser;
  const pageErrors = [];

  before(async () => {
    ensureChromium();
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({ 'Tidings:Admins': 'root' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  /** A new browser context signed in as `name` (the demo's sign-in sets the cookie), or signed out when null. */
  async function person(name) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    if (name) {
      const response = await context.request.post(server.base + '/api/session', { data: { name } });
      assert.equal(response.status(), 200);
    }
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
    return { context, page };
  }

  const sessionCount = (page) => page.locator('#sessions').textContent();

  it('shows a new session live, and disconnects it from the inspector', async () => {
    const admin = await person('root');
    await admin.page.goto(server.base + '/tidings/admin');
    await admin.page.locator('#status', { hasText: 'live' }).waitFor();
    // The page's own session is the only one so far; its first sample says so.
    await admin.page.waitForFunction(() => document.getElementById('sessions').textContent === '1', null, { timeout: TIMEOUT });
    await admin.page.locator('#inspector tbody tr', { hasText: '(this page)' }).waitFor();
    assert.equal(await admin.page.locator('#inspector tbody tr').count(), 1);

    const visitor = await person(null);
    await visitor.page.goto(server.base + '/todos/');
    await visitor.page.waitForSelector('body[data-ready="true"]');

    // Pushed over the page's Bayeux subscription: no reload, no polling.
    await admin.page.waitForFunction(() => document.getElementById('sessions').textContent === '2', null, { timeout: TIMEOUT });
    const row = admin.page.locator('#inspector tbody tr', { has: admin.page.locator('button', { hasText: 'Disconnect' }) });
    await row.waitFor();
    const id = await row.getAttribute('data-session');
    assert.match(await row.textContent(), /\/api\/todos/, 'the inspector lists the visitor\'s subscription');
    await admin.page.screenshot({ path: path.join(ARTIFACTS, 'admin.png'), fullPage: true });

    await row.locator('button').click();
    await admin.page.locator(`#inspector tbody tr[data-session="${id}"]`).waitFor({ state: 'detached' });
    const listed = await (await admin.context.request.get(server.base + '/tidings/admin/sessions')).json();
    assert.ok(!listed.sessions.some((s) => s.id === id), 'the disconnected session is gone');

    // The visitor's Faye client was told to handshake again: it comes back as a new session, and the count follows.
    await admin.page.waitForFunction((gone) => [...document.querySelectorAll('#inspector tbody tr[data-session]')]
      .some((tr) => tr.dataset.session !== gone && tr.querySelector('button')), id, { timeout: 30_000 });
    assert.equal(await sessionCount(admin.page), '2');

    await visitor.context.close();
    await admin.context.close();
    assert.deepEqual(pageErrors, []);
  });

  it('answers 403 to a signed-in non-admin and 401 to a signed-out visitor', async () => {
    const ada = await person('ada');
    const forbidden = await ada.page.goto(server.base + '/tidings/admin');
    assert.equal(forbidden.status(), 403);
    await ada.context.close();

    const visitor = await person(null);
    const unauthorized = await visitor.page.goto(server.base + '/tidings/admin');
    assert.equal(unauthorized.status(), 401);
    await visitor.context.close();
  });
});
