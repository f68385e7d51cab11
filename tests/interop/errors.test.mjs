// 7. Bad input gets the documented error — and a separately connected faye client keeps working
// after every one of them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import WebSocket from 'ws';

import { startServer, connectClient, disconnectAll, RawClient, post, nextId, withTimeout } from './server.mjs';

const MAX_MESSAGE = 4096;
const MAX_REQUEST = 16384;
const unique = () => randomUUID().slice(0, 8);
// Faye's own copy of the Bayeux 1.0 error grammar (code:args:message, restricted characters).
const fayeGrammar = createRequire(import.meta.url)('faye/src/protocol/grammar.js');

function assertError(reply, code, what) {
  assert.equal(reply.successful, false, `${what}: ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.error, 'string', `${what}: error is a string`);
  assert.match(reply.error, new RegExp(`^${code}:[^:]*:.+`), `${what}: "${reply.error}" is "${code}:args:message"`);
}

/** Opens a raw websocket to the endpoint and returns helpers to exchange JSON frames. */
async function rawSocket(server) {
  const socket = new WebSocket(server.wsUrl);
  const frames = [];
  let wake = null;
  socket.on('message', (data) => {
    frames.push(JSON.parse(data.toString()));
    wake?.();
  });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return {
    socket,
    send: (payload) => socket.send(typeof payload === 'string' ? payload : JSON.stringify(payload)),
    async nextFrame(timeout = 5000) {
      const deadline = Date.now() + timeout;
      while (frames.length === 0) {
        if (Date.now() > deadline) throw new Error('no websocket frame');
        await withTimeout(new Promise((resolve) => { wake = resolve; }), deadline - Date.now(), 'a websocket frame').catch(() => {});
      }
      return frames.shift();
    },
    close: () => socket.close(),
  };
}

describe('bad input', () => {
  let server;
  let watcher;
  let publisher;
  const clients = [];
  let probe = 0;

  /** A separately connected faye client still receives a publish. */
  async function stillWorking() {
    const n = ++probe;
    await publisher.publish('/alive', { n });
    const message = await watcher.deliveries.next((m) => m.channel === '/alive' && m.data.n === n, 5000, `probe ${n}`);
    assert.deepEqual(message, { channel: '/alive', data: { n } });
  }

  before(async () => {
    server = await startServer({
      ConnectTimeout: '00:00:10',
      SessionGrace: '00:00:05',
      MaxMessageBytes: MAX_MESSAGE,
      MaxRequestBytes: MAX_REQUEST,
    });
    watcher = await connectClient('faye-websocket', server);
    publisher = await connectClient('faye-long-polling', server);
    clients.push(watcher, publisher);
    await watcher.subscribe('/alive');
    await stillWorking();
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  it('malformed JSON → HTTP 400 application/problem+json', async () => {
    for (const body of ['[{"channel":', 'not json', '{"channel": "/meta/handshake"} trailing', '[1, 2]', '"just a string"', '']) {
      const result = await post(server, body);
      assert.equal(result.status, 400, `${JSON.stringify(body)} → ${result.status} ${result.text}`);
      assert.match(result.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(result.json?.status, 400);
    }
    await stillWorking();
  });

  it('malformed JSON over a websocket → an error reply; the socket keeps working', async () => {
    const ws = await rawSocket(server);
    try {
      ws.send('[{"channel":');
      const [reply] = await ws.nextFrame();
      assertError(reply, 400, 'garbage frame');
      ws.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h1' }]);
      const [handshake] = await ws.nextFrame();
      assert.equal(handshake.successful, true, JSON.stringify(handshake));
    } finally {
      ws.close();
    }
    await stillWorking();
  });

  it('[] → 200 []', async () => {
    const result = await post(server, '[]');
    assert.equal(result.status, 200);
    assert.deepEqual(result.json, []);
    await stillWorking();
  });

  it('invalid channel names → 405 for publish and subscribe', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    for (const channel of ['/foo//bar', 'no-slash', '/a b', '/', '/foo/', '/foo/**/bar', '/foo/b*r', '/foo/ba**']) {
      assertError(await raw.publish(channel, { x: 1 }), 405, `publish ${channel}`);
      assertError(await raw.subscribe(channel), 405, `subscribe ${channel}`);
    }
    // Wildcards are patterns, not channels: one cannot publish to them. (Tidings accepts an inner '*'
    // in subscriptions, e.g. /api/flows/*/messages, by design; see pubsub.test.mjs.)
    for (const channel of ['/foo/*', '/foo/**', '/foo/*/bar']) {
      assertError(await raw.publish(channel, { x: 1 }), 405, `publish ${channel}`);
    }
    // All or nothing: one bad entry refuses the whole subscription array.
    const mixed = await raw.subscribe(['/ok/channel', '/bad//channel']);
    assertError(mixed, 405, 'subscribe array with an invalid entry');
    await raw.disconnect();
    await stillWorking();
  });

  it('an oversized message → a 413 error reply; its neighbours in the batch still work', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    const channel = `/big/${unique()}`;
    await raw.subscribe(channel);
    const big = 'x'.repeat(MAX_MESSAGE + 100);
    const replies = await raw.send([
      { channel, clientId: raw.clientId, data: { big }, id: 'big' },
      { channel, clientId: raw.clientId, data: { small: true }, id: 'small' },
    ]);
    const bigReply = replies.find((m) => m.id === 'big');
    const smallReply = replies.find((m) => m.id === 'small');
    assertError(bigReply, 413, 'oversized message');
    assert.equal(bigReply.channel, channel);
    assert.equal(smallReply.successful, true);
    const { deliveries } = await raw.connect({ timeout: 0 });
    assert.deepEqual(deliveries, [{ channel, data: { small: true } }], 'only the small message was published');
    await raw.disconnect();
    await stillWorking();
  });

  for (const kind of ['cometd-websocket', 'cometd-long-polling']) {
    it(`an oversized message from ${kind} is refused with 413; the client keeps working`, async () => {
      const cometd = await connectClient(kind, server);
      clients.push(cometd);
      await assert.rejects(cometd.publish('/big/cometd', { big: 'y'.repeat(MAX_MESSAGE + 10) }),
        (error) => /^413:/.test(error.reply?.error));
      await cometd.publish('/alive/other', { ok: 2 });
      await stillWorking();
    });
  }

  for (const kind of ['faye-websocket', 'faye-long-polling']) {
    it(`an oversized message from ${kind} is refused with an error faye can read (code 413)`, async () => {
      const faye = await connectClient(kind, server);
      clients.push(faye);
      let failure;
      await assert.rejects(faye.publish('/big/faye', { big: 'y'.repeat(MAX_MESSAGE + 10) }), (error) => { failure = error; return true; });
      await faye.publish('/alive/other', { ok: 1 });
      await stillWorking();
      // Faye parses "code:args:message" with the Bayeux error grammar; a message it cannot parse
      // leaves code null and the application cannot tell a 413 from anything else.
      assert.equal(failure.code, 413, `faye could not parse the error: ${JSON.stringify(failure)}`);
    });
  }

  it('every error string follows the Bayeux error grammar (as faye parses it)', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    const errors = [];
    const collect = (reply) => { if (reply && reply.successful === false) errors.push(reply.error); };
    collect((await post(server, [{ channel: '/meta/handshake', version: '2.0', supportedConnectionTypes: ['long-polling'] }])).json[0]);
    collect((await post(server, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['carrier-pigeon', 'smoke'] }])).json[0]);
    collect(await raw.publish('/a b', {}));
    collect(await raw.publish('/meta/subscribe/x', {}));
    collect(await raw.publish('/service/missing', {}));
    collect(await raw.subscribe('/meta/**'));
    collect((await raw.send([{ channel: '/x', clientId: raw.clientId, id: 'nodata' }]))[0]);
    collect((await raw.send([{ channel: '/x', clientId: 'unknown', data: {}, id: 'u' }]))[0]);
    collect((await raw.send([{ channel: '/x', clientId: raw.clientId, data: { big: 'q'.repeat(MAX_MESSAGE) }, id: 'big' }]))[0]);
    collect((await raw.send([{ channel: '/x', clientId: raw.clientId, data: 1, id: 'types', connectionType: 5 }]))[0]);
    assert.ok(errors.length >= 9, `collected ${errors.length} errors`);
    const unparseable = errors.filter((error) => !fayeGrammar.ERROR.test(error));
    assert.deepEqual(unparseable, [], 'error strings faye cannot parse (it reports code null for them)');
    await raw.disconnect();
    await stillWorking();
  });

  it('an oversized body → HTTP 413', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    const messages = Array.from({ length: 8 }, (_, i) => ({ channel: '/big/body', clientId: raw.clientId, data: { pad: 'z'.repeat(3000) }, id: `p${i}` }));
    const result = await post(server, messages);
    assert.equal(result.status, 413, `${result.status} ${result.text.slice(0, 200)}`);
    assert.match(result.headers.get('content-type') ?? '', /application\/problem\+json/);
    await stillWorking();
  });

  it('unknown clientId → 401 with advice.reconnect "handshake" for connect, subscribe, publish, unsubscribe, disconnect', async () => {
    const bogus = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';
    const requests = [
      { channel: '/meta/connect', clientId: bogus, connectionType: 'long-polling' },
      { channel: '/meta/subscribe', clientId: bogus, subscription: '/alive' },
      { channel: '/meta/unsubscribe', clientId: bogus, subscription: '/alive' },
      { channel: '/alive', clientId: bogus, data: { n: -1 } },
      { channel: '/meta/disconnect', clientId: bogus },
    ];
    for (const request of requests) {
      const id = nextId();
      const { status, json } = await post(server, [{ ...request, id }]);
      assert.equal(status, 200);
      const reply = json.find((m) => m.id === id);
      assertError(reply, 401, request.channel);
      assert.equal(reply.advice?.reconnect, 'handshake', `${request.channel}: ${JSON.stringify(reply)}`);
    }
    await stillWorking();
    assert.equal(watcher.deliveries.filter((m) => m.data?.n === -1).length, 0, 'the bogus publish was not delivered');
  });

  it('publish without a handshake is refused (402 without clientId, 401 with an invented one) and not delivered', async () => {
    const [noClient] = (await post(server, [{ channel: '/alive', data: { n: -2 }, id: 'x1' }])).json;
    assertError(noClient, 402, 'publish without clientId');
    assert.match(noClient.error, /^402:clientId:/);
    const [invented] = (await post(server, [{ channel: '/alive', clientId: 'x', data: { n: -3 }, id: 'x2' }])).json;
    assertError(invented, 401, 'publish with an invented clientId');
    await stillWorking();
    assert.equal(watcher.deliveries.filter((m) => m.data?.n < 0).length, 0);
  });

  it('missing parameters → 402 (data, subscription, connectionType, channel)', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    const [noData] = await raw.send([{ channel: '/alive', clientId: raw.clientId, id: 'd' }]);
    assertError(noData, 402, 'publish without data');
    assert.match(noData.error, /^402:data:/);
    const [noSub] = await raw.send([{ channel: '/meta/subscribe', clientId: raw.clientId, id: 's' }]);
    assertError(noSub, 402, 'subscribe without subscription');
    const [noType] = await raw.send([{ channel: '/meta/connect', clientId: raw.clientId, id: 'c' }]);
    assertError(noType, 402, 'connect without connectionType');
    const [noChannel] = await raw.send([{ clientId: raw.clientId, data: {}, id: 'n' }]);
    assertError(noChannel, 402, 'message without channel');
    await raw.disconnect();
    await stillWorking();
  });

  it('subscribing to /meta/** or /service/**, and /meta/subscribe/x-style bypasses → 403', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    for (const subscription of ['/meta/*', '/meta/**', '/meta/connect', '/meta/subscribe/x', '/service/**', '/service/echo']) {
      assertError(await raw.subscribe(subscription), 403, `subscribe ${subscription}`);
    }
    // Publishing to anything under /meta/ that is not exactly a meta message is forbidden, not executed.
    for (const channel of ['/meta/subscribe/x', '/meta/handshake/x', '/meta/foo', '/meta/disconnect/now']) {
      const reply = await raw.publish(channel, { subscription: '/meta/**' });
      assertError(reply, 403, `publish ${channel}`);
    }
    // The session is still alive (the /meta/disconnect/x publish did not disconnect it) and still subscribes normally.
    assert.equal((await raw.subscribe(`/fine/${unique()}`)).successful, true);
    await raw.disconnect();
    await stillWorking();
  });

  it('faye and cometd report 403 when subscribing to /meta/*', async () => {
    const cometd = await connectClient('cometd-long-polling', server);
    clients.push(cometd);
    await assert.rejects(cometd.subscribe('/meta/subscribe/x'), (error) => /^403:/.test(error.reply?.error));
    await assert.rejects(watcher.subscribe('/meta/subscribe/x'), (error) => error.code === 403);
    await stillWorking();
  });

  it('a GET without message= and unknown methods → HTTP 400', async () => {
    const get = await fetch(server.bayeux);
    assert.equal(get.status, 400);
    await get.arrayBuffer();
    await stillWorking();
  });

  it('a bad message in a batch does not stop the good ones', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    const n = 1000 + probe;
    const replies = await raw.send([
      { channel: '/bad//name', clientId: raw.clientId, data: {}, id: 'a' },
      { channel: '/meta/subscribe/x', clientId: raw.clientId, data: {}, id: 'b' },
      { channel: '/alive', clientId: raw.clientId, data: { n }, id: 'c' },
    ]);
    assertError(replies.find((m) => m.id === 'a'), 405, 'invalid');
    assertError(replies.find((m) => m.id === 'b'), 403, 'meta');
    assert.equal(replies.find((m) => m.id === 'c').successful, true);
    await watcher.deliveries.next((m) => m.channel === '/alive' && m.data.n === n, 5000);
    await raw.disconnect();
    await stillWorking();
  });
});
