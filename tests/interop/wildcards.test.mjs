// Inner wildcards (/api/flows/*/messages) at the callback level, with the real clients. Faye's matcher knows only
// trailing wildcards and throws on a message whose channel is a pattern, so:
// - plain faye: the subscribe is refused (errback, 405) with the trailing wildcard to use instead, which works;
// - unmodified cometd: asks with ext {delivery: 'pattern'} and its callback gets each event once, on the pattern's
//   channel with the concrete one in ext.channel; overlaps that cometd would route twice are refused (409).
// (The Tidings JS client: tests/browser/wildcards.test.mjs; the .NET client: tests/Tidings.Client.Tests.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { startServer, connectClient, disconnectAll, waitFor, withTimeout } from './server.mjs';

const PATTERN = '/api/flows/*/messages';

describe('inner wildcards with real clients', () => {
  let server;
  let token;
  const clients = [];

  const rest = async (method, path, body) => {
    const response = await fetch(server.base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 201, `${method} ${path}`);
    return response.json();
  };

  /** Posts one message to each flow in order, then a marker flow's message; returns the marker's channel. */
  const postAll = async (flows, marker) => {
    for (const [flow, content] of flows) await rest('POST', flow, { content });
    await rest('POST', '/api/todos', { title: 'not a message' });
    await rest('POST', marker, { content: 'marker' });
  };

  /** Subscribes a cometd client with subscribe props; resolves with the reply (successful or not). */
  const cometdSubscribe = (client, channel, callback, props) => withTimeout(new Promise((resolve) => {
    client.cometd.subscribe(channel, callback, props, resolve);
  }), 10_000, `cometd subscribe ${channel}`);

  before(async () => {
    server = await startServer();
    const response = await fetch(`${server.base}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'interop' }),
    });
    token = (await response.json()).token;
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  for (const kind of ['faye-websocket', 'faye-long-polling']) {
    it(`${kind}: an inner wildcard is refused plainly, and the trailing wildcard it names runs the callback once per event`, async () => {
      const client = await connectClient(kind, server, { token });
      clients.push(client);
      const tag = randomUUID().slice(0, 8);
      const [a, b, marker] = ['a', 'b', 'z'].map((p) => `/api/flows/${p}${tag}/messages`);

      await assert.rejects(client.subscribe(PATTERN, () => assert.fail('a refused subscription never runs')), (error) => {
        assert.equal(error.code, 405);
        assert.match(error.message, /Subscribe to \/api\/flows\/\*\* instead/);
        return true;
      });
      const refusal = client.replies.filter((m) => m.channel === '/meta/subscribe' && m.subscription === PATTERN);
      assert.equal(refusal[0].ext.instead, '/api/flows/**');

      const trailing = [];
      const exact = [];
      const subscription = client.client.subscribe('/api/flows/**').withChannel((channel, data) => trailing.push([channel, data.body.content]));
      await withTimeout(Promise.resolve(subscription), 10_000, 'subscribe /api/flows/**');
      await client.subscribe(a, (data) => exact.push(data.body.content));

      await postAll([[a, 'one'], [b, 'two']], marker);
      await waitFor(() => trailing.length >= 3, { message: 'the marker' });
      assert.deepEqual(trailing, [[a, 'one'], [b, 'two'], [marker, 'marker']]);
      assert.deepEqual(exact, ['one']);
    });
  }

  for (const kind of ['cometd-websocket', 'cometd-long-polling']) {
    it(`${kind}: with ext.delivery 'pattern' the callback runs once per event; an exact subscription next to it once too`, async () => {
      const client = await connectClient(kind, server, { token });
      clients.push(client);
      const tag = randomUUID().slice(0, 8);
      const [a, b, marker] = ['a', 'b', 'z'].map((p) => `/api/flows/${p}${tag}/messages`);
      const inner = [];
      const exact = [];

      const reply = await cometdSubscribe(client, PATTERN, (message) => inner.push(message), { ext: { delivery: 'pattern' } });
      assert.equal(reply.successful, true, JSON.stringify(reply));
      await client.subscribe(a, (message) => exact.push(message));

      await postAll([[a, 'one'], [b, 'two']], marker);
      await waitFor(() => inner.length >= 3, { message: 'the marker' });
      assert.deepEqual(inner.map((m) => [m.channel, m.ext.channel, m.data.body.content]),
        [[PATTERN, a, 'one'], [PATTERN, b, 'two'], [PATTERN, marker, 'marker']]);
      assert.deepEqual(inner.map((m) => [m.data.method, m.data.seq]), [['POST', 1], ['POST', 1], ['POST', 1]]);
      assert.deepEqual(exact.map((m) => [m.channel, m.data.body.content]), [[a, 'one']]);
    });
  }

  it('cometd without ext.delivery is refused with the reason, and an overlap cometd would route twice is refused', async () => {
    const client = await connectClient('cometd-websocket', server, { token });
    clients.push(client);

    const plain = await cometdSubscribe(client, PATTERN, () => assert.fail('refused'));
    assert.equal(plain.successful, false);
    assert.match(plain.error, /^405:\/api\/flows\/\*\/messages:.*\/api\/flows\/\*\* instead/);

    const trailing = [];
    assert.equal((await cometdSubscribe(client, '/api/flows/**', (m) => trailing.push(m))).successful, true);
    const overlap = await cometdSubscribe(client, PATTERN, () => assert.fail('refused'), { ext: { delivery: 'pattern' } });
    assert.equal(overlap.successful, false);
    assert.match(overlap.error, /^409:.*Overlaps \/api\/flows\/\*\*/);

    // The session is unharmed: the trailing wildcard still runs once per event, on the concrete channel.
    const flow = `/api/flows/o${randomUUID().slice(0, 8)}/messages`;
    await rest('POST', flow, { content: 'once' });
    await rest('POST', flow, { content: 'marker' });
    await waitFor(() => trailing.length >= 2, { message: 'both events' });
    assert.deepEqual(trailing.map((m) => [m.channel, m.data.body.content]), [[flow, 'once'], [flow, 'marker']]);
  });

  it('a signed-out cometd client with pattern delivery gets no flow event, but the public todos it may see', async () => {
    const client = await connectClient('cometd-long-polling', server);
    clients.push(client);
    const seen = [];
    assert.equal((await cometdSubscribe(client, PATTERN, (m) => seen.push(m), { ext: { delivery: 'pattern' } })).successful, true);
    const todos = [];
    await client.subscribe('/api/todos', (m) => todos.push(m));

    await rest('POST', `/api/flows/p${randomUUID().slice(0, 8)}/messages`, { content: 'members only' });
    await rest('POST', '/api/todos', { title: 'for everyone' });
    await waitFor(() => todos.length >= 1, { message: 'the public event' });
    assert.deepEqual(seen.filter((m) => m.data?.body), [], 'no flow record reaches a signed-out client');
  });
});
