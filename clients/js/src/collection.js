import { Emitter } from './emitter.js';
import { TidingsError } from './errors.js';
import { uuid } from './uuid.js';
import { byPosition, positionBetween } from './position.js';

const TOMBSTONES = 10_000;
/** Default of `maxHeld`: events past a gap held while the gap is filled. */
const MAX_HELD = 1000;

/**
 * A live copy of one collection (`/api/todos`, `/api/flows/main/messages`).
 *
 * Two layers make up what `items` shows:
 * - **confirmed**: the server's state as of `seq`, built from a snapshot and the change events in
 *   `seq` order (duplicates, `seq <= applied`, are dropped; a gap, `seq > applied + 1`, is held back
 *   while the missing changes are fetched with `GET ?since`). Write replies also land here, but never
 *   move a record back to an older `version`, and never resurrect a record the stream deleted.
 * - **pending**: this client's writes not yet answered, replayed on top (a create shows at once, an
 *   update shows its new values, a delete hides the record).
 *
 * Whenever either layer changes for a record, the visible record is recomputed and compared with what
 * `items` held: that is the only place `add`, `change` and `remove` are emitted, so a create reconciled
 * by its reply and by its event — in either order — is added exactly once.
 *
 * Events: `add(record)`, `change(record, previous)`, `remove(record)`, `reset(items[])` (a whole new
 * state: the first load and every reload), `error(TidingsError)`, `ready()`.
 */
export class LiveCollection extends Emitter {
  /** @type {Map<string, object>} what the collection shows, by id */
  items = new Map();
  /** Last change applied (null until the first snapshot, and while a reload is under way). */
  seq = null;
  /** The server's log identity; a different epoch means the history was replaced: reload. */
  epoch = null;
  /** True for a sorted collection (the server says so with its snapshot): `toArray()` is in its order. */
  sorted = false;

  /** @type {Map<string, object>} */
  #confirmed = new Map();
  /** @type {Map<string, Array<{kind: 'create'|'update'|'delete', attrs?: object, replace?: boolean, seen?: boolean}>>} */
  #pending = new Map();
  /** @type {Set<string>} ids the stream deleted (bounded) */
  #tombstones = new Set();
  /** @type {Map<number, object>} events past a gap, by seq */
  #held = new Map();
  /** @type {Promise<void> | null} a REST load or catch-up in flight */
  #loading = null;
  #reloadWanted = false;
  #catchUpWanted = false;
  #subscription = null;
  #closed = false;
  #retryTimer = null;
  #readyResolve;

  /**
   * @param {import('./client.js').TidingsClient} client
   * @param {string} path
   * @param {import('../types/index.js').CollectionOptions} options
   */
  constructor(client, path, options = {}) {
    super();
    this.client = client;
    this.path = path;
    /** @type {'rest' | 'socket'} */
    this.writes = options.writes ?? client.writes;
    this.comparator = options.comparator ?? null;
    /**
     * How many events past a gap are held while the gap is fetched (`GET ?since`). One more and they
     * are dropped and the collection reloads instead: catch-up that keeps failing must not make the
     * held events grow without bound.
     */
    this.maxHeld = options.maxHeld ?? client.maxHeld ?? MAX_HELD;
    /** Resolves after the first snapshot is applied. */
    this.ready = new Promise((resolve) => { this.#readyResolve = resolve; });
    /** True once a snapshot has been applied at least once. */
    this.loaded = false;
    /**
     * True when the last snapshot or list was cut by a server limit (item count, or what fits in the session's
     * queue): `items` then holds only part of the collection, though every later change still applies.
     */
    this.truncated = false;
  }

  /** @internal Subscribes; the first message on the channel will be the SNAPSHOT. */
  open() {
    this.#subscription = this.client.faye.subscribe(this.path, (data) => this.#receive(data));
    this.#subscription.errback?.((error) => {
      const text = String(error?.message ?? error);
      // Faye's error has the Bayeux code apart (`code`); its string form is `code:args:message`.
      const status = Number.isInteger(error?.code) ? error.code : Number(/^(\d+)/.exec(String(error))?.[1] ?? 0);
      if (status === 401 && !this.#closed) {
        // The session was unknown where the subscribe landed (a restarted server; behind a load balancer, another
        // node than the handshake's). Faye handshakes again but forgets a subscription the server refused:
        // subscribe again (sent once faye is connected), after faye has dropped the refused one.
        setTimeout(() => { if (!this.#closed) this.open(); }, 0);
        return;
      }
      this.emit('error', new TidingsError(`subscribe ${this.path}: ${text}`, { status, operation: 'subscribe' }));
    });
  }

  /** @internal What a (re-)subscribe asks of the server: a snapshot, or the changes since our position. */
  subscribeExt() {
    return this.seq === null || this.epoch === null ? { snapshot: true } : { since: this.seq, epoch: this.epoch };
  }

  /** Unsubscribes and stops every retry. Pending writes still settle. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#subscription?.cancel?.();
    this.client.forget(this);
  }

  /** @param {string} id */
  get(id) {
    return this.items.get(id);
  }

  get size() {
    return this.items.size;
  }

  /**
   * The visible records, ordered by `comparator` when one was given, else — in a sorted collection — by `position`
   * (the server's order, with optimistic moves shown at once), else in arrival order.
   */
  toArray() {
    const list = [...this.items.values()];
    if (this.comparator) return list.sort(this.comparator);
    return this.sorted ? list.sort(byPosition) : list;
  }

  /** Ids of records with writes not yet answered. */
  get pendingIds() {
    return [...this.#pending.keys()];
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  /**
   * Creates a record. It appears in `items` at once under a client UUID (unless `attrs.id` is given);
   * the returned promise resolves with the server's record, or rejects (and the record is removed
   * again, and `error` emitted) when the server refuses it. Unanswered requests are retried — safe,
   * because a repeated create with the same id creates nothing.
   * @param {object} attrs
   * @returns {Promise<object>}
   */
  create(attrs, place) {
    const id = attrs.id ?? uuid();
    const body = { ...attrs, id };
    const placement = place === undefined ? null : placementOf(place);
    const op = { kind: 'create', attrs: body };
    if (this.sorted) {
      // Shown at once where it will go (at the end unless placed); the server's position replaces this one.
      const position = this.#localPosition(id, placement ?? { to: 'end' });
      op.attrs = { ...body, ...(position ? { position } : {}) };
    }
    return this.#write(id, op, 'create', async (deadline) => {
      if (this.writes === 'socket') {
        return (await this.client.publishWrite(this.path, { method: 'POST', body, ...(placement ?? {}) }, { operation: 'create', id, deadline })).record;
      }
      const query = placement ? `?${new URLSearchParams(placement)}` : '';
      return (await this.client.request('POST', this.path + query, { body, operation: 'create', id, deadline })).body;
    });
  }

  /**
   * Moves a record of a sorted collection: `{before: id}`, `{after: id}` or `{to: 'start' | 'end'}`. It moves in
   * `toArray()` at once (a `change` event: its `position` changed); the promise resolves with the server's record,
   * or rejects — and the record goes back where it was — when the server refuses the move.
   * @param {string} id
   * @param {{before?: string, after?: string, to?: 'start' | 'end'}} place
   * @returns {Promise<object>}
   */
  move(id, place) {
    let placement;
    try {
      placement = placementOf(place);
    } catch (error) {
      return Promise.reject(error);
    }
    const position = this.#localPosition(id, placement);
    const op = { kind: 'update', attrs: position ? { position } : {}, replace: false };
    return this.#write(id, op, 'move', async (deadline) => {
      if (this.writes === 'socket') {
        return (await this.client.publishWrite(this.path, { method: 'MOVE', body: { id }, ...placement }, { operation: 'move', id, deadline })).record;
      }
      return (await this.client.request('POST', `${this.path}/${encodeURIComponent(id)}/move`, { body: placement, operation: 'move', id, deadline })).body;
    });
  }

  /** A position key for `id` placed as asked among what is shown now (null when the anchor is not shown). */
  #localPosition(id, placement) {
    const order = [...this.items.values()].filter((r) => r.id !== id).sort(byPosition);
    let at;
    if (placement.to === 'start') at = 0;
    else if (placement.to === 'end') at = order.length;
    else {
      const anchor = order.findIndex((r) => r.id === (placement.before ?? placement.after));
      if (anchor < 0) return null;
      at = placement.before !== undefined ? anchor : anchor + 1;
    }
    try {
      return positionBetween(order[at - 1]?.position ?? null, order[at]?.position ?? null);
    } catch {
      return null; // neighbours without keys yet (or equal ones): wait for the server's
    }
  }

  /**
   * Changes a record: a JSON merge patch of `attrs` (or, with `replace: true`, a PUT of every writable
   * field). `version: n` (or `true` for the version this copy holds) makes the server refuse the
   * write with 412 if the record changed meanwhile.
   * @param {string} id
   * @param {object} attrs
   * @param {{replace?: boolean, version?: number | true}} [options]
   * @returns {Promise<object>}
   */
  update(id, attrs, { replace = false, version } = {}) {
    const expected = version === true ? this.#confirmed.get(id)?.version : version;
    const op = { kind: 'update', attrs: stripServerFields(attrs, this.sorted), replace };
    const method = replace ? 'PUT' : 'PATCH';
    return this.#write(id, op, 'update', async (deadline) => {
      if (this.writes === 'socket') {
        const data = { method, body: { ...op.attrs, id } };
        if (expected !== undefined) data.version = expected;
        return (await this.client.publishWrite(this.path, data, { operation: 'update', id, deadline })).record;
      }
      const headers = expected === undefined ? {} : { 'if-match': `"${expected}"` };
      return (await this.client.request(method, `${this.path}/${encodeURIComponent(id)}`, { body: op.attrs, headers, operation: 'update', id, deadline })).body;
    });
  }

  /**
   * Deletes a record; it disappears at once and comes back if the server refuses. A record that is
   * already gone (404) counts as deleted.
   * @param {string} id
   * @param {{version?: number | true}} [options]
   * @returns {Promise<void>}
   */
  remove(id, { version } = {}) {
    const expected = version === true ? this.#confirmed.get(id)?.version : version;
    return this.#write(id, { kind: 'delete' }, 'remove', async (deadline) => {
      try {
        if (this.writes === 'socket') {
          const data = { method: 'DELETE', body: { id } };
          if (expected !== undefined) data.version = expected;
          await this.client.publishWrite(this.path, data, { operation: 'remove', id, deadline });
        } else {
          const headers = expected === undefined ? {} : { 'if-match': `"${expected}"` };
          await this.client.request('DELETE', `${this.path}/${encodeURIComponent(id)}`, { headers, operation: 'remove', id, deadline });
        }
      } catch (error) {
        if (error.status !== 404) throw error;
      }
      return DELETED;
    }).then(() => undefined);
  }

  /**
   * Runs a write: `send(deadline)` is tried, and tried again after an unanswered attempt, until the write's
   * deadline (`writeTimeout` seconds from this call, offline time included). Every attempt is cut off at the
   * deadline, and no retry starts past it: a write always settles within `writeTimeout`.
   */
  #write(id, op, operation, send) {
    this.#addPending(id, op);
    const seconds = this.client.writeTimeout;
    const deadline = Date.now() + seconds * 1000;
    const settled = (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await send(deadline);
          if (result === DELETED) this.#confirmDelete(id);
          else if (result) this.#applyReply(result);
          return result === DELETED ? undefined : this.#confirmed.get(id) ?? result;
        } catch (error) {
          if (!this.#retryable(error) || this.#closed) throw error;
          const pause = Math.min(this.client.retry * 1000 * (attempt + 1), 5000);
          if (Date.now() + pause >= deadline) throw gaveUp(error, seconds, attempt + 1);
          await new Promise((resolve) => setTimeout(resolve, pause));
        }
      }
    })();
    const result = settled.then(
      (record) => { this.#removePending(id, op); return record; },
      (error) => {
        this.#removePending(id, op);
        this.emit('error', error);
        throw error;
      });
    // Failures are reported through `error` as well; a caller that ignores the promise must not get
    // an unhandled rejection.
    result.catch(() => {});
    return result;
  }

  #retryable(error) {
    if (error.status === 0 || error.status === 429) return true; // no answer, or "slow down"
    // Through the socket, 401 means the server no longer knows this Bayeux session (restart,
    // expiry): Faye handshakes again by itself, and the write is sent again on the new session.
    return this.writes === 'socket' && (error.status === 401 || error.status === 402);
  }

  #addPending(id, op) {
    let ops = this.#pending.get(id);
    if (!ops) this.#pending.set(id, (ops = []));
    ops.push(op);
    this.#refresh(id);
  }

  #removePending(id, op) {
    const ops = this.#pending.get(id);
    if (!ops) return;
    const i = ops.indexOf(op);
    if (i >= 0) ops.splice(i, 1);
    if (ops.length === 0) this.#pending.delete(id);
    this.#refresh(id);
  }

  /** A write's answer: newer than what we hold (by version), unless the stream already deleted it. */
  #applyReply(record) {
    if (!record?.id || this.#tombstones.has(record.id)) return;
    const held = this.#confirmed.get(record.id);
    if (held && !(newer(record, held))) return;
    this.#confirmed.set(record.id, record);
  }

  #confirmDelete(id) {
    this.#confirmed.delete(id);
    this.#tomb(id);
  }

  #tomb(id) {
    this.#tombstones.add(id);
    if (this.#tombstones.size > TOMBSTONES) this.#tombstones.delete(this.#tombstones.values().next().value);
  }

  // ------------------------------------------------------------------------------------------
  // The stream

  #receive(data) {
    if (this.#closed || !data || typeof data !== 'object') return;
    switch (data.method) {
      case 'SNAPSHOT':
        if (data.sorted === true) this.sorted = true;
        this.#resetTo(data.items ?? [], data.seq, data.epoch, data.truncated === true);
        return;
      case 'RESET':
        // The subscription is live from data.seq on, but the server could not replay up to there.
        if (this.seq !== null && data.epoch === this.epoch) {
          // Same history: what we hold is still right. Fetch only what lies between (a 410 turns
          // that into a reload); nothing at all if a catch-up already got us that far.
          if (data.seq > this.seq) this.catchUp();
          return;
        }
        // Another history: reload. Events held from before belong to the old one.
        this.#held.clear();
        this.#invalidate(data.epoch);
        return;
      default:
        if (typeof data.seq !== 'number') return;
        if (this.seq !== null && data.seq <= this.seq) return; // a duplicate
        this.#held.set(data.seq, data);
        this.#drain();
    }
  }

  /**
   * Applies held events while they continue `seq`; asks for a catch-up when a gap remains, or reloads
   * when more than `maxHeld` events wait past it.
   */
  #drain() {
    if (this.seq !== null) {
      for (;;) {
        const next = this.#held.get(this.seq + 1);
        if (!next) break;
        this.#held.delete(next.seq);
        this.#apply(next);
      }
      for (const seq of this.#held.keys()) if (seq <= this.seq) this.#held.delete(seq);
    }
    if (this.#held.size > this.maxHeld) {
      // Too far behind (catch-up keeps failing, or a reload takes long): holding more would only
      // grow. Drop them; a reload's snapshot covers them, and any still missing after it show up as
      // a gap and are fetched again. While seq is null a reload is already under way (or retried).
      this.#held.clear();
      if (this.seq !== null) this.#invalidate(null);
      return;
    }
    if (this.seq !== null && this.#held.size > 0) this.catchUp();
  }

  #apply(event) {
    this.seq = event.seq;
    // MOVE: the body is the record as after the move; its new `position` is what orders it.
    // SKIP: a change this client may not see; it only keeps seq contiguous.
    if (event.method === 'SKIP') return;
    const body = event.body ?? {};
    const id = body.id;
    if (!id) return;
    if (event.method === 'DELETE') {
      this.#confirmed.delete(id);
      this.#tomb(id);
    } else {
      const held = this.#confirmed.get(id);
      // A reply may have brought a newer version already; the stream never moves a record back.
      if (!held || !newer(held, body)) this.#confirmed.set(id, body);
      this.#tombstones.delete(id);
      for (const op of this.#pending.get(id) ?? []) if (op.kind === 'create') op.seen = true;
    }
    this.#refresh(id);
  }

  /** A whole state (snapshot, reload). Older than what we hold → ignored. */
  #resetTo(items, seq, epoch, truncated = false) {
    if (this.seq !== null && epoch === this.epoch && seq < this.seq) return;
    this.seq = seq;
    this.epoch = epoch;
    this.truncated = truncated;
    this.#confirmed = new Map(items.map((item) => [item.id, item]));
    for (const [id, ops] of this.#pending) {
      if (this.#confirmed.has(id)) for (const op of ops) if (op.kind === 'create') op.seen = true;
    }
    const next = new Map();
    for (const id of [...this.#confirmed.keys(), ...this.#pending.keys()]) {
      const record = this.#visible(id);
      if (record && !next.has(id)) next.set(id, record);
    }
    this.items = next;
    const first = !this.loaded;
    this.loaded = true;
    this.emit('reset', this.toArray());
    if (first) {
      this.#readyResolve();
      this.emit('ready');
    }
    this.#drain();
  }

  /** Forget our position (keeping what is shown) and reload from a snapshot. */
  #invalidate(epoch) {
    this.seq = null;
    if (epoch) this.epoch = epoch;
    this.#reloadWanted = true;
    this.#run();
  }

  /**
   * Fetches what this copy is missing: `GET ?since=seq&epoch` (a 410 or another epoch turns it
   * into a reload). Called on gaps and whenever the transport comes back up; harmless when nothing is
   * missing, since duplicates are dropped.
   */
  catchUp() {
    if (this.#closed || !this.loaded) return;
    this.#catchUpWanted = true;
    this.#run();
  }

  /** Reloads the whole collection with `GET path` (keeps the stream; state is replaced by the snapshot). */
  reload() {
    this.#invalidate(null);
  }

  #run() {
    // Nothing wanted (a retry timer firing after another round did the work) → no round. Starting
    // one would finish synchronously, before #loading is assigned, and leave #loading set for good.
    if (this.#loading || this.#closed || !(this.#reloadWanted || this.#catchUpWanted)) return;
    this.#loading = (async () => {
      let failed = false;
      try {
        while (!this.#closed && (this.#reloadWanted || this.#catchUpWanted)) {
          if (this.#reloadWanted || this.seq === null) {
            this.#reloadWanted = false;
            this.#catchUpWanted = false;
            const { body } = await this.client.request('GET', this.path, { operation: 'load' });
            if (body.sorted === true) this.sorted = true;
            // Events that arrived meanwhile are held; #resetTo drops those the snapshot covers.
            if (this.seq === null || body.seq >= this.seq || body.epoch !== this.epoch) {
              this.seq = null;
              this.#resetTo(body.items, body.seq, body.epoch, body.truncated === true);
            }
          } else {
            this.#catchUpWanted = false;
            const since = this.seq;
            let reply;
            try {
              reply = (await this.client.request('GET', `${this.path}?since=${since}&epoch=${encodeURIComponent(this.epoch)}`, { operation: 'load' })).body;
            } catch (error) {
              if (error.status === 410) { this.#reloadWanted = true; continue; }
              throw error;
            }
            if (reply.epoch !== this.epoch) { this.#reloadWanted = true; continue; }
            if (this.seq === null) continue; // a RESET arrived meanwhile
            for (const change of reply.changes ?? []) {
              if (change.seq > this.seq) this.#held.set(change.seq, change);
            }
            this.#drain();
            // #drain asks for another round while events past a gap are held; if this round made no
            // progress at all, the held events cannot be reached from here: reload.
            if (this.#held.size > 0 && this.seq === since) this.#reloadWanted = true;
          }
        }
      } catch (error) {
        failed = true;
        // Offline shows as the client's `down`; only real refusals are worth an `error`.
        if (error.status !== 0) this.emit('error', error);
        // No answer (offline) or a server error: try again later. `up` also triggers a catch-up.
        if (!this.#closed) {
          if (this.seq === null) this.#reloadWanted = true; else this.#catchUpWanted = true;
          clearTimeout(this.#retryTimer);
          this.#retryTimer = setTimeout(() => this.#run(), Math.max(this.client.retry * 1000, 500));
        }
      } finally {
        this.#loading = null;
      }
      // Asked for again while this round ran; after a failure the retry timer does it instead.
      if (!failed && !this.#closed && (this.#reloadWanted || this.#catchUpWanted)) this.#run();
    })();
  }

  // ------------------------------------------------------------------------------------------
  // What is shown

  #visible(id) {
    let record = this.#confirmed.get(id);
    for (const op of this.#pending.get(id) ?? []) {
      if (op.kind === 'create') {
        if (!record && !op.seen && !this.#tombstones.has(id)) record = { ...op.attrs };
      } else if (op.kind === 'update') {
        if (record) record = { ...record, ...op.attrs };
      } else {
        record = undefined;
      }
    }
    return record;
  }

  #refresh(id) {
    if (!this.loaded) {
      // Before the first snapshot only local creates can be shown.
      if (!this.#pending.has(id) && !this.items.has(id)) return;
    }
    const record = this.#visible(id);
    const previous = this.items.get(id);
    if (record && !previous) {
      this.items.set(id, record);
      this.emit('add', record);
    } else if (!record && previous) {
      this.items.delete(id);
      this.emit('remove', previous);
    } else if (record && previous && !sameJson(record, previous)) {
      this.items.set(id, record);
      this.emit('change', record, previous);
    }
  }
}

const DELETED = Symbol('deleted');
const SERVER_FIELDS = ['id', 'version', 'createdAt', 'updatedAt'];

/**
 * The error a write settles with when its deadline passed while it was being retried: 408 when the last
 * attempt got no answer at all, else the last refusal (429, or a 401 while Faye re-handshakes).
 */
function gaveUp(error, seconds, attempts) {
  if (error.status !== 0) return error;
  const message = `${error.message.replace(/: no answer.*$/s, '')}: no answer within ${seconds} s (${attempts} attempt${attempts === 1 ? '' : 's'})`;
  return new TidingsError(message, { status: 408, cause: error, operation: error.operation, id: error.id });
}

function stripServerFields(attrs, sorted) {
  const copy = { ...attrs };
  for (const field of SERVER_FIELDS) delete copy[field];
  if (sorted) delete copy.position; // the server's: changed only by move()
  return copy;
}

/** `{before: id} | {after: id} | {to: 'start' | 'end'}`, exactly one. */
function placementOf(place) {
  const keys = Object.keys(place ?? {}).filter((k) => place[k] !== undefined);
  const [key] = keys;
  const valid = keys.length === 1
    && ((key === 'to' && (place.to === 'start' || place.to === 'end'))
      || ((key === 'before' || key === 'after') && typeof place[key] === 'string'));
  if (!valid) throw new TypeError("place a record with exactly one of {before: id}, {after: id}, {to: 'start' | 'end'}");
  return { [key]: place[key] };
}

/** True when `a` is a later version of the record than `b`. */
function newer(a, b) {
  if (typeof a.version !== 'number' || typeof b.version !== 'number') return true;
  return a.version > b.version;
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}
