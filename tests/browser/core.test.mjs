// The framework-free core of clients/js, in Node on the real faye client, against a real server:
// initial load, ordering, duplicates, gaps, and optimistic writes reconciled in either order.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import faye from 'faye';

import { createClient } from '../../clients/js/src/index.js';
import { startServer, openCollection, converged, waitFor, quietPeriod } from './server.mjs';

const TODOS = '/api/todos';

describe('live collection core', { timeout: 90_000 }, () => {
  let server;
  const open = [];
  const fixture = async (path = TODOS, options) => {
    const f = await openCollection(faye, createClient, server, path, { token: reader, ...options });
    open.push(f);
    return f;
  };

  let reader;
  before(async () => {
    server = await startServer();
    server.token = await server.signIn('writer'); // the other writer's REST calls
    reader = await server.signIn('reader');
  });
  afterEach(async () => { await Promise.all(open.splice(0).map((f) => f.close())); });
  after(async () => { await server?.dispose(); });

  it('loads a snapshot and then follows the changes others make', async () => {
    const path = '/api/flows/load/messages';
    const first = await server.rest('POST', path, { content: 'before', tags: ['a'] });
    const f = await fixture(path);
    assert.deepEqual(f.collection.toArray(), [first.body]);
    assert.equal(f.count('reset'), 1);
    assert.equal(f.collection.truncated, false);

    const created = (await server.rest('POST', path, { content: 'after' })).body;
    const updated = (await server.rest('PATCH', `${path}/${first.body.id}`, { tags: ['a', 'b'] })).body;
    await server.rest('DELETE', `${path}/${created.id}`);
    await converged(f, server, path);
    assert.deepEqual(f.log.slice(1).map((e) => [e.name, e.record.id]),
      [['add', created.id], ['change', first.body.id], ['remove', created.id]]);
    assert.deepEqual(f.collection.get(first.body.id), updated);
  });

  it('shows a create at once and adds it once when the reply comes before the event', async () => {
    const f = await fixture();
    f.gate.hold(); // events wait; the HTTP reply does not
    const promise = f.collection.create({ title: 'reply first' });
    const [id] = f.collection.pendingIds;
    assert.equal(f.collection.get(id).title, 'reply first', 'visible before any answer');
    const record = await promise;
    assert.equal(record.id, id, 'the server kept the client UUID');
    assert.deepEqual(f.collection.get(id), record, 'the reply replaced the optimistic copy');
    f.gate.release();
    await converged(f, server, TODOS);
    assert.equal(f.adds(id), 1);
    assert.equal(f.collection.toArray().filter((t) => t.id === id).length, 1);
  });

  it('adds a create once when the event comes before the reply', async () => {
    let releaseReply;
    const replyGate = new Promise((resolve) => { releaseReply = resolve; });
    const fetch = async (url, init) => {
      const response = await globalThis.fetch(url, init);
      if (init?.method === 'POST') await replyGate;
      return response;
    };
    const f = await fixture(TODOS, { fetch });
    const promise = f.collection.create({ title: 'event first' });
    const [id] = f.collection.pendingIds;
    await waitFor(() => f.collection.get(id)?.version === 1, { message: 'the event to confirm the create' });
    assert.deepEqual(f.collection.pendingIds, [id], 'the reply is still outstanding');
    releaseReply();
    const record = await promise;
    assert.deepEqual(f.collection.get(id), record);
    await converged(f, server, TODOS);
    assert.equal(f.adds(id), 1);
  });

  it('applies a duplicated event once, even when it comes again after later ones', async () => {
    const f = await fixture();
    f.gate.repeat(1);
    const { body } = await server.rest('POST', TODOS, { title: 'twice on the wire' });
    await converged(f, server, TODOS);
    assert.equal(f.gate.toRepeat, 0, 'the event was delivered twice');
    assert.equal(f.adds(body.id), 1);

    // POST, DELETE, then the POST again: applied again, it would bring the record back.
    f.gate.hold();
    const doomed = (await server.rest('POST', TODOS, { title: 'created then deleted' })).body;
    await server.rest('DELETE', `${TODOS}/${doomed.id}`);
    await waitFor(() => f.gate.queue.length === 2, { message: 'both events held' });
    const [post, postCallback] = f.gate.queue[0];
    f.gate.queue.push([structuredClone(post), postCallback]);
    f.gate.release();
    await converged(f, server, TODOS);
    assert.equal(f.collection.get(doomed.id), undefined);
    assert.deepEqual(f.log.filter((e) => e.record?.id === doomed.id).map((e) => e.name), ['add', 'remove']);
  });

  it('fills a gap from GET ?since and applies the events in seq order', async () => {
    const f = await fixture();
    const start = f.collection.seq;
    f.gate.drop(2);
    const a = (await server.rest('POST', TODOS, { title: 'dropped a' })).body;
    const b = (await server.rest('PATCH', `${TODOS}/${a.id}`, { completed: true })).body;
    const c = (await server.rest('POST', TODOS, { title: 'arrives after the gap' })).body;
    await converged(f, server, TODOS);
    assert.equal(f.collection.seq, start + 3);
    const after = f.log.filter((e) => e.name !== 'reset').slice(-3).map((e) => [e.name, e.record.id, e.record.version]);
    assert.deepEqual(after, [['add', a.id, 1], ['change', a.id, 2], ['add', c.id, 1]]);
    assert.deepEqual(f.collection.get(a.id), b);
    assert.equal(f.count('reset'), 1, 'caught up without a reload');
  });

  it('still fills gaps after a failed catch-up whose retry found nothing left to do', async () => {
    let failNext = false;
    let answered = 0;
    const fetch = async (url, init) => {
      if (String(url).includes('?since=')) {
        if (failNext) {
          failNext = false;
          throw new TypeError('network down');
        }
        answered++;
      }
      return globalThis.fetch(url, init);
    };
    const f = await fixture(TODOS, { fetch });
    failNext = true;
    f.collection.catchUp(); // fails: a retry is scheduled
    await waitFor(() => {
      f.collection.catchUp(); // ignored while a round runs; succeeds once the failed round is over
      return answered > 0;
    }, { message: 'a catch-up after the failed one' });
    // The retry fires with nothing left to do (the catch-up above did it). Its timer is internal to the
    // client (at least 500 ms); wait it out.
    await quietPeriod(800);

    f.gate.drop(1);
    await server.rest('POST', TODOS, { title: 'dropped' });
    await server.rest('POST', TODOS, { title: 'after the gap' });
    await converged(f, server, TODOS, 'the gap to be filled');
  });

  it('reloads instead of holding events past a gap without bound while catch-up keeps failing', async () => {
    let catchUps = 0;
    const fetch = async (url, init) => {
      if (String(url).includes('?since=')) {
        catchUps++;
        throw new TypeError('catch-up unreachable (test)');
      }
      return globalThis.fetch(url, init);
    };
    const f = await fixture(TODOS, { fetch, collectionOptions: { maxHeld: 5 } });
    const start = f.collection.seq;
    const seen = f.gate.seen.length;
    f.gate.drop(1);
    await server.rest('POST', TODOS, { title: 'lost on the way' });
    // Up to the cap, events past the gap are held while catch-up is tried (and fails).
    for (let i = 1; i <= 5; i++) await server.rest('POST', TODOS, { title: `held ${i}` });
    await waitFor(() => f.gate.seen.length === seen + 6 && catchUps >= 2,
      { message: 'the events to arrive and catch-up to fail more than once' });
    assert.equal(f.collection.seq, start, 'nothing past the gap applied');
    assert.equal(f.count('reset'), 1, 'no reload below the cap');

    // One more is past the cap: the held events are dropped and the collection reloads (GET without
    // ?since), which brings everything at once.
    await server.rest('POST', TODOS, { title: 'one too many' });
    await converged(f, server, TODOS, 'the reload past the cap');
    assert.equal(f.count('reset'), 2, 'reloaded once');
  });

  it('rolls back a rejected create and reports it, over REST and over the socket', async () => {
    for (const writes of ['rest', 'socket']) {
      const f = await fixture(TODOS, { writes });
      const before = f.collection.size;
      const errors = [];
      f.collection.on('error', (e) => errors.push(e));
      const promise = f.collection.create({ title: '' });
      const [id] = f.collection.pendingIds;
      assert.equal(f.collection.size, before + 1, `${writes}: shown at once`);
      const error = await promise.then(() => null, (e) => e);
      assert.equal(error?.status, 422, `${writes}: ${error}`);
      assert.ok(error.errors.title, `${writes}: the field is named: ${JSON.stringify(error.errors)}`);
      assert.deepEqual(errors, [error]);
      assert.equal(f.collection.get(id), undefined, `${writes}: rolled back`);
      assert.deepEqual(f.log.filter((e) => e.name !== 'error' && e.record?.id === id).map((e) => e.name), ['add', 'remove']);
      await f.close();
    }
  });

  it('rolls back an update refused for a stale version (412)', async () => {
    const f = await fixture();
    const todo = await f.collection.create({ title: 'contended' });
    await converged(f, server, TODOS);
    f.gate.hold(); // our copy stays at version 1 while another writer moves it on
    const other = (await server.rest('PATCH', `${TODOS}/${todo.id}`, { title: 'theirs' })).body;
    const promise = f.collection.update(todo.id, { title: 'mine' }, { version: true });
    assert.equal(f.collection.get(todo.id).title, 'mine', 'optimistic');
    const error = await promise.then(() => null, (e) => e);
    assert.equal(error?.status, 412);
    assert.equal(f.collection.get(todo.id).title, 'contended', 'rolled back to what this copy knew');
    f.gate.release();
    await converged(f, server, TODOS);
    assert.deepEqual(f.collection.get(todo.id), other);
  });

  it('shows updates and deletes at once and keeps them when the answers arrive', async () => {
    const f = await fixture();
    const todo = await f.collection.create({ title: 'to change' });
    const update = f.collection.update(todo.id, { completed: true });
    assert.equal(f.collection.get(todo.id).completed, true);
    await update;
    const removal = f.collection.remove(todo.id);
    assert.equal(f.collection.get(todo.id), undefined);
    await removal;
    await converged(f, server, TODOS);
    await quietPeriod(200);
    assert.equal(f.collection.get(todo.id), undefined, 'the delete event did not bring it back');
    assert.equal(f.adds(todo.id), 1);
  });

  it('writes through the socket: create, update and delete, each reconciled once in either order', async () => {
    const f = await fixture(TODOS, { writes: 'socket' });
    // Event first: the publish reply is held back.
    f.gate.holdReplies();
    const first = f.collection.create({ title: 'socket, event first' });
    const [a] = f.collection.pendingIds;
    await waitFor(() => f.collection.get(a)?.version === 1, { message: 'the event' });
    f.gate.releaseReplies();
    assert.equal((await first).id, a);
    // Reply first: the event is held back.
    f.gate.hold();
    const record = await f.collection.create({ title: 'socket, reply first' });
    assert.equal(record.version, 1);
    f.gate.release();
    await f.collection.update(record.id, { title: 'socket, edited' });
    await f.collection.remove(a);
    await converged(f, server, TODOS);
    assert.equal(f.collection.get(record.id).title, 'socket, edited');
    assert.equal(f.adds(a), 1);
    assert.equal(f.adds(record.id), 1);
    assert.equal(f.count('error'), 0);
  });

  it('retries a create that got no answer without creating it twice', async () => {
    let failures = 1;
    const fetch = async (url, init) => {
      const response = await globalThis.fetch(url, init);
      if (init?.method === 'POST' && failures-- > 0) throw new TypeError('connection reset (reply lost)');
      return response;
    };
    const f = await fixture(TODOS, { fetch });
    const record = await f.collection.create({ title: 'sent twice' });
    await converged(f, server, TODOS);
    const matching = [...(await server.state(TODOS)).items.values()].filter((t) => t.title === 'sent twice');
    assert.deepEqual(matching, [record], 'one record on the server');
    assert.equal(f.adds(record.id), 1);
  });
});

describe('a collection cut by a server limit', { timeout: 60_000 }, () => {
  let server;
  before(async () => { server = await startServer({ 'Tidings:MaxSnapshotItems': 2, 'Tidings:MaxListItems': 2 }); });
  after(async () => { await server?.dispose(); });

  it('says it is truncated after the snapshot and after a reload, and still applies every change', async () => {
    for (const title of ['a', 'b', 'c']) await server.rest('POST', TODOS, { title });
    const f = await openCollection(faye, createClient, server, TODOS);
    try {
      assert.equal(f.collection.truncated, true);
      assert.equal(f.collection.size, 2);
      const added = (await server.rest('POST', TODOS, { title: 'd' })).body;
      await waitFor(() => f.collection.get(added.id), { message: 'the live add' });
      f.collection.reload();
      await waitFor(() => f.count('reset') === 2, { message: 'the reload' });
      assert.equal(f.collection.truncated, true);
      assert.equal(f.collection.size, 2);
    } finally {
      await f.close();
    }
  });
});
