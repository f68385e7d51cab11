// Convergence under faults: real faye clients (WebSocket and long-polling) keep a copy of /api/todos — a snapshot
// subscribe, then events applied in seq order, re-subscribing with `since` after every re-handshake — while writers
// change the collection, a TCP proxy between clients and server cuts every connection at random, and the server is
// killed with SIGKILL and restarted. In the end every client's copy equals the server's, and no client was sent an
// event twice or missed one (a gap in seq).
//
// Also here: a client that handshakes again on the same WebSocket gets each event once (not once per session).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import faye from 'faye';
import WebSocket from 'ws';
import { ChaosServer, LONG, SEED, Random, TcpProxy, quietPeriod, rest, waitFor, withTimeout } from './support.mjs';

const CLIENTS = LONG ? 30 : 6;
const SECONDS = LONG ? 90 : 10;
const KILLS = LONG ? 4 : 1;

test('a client that handshakes again on the same WebSocket receives each event once', async () => {
  const server = await ChaosServer.start();
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/bayeux`);
  try {
    const inbox = [];
    ws.on('message', (data) => inbox.push(...JSON.parse(data.toString())));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const request = async (message, id) => {
      ws.send(JSON.stringify([{ ...message, id }]));
      await waitFor(() => inbox.find((m) => m.id === id), { message: `reply ${id}` });
      return inbox.find((m) => m.id === id);
    };
    for (const round of [1, 2]) {
      // Faye does exactly this after a server restart or a stale 401: a new handshake on the open socket.
      const handshake = await request({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] }, `h${round}`);
      assert.ok(handshake.successful);
      ws.send(JSON.stringify([{ channel: '/meta/connect', clientId: handshake.clientId, connectionType: 'websocket' }]));
      const subscribed = await request({ channel: '/meta/subscribe', clientId: handshake.clientId, subscription: '/api/todos' }, `s${round}`);
      assert.ok(subscribed.successful, JSON.stringify(subscribed));
    }
    const created = await rest(server, 'POST', '/api/todos', { body: { title: 'once' } });
    assert.equal(created.status, 201);
    await waitFor(() => inbox.some((m) => m.channel === '/api/todos' && m.data?.body?.title === 'once'), { message: 'the event' });
    await quietPeriod(1000);
    const copies = inbox.filter((m) => m.channel === '/api/todos' && m.data?.body?.title === 'once');
    assert.equal(copies.length, 1, `the event arrived ${copies.length} times on one socket`);
  } finally {
    ws.terminate();
    await server.dispose();
  }
});

/**
 * A live copy of /api/todos on a faye client, kept the way the Tidings JS client keeps one: snapshot first, then
 * events in seq order; a gap (an event lost in flight on a cut connection: Bayeux without acknowledgements gives
 * no guarantee there) is filled from REST catch-up (`GET ?since=`); every (re)subscribe asks for what was missed
 * (`ext.since`). An event the server sends twice is counted as a duplicate.
 */
class Replica {
  constructor(name, url, transport, server) {
    this.name = name;
    this.server = server;
    this.items = new Map();
    this.seq = null;
    this.epoch = null;
    this.delivered = new Set();
    this.duplicates = [];
    this.filled = 0;
    this.filledSeqs = new Set();
    this.everDelivered = new Set();
    this.resets = 0;
    this.queue = [];
    this.busy = false;
    this.client = new faye.Client(url, { timeout: 30, retry: 0.5 });
    if (transport === 'long-polling') this.client.disable('websocket');
    // As the Tidings clients do: when the transport comes back, ask what was missed (events written to a connection
    // that was then cut never arrive, and nothing later may come to show the gap).
    this.wantCatchUp = false;
    this.client.bind('transport:up', () => {
      this.wantCatchUp = true;
      this.process().catch(() => { this.busy = false; });
    });
    this.client.addExtension({
      outgoing: (message, callback) => {
        if (message.channel === '/meta/subscribe' && message.subscription === '/api/todos') {
          message.ext = this.seq === null ? { snapshot: true } : { since: this.seq, epoch: this.epoch };
          // What comes after `since` is asked for again: a second copy of those is not the server's duplicate.
          for (const seq of this.delivered) if (this.seq === null || seq > this.seq) this.delivered.delete(seq);
        }
        callback(message);
      },
    });
  }

  async start() {
    await withTimeout(Promise.resolve(this.client.subscribe('/api/todos', (event) => this.receive(event))), 30_000, `${this.name} subscribe`);
  }

  receive(event) {
    if (event.method === 'SNAPSHOT') {
      this.items = new Map(event.items.map((item) => [item.id, item]));
      this.seq = event.seq;
      this.epoch = event.epoch;
      this.queue = [];
      return;
    }
    if (event.method === 'RESET') {
      this.resets++;
      this.seq = null; // reload: the next subscribe asks for a snapshot
      this.client.unsubscribe('/api/todos');
      this.start().catch(() => {});
      return;
    }
    if (this.delivered.has(event.seq)) this.duplicates.push(event.seq);
    this.everDelivered.add(event.seq);
    this.delivered.add(event.seq);
    this.queue.push(event);
    this.process().catch(() => { this.busy = false; });
  }

  apply(event) {
    this.seq = event.seq;
    if (event.method === 'DELETE') this.items.delete(event.body.id);
    else if (event.body) this.items.set(event.body.id, event.body);
  }

  async process() {
    if (this.busy) return;
    this.busy = true;
    while ((this.queue.length > 0 || this.wantCatchUp) && this.seq !== null) {
      if (this.wantCatchUp && this.queue.length === 0) {
        this.wantCatchUp = false;
        const response = await rest(this.server, 'GET', `/api/todos?since=${this.seq}&epoch=${this.epoch}`).catch(() => null);
        if (response?.status !== 200) {
          this.wantCatchUp = true;
          await delay(200); // the server is restarting
          continue;
        }
        for (const change of response.json.changes) {
          if (change.seq === this.seq + 1) {
            this.apply(change);
            this.filled++;
            this.filledSeqs.add(change.seq);
          }
        }
        continue;
      }
      this.queue.sort((a, b) => a.seq - b.seq);
      const next = this.queue[0];
      if (next.seq <= this.seq) {
        this.queue.shift(); // already applied from a gap fill
      } else if (next.seq === this.seq + 1) {
        this.apply(this.queue.shift());
      } else {
        // A gap: fill it from the change log.
        const response = await rest(this.server, 'GET', `/api/todos?since=${this.seq}&epoch=${this.epoch}`).catch(() => null);
        if (response?.status !== 200) {
          await delay(200); // the server is restarting
          continue;
        }
        for (const change of response.json.changes) {
          if (change.seq === this.seq + 1) {
            this.apply(change);
            this.filled++;
            this.filledSeqs.add(change.seq);
          }
        }
      }
    }
    this.busy = false;
  }
}

test(`convergence: ${CLIENTS} faye clients through a connection-cutting proxy, ${KILLS} × kill -9, ${SECONDS} s of writes (seed ${SEED})`, { timeout: LONG ? 1_200_000 : 180_000 }, async () => {
  const random = new Random(SEED ^ 0xc0ffee);
  const server = await ChaosServer.start({ 'Tidings:MaxReplay': 100_000, 'Bayeux:ConnectTimeout': '00:00:05' });
  const proxy = await new TcpProxy(server.port).listen();
  const replicas = [];
  const stats = { writes: 0, failedWrites: 0, cuts: 0, kills: 0 };
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const replica = new Replica(`client${i}`, proxy.bayeux, i % 2 ? 'long-polling' : 'websocket', server);
      await replica.start();
      replicas.push(replica);
    }
    let running = true;
    const ids = [];
    const writer = async () => {
      while (running) {
        try {
          const op = ids.length < 5 || random.chance(0.5) ? 'create' : random.chance(0.7) ? 'update' : 'delete';
          if (op === 'create') {
            const created = await rest(server, 'POST', '/api/todos', { body: { title: `t${stats.writes}` } });
            if (created.status === 201) ids.push(created.json.id);
          } else if (op === 'update') {
            await rest(server, 'PATCH', `/api/todos/${random.pick(ids)}`, { body: { title: `u${stats.writes}`, completed: random.chance(0.5) } });
          } else {
            const id = ids.splice(random.int(ids.length), 1)[0];
            await rest(server, 'DELETE', `/api/todos/${id}`);
          }
          stats.writes++;
        } catch {
          stats.failedWrites++; // the server is down for a moment
          await delay(100);
        }
      }
    };
    const writers = [writer(), writer()];
    const end = Date.now() + SECONDS * 1000;
    const killAt = new Set(Array.from({ length: KILLS }, (_, k) => Math.floor(((k + 1) * SECONDS) / (KILLS + 1))));
    for (let second = 0; Date.now() < end; second++) {
      await delay(300 + random.int(700));
      proxy.cut();
      stats.cuts++;
      if (killAt.has(second)) {
        killAt.delete(second);
        await server.kill();
        stats.kills++;
        await server.start();
      }
    }
    running = false;
    await Promise.all(writers);

    let last = null;
    const settled = await waitFor(async () => {
      const list = await rest(server, 'GET', '/api/todos');
      const truth = new Map(list.json.items.map((item) => [item.id, item.version]));
      const behind = replicas.filter((r) => r.seq !== list.json.seq || r.items.size !== truth.size
        || [...r.items.values()].some((item) => truth.get(item.id) !== item.version));
      last = { seq: list.json.seq, size: truth.size, behind: behind.map((r) => ({ name: r.name, seq: r.seq, size: r.items.size,
        missing: [...truth.keys()].filter((id) => !r.items.has(id)).slice(0, 3), extra: [...r.items.keys()].filter((id) => !truth.has(id)).slice(0, 3),
        wrong: [...r.items.values()].filter((item) => truth.get(item.id) !== item.version).slice(0, 3).map((item) => `${item.id}@${item.version} (server ${truth.get(item.id)})`) })) };
      return behind.length === 0 ? list.json : null;
    }, { timeout: 90_000, interval: 250, message: 'every client to hold the server\'s state' }).catch((error) => {
      throw new Error(`${error.message}; ${JSON.stringify(last)}`);
    });
    const duplicates = replicas.reduce((n, r) => n + r.duplicates.length, 0);
    console.log(`# convergence: ${JSON.stringify({ ...stats, clients: CLIENTS, finalSeq: settled.seq, records: settled.items.length, duplicates, gapsFilledFromRest: replicas.reduce((n, r) => n + r.filled, 0),
      // of those, events that did arrive over Bayeux later (out of order) and events that never did (lost in flight):
      filledThenArrived: replicas.reduce((n, r) => n + [...r.filledSeqs].filter((q) => r.everDelivered.has(q)).length, 0),
      filledNeverArrived: replicas.reduce((n, r) => n + [...r.filledSeqs].filter((q) => !r.everDelivered.has(q)).length, 0), resets: replicas.reduce((n, r) => n + r.resets, 0) })}`);
    assert.equal(duplicates, 0, `events delivered twice: ${replicas.filter((r) => r.duplicates.length).map((r) => `${r.name}: ${r.duplicates.slice(0, 10)}`).join('; ')}`);
  } finally {
    for (const replica of replicas) replica.client.disconnect();
    await proxy.close();
    await server.dispose();
  }
});
