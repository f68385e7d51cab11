// Helpers of the client suite: the real Tidings demo server (tests/shared/demo-server.mjs) with sign-in and
// REST calls for a second, independent writer; a Faye extension that holds, drops or repeats deliveries (to
// force orderings); a TCP proxy that cuts connections; and live-collection fixtures.
//
// Nothing here mocks the server: every test talks to a real `dotnet Tidings.Demo.dll` process.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { DemoServer, waitFor, withTimeout } from '../shared/demo-server.mjs';

export { DEMO_DLL, waitFor, withTimeout, quietPeriod, freePort, TcpProxy } from '../shared/demo-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.resolve(here, '../../artifacts/test-results/browser');

/** Resolves with the first event `name` of `emitter` whose arguments satisfy `predicate`. */
export function nextEvent(emitter, name, predicate = () => true, timeout = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no '${name}' event within ${timeout} ms`)); }, timeout);
    const off = emitter.on(name, (...args) => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

/** Starts the demo server; `config` entries become `--Key=value` command-line overrides. */
export function startServer(config = {}) {
  return TidingsServer.start(config);
}

export class TidingsServer extends DemoServer {
  constructor(config, port) {
    super(config, port, 'tidings-client');
  }

  /** Signs in by name (the demo's POST /api/session); resolves with a bearer token. */
  async signIn(name) {
    const { status, body } = await this.rest('POST', '/api/session', { name });
    if (status !== 200) throw new Error(`sign-in as ${name}: ${status} ${JSON.stringify(body)}`);
    return body.token;
  }

  /**
   * A REST call by an independent writer (signed in as `this.token` when set); resolves with
   * {status, body}.
   */
  async rest(method, pathName, body, headers = {}) {
    if (this.token) headers = { authorization: `Bearer ${this.token}`, ...headers };
    const response = await fetch(this.base + pathName, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  /** The server's current items of a collection, by id. */
  async state(pathName) {
    const { body } = await this.rest('GET', pathName);
    return { seq: body.seq, epoch: body.epoch, items: new Map(body.items.map((i) => [i.id, i])) };
  }
}

/**
 * A Faye extension for the client side that sees deliveries on `channel` before the Tidings client
 * does. `hold()` queues them, `release()` passes the queue on in order, `drop(n)` swallows the next
 * n, `repeat()` passes the next one twice. Add it to the Faye client BEFORE creating the
 * TidingsClient, so it runs first.
 */
export class DeliveryGate {
  constructor(channel) {
    this.channel = channel;
    this.holding = false;
    this.queue = [];
    this.toDrop = 0;
    this.toRepeat = 0;
    this.seen = [];
    this.subscribes = [];
    this.holdingReplies = false;
    this.replies = [];
  }

  outgoing(message, callback) {
    // The message itself, not a copy: extensions after this one (the Tidings client's) still add ext.
    if (message.channel === '/meta/subscribe') this.subscribes.push(message);
    callback(message);
  }

  incoming(message, callback) {
    if (message.channel === this.channel && message.successful !== undefined && this.holdingReplies) {
      this.replies.push([message, callback]); // a publish reply (socket write outcome)
      return undefined;
    }
    if (message.channel !== this.channel || message.data === undefined) return callback(message);
    this.seen.push(structuredClone(message.data));
    if (this.toDrop > 0) {
      this.toDrop--;
      return undefined; // swallowed: the pipeline stops here
    }
    if (this.holding) {
      this.queue.push([message, callback]);
      return undefined;
    }
    if (this.toRepeat > 0) {
      this.toRepeat--;
      callback(structuredClone(message));
    }
    return callback(message);
  }

  hold() {
    this.holding = true;
  }

  release() {
    this.holding = false;
    for (const [message, callback] of this.queue.splice(0)) callback(message);
  }

  /** Holds the replies to publishes (socket writes) on the channel. */
  holdReplies() {
    this.holdingReplies = true;
  }

  releaseReplies() {
    this.holdingReplies = false;
    for (const [message, callback] of this.replies.splice(0)) callback(message);
  }

  drop(n = 1) {
    this.toDrop += n;
  }

  repeat(n = 1) {
    this.toRepeat += n;
  }
}

// ---------------------------------------------------------------------------------------------
// Client fixtures

/**
 * Opens a live collection on a fresh TidingsClient (Node faye client). Returns the client, the
 * collection, its DeliveryGate and an event log: `log` (every event in order) and `adds(id)`.
 * `clientOptions` and `collectionOptions` add to what createClient and client.collection get.
 */
export async function openCollection(faye, createClient, server, pathName,
  { writes = 'rest', url, fetch, token, ready = true, clientOptions = {}, collectionOptions = {} } = {}) {
  const base = url ?? server.base;
  const fayeClient = new faye.Client(`${base}/bayeux`, { retry: 0.3, timeout: 10 });
  const gate = new DeliveryGate(pathName);
  fayeClient.addExtension(gate);
  const client = createClient({ url: base, faye: fayeClient, writes, retry: 0.3, fetch, token, ...clientOptions });
  const collection = client.collection(pathName, collectionOptions);
  const log = [];
  for (const name of ['add', 'change', 'remove', 'reset', 'error']) {
    collection.on(name, (...args) => log.push({ name, record: args[0] }));
  }
  const fixture = {
    client, fayeClient, collection, gate, log,
    adds: (id) => log.filter((e) => e.name === 'add' && e.record.id === id).length,
    count: (name) => log.filter((e) => e.name === name).length,
    async close() {
      client.close();
      await closeFaye(fayeClient);
    },
  };
  if (ready) {
    await withTimeout(collection.ready, 20_000, `${pathName} to load`).catch(async (error) => {
      await fixture.close();
      throw new Error(`${error.message}; deliveries seen: ${JSON.stringify(gate.seen).slice(0, 2000)}; ` +
        `subscribes: ${JSON.stringify(gate.subscribes).slice(0, 1000)}`);
    });
  }
  return fixture;
}

/**
 * Disconnects a Faye client and makes sure it stops. Faye retries a message until it is delivered,
 * so a disconnect the server never answers (it stopped first; the client was reconnecting through a
 * cut proxy) would keep retrying forever and hold the test process open: after a bounded wait for
 * the reply, its dispatcher is stopped for good.
 */
export async function closeFaye(fayeClient) {
  const done = fayeClient.disconnect();
  if (done) await Promise.race([done, delay(2000)]);
  fayeClient._state = fayeClient.DISCONNECTED;
  fayeClient._dispatcher.close();
}

/** Waits until the collection shows exactly the server's records (and no write is pending). */
export async function converged(fixture, server, pathName, message = 'the collection to match the server') {
  let last;
  await waitFor(async () => {
    const state = await server.state(pathName);
    const local = fixture.collection;
    last = { server: [...state.items.values()], local: local.toArray(), seq: local.seq, serverSeq: state.seq };
    if (local.pendingIds.length > 0 || local.seq !== state.seq || local.size !== state.items.size) return false;
    for (const [id, record] of state.items) {
      if (JSON.stringify(local.get(id)) !== JSON.stringify(record)) return false;
    }
    return true;
  }, { timeout: 20_000, message }).catch((error) => {
    throw new Error(`${error.message}
${JSON.stringify(last, null, 1).slice(0, 3000)}`);
  });
}
