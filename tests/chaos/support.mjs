// Shared parts of the chaos suite: the seed, the short/long switch, the demo server with test-sized limits,
// sign-in, a raw keep-alive HTTP/1.1 client (to see exactly what goes on the wire, including a desynchronised
// response), store snapshots for "nothing changed" checks, and RSS sampling.
//
// Nothing here mocks the server: every test talks to a real `dotnet Tidings.Demo.dll` process.

import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after as afterAll } from 'node:test';
import { DemoServer, HOST, waitFor } from '../shared/demo-server.mjs';

export { DemoServer, HOST, waitFor, withTimeout, freePort, TcpProxy, quietPeriod } from '../shared/demo-server.mjs';

/** CHAOS_LONG=1 (bench/chaos.sh) runs the long form: more inputs, more kills, load measurements. */
export const LONG = process.env.CHAOS_LONG === '1';

/** The seed of every random choice in a run; printed so that `CHAOS_SEED=<seed>` replays a failure exactly. */
export const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`# chaos seed: ${SEED} (replay with CHAOS_SEED=${SEED}${LONG ? ' CHAOS_LONG=1' : ''})`);

// Same exit safety net as the interop suite: a client library's timer must not keep a finished file alive.
afterAll(() => {
  setTimeout(() => process.exit(), 3000).unref();
});

/** A small, fast, seedable PRNG (mulberry32) with the helpers the generators need. */
export class Random {
  constructor(seed) {
    this.state = seed >>> 0;
  }

  next() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n) {
    return Math.floor(this.next() * n);
  }

  pick(items) {
    return items[this.int(items.length)];
  }

  chance(p) {
    return this.next() < p;
  }
}

/**
 * The demo server with limits raised so that the suite measures robustness, not the rate limiter (which has
 * its own tests): REST, publish and handshake budgets are lifted; connects are held briefly.
 */
export class ChaosServer extends DemoServer {
  constructor(settings, port) {
    super({
      'Tidings:RequestsPerSecond': 1_000_000,
      'Tidings:RequestBurst': 1_000_000,
      'Tidings:PublishesPerSecond': 1_000_000,
      'Tidings:PublishBurst': 1_000_000,
      'Tidings:HandshakesPerSecond': 1_000_000,
      'Tidings:HandshakeBurst': 1_000_000,
      'Bayeux:ConnectTimeout': '00:00:02',
      ...settings,
    }, port, 'tidings-chaos');
  }

  /** kill -9: no shutdown code runs. */
  async kill() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    child.kill('SIGKILL');
    await child.exitedPromise;
  }

  get pid() {
    return this.child?.pid;
  }

  /** Lines the server logged at error level or above (an unhandled exception logs `fail:`/`crit:`). */
  failures() {
    return this.log.join('').split('\n').filter((line) => /^\s*(fail|crit):/.test(line));
  }

  /** The demo's token signing key (kept in its data directory), used to forge tokens signed with the real key. */
  signingKey() {
    return Buffer.from(readFileSync(path.join(this.dataDir, 'signing.key'), 'utf8').trim(), 'base64');
  }
}

/** Signs in by name; returns { name, token, cookie }. */
export async function signIn(server, name) {
  const response = await fetch(`${server.base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (response.status !== 200) throw new Error(`sign-in of ${name} failed: ${response.status} ${await response.text()}`);
  const { token } = await response.json();
  const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return { name, token, cookie };
}

/** A REST call with a bearer token (or none); returns { status, text, json, headers }. */
export async function rest(server, method, url, { token, body, headers = {}, raw } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (raw !== undefined) {
    init.body = raw;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${server.base}${url}`, init);
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: response.status, text, json, headers: response.headers };
}

// ---------------------------------------------------------------------------------------------
// Tokens

const b64url = (buffer) => Buffer.from(buffer).toString('base64url');

/** Decodes a JWT's payload. */
export function jwtPayload(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

/** Signs `payload` with HS256 and `key` (a forged token when the key is not the server's). */
export function signJwt(payload, key, header = { alg: 'HS256', typ: 'JWT' }) {
  const head = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const signature = header.alg === 'none' ? '' : b64url(createHmac('sha256', key).update(head).digest());
  return `${head}.${signature}`;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 on one keep-alive connection

/**
 * One TCP connection to the server, requests sent one at a time. Each response is parsed from the bytes
 * (Content-Length or chunked); anything that does not start with a status line where a response must start
 * is reported as `desync` — the attacker-controlled bytes a half-written response would leave behind.
 */
export class RawHttp {
  constructor(server) {
    this.server = server;
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.waiter = null;
    this.closed = true;
  }

  async open() {
    this.buffer = Buffer.alloc(0);
    this.closed = false;
    const socket = net.connect(this.server.port, HOST);
    this.socket = socket;
    // Events of a socket this client has already replaced are ignored.
    socket.on('data', (chunk) => {
      if (this.socket !== socket) return;
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    const closed = () => {
      if (this.socket !== socket) return;
      this.closed = true;
      this.waiter?.();
    };
    socket.on('close', closed);
    socket.on('error', closed);
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
  }

  close() {
    this.socket?.destroy();
    this.closed = true;
  }

  /**
   * Sends a request (body: Buffer or string) and reads one response. Returns { status, headers, body } or
   * { desync: <leading bytes> } when the connection's next bytes are not a response, or { closed: true }.
   */
  async request(method, target, { headers = {}, body } = {}) {
    if (this.closed) await this.open();
    if (this.buffer.length > 0) {
      // Bytes arrived that no request asked for: a previous response overran its declared length.
      const desync = this.buffer.toString('latin1');
      this.close();
      return { desync };
    }
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const lines = [`${method} ${target} HTTP/1.1`, `Host: ${HOST}:${this.server.port}`];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    if (body !== undefined || method === 'POST' || method === 'PUT' || method === 'PATCH') lines.push(`Content-Length: ${payload.length}`);
    this.socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]));
    return this.#readResponse();
  }

  async #readResponse() {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const parsed = this.#tryParse();
      if (parsed) return parsed;
      if (this.closed) return this.buffer.length ? { desync: this.buffer.toString('latin1'), closed: true } : { closed: true };
      if (Date.now() > deadline) throw new Error(`no complete response within 30 s; have ${this.buffer.toString('latin1').slice(0, 300)}`);
      await new Promise((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 200);
      });
      this.waiter = null;
    }
  }

  #tryParse() {
    const text = this.buffer.toString('latin1');
    if (this.buffer.length >= 5 && !text.startsWith('HTTP/')) {
      this.close();
      return { desync: text };
    }
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let offset = end + 4;
    let body;
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts = [];
      for (;;) {
        const lineEnd = this.buffer.indexOf('\r\n', offset);
        if (lineEnd < 0) return null;
        const size = parseInt(this.buffer.subarray(offset, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) {
          this.close();
          return { desync: text };
        }
        if (this.buffer.length < lineEnd + 2 + size + 2) return null;
        parts.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        offset = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (this.buffer.length < offset + length) return null;
      body = this.buffer.subarray(offset, offset + length);
      offset += length;
    }
    this.buffer = this.buffer.subarray(offset);
    if (/close/i.test(headers.connection ?? '')) this.close();
    return { status, headers, body: body.toString('utf8') };
  }
}

// ---------------------------------------------------------------------------------------------
// Store state

/**
 * Everything the store holds in the given collections, read over REST as `reader` (a token): items and seq
 * per path. Two equal snapshots mean no record and no log entry changed.
 */
export async function storeState(server, paths) {
  const state = {};
  for (const [collection, token] of paths) {
    const { status, json, text } = await rest(server, 'GET', collection, { token });
    if (status !== 200) throw new Error(`GET ${collection}: ${status} ${text}`);
    state[collection] = { seq: json.seq, epoch: json.epoch, items: json.items };
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// Memory

/** The resident set size of a process in bytes (Linux /proc). */
export function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

/** Samples RSS every `interval` ms until stopped; `stop()` returns the samples in bytes. */
export function sampleRss(pid, interval = 250) {
  const samples = [];
  const timer = setInterval(() => {
    try { samples.push(rss(pid)); } catch { /* process gone */ }
  }, interval);
  return { samples, stop: () => { clearInterval(timer); return samples; } };
}

export const MiB = 1024 * 1024;

/** The p-th percentile (0..100) of numbers. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export { waitFor as waitUntil };
