// The core of clients/js through outages: a dropped network, a server restart, a replaced store and a
// change log that no longer reaches back. Each ends with the collection equal to the server's.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import faye from 'faye';

import { createClient } from '../../clients/js/src/index.js';
import { startServer, openCollection, converged, waitFor, withTimeout, TcpProxy } from './server.mjs';

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

  it('times out a socket write that never gets a reply: rejected, rolled back and forgotten', async () => {
    const f = await through({ writes: 'socket', clientOptions: { writeTimeout: 1 } });
    await converged(f, server, PATH);
    const errors = [];
    f.collection.on('error', (e) => errors.push(e));
    // Server-to-client bytes vanish: the publish reaches the server, its reply never comes back.
    proxy.blackhole();
    const promise = f.collection.create({ title: 'reply lost' });
    const [id] = f.collection.pendingIds;
    assert.equal(f.collection.get(id)?.title, 'reply lost', 'shown at once');
    const error = await withTimeout(promise.then(() => null, (e) => e), 15_000, 'the unanswered write to settle');
    assert.equal(error?.status, 408, String(error));
    assert.match(error.message, /no reply/);
    assert.equal(error.operation, 'create');
    assert.equal(error.id, id);
    assert.deepEqual(errors, [error], 'reported once, as a refusal is');
    assert.equal(f.collection.get(id), undefined, 'rolled back');
    assert.deepEqual(f.collection.pendingIds, []);
    assert.equal(f.client.pendingSocketWrites, 0, 'its bookkeeping entry is gone');
    assert.ok(proxy.dropped.length > 0, 'the server did answer; the proxy dropped it');

    // The network comes back (a fresh connection): the server did apply the write, so catch-up
    // brings the record back, and socket writes work again.
    proxy.restore();
    proxy.cut();
    await converged(f, server, PATH);
    assert.equal(f.collection.get(id)?.title, 'reply lost');
    const next = f.collection.create({ title: 'answered' });
    assert.equal(f.client.pendingSocketWrites, 1);
    await next;
    assert.equal(f.client.pendingSocketWrites, 0);
    assert.equal(errors.length, 1);
  });

  it('does not send a socket write that timed out while offline once the network is back', async () => {
    const f = await through({ writes: 'socket', clientOptions: { writeTimeout: 1 } });
    await converged(f, server, PATH);
    proxy.down();
    await waitFor(() => !f.client.online, { message: 'the client to notice', timeout: 15_000 });
    const error = await withTimeout(f.collection.create({ title: 'given up offline' }).then(() => null, (e) => e),
      15_000, 'the offline write to time out');
    assert.equal(error?.status, 408, String(error));
    assert.equal(f.client.pendingSocketWrites, 0);
    proxy.up();
    await waitFor(() => f.client.online, { message: 'the client to reconnect', timeout: 15_000 });
    const answered = await f.collection.create({ title: 'sent after reconnecting' });
    await converged(f, server, PATH);
    const titles = [...(await server.state(PATH)).items.values()].map((t) => t.title);
    assert.ok(titles.includes(answered.title));
    assert.ok(!titles.includes('given up offline'), 'a write reported as failed was not applied later');
  });

  it('times out a REST write whose answer never comes: aborted, rejected, rolled back', async () => {
    const f = await through({ writes: 'rest', clientOptions: { writeTimeout: 1 } });
    await converged(f, server, PATH);
    const errors = [];
    f.collection.on('error', (e) => errors.push(e));
    proxy.blackhole(); // the POST reaches the server; its answer never comes back
    const promise = f.collection.create({ title: 'answer lost' });
    const [id] = f.collection.pendingIds;
    assert.equal(f.collection.get(id)?.title, 'answer lost', 'shown at once');
    const error = await withTimeout(promise.then(() => null, (e) => e), 15_000, 'the unanswered REST write to settle');
    assert.equal(error?.status, 408, String(error));
    assert.match(error.message, /no answer within 1 s/);
    assert.equal(error.operation, 'create');
    assert.equal(error.id, id);
    assert.deepEqual(errors, [error], 'reported once');
    assert.equal(f.collection.get(id), undefined, 'rolled back');
    assert.deepEqual(f.collection.pendingIds, []);

    // The server did apply it: once answers flow again, catch-up brings the record back.
    proxy.restore();
    proxy.cut();
    await converged(f, server, PATH);
    assert.equal(f.collection.get(id)?.title, 'answer lost');
    await f.collection.create({ title: 'answered' });
    assert.equal(errors.length, 1);
  });

  it('retries a REST write while offline only until its deadline, and never sends it after giving up', async () => {
    let posts = 0;
    const fetch = (url, init) => {
      if (init?.method === 'POST') posts++;
      return globalThis.fetch(url, init);
    };
    const f = await through({ writes: 'rest', fetch, clientOptions: { writeTimeout: 2 } });
    await converged(f, server, PATH);
    proxy.down(); // connections refused: every attempt fails at once
    const error = await withTimeout(f.collection.create({ title: 'given up offline (rest)' }).then(() => null, (e) => e),
      15_000, 'the offline REST write to give up');
    assert.equal(error?.status, 408, String(error));
    assert.match(error.message, /no answer within 2 s \(\d+ attempts\)/);
    assert.equal(error.cause?.status, 0, 'the last attempt found no server');
    const attempts = posts;
    assert.ok(attempts >= 2 && attempts <= 8, `retried, with growing pauses, a bounded number of times: ${attempts}`);
    assert.deepEqual(f.collection.pendingIds, []);

    proxy.up();
    await waitFor(() => f.client.online, { message: 'the client to reconnect', timeout: 15_000 });
    const answered = await f.collection.create({ title: 'sent after reconnecting (rest)' });
    await converged(f, server, PATH);
    assert.equal(posts, attempts + 1, 'no attempt of the given-up write after it settled');
    const titles = [...(await server.state(PATH)).items.values()].map((t) => t.title);
    assert.ok(titles.includes(answered.title));
    assert.ok(!titles.includes('given up offline (rest)'));
  });

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

  it('loads when its first subscribe reaches a server that does not know the session (401), as behind a balancer', async () => {
    // Behind a load balancer, faye's WebSocket can reach another node than its handshake did (it opens before the
    // handshake reply sets the affinity cookie): that node answers the subscribe 401 and faye handshakes again.
    const before = (await server.rest('POST', PATH, { title: 'there before the load' })).body;
    const f = await openCollection(faye, createClient, server, PATH, { ready: false });
    open.push(f);
    let subscribes = 0;
    f.fayeClient.addExtension({
      outgoing: (message, callback) => {
        if (message.channel === '/meta/subscribe' && subscribes++ === 0) message.clientId = 'known-on-another-node';
        callback(message);
      },
    });
    await withTimeout(f.collection.ready, 15_000, 'the collection to load after a 401 on its first subscribe');
    assert.ok(subscribes >= 2, 'subscribed again');
    assert.ok(f.collection.get(before.id));
    const after = (await server.rest('POST', PATH, { title: 'after the load' })).body;
    await converged(f, server, PATH);
    assert.ok(f.collection.get(after.id), 'live after subscribing again');
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
