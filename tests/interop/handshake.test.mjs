// 1. Handshake over every transport: the real clients, raw long-polling bodies, raw callback-polling.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, connectClient, disconnectAll, CLIENT_KINDS, post, nextId } from './server.mjs';

const SUPPORTED = ['websocket', 'long-polling', 'cross-origin-long-polling', 'callback-polling'];

/** GETs a callback-polling (JSONP) request and unwraps `/**\/callback([...]);`. */
export async function jsonp(server, messages, callback = 'cb_1') {
  const url = `${server.bayeux}?message=${encodeURIComponent(JSON.stringify(messages))}&jsonp=${encodeURIComponent(callback)}`;
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type'), text };
}

function unwrapJsonp(text, callback) {
  const prefix = `/**/${callback}(`;
  assert.ok(text.startsWith(prefix), `JSONP body should start with ${prefix}: ${text}`);
  assert.ok(text.endsWith(');'), `JSONP body should end with ');': ${text}`);
  return JSON.parse(text.slice(prefix.length, -2));
}

describe('handshake', () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startServer({ ConnectTimeout: '00:00:05', SessionGrace: '00:00:05' });
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  for (const kind of CLIENT_KINDS) {
    it(`${kind}: handshakes, gets a clientId and runs on ${kind.split('-').slice(1).join('-')}`, async () => {
      const client = await connectClient(kind, server);
      clients.push(client);
      assert.match(client.clientId ?? '', /^[a-z2-7]{20,}$/, 'clientId is an unguessable token');
      assert.equal(client.connectionType, kind.split('-').slice(1).join('-'));
      const handshake = client.replies.filter((m) => m.channel === '/meta/handshake');
      assert.equal(handshake.length, 1);
      const [reply] = handshake;
      assert.equal(reply.successful, true);
      assert.equal(reply.version, '1.0');
      assert.equal(reply.clientId, client.clientId);
      assert.deepEqual(reply.supportedConnectionTypes, SUPPORTED);
      assert.equal(reply.advice.reconnect, 'retry');
      assert.equal(reply.advice.interval, 0);
      assert.equal(reply.advice.timeout, 5000);
    });
  }

  it('two handshakes get different clientIds', async () => {
    const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };
    const [a, b] = await Promise.all([post(server, [hs]), post(server, [hs])]);
    assert.notEqual(a.json[0].clientId, b.json[0].clientId);
  });

  it('raw long-polling: a single object, a message= form body and a text/plain body all handshake', async () => {
    const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };
    const single = await post(server, hs);
    assert.equal(single.status, 200);
    assert.match(single.headers.get('content-type'), /application\/json/);
    assert.equal(single.json[0].successful, true);

    const form = await post(server, `message=${encodeURIComponent(JSON.stringify([hs]))}`,
      { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 200, form.text);
    assert.equal(form.json[0].successful, true);

    const text = await post(server, JSON.stringify([hs]), { headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    assert.equal(text.status, 200, text.text);
    assert.equal(text.json[0].successful, true);

    const sub = await post(server, [hs], { path: '/handshake' });
    assert.equal(sub.status, 200, 'sub-paths such as /bayeux/handshake are the same endpoint');
    assert.equal(sub.json[0].successful, true);
  });

  it('raw callback-polling: handshake answered as /**/callback([...]); text/javascript', async () => {
    const id = nextId();
    const result = await jsonp(server, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'], id }], 'jsonp.cb_7');
    assert.equal(result.status, 200);
    assert.match(result.contentType, /text\/javascript/);
    const [reply] = unwrapJsonp(result.text, 'jsonp.cb_7');
    assert.equal(reply.id, id);
    assert.equal(reply.successful, true);
    assert.ok(reply.clientId);
    assert.deepEqual(reply.supportedConnectionTypes, SUPPORTED);
  });

  it('handshake errors: version mismatch → 300, no common connection type → 301, missing version → 402', async () => {
    const [bad] = (await post(server, [{ channel: '/meta/handshake', version: '2.0', supportedConnectionTypes: ['long-polling'] }])).json;
    assert.equal(bad.successful, false);
    assert.match(bad.error, /^300:/);
    const [types] = (await post(server, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['carrier-pigeon'] }])).json;
    assert.equal(types.successful, false);
    assert.match(types.error, /^301:/);
    const [missing] = (await post(server, [{ channel: '/meta/handshake', supportedConnectionTypes: ['long-polling'] }])).json;
    assert.equal(missing.successful, false);
    assert.match(missing.error, /^402:version:/);
  });

  it('CORS preflight echoes this site\'s origin with credentials, and no other origin when Bayeux:AllowedOrigins is empty', async () => {
    const preflight = (origin) => fetch(server.bayeux, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    const own = await preflight(server.base);
    assert.ok(own.status === 200 || own.status === 204, `preflight status ${own.status}`);
    assert.equal(own.headers.get('access-control-allow-origin'), server.base);
    assert.equal(own.headers.get('access-control-allow-credentials'), 'true');
    assert.match(own.headers.get('access-control-allow-methods') ?? '', /POST/);

    const foreign = await preflight('http://example.test');
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    assert.equal(foreign.headers.get('access-control-allow-credentials'), null);
  });
});
