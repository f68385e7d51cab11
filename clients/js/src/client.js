import { Emitter } from './emitter.js';
import { TidingsError, fromBayeuxError } from './errors.js';
import { LiveCollection } from './collection.js';
import { hasInnerWildcard, channelMatches } from './channels.js';

/**
 * One connection to a Tidings server: a Faye client for the change streams and socket writes, and
 * `fetch` for REST. Collections opened through it share both. Emits `up` and `down` when the Bayeux
 * transport comes and goes (Faye's `transport:up`/`transport:down`).
 *
 * Faye re-subscribes by itself after every re-handshake (server restart, expired session). The
 * extension installed here gives each of those subscribe messages the collection's current
 * position — `ext: {since, epoch}` once it has state, `ext: {snapshot: true}` before — so the server
 * replays exactly what was missed, or says RESET.
 *
 * `subscribe(pattern, handler)` also takes the inner wildcards of a Tidings server (a `*` before the last segment,
 * as in all flows' messages), which Faye alone cannot route: the same extension asks for their events on each
 * concrete channel and hands every incoming message to the handlers whose pattern matches it.
 */
export class TidingsClient extends Emitter {
  /** @type {Map<string, LiveCollection>} */
  #collections = new Map();
  /** @type {WeakMap<object, SocketWrite>} data object of a socket write → its settlement */
  #writesByData = new WeakMap();
  /** @type {Map<string, SocketWrite>} Bayeux message id → settlement */
  #writesById = new Map();
  /** @type {Set<SocketWrite>} socket writes awaiting their reply */
  #writes = new Set();
  /** @type {WeakSet<object>} data objects of socket writes that timed out before Faye sent them */
  #abandoned = new WeakSet();
  #ownsFaye = false;
  #unbind = [];
  /** @type {Map<string, Set<{handler: (data: any, channel: string) => void}>>} inner-wildcard pattern → its handlers */
  #innerWildcards = new Map();

  /**
   * @param {import('../types/index.js').ClientOptions} [options]
   */
  constructor(options = {}) {
    super();
    const origin = options.url ?? globalThis.location?.origin;
    if (!origin) throw new TypeError('TidingsClient needs options.url outside a browser page.');
    /** The server's base URL, e.g. `http://127.0.0.1:5080`; REST paths are resolved against it. */
    this.url = origin.replace(/\/+$/, '');
    /** @type {'rest' | 'socket'} */
    this.writes = options.writes ?? 'rest';
    /** Seconds between retries of a write that got no answer (offline), growing to 5 s; within `writeTimeout`. */
    this.retry = options.retry ?? 1;
    /** Default `maxHeld` of this client's collections (undefined: the collection's default, 1000). */
    this.maxHeld = options.maxHeld;
    /**
     * Seconds within which every write settles, counted from the call, offline time and retries
     * included. A write still unanswered then rejects (status 408), its optimistic change is rolled
     * back, a hanging REST request is aborted, and Faye stops sending a socket write again.
     */
    this.writeTimeout = options.writeTimeout ?? 10;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /**
     * A bearer token (string, or a function returning one) for clients that cannot use the sign-in
     * cookie (Node, other origins): sent as `Authorization: Bearer` on REST and as `ext.token` on the
     * Bayeux handshake. Browsers on the same site just use the cookie.
     * @type {string | (() => string | null | undefined) | null}
     */
    this.token = options.token ?? null;

    let faye = options.faye;
    if (!faye || typeof faye.subscribe !== 'function') {
      const Faye = faye ?? globalThis.Faye;
      if (!Faye?.Client) throw new TypeError('No Faye client: load faye-browser.js (global Faye) or pass options.faye.');
      faye = new Faye.Client(options.bayeuxUrl ?? `${this.url}/bayeux`, { retry: this.retry, timeout: 45 });
      this.#ownsFaye = true;
    }
    /** The underlying Faye client. */
    this.faye = faye;
    this.online = true;

    this.#extension = {
      outgoing: (message, callback) => callback(this.#outgoing(message)),
      incoming: (message, callback) => callback(this.#incoming(message)),
    };
    faye.addExtension(this.#extension);
    const up = () => {
      this.online = true;
      this.emit('up');
      for (const collection of this.#collections.values()) collection.catchUp();
    };
    const down = () => {
      this.online = false;
      this.emit('down');
    };
    faye.bind('transport:up', up);
    faye.bind('transport:down', down);
    this.#unbind.push(() => faye.unbind('transport:up', up), () => faye.unbind('transport:down', down));
  }

  #extension;

  /**
   * Opens (or returns the already open) live collection at `path`, e.g. `/api/flows/main/messages`.
   * One instance per path per client: Faye subscribes once per channel, so a second instance could
   * never get its own snapshot.
   * @param {string} path
   * @param {import('../types/index.js').CollectionOptions} [options]
   * @returns {LiveCollection}
   */
  collection(path, options = {}) {
    let collection = this.#collections.get(path);
    if (!collection) {
      collection = new LiveCollection(this, path, options);
      this.#collections.set(path, collection);
      collection.open();
    }
    return collection;
  }

  /** @internal Called by a collection when it closes. */
  forget(collection) {
    if (this.#collections.get(collection.path) === collection) this.#collections.delete(collection.path);
  }

  /**
   * Subscribes `handler(data, channel)` to a channel or pattern: `/chat/room`, `/chat/*`, `/chat/**`, and inner
   * wildcards (a `*` before the last segment: one segment there, say any flow's messages). Each event runs each
   * subscription's handler once, with its concrete channel, however the subscriptions overlap. Resolves once the server has confirmed; rejects with a
   * TidingsError when it refuses (its `status` is the Bayeux error code). `cancel()` on the result unsubscribes.
   * @param {string} pattern
   * @param {(data: any, channel: string) => void} handler
   * @returns {Promise<{cancel: () => void}>}
   */
  async subscribe(pattern, handler) {
    if (!hasInnerWildcard(pattern)) {
      const subscription = this.faye.subscribe(pattern).withChannel((channel, data) => handler(data, channel));
      await settled(subscription, pattern);
      return { cancel: () => subscription.cancel() };
    }

    // Faye matches only trailing wildcards (and would throw on a message whose channel is a pattern): the server is
    // asked for these events on their concrete channels (#outgoing), and #incoming hands them to these handlers.
    let handlers = this.#innerWildcards.get(pattern);
    if (!handlers) this.#innerWildcards.set(pattern, (handlers = new Set()));
    const entry = { handler };
    handlers.add(entry);
    const subscription = this.faye.subscribe(pattern); // no callback: Faye never routes a message to it
    const cancel = () => {
      handlers.delete(entry);
      if (handlers.size === 0 && this.#innerWildcards.get(pattern) === handlers) this.#innerWildcards.delete(pattern);
      subscription.cancel();
    };
    try {
      await settled(subscription, pattern);
    } catch (error) {
      cancel();
      throw error;
    }
    return { cancel };
  }

  /** Closes every collection; disconnects the Faye client if this client created it. */
  close() {
    for (const collection of [...this.#collections.values()]) collection.close();
    for (const unbind of this.#unbind.splice(0)) unbind();
    this.faye.removeExtension(this.#extension);
    if (this.#ownsFaye) this.faye.disconnect();
  }

  /**
   * A REST request. Resolves with `{status, body}` for 2xx; rejects with a TidingsError otherwise
   * (status 0 when there was no answer at all; 408 when none came by `deadline`, a `Date.now()` time).
   * @param {string} method
   * @param {string} path
   * @param {{body?: any, headers?: Record<string, string>, operation?: string, id?: string, deadline?: number}} [options]
   */
  async request(method, path, { body, headers = {}, operation, id, deadline } = {}) {
    let response;
    let text;
    // A write's deadline cuts off a request that hangs (a server or proxy that never answers): 408.
    const timeout = deadline === undefined ? undefined : AbortSignal.timeout(Math.max(0, deadline - Date.now()));
    try {
      const token = this.#currentToken();
      if (token) headers = { authorization: `Bearer ${token}`, ...headers };
      response = await this.fetch(this.url + path, {
        method,
        headers: body === undefined ? { accept: 'application/json', ...headers }
          : { 'content-type': 'application/json', accept: 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        signal: timeout,
      });
      text = await response.text().catch((cause) => { if (timeout?.aborted) throw cause; return ''; });
    } catch (cause) {
      if (timeout?.aborted) {
        throw new TidingsError(`${method} ${path}: no answer within ${this.writeTimeout} s`, { status: 408, cause, operation, id });
      }
      throw new TidingsError(`${method} ${path}: no answer (${cause?.message ?? cause})`, { status: 0, cause, operation, id });
    }
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    if (response.ok) return { status: response.status, body: json };
    const detail = json?.detail ?? json?.title ?? response.statusText;
    throw new TidingsError(`${method} ${path}: ${response.status} ${detail}`, {
      status: response.status, errors: json?.errors ?? {}, problem: json, operation, id,
    });
  }

  /** Socket writes awaiting their reply. */
  get pendingSocketWrites() {
    return this.#writes.size;
  }

  /**
   * A write through the socket: publishes `{method, body, version?}` on `path` and resolves with the
   * publish reply's `ext.tidings` (`{status, record?, seq?}`), or rejects with the reply's error —
   * or, with no reply by `deadline` (a `Date.now()` time; default `writeTimeout` seconds from now), with a
   * TidingsError of status 408. (The server may still have applied it; if so, its event says so.)
   * @param {string} path
   * @param {{method: string, body: object, version?: number}} data
   * @param {{operation?: string, id?: string, deadline?: number}} [details]
   */
  publishWrite(path, data, { deadline, ...details } = {}) {
    return new Promise((resolve, reject) => {
      const seconds = this.writeTimeout;
      const wait = deadline === undefined ? seconds * 1000 : Math.max(0, deadline - Date.now());
      /** @type {SocketWrite} */
      const write = {
        id: undefined,
        timer: undefined,
        resolve: (reply) => {
          if (!forget()) return;
          if (reply.successful) resolve(reply.ext?.tidings ?? {});
          else reject(fromBayeuxError(reply.error, details));
        },
      };
      const forget = () => {
        if (!this.#writes.delete(write)) return false; // settled already
        clearTimeout(write.timer);
        this.#writesByData.delete(data);
        if (write.id !== undefined) this.#writesById.delete(write.id);
        return true;
      };
      write.timer = setTimeout(() => {
        if (!forget()) return;
        // Not sent yet (Faye still connecting): it never will be, once reported as failed.
        if (write.id === undefined) this.#abandoned.add(data);
        const what = `${details.operation ?? data.method} ${path}${details.id ? ` (${details.id})` : ''}`;
        reject(new TidingsError(`${what}: no reply to the socket write within ${seconds} s`, { status: 408, ...details }));
      }, wait);
      this.#writes.add(write);
      this.#writesByData.set(data, write);
      // deadline: Faye stops re-sending it (on reconnect) once this write has given up.
      this.faye.publish(path, data, { deadline: wait / 1000 });
    });
  }

  #currentToken() {
    return typeof this.token === 'function' ? this.token() : this.token;
  }

  #outgoing(message) {
    if (message.data && this.#abandoned.has(message.data)) return null; // Faye drops a null message
    if (message.channel === '/meta/handshake') {
      const token = this.#currentToken();
      if (token) message.ext = { ...message.ext, token };
    } else if (message.channel === '/meta/subscribe') {
      const collection = this.#collections.get(message.subscription);
      if (collection) message.ext = { ...message.ext, ...collection.subscribeExt() };
      // Inner wildcards: on each concrete channel, which #incoming routes (re-subscribes after a handshake too).
      if (this.#innerWildcards.has(message.subscription)) message.ext = { ...message.ext, delivery: 'concrete' };
    } else if (!message.channel.startsWith('/meta/') && message.data && this.#writesByData.has(message.data)) {
      const write = this.#writesByData.get(message.data);
      write.id = message.id;
      this.#writesById.set(message.id, write);
    }
    return message;
  }

  #incoming(message) {
    if (message.successful !== undefined && message.id !== undefined && !message.channel.startsWith('/meta/')) {
      this.#writesById.get(message.id)?.resolve(message);
    } else if (this.#innerWildcards.size > 0 && message.successful === undefined && 'data' in message
      && !message.channel.startsWith('/meta/')) {
      this.#routeToInnerWildcards(message);
    }
    return message;
  }

  /** Runs the handlers of every inner-wildcard pattern that matches the message's channel, once each. */
  #routeToInnerWildcards(message) {
    for (const [pattern, handlers] of this.#innerWildcards) {
      if (!channelMatches(pattern, message.channel)) continue;
      for (const { handler } of [...handlers]) {
        try {
          handler(message.data, message.channel);
        } catch (error) {
          queueMicrotask(() => { throw error; }); // as Faye's own callbacks: visible, and not in the way of the others
        }
      }
    }
  }
}

/** Resolves when Faye's subscribe is confirmed; rejects with a TidingsError carrying the server's code when refused. */
function settled(subscription, pattern) {
  return new Promise((resolve, reject) => {
    subscription.callback(() => resolve());
    subscription.errback((error) => {
      const status = Number.isInteger(error?.code) ? error.code : Number(/^(\d+)/.exec(String(error))?.[1] ?? 0);
      reject(new TidingsError(`subscribe ${pattern}: ${error?.message ?? error}`, { status, operation: 'subscribe' }));
    });
  });
}

/** @typedef {{id: string | undefined, timer: any, resolve: (reply: any) => void}} SocketWrite */
