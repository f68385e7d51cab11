// Live collections through the real clients: REST writes and socket writes reach faye/cometd subscribers as
// {method, body, seq} on the collection's channel; a client that was away catches up exactly with
// ext {since, epoch} — including across a server restart, where the data (and the epoch) survive.
// Flows need sign-in in the demo: the tests sign in by name and present the token (REST: Authorization,
// Bayeux: ext.token on handshake).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { startServer, connectClient, disconnectAll, FayeAdapter, quietPeriod } from './server.mjs';

const TODOS = '/api/todos';

let token;

async function signIn(server, name) {
  const response = await fetch(`${server.base}/api/session`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

async function rest(server, method, path, body) {
  const response = await fetch(server.base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

/**
 * A faye client that remembers the last seq it saw per collection channel and sends it (with the epoch) on
 * every subscribe, including the re-subscribe faye does by itself after a re-handshake.
 */
function catchingUpFaye(kind, server, channel, position) {
  const adapter = new FayeAdapter(kind, server, { token });
  adapter.client.addExtension({
    outgoing: (message, callback) => {
      if (message.channel === '/meta/subscribe' && message.subscription === channel && position.epoch) {
        message.ext = { since: position.seq, epoch: position.epoch };
      }
      callback(message);
    },
    incoming: (message, callback) => {
      if (message.channel === channel && message.data && typeof message.data.seq === 'number') {
        position.seq = message.data.seq;
        if (message.data.epoch) position.epoch = message.data.epoch;
      }
      callback(message);
    },
  });
  return adapter;
}

const events = (client, channel) => client.deliveries.filter((m) => m.channel === channel).map((m) => m.data);

describe('live collections over Bayeux', () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startServer({ ConnectTimeout: '00:00:05', SessionGrace: '00:00:05' });
    token = await signIn(server, 'interop');
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  for (const kind of ['faye-websocket', 'faye-long-polling', 'cometd-websocket', 'cometd-long-polling']) {
    it(`${kind} receives the events of REST writes in seq order`, async () => {
      const flow = `/api/flows/${kind}-${randomUUID().slice(0, 8)}/messages`;
      const client = await connectClient(kind, server, { token });
      clients.push(client);
      await client.subscribe(flow);

      const created = await rest(server, 'POST', flow, { content: 'hello', tags: ['a'] });
      assert.equal(created.status, 201);
      const id = created.json.id;
      assert.equal((await rest(server, 'PATCH', `${flow}/${id}`, { content: 'edited' })).status, 200);
      assert.equal((await rest(server, 'DELETE', `${flow}/${id}`)).status, 204);

      await client.deliveries.count((m) => m.channel === flow, 3, 10_000, 'three change events');
      const received = events(client, flow);
      assert.deepEqual(received.map((e) => [e.method, e.seq]), [['POST', 1], ['PUT', 2], ['DELETE', 3]]);
      assert.deepEqual(received[0].body, created.json);
      assert.equal(received[1].body.content, 'edited');
      assert.equal(received[1].body.version, 2);
      assert.equal(received[2].body.id, id);
    });
  }

  it('a socket write from faye is validated like REST, answered in the publish reply and broadcast to others', async () => {
    const flow = `/api/flows/socket-${randomUUID().slice(0, 8)}/messages`;
    const writer = await connectClient('faye-websocket', server, { token });
    const watcher = await connectClient('cometd-long-polling', server, { token });
    clients.push(writer, watcher);
    await watcher.subscribe(flow);

    const uuid = randomUUID();
    await writer.publish(flow, { method: 'POST', body: { id: uuid, content: 'over the socket' } });
    const reply = await writer.replies.next((m) => m.channel === flow && m.successful, 5000, 'publish reply');
    assert.equal(reply.ext.tidings.status, 'Created');
    assert.equal(reply.ext.tidings.record.id, uuid);
    assert.equal(reply.ext.tidings.record.user, 'interop', 'the server stamps the signed-in author');

    const event = await watcher.deliveries.next((m) => m.channel === flow, 5000, 'the broadcast event');
    assert.deepEqual([event.data.method, event.data.seq, event.data.body.id], ['POST', 1, uuid]);

    // The same id again (an optimistic create echoed or retried) creates nothing and emits nothing.
    await writer.publish(flow, { method: 'POST', body: { id: uuid, content: 'over the socket' } });
    // Invalid: content is required. faye rejects the publish with the server's error.
    await assert.rejects(writer.publish(flow, { method: 'POST', body: { tags: ['x'] } }), (error) => {
      assert.equal(error.code, 422);
      assert.match(error.message, /content/);
      return true;
    });
    await quietPeriod();
    assert.equal(events(watcher, flow).length, 1, 'no event for the repeat or the invalid write');
    const listed = await rest(server, 'GET', flow);
    assert.deepEqual([listed.json.items.length, listed.json.seq], [1, 1]);
  });

  it('a faye client that was away catches up exactly with since, then continues live', async () => {
    const flow = `/api/flows/away-${randomUUID().slice(0, 8)}/messages`;
    for (const content of ['1', '2']) await rest(server, 'POST', flow, { content });
    const start = (await rest(server, 'GET', flow)).json;
    const position = { seq: start.seq, epoch: start.epoch };

    // Missed while away: three changes.
    for (const content of ['3', '4', '5']) await rest(server, 'POST', flow, { content });

    const client = catchingUpFaye('faye-websocket', server, flow, position);
    clients.push(client);
    await client.connect();
    await client.subscribe(flow);
    await rest(server, 'POST', flow, { content: '6' });

    await client.deliveries.count((m) => m.channel === flow, 4, 5000, 'replay then live');
    await quietPeriod();
    assert.deepEqual(events(client, flow).map((e) => [e.seq, e.body.content]), [[3, '3'], [4, '4'], [5, '5'], [6, '6']]);
  });

  it('a stale epoch gets a RESET telling the client to reload', async () => {
    const flow = `/api/flows/epoch-${randomUUID().slice(0, 8)}/messages`;
    await rest(server, 'POST', flow, { content: 'x' });
    const client = catchingUpFaye('faye-long-polling', server, flow, { seq: 0, epoch: 'some-other-log' });
    clients.push(client);
    await client.connect();
    await client.subscribe(flow);

    const reset = await client.deliveries.next((m) => m.channel === flow, 5000, 'RESET');
    assert.equal(reset.data.method, 'RESET');
    assert.equal(reset.data.seq, 1);
    assert.equal(reset.data.epoch, (await rest(server, 'GET', flow)).json.epoch);
  });

  it('cometd subscribes with a snapshot and gets the current state first', async () => {
    const flow = `/api/flows/snap-${randomUUID().slice(0, 8)}/messages`;
    await rest(server, 'POST', flow, { content: 'before' });
    const client = await connectClient('cometd-websocket', server, { token });
    clients.push(client);
    await new Promise((resolve, reject) => client.cometd.subscribe(flow, () => {}, { ext: { snapshot: true } },
      (reply) => (reply.successful ? resolve() : reject(new Error(reply.error)))));
    await rest(server, 'POST', flow, { content: 'after' });

    const [snapshot, live] = await client.deliveries.count((m) => m.channel === flow, 2, 5000, 'snapshot then live');
    assert.equal(snapshot.data.method, 'SNAPSHOT');
    assert.deepEqual(snapshot.data.items.map((i) => i.content), ['before']);
    assert.equal(snapshot.data.seq, 1);
    assert.deepEqual([live.data.method, live.data.seq, live.data.body.content], ['POST', 2, 'after']);
  });

  it('across a server restart faye re-subscribes with since and misses nothing written while it was down', async () => {
    const flow = `/api/flows/restart-${randomUUID().slice(0, 8)}/messages`;
    await rest(server, 'POST', flow, { content: 'first' });
    const start = (await rest(server, 'GET', flow)).json;
    const position = { seq: start.seq, epoch: start.epoch };
    const client = catchingUpFaye('faye-websocket', server, flow, position);
    clients.push(client);
    await client.connect();
    await client.subscribe(flow);
    await rest(server, 'POST', flow, { content: 'second' });
    await client.deliveries.next((m) => m.channel === flow && m.data.seq === 2, 5000, 'live before restart');

    await server.stop();
    await server.start(); // same port, same data directory: the log and its epoch survive
    for (const content of ['third', 'fourth']) await rest(server, 'POST', flow, { content });

    // faye notices (401 on connect), re-handshakes and re-subscribes; the extension sends since=2.
    await client.deliveries.count((m) => m.channel === flow, 3, 20_000, 'the missed events after re-subscribing');
    await rest(server, 'POST', flow, { content: 'fifth' });
    await client.deliveries.count((m) => m.channel === flow, 4, 10_000, 'live after restart');
    await quietPeriod();
    assert.deepEqual(events(client, flow).map((e) => [e.seq, e.body.content]),
      [[2, 'second'], [3, 'third'], [4, 'fourth'], [5, 'fifth']]);
  });

  it('faye and cometd without sign-in are refused a flow (403) but may use the public todos', async () => {
    const flow = `/api/flows/private-${randomUUID().slice(0, 8)}/messages`;
    const anonymousFaye = await connectClient('faye-websocket', server);
    const anonymousCometd = await connectClient('cometd-long-polling', server);
    clients.push(anonymousFaye, anonymousCometd);

    await assert.rejects(anonymousFaye.subscribe(flow), (error) => error.code === 403);
    await assert.rejects(anonymousCometd.subscribe(flow), (error) => /^403:/.test(error.reply.error));
    await assert.rejects(anonymousFaye.publish(flow, { method: 'POST', body: { content: 'sneaky' } }), (error) => error.code === 403);
    // A wildcard is accepted, but the flow's events are filtered out for an anonymous recipient.
    await anonymousFaye.subscribe('/api/flows/**');
    await anonymousFaye.subscribe(TODOS);

    await rest(server, 'POST', flow, { content: 'members only' });
    const todo = await rest(server, 'POST', TODOS, { title: 'for everyone' });
    await anonymousFaye.deliveries.next((m) => m.channel === TODOS && m.data.body.id === todo.json.id, 5000, 'the public event');
    await quietPeriod();
    assert.equal(anonymousFaye.deliveries.filter((m) => m.channel === flow).length, 0, 'no flow event reaches a signed-out client');
    assert.deepEqual([(await rest(server, 'GET', flow)).json.items.length], [1], 'the refused socket write stored nothing');
  });

  it('a handshake with a tampered token is refused with a reason', async () => {
    const response = await fetch(server.bayeux, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: 't', ext: { token: `${token.slice(0, -2)}xx` } }]),
    });
    const [reply] = await response.json();
    assert.equal(reply.successful, false);
    assert.match(reply.error, /^403:token:invalid token/);
  });
});
