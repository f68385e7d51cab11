// The JS client's subscribe() on the real faye client, in Node, against a real server: inner wildcards
// (/api/flows/*/messages) run their handler once per event with the concrete channel, next to overlapping
// trailing-wildcard and exact subscriptions of the same client.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import faye from 'faye';

import { createClient } from '../../clients/js/src/index.js';
import { startServer, waitFor, closeFaye } from './server.mjs';

describe('subscribe with inner wildcards', { timeout: 90_000 }, () => {
  let server;
  let token;
  const open = [];

  const connect = () => {
    const fayeClient = new faye.Client(`${server.base}/bayeux`, { retry: 0.3, timeout: 10 });
    const client = createClient({ url: server.base, faye: fayeClient, token, retry: 0.3 });
    open.push({ client, fayeClient });
    return client;
  };

  /** Records handler calls as [channel, content]. */
  const recorder = () => {
    const calls = [];
    const handler = (data, channel) => calls.push([channel, data?.body?.content ?? data?.body?.title]);
    return { calls, handler };
  };

  before(async () => {
    server = await startServer();
    token = await server.signIn('ada');
    server.token = token;
  });
  after(async () => {
    for (const { client, fayeClient } of open) {
      client.close();
      await closeFaye(fayeClient);
    }
    await server?.dispose();
  });

  it('each of overlapping subscriptions runs its handler once per event, with the concrete channel', async () => {
    const tag = randomUUID().slice(0, 8);
    const [a, b, marker] = ['a', 'b', 'z'].map((p) => `/api/flows/${p}${tag}/messages`);
    const client = connect();
    const inner = recorder();
    const trailing = recorder();
    const exact = recorder();
    await client.subscribe('/api/flows/*/messages', inner.handler);
    await client.subscribe('/api/flows/**', trailing.handler);
    await client.subscribe(a, exact.handler);

    await server.rest('POST', a, { content: 'one' });
    await server.rest('POST', b, { content: 'two' });
    await server.rest('POST', '/api/todos', { title: 'not a message' });
    // One session gets its events in order: once the marker is in, everything before it has been handled.
    await server.rest('POST', marker, { content: 'marker' });
    await waitFor(() => inner.calls.length >= 3 && trailing.calls.length >= 3, { message: 'the marker on both patterns' });

    const expected = [[a, 'one'], [b, 'two'], [marker, 'marker']];
    assert.deepEqual(inner.calls, expected);
    assert.deepEqual(trailing.calls, expected);
    assert.deepEqual(exact.calls, [[a, 'one']]);
  });

  it('two handlers of one pattern both run; a cancelled one stops, and so does the pattern once none is left', async () => {
    const tag = randomUUID().slice(0, 8);
    const flow = `/api/flows/c${tag}/messages`;
    const client = connect();
    const first = recorder();
    const second = recorder();
    const watcher = recorder();
    const one = await client.subscribe('/api/flows/*/messages', first.handler);
    const two = await client.subscribe('/api/flows/*/messages', second.handler);
    await client.subscribe(`/api/flows/c${tag}/**`, watcher.handler); // marks what has arrived

    await server.rest('POST', flow, { content: 'both' });
    await waitFor(() => first.calls.length === 1 && second.calls.length === 1, { message: 'both handlers' });
    one.cancel();
    await server.rest('POST', flow, { content: 'second only' });
    await waitFor(() => second.calls.length === 2, { message: 'the remaining handler' });
    two.cancel();
    await server.rest('POST', flow, { content: 'nobody' });
    await waitFor(() => watcher.calls.length === 3, { message: 'the third event at the watcher' });

    assert.deepEqual(first.calls, [[flow, 'both']]);
    assert.deepEqual(second.calls, [[flow, 'both'], [flow, 'second only']]);
  });

  it('a refused subscribe rejects with the server\'s code and reason', async () => {
    const client = connect();
    for (let i = 0; i < 32; i++) await client.subscribe(`/z/*/p${i}`, () => {});
    await assert.rejects(client.subscribe('/z/*/one-too-many', () => {}), (error) => {
      assert.equal(error.status, 429);
      assert.match(error.message, /MaxInnerWildcardsPerSession/);
      return true;
    });
  });
});
