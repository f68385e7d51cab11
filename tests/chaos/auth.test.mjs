// Authorization attacks: every path from one user (ada), an anonymous client or a forger to bob's private notes
// (/api/users/bob/notes: only bob reads or writes them). Bob's notes carry a unique marker; an attack leaks when
// that marker appears in anything an attacker receives (REST bodies, Bayeux replies and deliveries, JSONP, WebSocket
// frames), and succeeds as a write when bob's notes (items or seq) change.

import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChaosServer, RawHttp, rest, signIn, signJwt, jwtPayload, storeState, waitFor, SEED } from './support.mjs';

const SECRET = `bob-secret-${SEED}`;
let server;
let ada;
let bob;
let noteId;
let bobNotesBefore;
const bobNotes = '/api/users/bob/notes';

before(async () => {
  server = await ChaosServer.start();
  ada = await signIn(server, 'ada');
  bob = await signIn(server, 'bob');
  const note = await rest(server, 'POST', bobNotes, { token: bob.token, body: { text: `${SECRET} first` } });
  assert.equal(note.status, 201, note.text);
  noteId = note.json.id;
  bobNotesBefore = await storeState(server, [[bobNotes, bob.token]]);
});

after(async () => {
  await server?.dispose();
});

/** Bob writes new secrets (and so fires events to any subscriber that could see them). */
let writes = 0;
async function bobWrites() {
  const created = await rest(server, 'POST', bobNotes, { token: bob.token, body: { text: `${SECRET} new ${++writes}` } });
  assert.equal(created.status, 201, created.text);
  return created.json.id;
}

let leaks = [];
beforeEach(() => { leaks = []; });
function inspect(where, text) {
  if (String(text).includes(SECRET)) leaks.push(`${where}: ${String(text).slice(0, 300)}`);
}

/** Forged or broken tokens for bob, with what is wrong with each. */
function forgedTokens() {
  const key = server.signingKey();
  const real = jwtPayload(bob.token);
  const now = Math.floor(Date.now() / 1000);
  const [head, , signature] = ada.token.split('.');
  const adaPayload = jwtPayload(ada.token);
  const nameClaim = Object.keys(adaPayload).find((k) => adaPayload[k] === 'ada');
  return {
    'alg none': signJwt(real, key, { alg: 'none', typ: 'JWT' }),
    'another key': signJwt(real, Buffer.alloc(32, 7)),
    'ada token with name changed to bob': `${head}.${Buffer.from(JSON.stringify({ ...adaPayload, [nameClaim]: 'bob' })).toString('base64url')}.${signature}`,
    'expired (real key)': signJwt({ ...real, nbf: now - 7200, iat: now - 7200, exp: now - 3600 }, key),
    'wrong audience (real key)': signJwt({ ...real, aud: 'someone-else' }, key),
    'wrong issuer (real key)': signJwt({ ...real, iss: 'evil' }, key),
    'not yet valid (real key)': signJwt({ ...real, nbf: now + 3600, iat: now + 3600 }, key),
    'no expiry (real key)': signJwt(Object.fromEntries(Object.entries(real).filter(([k]) => k !== 'exp')), key),
    'HS512 header on an HS256 signature': `${Buffer.from(JSON.stringify({ alg: 'HS512', typ: 'JWT' })).toString('base64url')}.${bob.token.split('.')[1]}.${bob.token.split('.')[2]}`,
    truncated: bob.token.slice(0, -5),
    'signature removed': bob.token.split('.').slice(0, 2).join('.') + '.',
  };
}

test('REST: every read and write path to another user\'s notes is refused', async () => {
  const id = noteId;
  const targets = [
    bobNotes, `${bobNotes}/${id}`, `${bobNotes}?since=0`, `${bobNotes}/`, `//api/users/bob/notes`, '/api/users/%62ob/notes',
    '/api/users/%62%6f%62/notes', '/API/USERS/bob/NOTES', '/api/users/bob/Notes', '/api/users/BOB/notes', '/api/users/bob%2Fnotes',
    '/api/users/ada/../bob/notes', '/api/users/ada/%2e%2e/bob/notes', '/api/users/ada%2F..%2Fbob/notes', `/api/users/bob/notes/${id}/`,
    '/api/users/*/notes', '/api/users/bob /notes', '/api/users/bob%00/notes', `/api/users/bob/notes/${encodeURIComponent(id).toUpperCase()}`,
  ];
  const identities = { anonymous: {}, 'ada (bearer)': { authorization: `Bearer ${ada.token}` }, 'ada (cookie)': { cookie: ada.cookie } };
  for (const [name, token] of Object.entries(forgedTokens())) identities[`forged: ${name}`] = { authorization: `Bearer ${token}` };
  const http = new RawHttp(server);
  const refusedReads = [];
  for (const [who, headers] of Object.entries(identities)) {
    for (const target of targets) {
      const response = await http.request('GET', target, { headers });
      assert.ok(response.desync === undefined, `desync before GET ${target} as ${who}: ${JSON.stringify(response.desync)?.slice(0, 300)}`);
      inspect(`GET ${target} as ${who}`, response.body);
      if (response.status === 200) refusedReads.push(`GET ${target} as ${who} answered 200`);
      // Writes along the same paths: the notes must not change.
      for (const method of ['PUT', 'PATCH', 'DELETE', 'POST']) {
        const write = await http.request(method, target.includes(id) ? target : `${target}${method === 'POST' ? '' : `/${id}`}`, {
          headers: { ...headers, 'content-type': 'application/json', origin: `http://127.0.0.1:${server.port}` },
          body: JSON.stringify({ text: 'written by an attacker' }),
        });
        if (write.status >= 200 && write.status < 300) refusedReads.push(`${method} ${target} as ${who} answered ${write.status}`);
        if (write.status >= 500) refusedReads.push(`${method} ${target} as ${who} answered ${write.status}`);
      }
    }
  }
  // Tokens in the query string are not credentials (they would leak through logs and Referer headers).
  for (const name of ['access_token', 'token', 'bearer', 'authorization']) {
    const response = await rest(server, 'GET', `${bobNotes}?${name}=${bob.token}`);
    inspect(`GET ?${name}=<bob's token>`, response.text);
    if (response.status === 200) refusedReads.push(`GET ${bobNotes}?${name}=<bob's token> answered 200`);
  }
  http.close();
  assert.deepEqual(leaks, []);
  assert.deepEqual(refusedReads, []);
  assert.deepEqual(await storeState(server, [[bobNotes, bob.token]]), bobNotesBefore, 'an attacker changed bob\'s notes');
});

/** A long-polling Bayeux session on its own keep-alive connection; every response is inspected for the secret. */
class Session {
  constructor(who, headers = {}, { trusted = false } = {}) {
    this.who = who;
    this.trusted = trusted; // bob's own sessions: what they receive is not a leak
    this.headers = headers;
    this.http = new RawHttp(server);
    this.clientId = null;
    this.replies = [];
  }

  async send(messages, extraHeaders = {}) {
    const response = await this.http.request('POST', '/bayeux', { headers: { 'content-type': 'application/json', ...this.headers, ...extraHeaders }, body: JSON.stringify(messages) });
    assert.ok(!response.desync, `${this.who}: desync`);
    if (!this.trusted) inspect(`${this.who} ${JSON.stringify(messages).slice(0, 200)}`, response.body);
    assert.ok(response.status < 500, `${this.who}: HTTP ${response.status} for ${JSON.stringify(messages).slice(0, 200)}`);
    const replies = response.status === 200 ? JSON.parse(response.body) : [];
    this.replies.push(...replies);
    return replies;
  }

  async handshake(ext) {
    const [reply] = await this.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ...(ext ? { ext } : {}) }]);
    if (reply?.successful) this.clientId = reply.clientId;
    return reply;
  }

  async subscribe(subscription, ext) {
    const replies = await this.send([{ channel: '/meta/subscribe', clientId: this.clientId, subscription, ...(ext ? { ext } : {}) }]);
    return replies.find((r) => r.channel === '/meta/subscribe');
  }

  async connect() {
    return this.send([{ channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling', advice: { timeout: 0 } }]);
  }

  close() {
    this.http.close();
  }
}

const PATTERNS = [
  bobNotes, '/api/users/bob/*', '/api/users/bob/**', '/api/users/*/notes', '/api/users/**', '/api/**', '/**', '/*',
  '/api/*/bob/notes', '/*/users/bob/notes', '/api/users/*/*', '/api/users/BOB/notes', '/api/users/%62ob/notes', '/api/users/bob/notes/',
];
const CATCH_UPS = [undefined, { since: 0 }, { snapshot: true }, { since: 0, epoch: 'x' }];

test('Bayeux: subscriptions (exact, *, **, inner wildcards; since and snapshot) and socket writes never reach another user\'s notes', async () => {
  const sessions = [];
  const anonymous = new Session('anonymous');
  await anonymous.handshake();
  const byToken = new Session('ada (ext.token)');
  await byToken.handshake({ token: ada.token });
  const byCookie = new Session('ada (cookie)', { cookie: ada.cookie });
  await byCookie.handshake();
  sessions.push(anonymous, byToken, byCookie);
  for (const [name, token] of Object.entries(forgedTokens())) {
    const forged = new Session(`forged ext.token: ${name}`);
    const reply = await forged.handshake({ token });
    assert.ok(!reply.successful, `a handshake with a forged token (${name}) succeeded: ${JSON.stringify(reply)}`);
    forged.close();
  }
  // Bob's own session: the control that shows the events were published.
  const control = new Session('bob (control)', {}, { trusted: true });
  await control.handshake({ token: bob.token });
  await control.subscribe(bobNotes);

  const granted = [];
  for (const session of sessions) {
    for (const pattern of PATTERNS) {
      // Wildcards with each way of delivering them (ext.delivery: events on their own channel, or on the pattern's).
      const deliveries = pattern.includes('*') ? [{}, { delivery: 'concrete' }, { delivery: 'pattern' }] : [{}];
      for (const ext of CATCH_UPS.flatMap((catchUp) => deliveries.map((delivery) => (catchUp || delivery.delivery ? { ...catchUp, ...delivery } : undefined)))) {
        const reply = await session.subscribe(pattern, ext);
        if (reply?.successful && pattern.startsWith('/api/users/bob/notes') && !pattern.includes('*')) granted.push(`${session.who}: ${pattern} ${JSON.stringify(ext)}`);
      }
    }
    // Socket writes on bob's notes.
    for (const data of [{ method: 'PUT', body: { id: noteId, text: 'pwned' } }, { method: 'PATCH', body: { id: noteId, text: 'pwned' } }, { method: 'DELETE', body: { id: noteId } }, { method: 'POST', body: { text: 'planted' } }]) {
      const replies = await session.send([{ channel: bobNotes, clientId: session.clientId, data }]);
      const reply = replies.find((r) => r.channel === bobNotes && 'successful' in r);
      if (reply?.successful) granted.push(`${session.who}: socket ${data.method} on ${bobNotes} succeeded`);
    }
  }

  const fresh = await bobWrites();
  await rest(server, 'PUT', `${bobNotes}/${fresh}`, { token: bob.token, body: { text: `${SECRET} updated` } });
  await waitFor(async () => (await control.connect()).filter((m) => m.channel === bobNotes).length >= 2 || control.replies.filter((m) => m.channel === bobNotes && m.data).length >= 2, { message: 'bob\'s control session to see both events' });
  for (const session of sessions) {
    await session.connect();
    await session.connect();
    session.close();
  }
  control.close();
  assert.deepEqual(leaks, []);
  assert.deepEqual(granted, []);
  const notes = await rest(server, 'GET', bobNotes, { token: bob.token });
  assert.ok(!notes.text.includes('pwned') && !notes.text.includes('planted'), 'a socket write changed bob\'s notes');
});

test('JSONP with the victim\'s cookie and a cross-origin WebSocket with the victim\'s cookie get nothing of bob\'s', async () => {
  // JSONP ignores cookies: a page on any site can make the victim's browser send them.
  const jsonp = async (messages) => {
    const response = await fetch(`${server.base}/bayeux?jsonp=cb&message=${encodeURIComponent(JSON.stringify(messages))}`, { headers: { cookie: bob.cookie, referer: 'http://evil.example/' } });
    const text = await response.text();
    inspect(`JSONP ${JSON.stringify(messages).slice(0, 200)}`, text);
    assert.ok(response.status < 500, `JSONP answered ${response.status}`);
    const match = /cb\(([\s\S]*)\)/.exec(text);
    return match ? JSON.parse(match[1]) : [];
  };
  const [handshake] = await jsonp([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'] }]);
  const granted = [];
  if (handshake?.successful) {
    for (const ext of CATCH_UPS) {
      const replies = await jsonp([{ channel: '/meta/subscribe', clientId: handshake.clientId, subscription: bobNotes, ...(ext ? { ext } : {}) }]);
      if (replies.find((r) => r.channel === '/meta/subscribe')?.successful) granted.push(`JSONP subscribe ${JSON.stringify(ext)}`);
    }
    const replies = await jsonp([{ channel: bobNotes, clientId: handshake.clientId, data: { method: 'POST', body: { text: 'planted by jsonp' } } }]);
    if (replies.find((r) => r.channel === bobNotes)?.successful) granted.push('JSONP socket write');
  }

  // A WebSocket opened by a page on another site carries the victim's cookie.
  for (const origin of ['http://evil.example', 'null', `http://127.0.0.1.evil.example:${server.port}`]) {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/bayeux`, { headers: { origin, cookie: bob.cookie } });
    const frames = [];
    ws.on('message', (data) => { frames.push(data.toString()); inspect(`WebSocket from ${origin}`, data.toString()); });
    ws.on('error', () => {});
    const opened = await new Promise((resolve) => { ws.once('open', () => resolve(true)); ws.once('error', () => resolve(false)); ws.once('unexpected-response', () => resolve(false)); });
    if (!opened) continue;
    ws.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]));
    await waitFor(() => frames.some((f) => f.includes('"h"')) || ws.readyState !== WebSocket.OPEN, { message: 'the handshake reply' });
    const reply = frames.flatMap((f) => JSON.parse(f)).find((m) => m.id === 'h');
    if (reply?.successful) {
      ws.send(JSON.stringify([{ channel: '/meta/connect', clientId: reply.clientId, connectionType: 'websocket', id: 'c' }]));
      for (const [index, ext] of CATCH_UPS.entries()) {
        ws.send(JSON.stringify([{ channel: '/meta/subscribe', clientId: reply.clientId, subscription: bobNotes, id: `s${index}`, ...(ext ? { ext } : {}) }]));
      }
      await waitFor(() => frames.some((f) => f.includes(`"s${CATCH_UPS.length - 1}"`)) || ws.readyState !== WebSocket.OPEN, { message: 'the subscribe replies' });
      for (const message of frames.flatMap((f) => JSON.parse(f))) {
        if (message.channel === '/meta/subscribe' && message.successful) granted.push(`cross-origin (${origin}) WebSocket subscribe ${message.id}`);
      }
      await bobWrites();
    }
    ws.terminate();
  }
  assert.deepEqual(leaks, []);
  assert.deepEqual(granted, []);
});

test('another user\'s session id, used from another connection by a signed-in user, reads nothing of theirs', async () => {
  // Bob's session (a token handshake, as the JS client does). Ada learns its clientId (it travels in URLs of
  // logs, in shared proxies...) and presents it from her own connection with her own credentials.
  const victim = new Session('bob', {}, { trusted: true });
  await victim.handshake({ token: bob.token });
  await victim.subscribe(bobNotes);
  await victim.connect();

  const granted = [];
  for (const [who, headers] of [['ada (bearer)', { authorization: `Bearer ${ada.token}` }], ['ada (cookie)', { cookie: ada.cookie }]]) {
    const thief = new Session(who, headers);
    thief.clientId = victim.clientId;
    const sub = await thief.subscribe('/api/users/bob/*', { snapshot: true });
    if (sub?.successful) granted.push(`${who}: subscribe with bob's clientId`);
    const write = await thief.send([{ channel: bobNotes, clientId: victim.clientId, data: { method: 'POST', body: { text: 'planted with a stolen id' } } }]);
    if (write.find((r) => r.channel === bobNotes)?.successful) granted.push(`${who}: socket write with bob's clientId`);
    await bobWrites();
    await thief.connect();
    thief.close();
  }
  victim.close();
  assert.deepEqual(leaks, []);
  assert.deepEqual(granted, []);
});
