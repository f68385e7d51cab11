// The demo's third-party browser files (samples/Demo/wwwroot/lib/vendor) are exact copies of the npm
// packages this suite pins, and the demo serves them and the client modules.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const vendor = path.resolve(here, '../../samples/Demo/wwwroot/lib/vendor');
const COPIES = {
  'faye-browser-min.js': 'faye/client/faye-browser-min.js',
  'backbone-min.js': 'backbone/backbone-min.js',
  'underscore-umd-min.js': 'underscore/underscore-umd-min.js',
  'jquery.min.js': 'jquery/dist/jquery.min.js',
  'todomvc-app-css.css': 'todomvc-app-css/index.css',
};

describe('demo static files', { timeout: 60_000 }, () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.dispose(); });

  it('vendored files are byte-identical to the pinned npm packages', () => {
    for (const [file, source] of Object.entries(COPIES)) {
      const copy = readFileSync(path.join(vendor, file));
      const original = readFileSync(path.join(here, 'node_modules', source));
      assert.ok(copy.equals(original), `${file} differs from node_modules/${source}`);
    }
  });

  it('the demo serves the client modules, the vendored files and both apps', async () => {
    const paths = ['/', '/todos/', '/chat/', '/lib/tidings/index.js', '/lib/tidings/backbone.js',
      ...Object.keys(COPIES).map((f) => `/lib/vendor/${f}`)];
    for (const p of paths) {
      const response = await fetch(server.base + p);
      await response.arrayBuffer();
      assert.equal(response.status, 200, p);
    }
    const client = await fetch(`${server.base}/lib/tidings/collection.js`);
    assert.match(client.headers.get('content-type'), /javascript/);
    assert.equal(await client.text(), readFileSync(path.resolve(here, '../../clients/js/src/collection.js'), 'utf8'));
  });
});
