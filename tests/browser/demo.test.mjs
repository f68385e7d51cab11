// The demo apps in Debian's chromium (playwright-core): two browser contexts — two people — on the
// same server. What one does appears in the other; one goes offline, the other changes things, and
// when it comes back both show the same. Screenshots go to artifacts/test-results/browser/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { startServer, ARTIFACTS } from './server.mjs';

const CHROMIUM = '/usr/bin/chromium';
const TIMEOUT = 10_000;

/** Installs Debian's chromium when it is missing (CI machines start without it). */
function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  execFileSync('bash', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null'],
    { stdio: 'inherit', timeout: 300_000 });
}

describe('demo apps in a real browser', { timeout: 400_000 }, () => {
  let server;
  let browser;
  const pageErrors = [];

  before(async () => {
    ensureChromium();
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer();
    // launch() gives chromium a fresh temporary profile (its own --user-data-dir) and deletes it on close.
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

  /** A new person: own context (cookies), one page at `url`, waiting for the live data. */
  async function person(url, name) {
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
    await page.goto(server.base + url);
    return { context, page, name };
  }

  const shot = (page, file) => page.screenshot({ path: path.join(ARTIFACTS, file), fullPage: true });
  const todoTitles = (page) => page.$$eval('.todo-list li label', (labels) => labels.map((l) => l.textContent));
  const todoRow = (page, title) => page.locator('.todo-list li', { has: page.locator(`label:text-is("${title}")`) });

  it('serves a landing page that links both apps', async () => {
    const { context, page } = await person('/', 'visitor');
    assert.equal(await page.locator('a#todomvc').getAttribute('href'), '/todos/');
    assert.equal(await page.locator('a#chat').getAttribute('href'), '/chat/');
    await shot(page, 'landing.png');
    await context.close();
  });

  it('TodoMVC: add, edit, complete and delete in one window appear in the other', async () => {
    const a = await person('/todos/', 'a');
    const b = await person('/todos/', 'b');
    for (const { page } of [a, b]) await page.waitForSelector('body[data-ready="true"]');

    await a.page.fill('.new-todo', 'buy milk');
    await a.page.press('.new-todo', 'Enter');
    await a.page.fill('.new-todo', 'write tests');
    await a.page.press('.new-todo', 'Enter');
    await todoRow(b.page, 'buy milk').waitFor();
    await todoRow(b.page, 'write tests').waitFor();
    assert.deepEqual(await todoTitles(b.page), ['buy milk', 'write tests']);
    assert.deepEqual(await todoTitles(a.page), ['buy milk', 'write tests'], 'each shown once in the creator window');

    // Edit in b: double-click, type, Enter.
    await todoRow(b.page, 'buy milk').locator('label').dblclick();
    await b.page.fill('.todo-list li.editing .edit', 'buy oat milk');
    await b.page.press('.todo-list li.editing .edit', 'Enter');
    await todoRow(a.page, 'buy oat milk').waitFor();

    // Complete in a.
    await todoRow(a.page, 'write tests').locator('.toggle').check();
    await b.page.locator('.todo-list li.completed label:text-is("write tests")').waitFor();
    await b.page.locator('.todo-count strong:text-is("1")').waitFor();
    await shot(a.page, 'todomvc-a.png');
    await shot(b.page, 'todomvc-b.png');

    // Delete in b.
    await todoRow(b.page, 'buy oat milk').hover();
    await todoRow(b.page, 'buy oat milk').locator('.destroy').click();
    await todoRow(a.page, 'buy oat milk').waitFor({ state: 'detached' });
    assert.deepEqual(await todoTitles(a.page), ['write tests']);
    assert.deepEqual(await todoTitles(b.page), ['write tests']);

    // And the server agrees.
    const { items } = await server.state('/api/todos');
    assert.deepEqual([...items.values()].map((t) => [t.title, t.completed]), [['write tests', true]]);
    await a.context.close();
    await b.context.close();
  });

  it('TodoMVC: a window that was offline catches up, and its own offline changes reach the other', async () => {
    const a = await person('/todos/?writes=socket', 'a');
    const b = await person('/todos/', 'b');
    for (const { page } of [a, b]) await page.waitForSelector('body[data-ready="true"]');
    const before = await todoTitles(b.page);

    await b.context.setOffline(true);
    // a changes things while b is away…
    await a.page.fill('.new-todo', 'added while b was offline');
    await a.page.press('.new-todo', 'Enter');
    await todoRow(a.page, 'write tests').locator('.toggle').uncheck();
    // …and b changes something too, which shows at once in b and waits for the network.
    await b.page.fill('.new-todo', 'written offline in b');
    await b.page.press('.new-todo', 'Enter');
    await todoRow(b.page, 'written offline in b').waitFor();
    await shot(b.page, 'todomvc-b-offline.png');

    await b.context.setOffline(false);
    await todoRow(b.page, 'added while b was offline').waitFor();
    await b.page.locator('.todo-list li:not(.completed) label:text-is("write tests")').waitFor();
    await todoRow(a.page, 'written offline in b').waitFor();

    const expected = [...before, 'added while b was offline', 'written offline in b'];
    await b.page.waitForFunction((n) => document.querySelectorAll('.todo-list li').length === n, expected.length);
    assert.deepEqual((await todoTitles(a.page)).sort(), [...expected].sort());
    assert.deepEqual((await todoTitles(b.page)).sort(), [...expected].sort());
    const { items } = await server.state('/api/todos');
    assert.deepEqual([...items.values()].map((t) => t.title).sort(), [...expected].sort());
    await shot(a.page, 'todomvc-a-converged.png');
    await shot(b.page, 'todomvc-b-converged.png');
    await a.context.close();
    await b.context.close();
  });

  it('Chat: two signed-in people see each other’s tagged messages; the tag filter narrows the list', async () => {
    const people = [await person('/chat/#demo', 'ada'), await person('/chat/#demo', 'bob')];
    for (const { page, name } of people) {
      await page.fill('#name', name);
      await page.click('#sign-in button');
      await page.waitForSelector('body[data-ready="demo"]');
    }
    const [ada, bob] = people;
    const send = async ({ page }, content, tags = '') => {
      await page.fill('#content', content);
      await page.fill('#tags', tags);
      await page.press('#content', 'Enter');
    };
    await send(ada, 'hello from ada', 'greeting');
    await send(bob, 'lunch at noon?', 'food, plans');
    await send(ada, 'yes please', 'food');
    const contents = (page) => page.$$eval('#messages li:not(.hidden) .content', (els) => els.map((e) => e.textContent));
    for (const { page } of people) {
      await page.waitForFunction(() => document.querySelectorAll('#messages li:not(.pending)').length === 3);
      assert.deepEqual(await contents(page), ['hello from ada', 'lunch at noon?', 'yes please']);
    }
    assert.equal(await bob.page.locator('#messages li', { hasText: 'hello from ada' }).locator('.user').textContent(), 'ada');

    await bob.page.click('#tag-list .tag:text-is("food")');
    assert.deepEqual(await contents(bob.page), ['lunch at noon?', 'yes please']);
    await send(ada, 'more food talk', 'food');
    await send(ada, 'unrelated', 'misc');
    await bob.page.locator('#messages li .content:text-is("more food talk")').waitFor();
    await bob.page.locator('#messages li.hidden .content:text-is("unrelated")').waitFor({ state: 'attached' });
    assert.deepEqual(await contents(bob.page), ['lunch at noon?', 'yes please', 'more food talk']);
    await shot(bob.page, 'chat-bob-filtered.png');

    // Ada deletes her own message; it disappears for Bob.
    await ada.page.locator('#messages li', { hasText: 'unrelated' }).locator('.delete').click();
    await bob.page.locator('#messages li .content:text-is("unrelated")').waitFor({ state: 'detached' });
    await bob.page.click('#clear-filter');
    assert.deepEqual(await contents(bob.page), ['hello from ada', 'lunch at noon?', 'yes please', 'more food talk']);
    await shot(ada.page, 'chat-ada.png');
    for (const { context } of people) await context.close();
  });

  it('Team tasks: drag to reorder and ship a task; the other window sees the order, the job and the task move, live', async () => {
    const windows = [await person('/tasks/', 'dee-1'), await person('/tasks/', 'dee-2')];
    const [one, two] = windows;
    await one.page.fill('#name', 'dee');
    await one.page.click('#signin button');
    await one.page.waitForSelector('body[data-ready="dee"]');
    await two.page.reload(); // same person, second window: the sign-in cookie is per context, so sign in there too
    await two.page.fill('#name', 'dee');
    await two.page.click('#signin button');
    await two.page.waitForSelector('body[data-ready="dee"]');
    const titles = (page, list) => page.$$eval(`#${list} li .title`, (spans) => spans.map((s) => s.textContent));
    const until = async (page, list, expected) => {
      await page.waitForFunction(([l, e]) => JSON.stringify([...document.querySelectorAll(`#${l} li .title`)].map((s) => s.textContent)) === e,
        [list, JSON.stringify(expected)], { timeout: TIMEOUT });
    };

    for (const title of ['one', 'two', 'three']) {
      await one.page.fill('#title', title);
      await one.page.press('#title', 'Enter');
      await one.page.locator('#tasks li:not(.pending) .title', { hasText: title }).waitFor();
    }
    await until(two.page, 'tasks', ['one', 'two', 'three']);

    // Drag "three" onto "one": it goes before it, in both windows.
    await one.page.dragAndDrop('#tasks li:has(.title:text-is("three"))', '#tasks li:has(.title:text-is("one"))');
    await until(one.page, 'tasks', ['three', 'one', 'two']);
    await until(two.page, 'tasks', ['three', 'one', 'two']);

    // Ship "two" from the second window: the job succeeds, the task leaves the list and arrives in "shipped" — in both.
    await two.page.locator('#tasks li:has(.title:text-is("two")) .ship').click();
    for (const { page } of windows) {
      await page.locator('#jobs li .state.succeeded').waitFor();
      await until(page, 'tasks', ['three', 'one']);
      await until(page, 'shipped', ['two']);
    }
    assert.match(await one.page.locator('#jobs li .title').first().textContent(), /shipped "two"/);
    await shot(one.page, 'tasks.png');
    for (const { context } of windows) await context.close();
  });

  it('raised no errors in any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
