// The demo's API reference (Scalar at /scalar, reading /openapi/v1.json) in Debian's chromium with every request that
// leaves 127.0.0.1 refused: the page must work offline (Scalar's script ships inside Scalar.AspNetCore and the demo
// serves it), and show the collections' endpoints.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { startServer, ARTIFACTS } from './server.mjs';

const CHROMIUM = '/usr/bin/chromium';

describe('API reference page', { timeout: 180_000 }, () => {
  let server;
  let browser;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), 'chromium is installed (demo.test.mjs installs it when missing)');
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer();
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

  it('renders every collection from the server alone, with nothing fetched from elsewhere', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const outside = [];
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
      outside.push(url.href);
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const scripts = [];
    page.on('response', (response) => { if (response.url().endsWith('.js')) scripts.push(`${response.status()} ${response.url()}`); });

    await page.goto(server.base + '/scalar/');
    // The sidebar names every collection of the demo (a tag each) and every queue; a collection opens on its operations.
    for (const name of ['/api/todos', '/api/flows/{flow}/messages', '/api/users/{user}/tasks', '/api/users/{user}/notes',
      '/api/users/{user}/shipped', 'queue ship', 'queue echo']) {
      await page.getByText(name, { exact: true }).first().waitFor();
    }
    await page.getByText('OpenAPI 3.1.1').first().waitFor();
    await page.getByText('/api/todos', { exact: true }).first().click();
    await page.getByText('Create a record').first().waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'api-reference.png') });

    assert.ok(scripts.some((s) => s.startsWith('200 ') && s.endsWith('/scalar/scalar.js')), scripts.join('\n'));
    assert.deepEqual(outside, [], 'requests that left the server');
    await context.close();
  });

  it('describes every collection the server declares, with its schema', async () => {
    const doc = await (await fetch(server.base + '/openapi/v1.json')).json();
    const declared = await (await fetch(server.base + '/tidings/schema')).json();
    assert.match(doc.openapi, /^3\.1\./);
    assert.ok(declared.collections.length >= 7);
    for (const collection of declared.collections) {
      const list = doc.paths[collection.route]?.get;
      assert.ok(list, `${collection.route} is described`);
      const ref = list.responses['200'].content['application/json'].schema.properties.items.items.$ref;
      const schema = doc.components.schemas[ref.split('/').pop()];
      for (const field of Object.keys(collection.schema.properties ?? {})) {
        assert.ok(schema.properties[field], `${collection.route}: ${field}`);
      }
    }
  });
});
