// Sorted feeds in the client: items in the server's order, moves shown at once and reconciled, refused moves put
// back, two clients moving at once (REST and socket writes) converge on the server's order; and the Backbone
// adapter keeps the order with `sort` events.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import faye from 'faye';
import Backbone from 'backbone';

import { createClient } from '../../clients/js/src/index.js';
import { liveBackbone } from '../../clients/js/src/backbone.js';
import { positionBetween } from '../../clients/js/src/position.js';
import { startServer, openCollection, converged, waitFor, closeFaye } from './server.mjs';

const TASKS = '/api/users/ada/tasks'; // the demo's sorted feed: anyone signed in reads, only ada writes

describe('sorted feeds', { timeout: 120_000 }, () => {
  let server;
  let ada;
  let bob;
  const open = [];
  const fixture = async (token, options) => {
    const f = await openCollection(faye, createClient, server, TASKS, { token, ...options });
    open.push(f);
    return f;
  };
  const ids = (f) => f.collection.toArray().map((t) => t.id);
  const serverIds = async () => (await server.rest('GET', TASKS)).body.items.map((t) => t.id);

  before(async () => {
    server = await startServer();
    ada = await server.signIn('ada');
    bob = await server.signIn('bob');
    server.token = ada;
    for (const title of ['a', 'b', 'c', 'd', 'e']) await server.rest('POST', TASKS, { title });
  });
  afterEach(async () => { await Promise.all(open.splice(0).map((f) => f.close())); });
  after(async () => { await server?.dispose(); });

  it('makes position keys between any two keys', () => {
    const keys = [positionBetween(null, null)];
    for (let i = 0; i < 500; i++) {
      const at = (i * 7919) % (keys.length + 1);
      const key = positionBetween(keys[at - 1] ?? null, keys[at] ?? null);
      assert.ok((at === 0 || keys[at - 1] < key) && (at === keys.length || key < keys[at]), `${keys[at - 1]} < ${key} < ${keys[at]}`);
      assert.notEqual(key.at(-1), '0');
      keys.splice(at, 0, key);
    }
  });

  it('lists in the server order and shows a move at once, then the server record', async () => {
    const f = await fixture(ada);
    assert.equal(f.collection.sorted, true);
    assert.deepEqual(ids(f), await serverIds());
    const [first, , third] = ids(f);

    const moving = f.collection.move(first, { after: third });
    const shown = ids(f);
    assert.equal(shown.indexOf(first), shown.indexOf(third) + 1, 'moved before any answer');
    const record = await moving;
    assert.equal(record.id, first);
    await converged(f, server, TASKS);
    assert.deepEqual(ids(f), await serverIds());
    assert.deepEqual(ids(f), shown);
  });

  it('puts a refused move back where it was', async () => {
    const f = await fixture(bob); // bob reads ada's tasks but may not change them
    const before = ids(f);
    const errors = [];
    f.collection.on('error', (error) => errors.push(error));
    const moving = f.collection.move(before.at(-1), { to: 'start' });
    assert.equal(ids(f)[0], before.at(-1), 'shown at once');
    await assert.rejects(moving, (error) => error.status === 403);
    assert.deepEqual(ids(f), before);
    assert.equal(errors.length, 1);
    await assert.rejects(f.collection.move(before[0], { to: 'middle' }), TypeError);
  });

  it('places a create where it is asked', async () => {
    const f = await fixture(ada);
    const [, second] = ids(f);
    const created = await f.collection.create({ title: 'placed' }, { before: second });
    await converged(f, server, TASKS);
    assert.equal(ids(f)[1], created.id);
    assert.deepEqual(ids(f), await serverIds());
  });

  it('two clients moving at once, over REST and the socket, converge on the server order', async () => {
    const rest = await fixture(ada);
    const socket = await fixture(ada, { writes: 'socket' });
    const watcher = await fixture(bob);
    let seed = 7;
    const random = (n) => { seed = (seed * 16807) % 2147483647; return seed % n; };
    const moves = [];
    for (let i = 0; i < 40; i++) {
      for (const f of [rest, socket]) {
        const order = ids(f);
        const id = order[random(order.length)];
        const anchor = order[random(order.length)];
        const place = anchor === id ? { to: random(2) ? 'start' : 'end' } : random(2) ? { before: anchor } : { after: anchor };
        moves.push(f.collection.move(id, place));
      }
      if (i % 8 === 0) await Promise.all(moves.splice(0));
    }
    await Promise.all(moves);
    const order = await serverIds();
    for (const f of [rest, socket, watcher]) {
      await converged(f, server, TASKS);
      assert.deepEqual(ids(f), order);
    }
  });

  it('keeps a Backbone collection in order, with sort events, and moves through it', async () => {
    const tidings = createClient({ url: server.base, faye: new faye.Client(`${server.base}/bayeux`, { retry: 0.3 }), retry: 0.3, token: ada });
    try {
      const { LiveCollection } = liveBackbone(Backbone, { client: tidings });
      const tasks = new (LiveCollection.extend({ url: TASKS }))();
      await tasks.fetch({ reset: true });
      assert.deepEqual(tasks.pluck('id'), await serverIds());
      let sorts = 0;
      tasks.on('sort', () => { sorts++; });

      const last = tasks.last();
      const moving = tasks.move(last, { before: tasks.first() });
      assert.equal(tasks.first().id, last.id, 'moved at once');
      assert.ok(sorts >= 1);
      await moving;

      // A move by someone else arrives as a sort.
      sorts = 0;
      const [x, y] = tasks.pluck('id');
      await server.rest('POST', `${TASKS}/${x}/move`, { after: y });
      await waitFor(() => tasks.at(1).id === x, { message: 'the remote move' });
      assert.ok(sorts >= 1);
      await waitFor(async () => JSON.stringify(tasks.pluck('id')) === JSON.stringify(await serverIds()), { message: 'the server order' });
    } finally {
      tidings.close();
      await closeFaye(tidings.faye);
    }
  });
});
