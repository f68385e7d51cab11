// What every Node suite (tests/interop, tests/browser) and bench/snapshot-storm.mjs share: the real Tidings
// demo server as a child process, waiting for conditions, and a TCP proxy that simulates network loss.
// Only Node built-ins here, so each suite imports it with its own node_modules.
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

export const HOST = '127.0.0.1';

// Every demo server this process started; killed when the process exits for any reason, so a failed or
// timed-out test never leaves a `dotnet` process behind (or holds the test runner open).
const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
process.once('SIGTERM', () => process.exit(143));

// ---------------------------------------------------------------------------------------------
// Waiting

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

/** Rejects when `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// The server process

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

/**
 * The demo server on a loopback port with its own data directory. `settings` become `--Key=value`
 * command-line overrides (configuration keys such as `Bayeux:ConnectTimeout` or `Tidings:MaxListItems`).
 */
export class DemoServer {
  constructor(settings, port, name = 'tidings') {
    this.settings = settings;
    this.port = port;
    this.base = `http://${HOST}:${port}`;
    this.bayeux = `${this.base}/bayeux`;
    this.name = name;
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    this.child = null;
    this.log = [];
  }

  /** Starts `new this(settings, port)` and waits until it answers; never leaves a half-started process. */
  static async start(settings = {}, { port } = {}) {
    const server = new this(settings, port ?? await freePort());
    try {
      await server.start();
    } catch (error) {
      await server.dispose();
      throw error;
    }
    return server;
  }

  async start() {
    if (!existsSync(DEMO_DLL)) {
      throw new Error(`Tidings demo not found at ${DEMO_DLL}. Build it first: ` +
        '`dotnet build samples/Demo -c Release` (or set TIDINGS_DEMO_DLL).');
    }
    const args = [DEMO_DLL, '--urls', this.base, '--data', this.dataDir];
    for (const [key, value] of Object.entries(this.settings)) args.push(`--${key}=${value}`);
    const child = spawn('dotnet', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // No file watchers for appsettings: tests start many servers at once, and each watcher takes one of the
      // user's inotify instances (128 by default) — a server that cannot get one does not start.
      env: { ...process.env, DOTNET_NOLOGO: '1', ASPNETCORE_ENVIRONMENT: 'Production', DOTNET_hostBuilder__reloadConfigOnChange: 'false' },
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
    }, { timeout: this.startTimeout ?? 20_000, interval: 100, message: `the Tidings server on ${this.base} to answer GET /` })
      .catch((error) => { throw new Error(`${error.message}\n--- server output ---\n${this.output()}`); });
  }

  output() {
    return this.log.join('').slice(-8000);
  }

  /** SIGTERM, then SIGKILL after `killAfter` ms. Returns { ms, forced } (forced: SIGKILL was needed). */
  async stop({ killAfter = 5000 } = {}) {
    const child = this.child;
    if (!child) return { ms: 0, forced: false };
    this.child = null;
    const started = Date.now();
    let forced = false;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => { forced = true; child.kill('SIGKILL'); }, killAfter);
      await child.exitedPromise;
      clearTimeout(killer);
    }
    return { ms: Date.now() - started, forced };
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
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), `${this.name}-`));
    await this.start();
  }

  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Network loss

/**
 * Forwards 127.0.0.1:<proxy.port> to the server. `cut()` destroys every open connection; `down()` cuts and
 * refuses new ones until `up()`; `blackhole()` silently drops server→client bytes (recorded in `dropped`)
 * until `restore()`.
 */
export class TcpProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.refusing = false;
    this.dropping = false;
    this.dropped = '';
    this.server = net.createServer((client) => this.#accept(client));
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, HOST, resolve);
    });
    this.port = this.server.address().port;
    this.base = `http://${HOST}:${this.port}`;
    this.bayeux = `${this.base}/bayeux`;
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
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (this.dropping) this.dropped += chunk.toString('latin1');
      else client.write(chunk);
    });
  }

  get connections() {
    return this.pairs.size;
  }

  blackhole() {
    this.dropping = true;
    this.dropped = '';
  }

  restore() {
    this.dropping = false;
  }

  cut() {
    for (const { client, upstream } of [...this.pairs]) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** The network goes down: open connections are cut, new ones refused. */
  down() {
    this.refusing = true;
    this.cut();
  }

  up() {
    this.refusing = false;
  }

  async close() {
    this.down();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
