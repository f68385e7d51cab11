// Shared helpers of the client suite: start/stop the real Tidings demo server, wait for conditions,
// a Faye extension that holds, drops or repeats deliveries (to force orderings), a TCP proxy that
// cuts connections, and a REST helper for a second, independent writer.
//
// Nothing here mocks the server: every test talks to a real `dotnet Tidings.Demo.dll` process.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';

const here = path.dirname(fileURLToPath(import.meta.url));

export const DEMO_DLL = path.resolve(here,
  process.env.TIDINGS_DEMO_DLL ?? '../../samples/Demo/bin/Release/net10.0/Tidings.Demo.dll');
export const ARTIFACTS = path.resolve(here, '../../artifacts/test-results/browser');

const HOST = '127.0.0.1';

// Every demo server this test file started; killed when the file's process exits for any reason, so
// a failed or timed-out test never leaves a `dotnet` process behind (or holds the runner open).
const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
process.once('SIGTERM', () => process.exit(143));

/** Rejects with `message` when `promise` has not settled within `ms`. */
export function within(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` until it returns a truthy value (returned) or the deadline passes (throws). */
export async function waitFor(condition, { timeout = 10_000, interval = 20, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? ` (last error: ${lastError.message ?? lastError})` : '';
      throw new Error(`Timed out after ${timeout} ms waiting for ${message}${detail}`);
    }
    await delay(interval);
  }
}

/** A bounded wait, used ONLY to assert that something does not happen within it. */
export const quietPeriod = (ms = 300) => delay(ms);

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

/** A free loopback port: listen on port 0, read it, close. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts the demo server; `config` entries become `--Key=value` command-line overrides. */
export async function startServer(config = {}) {
  const server = new TidingsServer(config, await freePort());
  await server.start();
  return server;
}

export class TidingsServer {
  constructor(config, port) {
    this.config = config;
    this.port = port;
    this.base = `http://${HOST}:${port}`;
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'tidings-client-'));
    this.child = null;
    this.log = [];
  }

  async start() {
    if (!existsSync(DEMO_DLL)) {
      throw new Error(`Tidings demo not found at ${DEMO_DLL}. Build it first: ` +
        '`dotnet build samples/Demo -c Release` (or set TIDINGS_DEMO_DLL).');
    }
    const args = [DEMO_DLL, '--urls', this.base, '--data', this.dataDir];
    for (const [key, value] of Object.entries(this.config)) args.push(`--${key}=${value}`);
    const child = spawn('dotnet', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DOTNET_NOLOGO: '1', ASPNETCORE_ENVIRONMENT: 'Production' },
    });
    this.child = child;
    running.add(child);
    child.exitedPromise = new Promise((resolve) => child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }));
    const record = (chunk) => {
      this.log.push(chunk.toString());
      if (this.log.length > 2000) this.log.splice(0, 1000);
    };
    child.stdout.on('data', record);
    child.stderr.on('data', record);

    let early = null;
    child.exitedPromise.then((status) => { early = status; });
    await waitFor(async () => {
      if (early) throw new Error(`server exited early: ${JSON.stringify(early)}`);
      const response = await fetch(`${this.base}/`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      return response.status === 200;
    }, { timeout: 20_000, interval: 100, message: `the Tidings server on ${this.base} to answer GET /` })
      .catch((error) => { throw new Error(`${error.message}\n--- server output ---\n${this.output()}`); });
  }

  output() {
    return this.log.join('').slice(-8000);
  }

  async stop() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await child.exitedPromise;
      clearTimeout(killer);
    }
  }

  /** Stops the process and starts a new one on the same port and data (all sessions are lost). */
  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stops, deletes the data (a new store: new epoch, empty log), starts again. */
  async restartEmpty() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'tidings-client-'));
    await this.start();
  }

  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
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

/**
 * Forwards 127.0.0.1:<proxy.port> to the server; `cut()` destroys every open connection and,
 * while `refusing`, new ones are closed at once (the network is down).
 */
export class TcpProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.refusing = false;
    this.server = net.createServer((client) => this.#accept(client));
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, HOST, resolve);
    });
    this.port = this.server.address().port;
    this.base = `http://${HOST}:${this.port}`;
    return this;
  }

  #accept(client) {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, HOST);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** The network goes down: open connections are cut, new ones refused. */
  down() {
    this.refusing = true;
    for (const { client, upstream } of [...this.pairs]) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  up() {
    this.refusing = false;
  }

  async close() {
    this.down();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

// ---------------------------------------------------------------------------------------------
// Client fixtures

/**
 * Opens a live collection on a fresh TidingsClient (Node faye client). Returns the client, the
 * collection, its DeliveryGate and an event log: `log` (every event in order) and `adds(id)`.
 */
export async function openCollection(faye, createClient, server, pathName, { writes = 'rest', url, fetch, token, ready = true } = {}) {
  const base = url ?? server.base;
  const fayeClient = new faye.Client(`${base}/bayeux`, { retry: 0.3, timeout: 10 });
  const gate = new DeliveryGate(pathName);
  fayeClient.addExtension(gate);
  const client = createClient({ url: base, faye: fayeClient, writes, retry: 0.3, fetch, token });
  const collection = client.collection(pathName);
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
    await within(collection.ready, 20_000, `${pathName} to load`).catch(async (error) => {
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
