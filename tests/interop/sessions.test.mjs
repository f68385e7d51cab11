// Session lifetime: deliveries queued for a briefly absent client, expiry without connects, and
// 9. the slow consumer: a session whose queue passes Bayeux:MaxQueuedBytes is closed while normal
// subscribers on every transport receive every message.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import WebSocket from 'ws';

import { startServer, connectClient, disconnectAll, CLIENT_KINDS, RawClient, waitFor, withTimeout } from './server.mjs';

const unique = () => randomUUID().slice(0, 8);

describe('session expiry', () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startServer({ ConnectTimeout: '00:00:02', SessionGrace: '00:00:02', SweepInterval: '00:00:00.250' });
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  it('a session without connects expires after ConnectTimeout + SessionGrace; live clients do not', async () => {
    const live = [];
    for (const kind of CLIENT_KINDS) live.push(await connectClient(kind, server));
    clients.push(...live);
    const channel = `/expiry/${unique()}`;
    for (const client of live) await client.subscribe(channel);

    const idle = new RawClient(server);
    await idle.handshake();
    assert.equal((await idle.subscribe(channel)).successful, true);
    await idle.connect({ timeout: 0 });
    const lastConnectEnded = Date.now();

    // Unsubscribing from a channel one is not subscribed to succeeds and does not count as activity.
    const probe = async () => {
      const reply = (await idle.request({ channel: '/meta/unsubscribe', clientId: idle.clientId, subscription: '/not/subscribed' }))[0];
      return reply.successful === false ? reply : null;
    };
    const expired = await waitFor(probe, { timeout: 15_000, interval: 100, message: 'the idle session to expire' });
    const lifetime = Date.now() - lastConnectEnded;
    assert.match(expired.error, /^401:/);
    assert.equal(expired.advice?.reconnect, 'handshake');
    assert.ok(lifetime >= 3500, `expired after ${lifetime} ms, not before ConnectTimeout + SessionGrace (4 s)`);
    assert.ok(lifetime < 8000, `expired after ${lifetime} ms`);

    // The real clients kept their sessions alive by connecting: they still receive, with their first clientIds.
    const publisher = new RawClient(server);
    await publisher.handshake();
    await publisher.publish(channel, { still: 'here' });
    for (const client of live) {
      await client.deliveries.next((m) => m.channel === channel, 5000, `${client.kind} after the idle session expired`);
      assert.equal(client.replies.filter((m) => m.channel === '/meta/handshake').length, 1, `${client.kind} never re-handshook`);
    }
  });
});

describe('slow consumer', () => {
  const MAX_QUEUED = 8192;
  let server;
  const clients = [];

  before(async () => {
    // A long grace period, so the slow session can only end by overflowing its queue, not by expiring.
    server = await startServer({ ConnectTimeout: '00:00:02', SessionGrace: '00:01:00', MaxQueuedBytes: MAX_QUEUED });
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  it('deliveries for a briefly absent client wait for its next connect, in order', async () => {
    const client = new RawClient(server);
    await client.handshake();
    const channel = `/queued/${unique()}`;
    await client.subscribe(channel);
    await client.connect({ timeout: 0 });
    const publisher = new RawClient(server);
    await publisher.handshake();
    for (let i = 0; i < 10; i++) await publisher.publish(channel, { i });
    const { deliveries } = await client.connect({ timeout: 0 });
    assert.deepEqual(deliveries.map((m) => m.data.i), [...Array(10).keys()]);
    await client.disconnect();
    await publisher.disconnect();
  });

  it('a session that never connects is closed when its queue passes MaxQueuedBytes; normal subscribers get everything', async () => {
    const channel = `/flood/${unique()}`;
    const normal = [];
    for (const kind of CLIENT_KINDS) normal.push(await connectClient(kind, server));
    clients.push(...normal);
    for (const client of normal) await client.subscribe(channel);

    const slow = new RawClient(server);
    await slow.handshake();
    assert.equal((await slow.subscribe(channel)).successful, true);
    await slow.connect({ timeout: 0 }); // …and never again

    const publisher = await connectClient('faye-long-polling', server);
    clients.push(publisher);
    const total = 60;
    const padding = 'p'.repeat(300); // 60 × ~330 bytes ≈ 20 KB > 8 KB
    const started = Date.now();
    for (let i = 0; i < total; i++) await publisher.publish(channel, { i, padding });

    for (const client of normal) {
      const got = await client.deliveries.count((m) => m.channel === channel, total, 15_000, `${total} messages (${client.kind})`);
      assert.deepEqual(got.map((m) => m.data.i), [...Array(total).keys()], `${client.kind}: every message once, in order`);
    }
    const { reply, deliveries } = await slow.connect({ timeout: 0 });
    assert.equal(reply.successful, false, `the slow session was closed: ${JSON.stringify(reply)}`);
    assert.match(reply.error, /^401:/);
    assert.equal(reply.advice?.reconnect, 'handshake');
    assert.deepEqual(deliveries, [], 'nothing from the overflowed queue is delivered');
    assert.ok(Date.now() - started < 60_000, 'closed by overflow, not by expiry');

    // It can come back with a new handshake, and then receives again.
    await slow.handshake();
    assert.equal((await slow.subscribe(channel)).successful, true);
    await publisher.publish(channel, { i: 'again' });
    const again = await slow.connect({ timeout: 0 });
    assert.deepEqual(again.deliveries, [{ channel, data: { i: 'again' } }]);
    for (const client of normal) {
      assert.equal(client.replies.filter((m) => m.channel === '/meta/handshake').length, 1, `${client.kind} was never closed`);
    }
    await slow.disconnect();
  });

  it('a websocket session (ack extension, never connecting) that overflows is closed with 1008 policy violation', async () => {
    const channel = `/flood-ws/${unique()}`;
    const watcher = await connectClient('cometd-websocket', server);
    clients.push(watcher);
    await watcher.subscribe(channel);

    const socket = new WebSocket(server.wsUrl);
    const frames = [];
    socket.on('message', (data) => frames.push(...JSON.parse(data.toString())));
    const closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    try {
      socket.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], ext: { ack: true }, id: 'h' }]));
      const handshake = await waitFor(() => frames.find((m) => m.id === 'h'), { message: 'the websocket handshake reply' });
      assert.equal(handshake.successful, true);
      assert.equal(handshake.ext?.ack, true);
      socket.send(JSON.stringify([{ channel: '/meta/subscribe', clientId: handshake.clientId, subscription: channel, id: 's' }]));
      assert.equal((await waitFor(() => frames.find((m) => m.id === 's'))).successful, true);

      const publisher = new RawClient(server);
      await publisher.handshake();
      const padding = 'w'.repeat(400);
      for (let i = 0; i < 40; i++) await publisher.publish(channel, { i, padding }); // ≈ 17 KB > 8 KB
      const { code, reason } = await withTimeout(closed, 5000, 'the server to close the overflowing websocket');
      assert.equal(code, 1008, `closed with policy violation (${code} ${reason})`);
      assert.match(reason, /MaxQueuedBytes/);
      const got = await watcher.deliveries.count((m) => m.channel === channel, 40, 10_000);
      assert.deepEqual(got.map((m) => m.data.i), [...Array(40).keys()], 'the normal websocket subscriber got everything');
      const after = await publisher.request({ channel: '/meta/connect', clientId: handshake.clientId, connectionType: 'long-polling' });
      assert.match(after[0].error ?? '', /^401:/, 'the overflowed session is gone');
      await publisher.disconnect();
    } finally {
      socket.terminate();
    }
  });
});
