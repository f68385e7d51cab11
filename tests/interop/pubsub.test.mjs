// 2. Publish/subscribe round trips between every pair of real clients (and raw callback-polling),
// 3. wildcards and one-copy delivery, 4. /service channels and remote calls.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { startServer, connectClient, disconnectAll, CLIENT_KINDS, RawClient, quietPeriod, nextId } from './server.mjs';

const unique = () => randomUUID().slice(0, 8);

/** Asserts a delivery is exactly {channel, data}: no clientId, no id, nothing else. */
function assertBareDelivery(message, channel, data) {
  assert.deepEqual(Object.keys(message).sort(), ['channel', 'data'], `delivery carries only channel and data: ${JSON.stringify(message)}`);
  assert.equal(message.channel, channel);
  assert.deepEqual(message.data, data);
}

async function jsonpRequest(server, messages, callback = 'cb') {
  const url = `${server.bayeux}?message=${encodeURIComponent(JSON.stringify(messages))}&jsonp=${encodeURIComponent(callback)}`;
  const response = await fetch(url);
  const text = await response.text();
  if (response.status !== 200) return { status: response.status, text };
  const prefix = `/**/${callback}(`;
  assert.ok(text.startsWith(prefix) && text.endsWith(');'), `JSONP framing: ${text}`);
  assert.match(response.headers.get('content-type'), /text\/javascript/);
  return { status: 200, json: JSON.parse(text.slice(prefix.length, -2)) };
}

describe('publish/subscribe', () => {
  let server;
  const clients = [];
  const subscribers = {};
  const publishers = {};

  before(async () => {
    server = await startServer({ ConnectTimeout: '00:00:10', SessionGrace: '00:00:05' });
    for (const kind of CLIENT_KINDS) {
      subscribers[kind] = await connectClient(kind, server);
      publishers[kind] = await connectClient(kind, server);
      clients.push(subscribers[kind], publishers[kind]);
    }
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  describe('round trip between two clients (every subscriber × publisher pair)', () => {
    for (const subKind of CLIENT_KINDS) {
      for (const pubKind of CLIENT_KINDS) {
        it(`${pubKind} publishes → ${subKind} receives {channel, data} only`, async () => {
          const subscriber = subscribers[subKind];
          const publisher = publishers[pubKind];
          const channel = `/chat/${unique()}`;
          const received = [];
          await subscriber.subscribe(channel, (payload) => received.push(payload));
          const data = { text: `hello from ${pubKind}`, n: 42, nested: { ok: true, list: [1, 'two', null] } };
          await publisher.publish(channel, data);
          const message = await subscriber.deliveries.next((m) => m.channel === channel, 5000, `delivery on ${channel}`);
          assertBareDelivery(message, channel, data);
          // The application callback saw it too (faye passes data, cometd the message).
          assert.equal(received.length, 1);
          assert.deepEqual(subKind.startsWith('faye') ? received[0] : received[0].data, data);
          // The publisher is not subscribed: it gets nothing.
          assert.equal(publisher.deliveries.filter((m) => m.channel === channel).length, 0);
        });
      }
    }
  });

  it('many messages from one publisher arrive in order, each once, on every transport', async () => {
    const channel = `/order/${unique()}`;
    for (const kind of CLIENT_KINDS) await subscribers[kind].subscribe(channel);
    const publisher = publishers['faye-long-polling'];
    const total = 30;
    await Promise.all(Array.from({ length: total }, (_, i) => publisher.publish(channel, { i })));
    for (const kind of CLIENT_KINDS) {
      const got = await subscribers[kind].deliveries.count((m) => m.channel === channel, total, 10_000, `${total} on ${channel} (${kind})`);
      // faye sends the 30 publishes in order (batched); the server must fan them out in that order.
      assert.deepEqual(got.map((m) => m.data.i), Array.from({ length: total }, (_, i) => i), `${kind} got each message once, in order`);
    }
  });

  describe('wildcards', () => {
    for (const kind of CLIENT_KINDS) {
      it(`${kind}: /* matches one segment, /** any depth, and overlapping subscriptions deliver one copy`, async () => {
        const client = subscribers[kind];
        const root = `/wild/${unique()}`;
        await client.subscribe(`${root}/one/*`);
        await client.subscribe(`${root}/deep/**`);
        await client.subscribe(`${root}/dup/y`);
        await client.subscribe(`${root}/dup/*`);
        const publisher = publishers['faye-websocket'];
        const sent = [
          [`${root}/one/a`, true],
          [`${root}/one`, false],
          [`${root}/one/a/b`, false],
          [`${root}/deep/a`, true],
          [`${root}/deep/a/b/c`, true],
          [`${root}/dup/y`, true],
          [`${root}/dup/z`, true],
          [`${root}/dupe/y`, false],
          [`${root}/last`, false],
        ];
        for (const [channel] of sent) await publisher.publish(channel, { channel });
        const expected = sent.filter(([, match]) => match).map(([channel]) => channel);
        await client.deliveries.count((m) => m.channel.startsWith(`${root}/`), expected.length, 5000, `${expected.length} wildcard deliveries`);
        await quietPeriod(300);
        const got = client.deliveries.filter((m) => m.channel.startsWith(`${root}/`));
        assert.deepEqual(got.map((m) => m.channel).sort(), [...expected].sort(), 'exactly the matching channels, each once');
        for (const message of got) assertBareDelivery(message, message.channel, { channel: message.channel });
      });
    }

    it('a /** subscriber gets everything below the root but nothing from /service', async () => {
      const client = await connectClient('faye-websocket', server);
      clients.push(client);
      const root = `/all/${unique()}`;
      await client.subscribe(`${root}/**`);
      await publishers['cometd-websocket'].publish(`${root}/a/b/c/d`, { deep: true });
      const message = await client.deliveries.next((m) => m.channel === `${root}/a/b/c/d`, 5000);
      assertBareDelivery(message, `${root}/a/b/c/d`, { deep: true });
    });
  });

  describe('/service channels', () => {
    for (const kind of ['cometd-websocket', 'cometd-long-polling']) {
      it(`${kind}: remoteCall('echo') gets the reply; nobody else receives it`, async () => {
        const watcher = await connectClient('faye-websocket', server);
        clients.push(watcher);
        await watcher.subscribe('/**');
        // An inner wildcard must not reach into /service either (cometd asks for it on the pattern's channel).
        const inner = await connectClient('cometd-websocket', server);
        clients.push(inner);
        const innerSubscribed = await new Promise((resolve) => inner.cometd.subscribe('/*/echo', () => {}, { ext: { delivery: 'pattern' } }, resolve));
        assert.equal(innerSubscribed.successful, true, JSON.stringify(innerSubscribed));
        const client = publishers[kind];
        const payload = { question: 'ping', n: 7 };
        const reply = await client.remoteCall('echo', payload, 5000);
        assert.equal(reply.successful, true, JSON.stringify(reply));
        assert.equal(reply.channel, '/service/echo');
        assert.deepEqual(reply.data, { echo: payload, clientId: client.clientId });
        await quietPeriod(300);
        assert.deepEqual(watcher.deliveries.items, [], 'a /** subscriber receives no /service message');
        assert.deepEqual(inner.deliveries.items, [], 'a /*/echo subscriber receives no /service message');
        for (const other of Object.values(subscribers)) {
          assert.equal(other.deliveries.filter((m) => m.channel.startsWith('/service/')).length, 0);
        }
      });
    }

    it('cometd remoteCall to an unmapped service fails with 404', async () => {
      const reply = await publishers['cometd-websocket'].remoteCall('nothing-here', {}, 5000);
      assert.equal(reply.successful, false);
      assert.match(String(reply.error), /^404:/);
    });

    for (const kind of ['faye-websocket', 'faye-long-polling']) {
      it(`${kind}: subscribing to /service/echo is refused (403); publishing there reaches only the handler`, async () => {
        const subscriber = await connectClient(kind, server);
        const publisher = publishers[kind];
        clients.push(subscriber);
        await assert.rejects(subscriber.subscribe('/service/echo'), (error) => error.code === 403, 'faye reports 403');
        const refusal = subscriber.replies.filter((m) => m.channel === '/meta/subscribe' && m.subscription === '/service/echo');
        assert.equal(refusal.length, 1);
        assert.equal(refusal[0].successful, false);
        assert.match(refusal[0].error, /^403:/);

        await subscriber.subscribe('/**');
        await publisher.publish('/service/echo', { from: kind });
        const reply = await publisher.replies.next((m) => m.channel === '/service/echo' && m.successful, 5000);
        assert.deepEqual(reply.data, { echo: { from: kind }, clientId: publisher.clientId });
        await quietPeriod(300);
        assert.deepEqual(subscriber.deliveries.items, [], 'the refused subscriber and its /** subscription get nothing');
        for (const other of Object.values(subscribers)) {
          assert.equal(other.deliveries.filter((m) => m.channel.startsWith('/service/')).length, 0);
        }
      });
    }

    it('faye publish to an unmapped /service channel is refused with 404', async () => {
      await assert.rejects(publishers['faye-websocket'].publish('/service/missing', { x: 1 }), (error) => error.code === 404);
    });
  });

  describe('raw callback-polling (JSONP)', () => {
    it('handshake, subscribe, publish and a connect that carries a delivery', async () => {
      const hsId = nextId();
      const hs = await jsonpRequest(server, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'], id: hsId }], 'cp.h');
      const clientId = hs.json[0].clientId;
      assert.equal(hs.json[0].successful, true);
      const channel = `/jsonp/${unique()}`;
      const sub = await jsonpRequest(server, [{ channel: '/meta/subscribe', clientId, subscription: channel, id: nextId() }], 'cp.s');
      assert.equal(sub.json[0].successful, true, JSON.stringify(sub.json));
      assert.equal(sub.json[0].subscription, channel);

      // A held connect is released by a publish from a real client.
      const connect = jsonpRequest(server, [{ channel: '/meta/connect', clientId, connectionType: 'callback-polling', id: nextId() }], 'cp.c');
      const fayeSubscriber = subscribers['faye-websocket'];
      await fayeSubscriber.subscribe(channel);
      await publishers['faye-long-polling'].publish(channel, { via: 'faye' });
      const connected = await connect;
      const deliveries = connected.json.filter((m) => m.channel === channel);
      assert.equal(deliveries.length, 1, JSON.stringify(connected.json));
      assertBareDelivery(deliveries[0], channel, { via: 'faye' });
      const reply = connected.json.find((m) => m.channel === '/meta/connect');
      assert.equal(reply.successful, true);

      // A JSONP publish reaches the faye subscriber.
      const pub = await jsonpRequest(server, [{ channel, clientId, data: { via: 'jsonp' }, id: nextId() }], 'cp.p');
      assert.equal(pub.json[0].successful, true);
      const message = await fayeSubscriber.deliveries.next((m) => m.channel === channel && m.data.via === 'jsonp', 5000);
      assertBareDelivery(message, channel, { via: 'jsonp' });

      // The deliveries reached the JSONP client in order, and its own publish came back to it.
      const next = await jsonpRequest(server, [{ channel: '/meta/connect', clientId, connectionType: 'callback-polling', id: nextId() }], 'cp.c');
      assert.deepEqual(next.json.filter((m) => m.channel === channel).map((m) => m.data), [{ via: 'jsonp' }]);
    });

    it('an invalid callback name is refused with HTTP 400', async () => {
      for (const callback of ['alert(1)', '1abc', 'a..b', 'cb;x', '<script>']) {
        const result = await jsonpRequest(server, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'] }], callback);
        assert.equal(result.status, 400, `callback ${callback} → ${result.status} ${result.text}`);
      }
    });

    it('raw long-polling and callback-polling clients interoperate with cometd', async () => {
      const raw = new RawClient(server);
      await raw.handshake();
      const channel = `/mix/${unique()}`;
      assert.equal((await raw.subscribe(channel)).successful, true);
      await publishers['cometd-long-polling'].publish(channel, { from: 'cometd' });
      const { deliveries } = await raw.connect();
      assert.equal(deliveries.length, 1);
      assertBareDelivery(deliveries[0], channel, { from: 'cometd' });
      await raw.disconnect();
    });
  });
});
