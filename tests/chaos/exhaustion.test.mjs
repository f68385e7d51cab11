// Exhaustion: clients that hold resources without giving anything back — WebSockets that never read, a publisher
// that floods at the largest allowed message size, sessions that handshake and never connect, a session with the
// most subscriptions allowed. Asserted: the server's memory (RSS, sampled over the run) stays bounded, a
// well-behaved subscriber (the real faye client) still receives every event, the session table is reaped.
// The long form (CHAOS_LONG=1) also measures the well-behaved subscriber's latency unloaded and under load
// (printed for docs/RELIABILITY.md; never asserted).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import faye from 'faye';
import WebSocket from 'ws';
import { ChaosServer, LONG, MiB, SEED, percentile, rest, rss, sampleRss, waitFor, withTimeout } from './support.mjs';

const LOAD_SECONDS = LONG ? 60 : 8;
const NON_READERS = LONG ? 50 : 10;
const MAX_SESSIONS = 400;

/** A raw Bayeux-over-WebSocket client: sends batches, collects replies. */
async function rawSocket(server) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/bayeux`);
  ws.inbox = [];
  ws.on('message', (data) => { for (const m of JSON.parse(data.toString())) ws.inbox.push(m); });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let ids = 0;
  ws.request = async (message) => {
    const id = `m${++ids}`;
    ws.send(JSON.stringify([{ ...message, id }]));
    await waitFor(() => ws.inbox.some((m) => m.id === id), { message: `reply to ${message.channel}` });
    return ws.inbox.find((m) => m.id === id);
  };
  const handshake = await ws.request({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] });
  assert.ok(handshake.successful, JSON.stringify(handshake));
  ws.clientId = handshake.clientId;
  ws.send(JSON.stringify([{ channel: '/meta/connect', clientId: ws.clientId, connectionType: 'websocket' }]));
  return ws;
}

/** The well-behaved subscriber: faye over WebSocket on /api/todos; resolves each todo's arrival time by title. */
async function wellBehaved(server) {
  const client = new faye.Client(server.bayeux, { timeout: 60, retry: 1 });
  const arrivals = new Map();
  const waiters = new Map();
  await withTimeout(Promise.resolve(client.subscribe('/api/todos', (event) => {
    const title = event.body?.title;
    if (event.method !== 'POST' || !title) return;
    arrivals.set(title, performance.now());
    waiters.get(title)?.();
  })), 20_000, 'faye subscribe');
  const latencyOf = async (title) => {
    const sent = performance.now();
    const arrived = new Promise((resolve) => waiters.set(title, resolve));
    const created = await rest(server, 'POST', '/api/todos', { body: { title } });
    assert.equal(created.status, 201, created.text);
    await withTimeout(arrived, 60_000, `the subscriber to receive ${title}`);
    return arrivals.get(title) - sent;
  };
  return { client, arrivals, latencyOf };
}

test(`exhaustion: non-reading sockets, a flood publisher, idle handshakes and maximal subscriptions keep memory bounded and a subscriber served (seed ${SEED})`, { timeout: LONG ? 1_200_000 : 180_000 }, async () => {
  const server = await ChaosServer.start({
    'Bayeux:MaxSessions': MAX_SESSIONS,
    'Bayeux:SessionGrace': '00:00:15',
    'Bayeux:ConnectTimeout': '00:00:02',
    'Tidings:PublishesPerSecond': 1_000_000,
  });
  const sockets = [];
  let subscriber;
  try {
    // 1. Sessions that handshake and never connect fill the table, are refused past the limit, then are reaped.
    const idle = [];
    let refused = null;
    // In parallel batches, so that the table fills faster than SessionGrace empties it.
    for (let i = 0; i <= MAX_SESSIONS + 50 && !refused; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async () => {
        const response = await fetch(server.bayeux, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]) });
        assert.ok(response.status < 500, `handshake: HTTP ${response.status}`);
        const [reply] = await response.json();
        if (reply.successful) idle.push(reply.clientId);
        else refused = reply;
      }));
    }
    assert.ok(refused, `the ${MAX_SESSIONS + 1}th idle session was accepted: the session table is unbounded`);
    assert.ok(idle.length <= MAX_SESSIONS, `${idle.length} sessions held`);
    console.log(`# idle sessions: ${idle.length} accepted, then refused with ${refused.error}`);
    // (Probed with handshakes: a connect on an idle session would keep it alive.)
    await waitFor(async () => {
      const response = await fetch(server.bayeux, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]) });
      const [reply] = await response.json();
      return reply.successful;
    }, { timeout: 90_000, interval: 1000, message: 'idle sessions to be reaped (a handshake to be accepted again)' });
    const response = await fetch(server.bayeux, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ channel: '/meta/connect', clientId: idle[0], connectionType: 'long-polling', advice: { timeout: 0 } }]) });
    const [gone] = await response.json();
    assert.match(gone.error ?? '', /Unknown client/, `an idle session is still there: ${JSON.stringify(gone)}`);

    // 2. The well-behaved subscriber, and its latency before any load.
    subscriber = await wellBehaved(server);
    const baseline = rss(server.pid);
    const unloaded = [];
    for (let i = 0; i < (LONG ? 200 : 5); i++) unloaded.push(await subscriber.latencyOf(`calm-${i}`));

    // 3. Load: sockets that never read, one session with the most subscriptions, a flood at the largest message size.
    const memory = sampleRss(server.pid);
    for (let i = 0; i < NON_READERS; i++) {
      const ws = await rawSocket(server);
      const reply = await ws.request({ channel: '/meta/subscribe', clientId: ws.clientId, subscription: ['/flood', '/api/todos'] });
      assert.ok(reply.successful, JSON.stringify(reply));
      ws._socket.pause(); // never reads again: the server's writes back up
      sockets.push(ws);
    }
    const hoarder = await rawSocket(server);
    sockets.push(hoarder);
    let subscribed = 0;
    let limitReply = null;
    for (let batch = 0; batch < 11 && !limitReply; batch++) {
      const channels = Array.from({ length: 100 }, (_, i) => `/many/${batch}/${i}`);
      const reply = await hoarder.request({ channel: '/meta/subscribe', clientId: hoarder.clientId, subscription: channels });
      if (reply.successful) subscribed += channels.length;
      else limitReply = reply;
    }
    assert.ok(limitReply, `a session subscribed to ${subscribed} channels without reaching a limit`);

    const flooder = await rawSocket(server);
    sockets.push(flooder);
    const payload = 'f'.repeat(60 * 1024); // just under Bayeux:MaxMessageBytes (64 KiB)
    let flooding = true;
    let published = 0;
    const flood = (async () => {
      while (flooding && flooder.readyState === WebSocket.OPEN) {
        flooder.send(JSON.stringify([{ channel: '/flood', clientId: flooder.clientId, data: { payload, n: published++ } }]));
        flooder.inbox.length = 0;
        if (flooder.bufferedAmount > 4 * MiB) await delay(5);
        else await delay(0);
      }
    })();
    const loaded = [];
    const loadEnd = Date.now() + LOAD_SECONDS * 1000;
    let n = 0;
    while (Date.now() < loadEnd) {
      loaded.push(await subscriber.latencyOf(`loaded-${n++}`));
      if (!LONG) await delay(200);
    }
    flooding = false;
    await flood;
    const samples = memory.stop();
    const peak = Math.max(...samples);
    const figures = {
      baselineMiB: +(baseline / MiB).toFixed(1), peakMiB: +(peak / MiB).toFixed(1), samples: samples.length, floodMessages: published,
      floodMiB: +((published * payload.length) / MiB).toFixed(0), subscriptionsHeld: subscribed, limitError: limitReply.error,
      unloadedP50ms: +percentile(unloaded, 50).toFixed(1), unloadedP99ms: +percentile(unloaded, 99).toFixed(1),
      loadedP50ms: +percentile(loaded, 50).toFixed(1), loadedP99ms: +percentile(loaded, 99).toFixed(1), loadedEvents: loaded.length,
    };
    console.log(`# exhaustion: ${JSON.stringify(figures)}`);
    assert.ok(published > 0, 'the flood published nothing');
    // Bounded: 10+ sockets that never read and a flood of ${floodMiB} MiB must not cost the server more than this.
    assert.ok(peak - baseline < 512 * MiB, `RSS grew by ${((peak - baseline) / MiB).toFixed(0)} MiB under load (from ${figures.baselineMiB} MiB)`);
    // Served: every event of the load phase reached the well-behaved subscriber (latencyOf awaited each).
    assert.equal(subscriber.arrivals.size, unloaded.length + loaded.length);
    assert.ok(server.child && server.child.exitCode === null, 'the server died');
    assert.deepEqual(server.failures().slice(0, 5), [], 'the server logged unhandled exceptions');
  } finally {
    for (const ws of sockets) ws.terminate();
    subscriber?.client.disconnect();
    await server.dispose();
  }
});

test('exhaustion: one session cannot use up the inner-wildcard budget of everyone else', { timeout: 120_000 }, async () => {
  const server = await ChaosServer.start();
  try {
    // One session takes as many inner-wildcard patterns as it is allowed (a server-wide budget would let it lock
    // everyone else out); another user's inner-wildcard subscribe must still succeed.
    const hog = await rawSocket(server);
    let hogPatterns = 0;
    for (let batch = 0; batch < 12; batch++) {
      const patterns = Array.from({ length: 100 }, (_, i) => `/z/*/p${batch}x${i}`);
      const reply = await hog.request({ channel: '/meta/subscribe', clientId: hog.clientId, subscription: patterns, ext: { delivery: 'concrete' } });
      if (!reply.successful) break;
      hogPatterns += patterns.length;
    }
    const other = await rawSocket(server);
    const flows = await other.request({ channel: '/meta/subscribe', clientId: other.clientId, subscription: '/api/flows/*/messages', ext: { delivery: 'concrete' } });
    assert.ok(flows.successful, `after one session took ${hogPatterns} inner-wildcard patterns, another session's /api/flows/*/messages subscribe failed: ${JSON.stringify(flows)}`);
    hog.terminate();
    other.terminate();
  } finally {
    await server.dispose();
  }
});
