// The core of clients/js through outages: a dropped network, a server restart, a replaced store and a
// change log that no longer reaches back. Each ends with the collection equal to the server's.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import faye from 'faye';

import { createClient } from '../../clients/js/src/index.js';
import { startServer, openCollection, converged, waitFor, TcpProxy } from './server.mjs';

// Public, so the client needs no token (a replaced store also replaces the demo's token key).
const PATH = '/api/todos';

/** Some creates, an update and a delete by another writer. */
async function changesByOthers(server, label) {
  const a = (await server.rest('POST', PATH, { title: `${label} a` })).body;
  const b = (await server.rest('POST', PATH, { title: `${label} b` })).body;
  await server.rest('PATCH', `${PATH}/${a.id}`, { completed: true });
  await server.rest('DELETE', `${PATH}/${b.id}`);
  await server.rest('POST', PATH, { title: `${label} c` });
  return { a, b };
}

describe('recovery', { timeout: 90_000 }, () => {
  let server;
  let proxy;
  const open = [];

  before(async () => {
    // A short connect hold, so a client notices a dead server quickly.
    server = await startServer({ 'Bayeux:ConnectTimeout': '00:00:05' });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((f) => f.close()));
    await proxy?.close();
    proxy = null;
  });
  after(async () => { await server?.dispose(); });

  const through = async (options = {}) => {
    proxy = await new TcpProxy(server.port).listen();
    const f = await openCollection(faye, createClient, server, PATH, { url: proxy.base, ...options });
    open.push(f);
    return f;
  };

  for (const writes of ['rest', 'socket']) {
    it(`catches up exactly after the network drops (${writes} writes)`, async () => {
      const f = await through({ writes });
      await f.collection.create({ title: 'before the drop' });
      await converged(f, server, PATH);
      proxy.down();
      await waitFor(() => !f.client.online, { message: 'the client to notice', timeout: 15_000 });
      const { b } = await changesByOthers(server, `offline-${writes}`);
      // A write made while offline shows at once and is sent when the network is back.
      const mine = f.collection.create({ title: `written offline (${writes})` });
      proxy.up();
      await mine;
      await converged(f, server, PATH);
      assert.equal(f.count('reset'), 1, 'no reload: the missed changes were replayed');
      assert.equal(f.collection.get(b.id), undefined);
      for (const id of f.collection.items.keys()) assert.ok(f.adds(id) <= 1, `${id} added once: ${JSON.stringify(f.log.filter((e) => e.record?.id === id))}`);
    });
  }

  it('re-subscribes with since/epoch after a server restart and replays what it missed', async () => {
    // REST catch-ups fail in this test, so the missed changes can only come from the re-subscribe.
    const fetch = async (url, init) => {
      if (String(url).includes('?since=')) throw new TypeError('catch-up disabled by the test');
      return globalThis.fetch(url, init);
    };
    const f = await through({ fetch });
    await changesByOthers(server, 'before restart');
    await converged(f, server, PATH);
    const { seq, epoch } = f.collection;
    const subscribes = f.gate.subscribes.length;

    proxy.down();
    await server.restart(); // same data, new process: every Bayeux session is gone
    const { a } = await changesByOthers(server, 'while restarting');
    proxy.up();

    // Faye re-handshakes on its own; its re-subscribe carries the position this copy had reached.
    const resubscribe = await waitFor(() => f.gate.subscribes.slice(subscribes).find((m) => m.subscription === PATH),
      { timeout: 15_000, message: 'the re-subscribe' });
    await converged(f, server, PATH);
    assert.deepEqual(resubscribe?.ext, { since: seq, epoch }, JSON.stringify(f.gate.subscribes));
    assert.equal(f.count('reset'), 1, 'replayed, not reloaded');
    assert.equal(f.collection.get(a.id).completed, true);
  });

  it('reloads when the server answers RESET (a new store, another epoch)', async () => {
    const f = await through();
    await changesByOthers(server, 'old store');
    await converged(f, server, PATH);
    const oldEpoch = f.collection.epoch;

    proxy.down();
    await server.restartEmpty();
    const fresh = (await server.rest('POST', PATH, { title: 'only in the new store' })).body;
    proxy.up();

    await converged(f, server, PATH);
    assert.notEqual(f.collection.epoch, oldEpoch);
    assert.deepEqual(f.collection.toArray(), [fresh]);
    assert.ok(f.count('reset') >= 2, 'reloaded');
  });
});

describe('recovery when the change log does not reach back', { timeout: 60_000 }, () => {
  let server;
  const open = [];

  before(async () => { server = await startServer({ 'Tidings:MaxReplay': '3' }); });
  afterEach(async () => { await Promise.all(open.splice(0).map((f) => f.close())); });
  after(async () => { await server?.dispose(); });

  it('reloads on 410 when a gap is wider than the server replays', async () => {
    const f = await openCollection(faye, createClient, server, PATH);
    open.push(f);
    f.gate.drop(5);
    await changesByOthers(server, 'lost'); // five changes, all dropped on the way
    assert.equal(f.collection.seq, 0);
    const last = (await server.rest('POST', PATH, { title: 'after the gap' })).body;
    await converged(f, server, PATH);
    assert.equal(f.collection.get(last.id).title, 'after the gap');
    assert.equal(f.count('reset'), 2, 'a gap of 5 with MaxReplay=3 is a reload');
    const status = await server.rest('GET', `${PATH}?since=0&epoch=${f.collection.epoch}`);
    assert.equal(status.status, 410, 'the server indeed refuses to replay that far');
  });
});
