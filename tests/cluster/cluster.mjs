// Helpers of the cluster suite: a throwaway PostgreSQL cluster, three demo nodes on it (tests/shared/demo-server.mjs)
// behind nginx (nginx.conf.template), and the real faye and cometd clients as "watchers" of one collection channel
// that re-subscribe with ext {since, epoch} after every re-handshake, so a client that lost its node catches up.
//
// Nothing here mocks the server. Every process started here is stopped by its PID when the tests end, also when
// they fail or time out (process exit handler).

import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, chownSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after as afterAll } from 'node:test';
import faye from 'faye';
import { adapt } from 'cometd-nodejs-client';
import { DemoServer, waitFor, withTimeout, freePort, HOST } from '../shared/demo-server.mjs';

export { waitFor, withTimeout, quietPeriod, freePort, HOST } from '../shared/demo-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

// cometd-nodejs-client keeps server cookies in one jar per host name for every CometD instance of the process:
// with several clients on 127.0.0.1 the last handshake's `tidings_node` would steer all of them. Each CometD
// long-polling client here gets its own jar, named by a `jar` query parameter in its URL.
const jars = new Map();
const jarOf = (uri) => {
  const name = uri.searchParams?.get('jar');
  if (!name) return null;
  if (!jars.has(name)) jars.set(name, new Map());
  return jars.get(name);
};
adapt({
  cookies: {
    storeCookie(uri, header, callback) {
      const nameValue = header.split(';')[0].trim();
      const equal = nameValue.indexOf('=');
      if (equal > 0) jarOf(uri)?.set(nameValue.slice(0, equal), nameValue);
      callback();
    },
    retrieveCookies(context, uri, callback) {
      callback(null, [...(jarOf(uri)?.values() ?? [])]);
    },
  },
});
const cometdModule = await import('cometd');
export const { CometD } = cometdModule;

// Every process this file started, stopped by PID if the process exits with them still running.
const cleanups = new Set();
process.once('exit', () => {
  for (const cleanup of cleanups) {
    try { cleanup(); } catch { /* best effort while exiting */ }
  }
});

// Client libraries may keep timers after a failed test: once every test and hook is done, exit.
afterAll(() => {
  setTimeout(() => process.exit(), 3000).unref();
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const PG_BIN = process.env.TIDINGS_PG_BIN ?? (() => {
  for (const version of ['17', '16', '15', '14', '13']) {
    const bin = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(`${bin}/initdb`)) return bin;
  }
  throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql (test.sh does).');
})();
const asRoot = process.getuid?.() === 0;

/** A PostgreSQL server of its own: a cluster in a temporary folder, a free loopback port, fsync on. */
export class Postgres {
  static async start() {
    const pg = new Postgres(mkdtempSync(path.join(os.tmpdir(), 'tidings-cluster-pg-')), await freePort());
    try {
      await pg.#tool('initdb', ['-D', pg.data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
      await pg.startServer();
      await run(path.join(PG_BIN, 'psql'), ['-h', HOST, '-p', String(pg.port), '-U', 'postgres', '-d', 'postgres', '-qc', 'CREATE DATABASE tidings;']);
    } catch (error) {
      await pg.dispose();
      throw error;
    }
    return pg;
  }

  constructor(folder, port) {
    this.folder = folder;
    this.data = path.join(folder, 'data');
    this.port = port;
    // Timeout: the first connection loads the type catalog, slow on a busy machine (the store defaults to 3 s).
    this.connectionString = `Host=${HOST};Port=${port};Username=postgres;Database=tidings;Timeout=15`;
    if (asRoot) chownSync(folder, Number(execFileSync('id', ['-u', 'postgres']).toString()), 0);
    this.cleanup = () => {
      // Immediate shutdown (SIGQUIT) of the postmaster, by the PID it wrote.
      const pid = this.pid();
      if (pid) process.kill(pid, 'SIGQUIT');
      rmSync(folder, { recursive: true, force: true });
    };
    cleanups.add(this.cleanup);
  }

  pid() {
    try {
      return Number(readFileSync(path.join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
    } catch {
      return null;
    }
  }

  #tool(name, args) {
    const file = path.join(PG_BIN, name);
    return asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args);
  }

  startServer() {
    return this.#tool('pg_ctl', ['-D', this.data, '-l', path.join(this.folder, 'server.log'), '-w', '-t', '60',
      '-o', `-p ${this.port} -c listen_addresses=${HOST} -k ${this.folder} -c fsync=on -c max_connections=300`, 'start']);
  }

  /** Stops at once, as a crash would (`pg_ctl -m immediate stop`). */
  stopServer(mode = 'immediate') {
    return this.#tool('pg_ctl', ['-D', this.data, '-m', mode, '-w', 'stop']);
  }

  log() {
    try { return readFileSync(path.join(this.folder, 'server.log'), 'utf8').slice(-4000); } catch { return ''; }
  }

  async dispose() {
    if (this.pid()) await this.stopServer('fast').catch(() => this.cleanup());
    cleanups.delete(this.cleanup);
    rmSync(this.folder, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The nodes

/** What every node gets: rate limits lifted (every test client shares one address), short connects. */
export const NODE_SETTINGS = {
  'Tidings:RequestsPerSecond': 1_000_000, 'Tidings:RequestBurst': 1_000_000,
  'Tidings:PublishesPerSecond': 1_000_000, 'Tidings:PublishBurst': 1_000_000,
  'Tidings:HandshakesPerSecond': 1_000_000, 'Tidings:HandshakeBurst': 1_000_000, 'Bayeux:MaxSessionsPerAddress': 1_000_000,
  'Bayeux:ConnectTimeout': '00:00:10',
};

/** A demo node: `--postgres`, `--Bayeux:NodeId`, and the data folder it shares with the others (sign-in key). */
export class ClusterNode extends DemoServer {
  constructor(id, port, dataDir, settings) {
    super(settings, port, `tidings-cluster-${id}`);
    rmSync(this.dataDir, { recursive: true, force: true }); // the folder DemoServer made: this node shares dataDir
    this.dataDir = dataDir;
    this.id = id;
    this.startTimeout = 60_000; // three start at once, on a machine that may be busy
  }

  get running() {
    return this.child !== null;
  }

  /** kill -9: no goodbye to anyone. */
  async kill() {
    const child = this.child;
    this.child = null;
    child.kill('SIGKILL');
    await child.exitedPromise;
  }

  async dispose() {
    await this.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// nginx

export class Nginx {
  static async start(nodePorts) {
    const nginx = new Nginx(mkdtempSync(path.join(os.tmpdir(), 'tidings-cluster-nginx-')), await freePort());
    try {
      await nginx.#start(nodePorts);
    } catch (error) {
      await nginx.dispose();
      throw error;
    }
    return nginx;
  }

  constructor(folder, port) {
    this.folder = folder;
    this.port = port;
    this.base = `http://${HOST}:${port}`;
    this.bayeux = `${this.base}/bayeux`;
    this.output = '';
  }

  async #start([a, b, c]) {
    const config = readFileSync(path.join(here, 'nginx.conf.template'), 'utf8')
      .replaceAll('{{DIR}}', this.folder).replaceAll('{{PORT}}', String(this.port))
      .replaceAll('{{A}}', String(a)).replaceAll('{{B}}', String(b)).replaceAll('{{C}}', String(c));
    this.config = path.join(this.folder, 'nginx.conf');
    writeFileSync(this.config, config);
    const binary = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
    const child = spawn(binary, ['-c', this.config, '-p', this.folder, '-e', path.join(this.folder, 'error.log')],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // SIGTERM: the master stops its workers and exits (a SIGKILLed master would leave its worker behind).
    const cleanup = () => {
      child.kill('SIGTERM');
      rmSync(this.folder, { recursive: true, force: true });
    };
    cleanups.add(cleanup);
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      cleanups.delete(cleanup);
      resolve({ code, signal });
    }));
    child.stdout.on('data', (d) => { this.output += d; });
    child.stderr.on('data', (d) => { this.output += d; });
    let early = null;
    child.exited.then((status) => { early = status; });
    await waitFor(async () => {
      if (early) throw new Error(`nginx exited: ${JSON.stringify(early)} ${this.output} ${this.errorLog()}`);
      const response = await fetch(`${this.base}/`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      return response.status === 200;
    }, { timeout: 15_000, interval: 100, message: `nginx on ${this.base}` });
  }

  errorLog() {
    try { return readFileSync(path.join(this.folder, 'error.log'), 'utf8').slice(-3000); } catch { return ''; }
  }

  accessLog() {
    try { return readFileSync(path.join(this.folder, 'access.log'), 'utf8'); } catch { return ''; }
  }

  async dispose() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await withTimeout(this.child.exited, 10_000, 'nginx to stop').catch(() => this.child.kill('SIGKILL'));
    }
    rmSync(this.folder, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The whole cluster

export class Cluster {
  /** PostgreSQL, nodes a, b and c (one shared data folder), nginx in front; torn down if any of it fails. */
  static async start() {
    const cluster = new Cluster();
    try {
      await cluster.#start();
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  constructor() {
    this.data = mkdtempSync(path.join(os.tmpdir(), 'tidings-cluster-data-'));
    this.nodes = [];
    this.cleanup = () => rmSync(this.data, { recursive: true, force: true });
    cleanups.add(this.cleanup);
  }

  async #start() {
    this.pg = await Postgres.start();
    // The client's address reaches the nodes' per-address limits through X-Forwarded-For.
    process.env.ASPNETCORE_FORWARDEDHEADERS_ENABLED = 'true';
    for (const id of ['a', 'b', 'c']) {
      this.nodes.push(new ClusterNode(id, await freePort(), this.data,
        { ...NODE_SETTINGS, postgres: this.pg.connectionString, 'Bayeux:NodeId': id }));
    }
    // Started together on an empty --data: they share the sign-in key written there.
    await Promise.all(this.nodes.map((node) => node.start()));
    this.nginx = await Nginx.start(this.nodes.map((node) => node.port));
    this.base = this.nginx.base;
    this.bayeux = this.nginx.bayeux;
  }

  node(id) {
    return this.nodes.find((n) => n.id === id);
  }

  /** Every way in: nginx and each running node directly. */
  entrances() {
    return [{ id: 'nginx', base: this.base }, ...this.nodes.filter((n) => n.running).map((n) => ({ id: n.id, base: n.base }))];
  }

  /**
   * The node that holds Bayeux session `clientId` (null: none). Asks each running node directly with an
   * unsubscribe from a channel nobody uses: the others answer 401 (unknown client).
   */
  async nodeOf(clientId) {
    for (const node of this.nodes.filter((n) => n.running)) {
      const response = await fetch(node.bayeux, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ channel: '/meta/unsubscribe', clientId, subscription: '/cluster/probe', id: 'probe' }]),
        signal: AbortSignal.timeout(5000),
      });
      const [reply] = await response.json();
      if (!String(reply.error ?? '').startsWith('401')) return node.id;
    }
    return null;
  }

  async dispose() {
    await this.nginx?.dispose().catch(() => {});
    await Promise.all(this.nodes.map((node) => node.dispose().catch(() => {})));
    await this.pg?.dispose().catch(() => {});
    this.cleanup();
    cleanups.delete(this.cleanup);
  }
}

// ---------------------------------------------------------------------------------------------
// REST

/** A REST call to `base` (nginx or a node), with a bearer token; network failures answer status 0. */
export async function rest(base, method, pathName, body, token) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    const response = await fetch(base + pathName, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = text; }
    return { status: response.status, body: json };
  } catch (error) {
    return { status: 0, body: String(error?.cause?.code ?? error?.message ?? error) };
  }
}

export async function signIn(base, name) {
  const { status, body } = await rest(base, 'POST', '/api/session', { name });
  if (status !== 200) throw new Error(`sign-in as ${name}: ${status} ${JSON.stringify(body)}`);
  return body.token;
}

/** A collection's state: {seq, epoch, items (sorted by id)}. */
export async function state(base, pathName, token) {
  const { status, body } = await rest(base, 'GET', pathName, undefined, token);
  if (status !== 200) throw new Error(`GET ${pathName}: ${status} ${JSON.stringify(body)}`);
  return { seq: body.seq, epoch: body.epoch, items: sortById(body.items) };
}

export const sortById = (items) => [...items].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));

/**
 * Checks a received event stream against the server: seqs `from+1`..`final.seq` each once and in order, no RESET,
 * and the events applied to `initial` give exactly the server's items. Returns a description of what is wrong, or null.
 */
export function streamProblem(events, final, { from = 0, initial = [] } = {}) {
  const seqs = events.map((e) => e.seq);
  const expected = Array.from({ length: final.seq - from }, (_, i) => from + i + 1);
  if (JSON.stringify(seqs) !== JSON.stringify(expected)) {
    const seen = new Map();
    for (const s of seqs) seen.set(s, (seen.get(s) ?? 0) + 1);
    const missing = expected.filter((s) => !seen.has(s));
    const repeated = [...seen].filter(([, n]) => n > 1).map(([s]) => s);
    return `seqs are not ${from + 1}..${final.seq} once in order: ${seqs.length} events, missing ${JSON.stringify(missing.slice(0, 20))}, ` +
      `repeated ${JSON.stringify(repeated.slice(0, 20))}, methods ${JSON.stringify([...new Set(events.map((e) => e.method))])}`;
  }
  const items = new Map(initial.map((i) => [i.id, i]));
  for (const event of events) {
    if (event.method === 'POST' || event.method === 'PUT') items.set(event.body.id, event.body);
    else if (event.method === 'DELETE') items.delete(event.body.id);
    else if (event.method !== 'SKIP') return `unexpected ${event.method} at seq ${event.seq}`;
  }
  const local = JSON.stringify(sortById([...items.values()]));
  if (local !== JSON.stringify(final.items)) return `applied events differ from GET: ${local.slice(0, 500)} vs ${JSON.stringify(final.items).slice(0, 500)}`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Clients

export const KINDS = ['faye-long-polling', 'faye-websocket', 'cometd-long-polling', 'cometd-websocket'];
let jarCount = 0;

/**
 * A real faye or cometd client subscribed to `channel` (a collection channel: since/epoch tracked; or a plain
 * one). Records deliveries on its subscriptions (`events`: data), successful handshakes, and every reply.
 * On every (re-)handshake it subscribes again with ext {since, epoch} once it knows a position.
 */
export class Watcher {
  constructor(kind, url, { token, position, cookies = true } = {}) {
    this.kind = kind;
    this.url = url;
    this.token = token;
    this.position = position ?? null; // {seq, epoch} of the collection channel, kept current
    this.events = [];
    this.byChannel = new Map();
    this.replies = [];
    this.handshakes = [];
    this.channels = new Set();
    this.cookies = cookies;
    this.closed = false;
    if (kind.startsWith('faye')) this.#faye(kind.slice(5));
    else this.#cometd(kind.slice(7));
  }

  #deliver(channel, data) {
    if (this.closed) return;
    this.events.push({ channel, data });
    if (!this.byChannel.has(channel)) this.byChannel.set(channel, []);
    this.byChannel.get(channel).push(data);
    if (this.position && typeof data?.seq === 'number' && this.position.channel === channel) {
      this.position.seq = data.seq;
      if (data.epoch) this.position.epoch = data.epoch;
    }
  }

  #sinceExt(channel) {
    return this.position && this.position.channel === channel && this.position.epoch
      ? { since: this.position.seq, epoch: this.position.epoch } : undefined;
  }

  #reply(message) {
    this.replies.push({ at: Date.now(), ...message });
    if (message.channel === '/meta/handshake' && message.successful) this.handshakes.push({ at: Date.now(), clientId: message.clientId });
  }

  #faye(transport) {
    this.client = new faye.Client(this.url, { retry: 0.3, timeout: 15 });
    if (transport === 'long-polling') this.client.disable('websocket');
    if (!this.cookies) this.client._dispatcher.cookies = null; // a client without a cookie jar
    this.client.addExtension({
      outgoing: (message, callback) => {
        if (message.channel === '/meta/handshake' && this.token) message.ext = { ...message.ext, token: this.token };
        if (message.channel === '/meta/subscribe') {
          const ext = this.#sinceExt(message.subscription);
          if (ext) message.ext = { ...message.ext, ...ext };
        }
        callback(message);
      },
      incoming: (message, callback) => {
        if ('successful' in message) this.#reply(message);
        callback(message);
      },
    });
  }

  #cometd(transport) {
    const cometd = new CometD();
    this.cometd = cometd;
    for (const type of cometd.getTransportTypes()) {
      if (type !== transport) cometd.unregisterTransport(type);
    }
    const url = transport === 'long-polling' && this.cookies ? `${this.url}?jar=cometd${++jarCount}` : this.url;
    cometd.configure({ url, logLevel: 'warn', backoffIncrement: 200, maxBackoff: 1000, maxNetworkDelay: 15_000 });
    // The CometD way: (re-)subscribe whenever a handshake succeeds, here with since/epoch when known.
    cometd.addListener('/meta/handshake', (reply) => {
      this.#reply(reply);
      if (!reply.successful || this.closed) return;
      cometd.batch(() => {
        for (const channel of this.channels) this.#cometdSubscribe(channel);
      });
    });
    for (const meta of ['/meta/connect', '/meta/subscribe', '/meta/unsubscribe', '/meta/publish']) {
      cometd.addListener(meta, (reply) => this.#reply(reply));
    }
  }

  // Faye forgets a subscription the server refused; one refused with 401 (the session was unknown where it
  // landed) is sent again, as the Tidings JS client does: faye sends it once it has handshaken again.
  #fayeSubscribe(channel) {
    const subscription = this.client.subscribe(channel).withChannel((name, data) => this.#deliver(name, data));
    subscription.then(() => {}, (error) => {
      if (error?.code === 401 && !this.closed) setTimeout(() => this.#fayeSubscribe(channel), 0);
    });
  }

  #cometdSubscribe(channel, done = () => {}) {
    const ext = this.#sinceExt(channel);
    this.cometd.subscribe(channel, (message) => this.#deliver(message.channel, message.data), ext ? { ext } : {}, done);
  }

  describeReplies() {
    return this.replies.map((r) => `${r.channel}${r.subscription ? ` ${r.subscription}` : ''}:${r.successful ? 'ok' : r.error}`).join(', ');
  }

  get clientId() {
    return this.cometd ? this.cometd.getClientId() : this.client._dispatcher.clientId;
  }

  /** The affinity cookie this client would send (faye's jar; CometD long-polling's own jar). */
  get nodeCookie() {
    if (this.client) {
      const jar = this.client._dispatcher.cookies;
      const cookie = jar?.getCookiesSync(this.url).find((c) => c.key === 'tidings_node');
      return cookie?.value ?? null;
    }
    const name = new URL(this.cometd.getConfiguration().url).searchParams.get('jar');
    return jars.get(name)?.get('tidings_node')?.split('=')[1] ?? null;
  }

  /** Connects (CometD) and subscribes to `channel`; resolves when the server acknowledged the subscription. */
  async subscribe(channel) {
    this.channels.add(channel);
    if (this.client) {
      // Not the subscription's promise: behind nginx, faye's WebSocket may reach another node than its handshake
      // (faye opens it before the handshake reply sets the affinity cookie). That first subscribe or connect
      // gets 401, faye handshakes again and subscribes again by itself; what counts is the server's acceptance.
      this.#fayeSubscribe(channel);
      await waitFor(() => this.replies.some((r) => r.channel === '/meta/subscribe' && r.successful && [].concat(r.subscription).includes(channel)),
        { timeout: 15_000, message: `${this.kind}: subscribed to ${channel}` })
        .catch((error) => { throw new Error(`${error.message} via ${this.url}; replies: ${this.describeReplies()}`); });
      if (this.kind === 'faye-websocket') {
        await waitFor(() => this.client._dispatcher.connectionType === 'websocket', { message: 'faye to upgrade to websocket' });
      }
      return;
    }
    if (this.cometd.isDisconnected()) {
      // The handshake listener subscribes to every channel of this.channels.
      const reply = await withTimeout(new Promise((resolve) => this.cometd.handshake(this.token ? { ext: { token: this.token } } : {}, resolve)),
        15_000, `${this.kind} handshake`);
      if (!reply.successful) throw new Error(`${this.kind} handshake failed: ${JSON.stringify(reply)}`);
    } else {
      await withTimeout(new Promise((resolve, reject) => this.#cometdSubscribe(channel, (reply) => (reply.successful ? resolve()
        : reject(new Error(`subscribe ${channel}: ${reply.error}`))))), 15_000, `${this.kind} subscribe ${channel}`);
    }
    await waitFor(() => this.replies.some((r) => r.channel === '/meta/subscribe' && r.successful && [].concat(r.subscription).includes(channel)),
      { timeout: 15_000, message: `${this.kind}: subscribed to ${channel}` });
  }

  /** Subscribes and expects a refusal; resolves with the error string. */
  async refusedSubscribe(channel) {
    if (this.client) {
      // A 401 means the subscribe reached another node than the handshake (see subscribe): ask again.
      for (let attempt = 0; attempt < 5; attempt++) {
        const subscription = this.client.subscribe(channel).withChannel((name, data) => this.#deliver(name, data));
        const error = await withTimeout(new Promise((resolve, reject) => {
          subscription.then(() => reject(new Error(`${this.kind}: subscribe ${channel} was accepted`)), resolve);
        }), 15_000, `${this.kind} subscribe ${channel}`);
        if (error?.code !== 401) return `${error.code}:${error.message}`;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      throw new Error(`${this.kind}: subscribe ${channel} kept answering 401`);
    }
    if (this.cometd.isDisconnected()) {
      const reply = await withTimeout(new Promise((resolve) => this.cometd.handshake(this.token ? { ext: { token: this.token } } : {}, resolve)),
        15_000, `${this.kind} handshake`);
      if (!reply.successful) throw new Error(`${this.kind} handshake failed: ${JSON.stringify(reply)}`);
    }
    return withTimeout(new Promise((resolve, reject) => this.cometd.subscribe(channel, () => {}, (reply) => (reply.successful
      ? reject(new Error(`${this.kind}: subscribe ${channel} was accepted`)) : resolve(reply.error)))), 15_000, `${this.kind} subscribe ${channel}`);
  }

  async publish(channel, data) {
    if (this.client) {
      await withTimeout(Promise.resolve(this.client.publish(channel, data)), 15_000, `${this.kind} publish ${channel}`);
      return;
    }
    await withTimeout(new Promise((resolve, reject) => this.cometd.publish(channel, data, (reply) => (reply.successful ? resolve()
      : reject(new Error(`publish ${channel}: ${reply.error}`))))), 15_000, `${this.kind} publish ${channel}`);
  }

  /** Forgets the affinity cookie, as a client whose cookie jar was cleared (the next request goes anywhere). */
  dropCookie() {
    if (this.client) {
      const jar = this.client._dispatcher.cookies;
      if (jar) this.client._dispatcher.cookies = new jar.constructor();
      return;
    }
    const name = new URL(this.cometd.getConfiguration().url).searchParams.get('jar');
    jars.get(name)?.clear();
  }

  /** Connects without subscribing (faye connects lazily: a handshake is forced here). */
  async connect() {
    if (this.client) {
      await withTimeout(new Promise((resolve) => this.client.connect(resolve)), 15_000, `${this.kind} connect`);
      return;
    }
    const reply = await withTimeout(new Promise((resolve) => this.cometd.handshake(this.token ? { ext: { token: this.token } } : {}, resolve)),
      15_000, `${this.kind} handshake`);
    if (!reply.successful) throw new Error(`${this.kind} handshake failed: ${JSON.stringify(reply)}`);
  }

  async close() {
    this.closed = true;
    if (this.client) {
      const done = this.client.disconnect();
      // (A disconnect that reaches another node than the session's is refused with 401: closed either way.)
      if (done) await Promise.race([Promise.resolve(done).then(() => {}, () => {}), new Promise((r) => setTimeout(r, 2000))]);
      // Faye retries a message the server never answers forever: stop its dispatcher for good.
      this.client._state = this.client.DISCONNECTED;
      this.client._dispatcher.close();
      return;
    }
    if (!this.cometd.isDisconnected()) {
      await withTimeout(new Promise((resolve) => this.cometd.disconnect(resolve)), 3000, `${this.kind} disconnect`).catch(() => {});
    }
  }
}

/** Closes every watcher or fixture, ignoring failures (after hooks). */
export async function closeAll(list) {
  await Promise.all(list.splice(0).map((c) => c.close().catch(() => {})));
}
