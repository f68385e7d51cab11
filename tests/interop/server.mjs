// Helpers of the interop suite: the real Tidings demo server (tests/shared/demo-server.mjs), raw Bayeux over
// HTTP, the real faye and cometd clients behind one small interface, and a TCP proxy that can black-hole and
// cut connections to simulate network loss.
//
// Nothing here mocks the server: every test talks to a real `dotnet Tidings.Demo.dll` process.

import { after as afterAll } from 'node:test';
import faye from 'faye';
import { adapt } from 'cometd-nodejs-client';
import { DemoServer, waitFor, withTimeout, HOST } from '../shared/demo-server.mjs';

export { DEMO_DLL, waitFor, quietPeriod, withTimeout, freePort, TcpProxy } from '../shared/demo-server.mjs';

adapt();
const cometdModule = await import('cometd');
export const { CometD, AckExtension, Extension } = cometdModule;

// A safety net: if a client library keeps retrying after a failed test (timers, sockets), the test
// file's process would never exit. Once every test and hook of the file is done, give the reporter a
// moment, then exit with the file's result.
afterAll(() => {
  setTimeout(() => process.exit(), 3000).unref();
});

// ---------------------------------------------------------------------------------------------
// Waiting (waitFor, quietPeriod and withTimeout come from the shared module)

/** Collects messages and lets tests await the ones they expect. */
export class Inbox {
  constructor(name = 'inbox') {
    this.name = name;
    this.items = [];
    this.waiters = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const waiter of [...this.waiters]) waiter();
  }

  filter(predicate) {
    return this.items.filter(predicate);
  }

  /** Resolves with the first item matching `predicate` (already received or arriving later). */
  next(predicate = () => true, timeout = 10_000, what = 'a matching message') {
    return this.count(predicate, 1, timeout, what).then((items) => items[0]);
  }

  /** Resolves with the matching items once at least `n` of them have arrived. */
  count(predicate, n, timeout = 10_000, what = `${n} matching messages`) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.items.filter(predicate);
        if (found.length >= n) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const found = this.items.filter(predicate).length;
        reject(new Error(`${this.name}: timed out after ${timeout} ms waiting for ${what} (have ${found}); ` +
          `received: ${JSON.stringify(this.items.slice(-10))}`));
      }, timeout);
      if (!check()) this.waiters.add(check);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The server process

/**
 * Starts the demo server. `config` maps Bayeux option names to values, passed as
 * `--Bayeux:Name=value` command-line overrides (TimeSpans as hh:mm:ss).
 */
export function startServer(config = {}, { port } = {}) {
  return TidingsServer.start(config, { port });
}

export class TidingsServer extends DemoServer {
  constructor(config, port) {
    super(Object.fromEntries(Object.entries(config).map(([key, value]) => [`Bayeux:${key}`, value])), port, 'tidings-interop');
    this.wsUrl = `ws://${HOST}:${port}/bayeux`;
  }
}

// ---------------------------------------------------------------------------------------------
// Raw Bayeux over HTTP

let rawIds = 0;
export const nextId = () => `raw${++rawIds}`;

/** POSTs `body` (object/array → JSON, string → as is) to the endpoint; parses JSON replies. */
export async function post(server, body, { path: subPath = '', headers = {}, signal } = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`${server.bayeux}${subPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: text,
    signal,
  });
  const raw = await response.text();
  let json;
  try { json = JSON.parse(raw); } catch { json = undefined; }
  return { status: response.status, headers: response.headers, text: raw, json };
}

/** A minimal long-polling Bayeux client, message by message, for protocol-level assertions. */
export class RawClient {
  constructor(server) {
    this.server = server;
    this.clientId = null;
  }

  async send(messages, options) {
    const result = await post(this.server, messages, options);
    if (result.status !== 200 || !Array.isArray(result.json)) {
      throw new Error(`expected HTTP 200 with a JSON array, got ${result.status}: ${result.text}`);
    }
    return result.json;
  }

  /** Sends one message and returns [reply (matched by id), all messages of the response]. */
  async request(message, options) {
    const id = nextId();
    const all = await this.send([{ ...message, id }], options);
    const reply = all.find((m) => m.id === id);
    if (!reply) throw new Error(`no reply with id ${id} in ${JSON.stringify(all)}`);
    return [reply, all];
  }

  async handshake(extra = {}) {
    const [reply] = await this.request({
      channel: '/meta/handshake',
      version: '1.0',
      supportedConnectionTypes: ['long-polling'],
      ...extra,
    });
    if (!reply.successful) throw new Error(`handshake failed: ${JSON.stringify(reply)}`);
    this.clientId = reply.clientId;
    return reply;
  }

  async subscribe(subscription, extra = {}) {
    const [reply] = await this.request({ channel: '/meta/subscribe', clientId: this.clientId, subscription, ...extra });
    return reply;
  }

  async publish(channel, data, extra = {}) {
    const [reply] = await this.request({ channel, clientId: this.clientId, data, ...extra });
    return reply;
  }

  /** One /meta/connect; resolves with { reply, deliveries, all, elapsed }. */
  async connect({ timeout, ext, signal } = {}) {
    const message = { channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling' };
    if (timeout !== undefined) message.advice = { timeout };
    if (ext !== undefined) message.ext = ext;
    const started = Date.now();
    const [reply, all] = await this.request(message, { signal });
    return {
      reply,
      deliveries: all.filter((m) => m !== reply && !m.channel.startsWith('/meta/')),
      all,
      elapsed: Date.now() - started,
    };
  }

  async disconnect() {
    const [reply] = await this.request({ channel: '/meta/disconnect', clientId: this.clientId });
    return reply;
  }
}

// ---------------------------------------------------------------------------------------------
// Real clients behind one interface

export const CLIENT_KINDS = ['faye-websocket', 'faye-long-polling', 'cometd-websocket', 'cometd-long-polling'];

/**
 * Creates and connects a real client. Every client records what arrives on the wire:
 * `deliveries` (non-meta messages without `successful`), `replies` (everything with `successful`).
 */
export async function connectClient(kind, server, options = {}) {
  const client = kind.startsWith('faye') ? new FayeAdapter(kind, server, options) : new CometdAdapter(kind, server, options);
  await client.connect();
  return client;
}

/** Splits incoming wire messages into the two inboxes. */
function record(adapter, message) {
  if (!message || typeof message.channel !== 'string') return;
  if ('successful' in message) {
    adapter.replies.push(message);
  } else if (!message.channel.startsWith('/meta/')) {
    adapter.deliveries.push(structuredClone(message));
  }
}

export class FayeAdapter {
  constructor(kind, server, { retry = 0.5, token } = {}) {
    this.kind = kind;
    this.transport = kind.slice('faye-'.length);
    this.deliveries = new Inbox(`${kind} deliveries`);
    this.replies = new Inbox(`${kind} replies`);
    this.client = new faye.Client(server.bayeux, { retry, timeout: 60 });
    if (this.transport === 'long-polling') this.client.disable('websocket');
    this.client.addExtension({
      incoming: (message, callback) => { record(this, message); callback(message); },
      // A signed-in client presents its token on every handshake (faye re-handshakes by itself).
      outgoing: (message, callback) => {
        if (token && message.channel === '/meta/handshake') message.ext = { ...message.ext, token };
        callback(message);
      },
    });
  }

  get clientId() {
    return this.client._dispatcher.clientId;
  }

  get connectionType() {
    return this.client._dispatcher.connectionType;
  }

  async connect() {
    await withTimeout(new Promise((resolve) => this.client.connect(resolve)), 10_000, `${this.kind} to connect`);
    if (this.transport === 'websocket') {
      await waitFor(() => this.connectionType === 'websocket', { message: 'faye to upgrade to websocket' });
    }
  }

  /** Subscribes; resolves once the server acknowledged; rejects with the Bayeux error. */
  async subscribe(channel, onData = () => {}) {
    const subscription = this.client.subscribe(channel, onData);
    await withTimeout(Promise.resolve(subscription), 10_000, `${this.kind} subscribe ${channel}`);
    return subscription;
  }

  async publish(channel, data) {
    await withTimeout(Promise.resolve(this.client.publish(channel, data)), 10_000, `${this.kind} publish ${channel}`);
  }

  async disconnect() {
    const done = this.replies.next((m) => m.channel === '/meta/disconnect', 3000).catch(() => {});
    this.client.disconnect();
    await done;
  }
}

/** Records every incoming message before CometD (and its other extensions) see it. */
class SpyExtension extends Extension {
  constructor(adapter) {
    super();
    this.adapter = adapter;
  }

  incoming(message) {
    record(this.adapter, message);
    return message;
  }
}

export class CometdAdapter {
  constructor(kind, server, { ack = false, url, token } = {}) {
    this.token = token;
    this.kind = kind;
    this.transport = kind.slice('cometd-'.length);
    this.deliveries = new Inbox(`${kind} deliveries`);
    this.replies = new Inbox(`${kind} replies`);
    const cometd = new CometD();
    this.cometd = cometd;
    for (const type of cometd.getTransportTypes()) {
      if (type !== this.transport) cometd.unregisterTransport(type);
    }
    cometd.configure({
      url: url ?? server.bayeux,
      logLevel: 'warn',
      backoffIncrement: 200,
      maxBackoff: 1000,
      maxNetworkDelay: 5000,
    });
    if (ack) cometd.registerExtension('ack', new AckExtension());
    // Incoming extensions run in reverse registration order: the spy, registered last, sees the raw message.
    cometd.registerExtension('spy', new SpyExtension(this));
  }

  get clientId() {
    return this.cometd.getClientId();
  }

  get connectionType() {
    return this.cometd.getTransport()?.type;
  }

  async connect() {
    // Handshake props are kept by CometD and sent again on every re-handshake.
    const props = this.token ? { ext: { token: this.token } } : {};
    const reply = await withTimeout(new Promise((resolve) => this.cometd.handshake(props, resolve)), 10_000, `${this.kind} handshake`);
    if (!reply.successful) throw new Error(`${this.kind} handshake failed: ${JSON.stringify(reply)}`);
    this.handshakeReply = reply;
    // The first /meta/connect answered means the session is fully up.
    await this.replies.next((m) => m.channel === '/meta/connect' && m.successful, 10_000, 'first /meta/connect reply');
  }

  subscribe(channel, onMessage = () => {}) {
    return withTimeout(new Promise((resolve, reject) => {
      const handle = this.cometd.subscribe(channel, onMessage, (reply) => {
        if (reply.successful) resolve(handle);
        else reject(Object.assign(new Error(`subscribe ${channel} failed: ${reply.error}`), { reply }));
      });
    }), 10_000, `${this.kind} subscribe ${channel}`);
  }

  publish(channel, data) {
    return withTimeout(new Promise((resolve, reject) => {
      this.cometd.publish(channel, data, (reply) => {
        if (reply.successful) resolve(reply);
        else reject(Object.assign(new Error(`publish ${channel} failed: ${reply.error}`), { reply }));
      });
    }), 10_000, `${this.kind} publish ${channel}`);
  }

  remoteCall(target, data, timeout = 5000) {
    return new Promise((resolve) => this.cometd.remoteCall(target, data, timeout, resolve));
  }

  async disconnect() {
    if (this.cometd.isDisconnected()) return;
    await withTimeout(new Promise((resolve) => this.cometd.disconnect(resolve)), 3000, `${this.kind} disconnect`).catch(() => {});
  }
}

/** Disconnects every client, ignoring failures (used in after hooks). */
export async function disconnectAll(clients) {
  await Promise.all(clients.splice(0).map((c) => c.disconnect().catch(() => {})));
}
