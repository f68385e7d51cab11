// Presence with real faye clients: who watches a flow, over REST (GET /tidings/presence?channel=) and live on
// /tidings/presence + the path (SNAPSHOT, then JOIN when a user's first session subscribes and LEAVE when their last
// one goes — by unsubscribe, disconnect, or a killed process whose session expires). Only readers of the flow see it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { startServer, connectClient, disconnectAll, waitFor, RawClient } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

async function signIn(server, name) {
  const response = await fetch(`${server.base}/api/session`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

async function presence(server, channel, token) {
  const response = await fetch(`${server.base}/tidings/presence?channel=${encodeURIComponent(channel)}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: response.status, json: await response.json() };
}

/** A faye client in a process of its own that signs in, subscribes to `channel`, and says "ready"; killed with SIGKILL. */
function fayeProcess(server, token, channel) {
  const script = `
    import faye from 'faye';
    const client = new faye.Client(${JSON.stringify(server.bayeux)}, { retry: 0.5, timeout: 60 });
    client.addExtension({ outgoing: (m, cb) => { if (m.channel === '/meta/handshake') m.ext = { token: ${JSON.stringify(token)} }; cb(m); } });
    client.subscribe(${JSON.stringify(channel)}, () => {}).then(() => console.log('ready'));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => { if (String(chunk).includes('ready')) resolve(); });
    child.on('exit', (code) => reject(new Error(`the faye process ended (${code}) before it subscribed`)));
  });
  return { child, ready };
}

describe('presence', () => {
  let server;
  const clients = [];
  const tokens = {};

  before(async () => {
    // A short session life, so a killed client's session expires within seconds.
    server = await startServer({ ConnectTimeout: '00:00:02', SessionGrace: '00:00:02', SweepInterval: '00:00:00.250' });
    for (const name of ['ada', 'bob', 'cy']) tokens[name] = await signIn(server, name);
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  it('faye clients joining and leaving show in the REST answer and as SNAPSHOT, JOIN and LEAVE', async () => {
    const flow = `/api/flows/${randomUUID().slice(0, 8)}/messages`;
    const watcher = await connectClient('faye-websocket', server, { token: tokens.cy });
    clients.push(watcher);
    const seen = [];
    await watcher.subscribe(`/tidings/presence${flow}`, (data) => seen.push(data));
    await waitFor(() => seen.length >= 1, { message: 'the SNAPSHOT' });
    assert.deepEqual(seen[0], { method: 'SNAPSHOT', users: [], anonymous: 0 });

    // ada from two sessions (one JOIN), bob from one.
    const ada1 = await connectClient('faye-websocket', server, { token: tokens.ada });
    const ada2 = await connectClient('faye-long-polling', server, { token: tokens.ada });
    const bob = await connectClient('faye-long-polling', server, { token: tokens.bob });
    clients.push(ada1, ada2, bob);
    await ada1.subscribe(flow);
    await ada2.subscribe(flow);
    await bob.subscribe(flow);
    await waitFor(() => seen.length >= 3, { message: 'JOIN of ada and bob' });
    assert.deepEqual(seen.slice(1), [{ method: 'JOIN', user: 'ada' }, { method: 'JOIN', user: 'bob' }]);
    assert.deepEqual((await presence(server, flow, tokens.cy)).json,
      { channel: flow, users: [{ name: 'ada', sessions: 2 }, { name: 'bob', sessions: 1 }], anonymous: 0 });

    // A late watcher starts from the SNAPSHOT.
    const late = await connectClient('faye-long-polling', server, { token: tokens.bob });
    clients.push(late);
    const lateSeen = [];
    await late.subscribe(`/tidings/presence${flow}`, (data) => lateSeen.push(data));
    await waitFor(() => lateSeen.length >= 1, { message: 'the late SNAPSHOT' });
    assert.deepEqual(lateSeen[0], { method: 'SNAPSHOT', users: [{ name: 'ada', sessions: 2 }, { name: 'bob', sessions: 1 }], anonymous: 0 });

    // ada's first session unsubscribes: she is still there. Her second disconnects: LEAVE. bob unsubscribes: LEAVE.
    ada1.client.unsubscribe(flow);
    await waitFor(async () => (await presence(server, flow, tokens.cy)).json.users[0]?.sessions === 1, { message: 'ada down to one session' });
    await ada2.disconnect();
    await waitFor(() => seen.length >= 4, { message: 'LEAVE of ada' });
    bob.client.unsubscribe(flow);
    await waitFor(() => seen.length >= 5, { message: 'LEAVE of bob' });
    assert.deepEqual(seen.slice(3), [{ method: 'LEAVE', user: 'ada' }, { method: 'LEAVE', user: 'bob' }]);
    await waitFor(() => lateSeen.length >= 3, { message: 'the late watcher to see both leave' });
    assert.deepEqual(lateSeen.slice(1), [{ method: 'LEAVE', user: 'ada' }, { method: 'LEAVE', user: 'bob' }]);
    assert.deepEqual((await presence(server, flow, tokens.cy)).json, { channel: flow, users: [], anonymous: 0 });
  });

  it('a killed client leaves once its session expires', async () => {
    const flow = `/api/flows/${randomUUID().slice(0, 8)}/messages`;
    const watcher = await connectClient('faye-websocket', server, { token: tokens.cy });
    clients.push(watcher);
    const seen = [];
    await watcher.subscribe(`/tidings/presence${flow}`, (data) => seen.push(data));

    const { child, ready } = fayeProcess(server, tokens.ada, flow);
    try {
      await ready;
      await waitFor(() => seen.some((m) => m.method === 'JOIN' && m.user === 'ada'), { message: 'ada to join' });
    } finally {
      child.kill('SIGKILL');
    }

    // No disconnect was sent: the session ends by expiry (ConnectTimeout + SessionGrace = 4 s here).
    await waitFor(() => seen.some((m) => m.method === 'LEAVE' && m.user === 'ada'), { timeout: 20_000, message: 'ada to leave by expiry' });
    assert.deepEqual((await presence(server, flow, tokens.cy)).json.users, []);
  });

  it('presence is for those who may read the channel: 401 signed out, refused subscribe, no JOINs through /**', async () => {
    const flow = `/api/flows/${randomUUID().slice(0, 8)}/messages`;
    const signedOut = await presence(server, flow);
    assert.equal(signedOut.status, 401);
    assert.equal((await presence(server, '/api/nothing/here', tokens.cy)).status, 404);
    assert.equal((await presence(server, 'no-slash', tokens.cy)).status, 400);

    // Signed out, the flow's presence channel is refused (flows need sign-in), and so is a wildcard over presence.
    const anonymous = new RawClient(server);
    await anonymous.handshake();
    const refused = await anonymous.subscribe(`/tidings/presence${flow}`);
    assert.equal(refused.successful, false);
    assert.match(refused.error, /^403:/);
    const wildcard = await anonymous.subscribe('/tidings/presence/**');
    assert.equal(wildcard.successful, false);
    assert.match(wildcard.error, /^400:/);
    const published = await anonymous.publish(`/tidings/presence${flow}`, { method: 'JOIN', user: 'mallory' });
    assert.equal(published.successful, false);

    // Signed in but not a reader: cy may not read ada's notes, so neither may she see who watches them.
    assert.equal((await presence(server, '/api/users/ada/notes', tokens.cy)).status, 403);
    assert.equal((await presence(server, '/api/users/ada/notes', tokens.ada)).status, 200);
    const cy = new RawClient(server);
    await cy.handshake({ ext: { token: tokens.cy } });
    const notReader = await cy.subscribe('/tidings/presence/api/users/ada/notes');
    assert.equal(notReader.successful, false);
    assert.match(notReader.error, /^403:/);

    // An anonymous /** subscriber gets no presence of a flow it may not read; a signed-in one does.
    const anonymousAll = await connectClient('faye-long-polling', server);
    const signedInAll = await connectClient('faye-long-polling', server, { token: tokens.cy });
    clients.push(anonymousAll, signedInAll);
    await anonymousAll.subscribe('/tidings/**');
    await signedInAll.subscribe('/tidings/**');
    const ada = await connectClient('faye-long-polling', server, { token: tokens.ada });
    clients.push(ada);
    await ada.subscribe(flow);
    await signedInAll.deliveries.next((m) => m.channel === `/tidings/presence${flow}` && m.data.method === 'JOIN', 10_000, 'the JOIN through /tidings/**');
    await ada.disconnect();
    await signedInAll.deliveries.next((m) => m.channel === `/tidings/presence${flow}` && m.data.method === 'LEAVE', 10_000, 'the LEAVE through /tidings/**');
    assert.deepEqual(anonymousAll.deliveries.filter((m) => m.channel.startsWith('/tidings/presence')), []);
  });
});
