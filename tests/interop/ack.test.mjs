// 6. The CometD acknowledgement extension: raw protocol (re-delivery of an unacknowledged batch, in
// order, until it is acknowledged) and the real CometD AckExtension over websocket and long-polling,
// with the connection cut while a connect reply carrying messages is in flight (a TCP proxy drops the
// reply, then cuts the connection): the message must still arrive, exactly once, in order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { startServer, disconnectAll, RawClient, CometdAdapter, TcpProxy, waitFor, quietPeriod } from './server.mjs';

const unique = () => randomUUID().slice(0, 8);

describe('ack extension', () => {
  let server;
  const clients = [];
  const proxies = [];

  before(async () => {
    server = await startServer({ ConnectTimeout: '00:00:05', SessionGrace: '00:00:10' });
  });

  after(async () => {
    await disconnectAll(clients);
    for (const proxy of proxies) await proxy.close();
    await server?.dispose();
  });

  it('raw: an unacknowledged batch is re-sent, in order, with newer messages, until acknowledged', async () => {
    const client = new RawClient(server);
    const handshake = await client.handshake({ ext: { ack: true } });
    assert.equal(handshake.ext?.ack, true, 'the handshake reply enables the ack extension');
    const channel = `/ack/raw/${unique()}`;
    assert.equal((await client.subscribe(channel)).successful, true);

    const first = await client.connect({ timeout: 0, ext: { ack: -1 } });
    assert.equal(first.reply.successful, true);
    assert.equal(typeof first.reply.ext?.ack, 'number', `connect replies carry ext.ack: ${JSON.stringify(first.reply)}`);
    assert.deepEqual(first.deliveries, []);
    const start = first.reply.ext.ack;

    const publisher = new RawClient(server);
    await publisher.handshake();
    for (const n of [1, 2, 3]) assert.equal((await publisher.publish(channel, { n })).successful, true);

    const batch = await client.connect({ ext: { ack: start } });
    const n1 = batch.reply.ext.ack;
    assert.ok(n1 > start, `a new batch number (${n1} > ${start})`);
    assert.deepEqual(batch.deliveries, [1, 2, 3].map((n) => ({ channel, data: { n } })));

    // Pretend batch n1 was lost: acknowledge only what came before it.
    const again = await client.connect({ ext: { ack: n1 - 1 } });
    const n2 = again.reply.ext.ack;
    assert.ok(n2 > n1, 'the re-send goes out under a newer batch number');
    assert.deepEqual(again.deliveries.map((m) => m.data.n), [1, 2, 3], 'the same messages, in the same order');

    // Lost again, and a new message arrives meanwhile: old ones first, then the new one.
    assert.equal((await publisher.publish(channel, { n: 4 })).successful, true);
    const third = await client.connect({ ext: { ack: n1 - 1 } });
    const n3 = third.reply.ext.ack;
    assert.deepEqual(third.deliveries.map((m) => m.data.n), [1, 2, 3, 4]);

    // Acknowledge everything: nothing is re-sent, and the next connect is held until a new message.
    const quiet = await client.connect({ timeout: 0, ext: { ack: n3 } });
    assert.deepEqual(quiet.deliveries, [], 'acknowledged messages are not re-sent');
    const held = client.connect({ ext: { ack: quiet.reply.ext.ack } });
    await quietPeriod(300);
    assert.equal((await publisher.publish(channel, { n: 5 })).successful, true);
    const fifth = await held;
    assert.deepEqual(fifth.deliveries.map((m) => m.data.n), [5]);
    assert.ok(fifth.elapsed >= 250 && fifth.elapsed < 4000, `held, then released by the publish (${fifth.elapsed} ms)`);

    // Partially acknowledging (n1 acked, later batches not) re-sends only what came after.
    await publisher.publish(channel, { n: 6 });
    const sixth = await client.connect({ ext: { ack: fifth.reply.ext.ack } });
    assert.deepEqual(sixth.deliveries.map((m) => m.data.n), [6]);
    await client.disconnect();
    await publisher.disconnect();
  });

  it('raw: without ext.ack in the handshake there is no ext.ack in connect replies', async () => {
    const client = new RawClient(server);
    const handshake = await client.handshake();
    assert.equal(handshake.ext?.ack, undefined);
    const { reply } = await client.connect({ timeout: 0, ext: { ack: 0 } });
    assert.equal(reply.successful, true);
    assert.equal(reply.ext?.ack, undefined);
    await client.disconnect();
  });

  for (const transport of ['websocket', 'long-polling']) {
    it(`cometd ${transport} + AckExtension: a burst arrives once each, in order`, async () => {
      const client = new CometdAdapter(`cometd-${transport}`, server, { ack: true });
      clients.push(client);
      await client.connect();
      assert.equal(client.handshakeReply.ext?.ack, true);
      const channel = `/ack/burst/${unique()}`;
      await client.subscribe(channel);
      const publisher = new RawClient(server);
      await publisher.handshake();
      const total = 40;
      // One request carrying all publishes, so they are delivered as fast as the server can.
      const batch = Array.from({ length: total }, (_, i) => ({ channel, clientId: publisher.clientId, data: { i }, id: `b${i}` }));
      const replies = await publisher.send(batch);
      assert.ok(replies.every((r) => r.successful), JSON.stringify(replies));
      const got = await client.deliveries.count((m) => m.channel === channel, total, 10_000);
      assert.deepEqual(got.map((m) => m.data.i), Array.from({ length: total }, (_, i) => i));
      // With acks on, websocket deliveries also travel inside connect replies that carry ext.ack.
      const acks = client.replies.filter((m) => m.channel === '/meta/connect' && typeof m.ext?.ack === 'number');
      assert.ok(acks.length > 0, 'connect replies carry batch numbers');
      await quietPeriod(300);
      assert.equal(client.deliveries.filter((m) => m.channel === channel).length, total, 'no duplicates');
      await publisher.disconnect();
    });

    it(`cometd ${transport} + AckExtension: a connect reply lost with the connection is re-delivered once`, async () => {
      const proxy = await new TcpProxy(server.port).listen();
      proxies.push(proxy);
      const client = new CometdAdapter(`cometd-${transport}`, server, { ack: true, url: proxy.bayeux });
      clients.push(client);
      await client.connect();
      const channel = `/ack/lost/${unique()}`;
      await client.subscribe(channel);
      const publisher = new RawClient(server);
      await publisher.handshake();

      await publisher.publish(channel, { step: 'one' });
      await client.deliveries.next((m) => m.channel === channel && m.data.step === 'one', 5000);

      // Let the client's held connect go out, then swallow everything the server sends it.
      proxy.blackhole();
      const marker = `lost-${unique()}`;
      assert.equal((await publisher.publish(channel, { step: 'two', marker })).successful, true);
      await waitFor(() => proxy.dropped.includes(marker), { timeout: 10_000, message: 'the server to send the message into the black hole' });
      assert.equal(client.deliveries.filter((m) => m.data?.marker === marker).length, 0, 'the client did not get it');
      proxy.cut();
      proxy.restore();

      // CometD reconnects, acknowledging only the batches it saw: the server must re-send.
      const message = await client.deliveries.next((m) => m.data?.marker === marker, 15_000, 're-delivery after reconnect');
      assert.deepEqual(message, { channel, data: { step: 'two', marker } });
      await publisher.publish(channel, { step: 'three' });
      await client.deliveries.next((m) => m.channel === channel && m.data.step === 'three', 10_000);
      await quietPeriod(300);
      assert.deepEqual(client.deliveries.filter((m) => m.channel === channel).map((m) => m.data.step), ['one', 'two', 'three'],
        'each message exactly once, in order');
      const handshakes = client.replies.filter((m) => m.channel === '/meta/handshake');
      assert.equal(handshakes.length, 1, 'the session survived: no re-handshake');
      await publisher.disconnect();
    });
  }
});
