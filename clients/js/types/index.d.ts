// Types of @tidings/client (the JavaScript is plain ES modules; these describe its public surface).

/** A record as the server stores it: the collection's fields plus the server-owned ones. */
export interface TidingsRecord {
  id: string;
  version?: number;
  createdAt?: string;
  updatedAt?: string;
  /** In a sorted collection: the record's position key (server-owned; records sort by it as plain strings). */
  position?: string;
  [field: string]: unknown;
}

/** Where a record of a sorted collection goes. */
export type Placement = { before: string } | { after: string } | { to: 'start' | 'end' };

export interface ClientOptions {
  /** Server origin, e.g. `http://127.0.0.1:5080`. Default: the page's origin. */
  url?: string;
  /** Bayeux endpoint. Default: `${url}/bayeux`. */
  bayeuxUrl?: string;
  /** A Faye client to use, or the Faye namespace to create one from. Default: the global `Faye`. */
  faye?: any;
  /** Where writes go by default. Default: 'rest'. */
  writes?: 'rest' | 'socket';
  /** Seconds between retries (unanswered writes, failed catch-ups; Faye's own retry). Default: 1. */
  retry?: number;
  /** A bearer token (or a function returning one) for REST and the Bayeux handshake (`ext.token`). */
  token?: string | (() => string | null | undefined) | null;
  /** The fetch implementation. Default: globalThis.fetch. */
  fetch?: typeof fetch;
  /** Default `maxHeld` of this client's collections. Default: 1000. */
  maxHeld?: number;
  /**
   * Seconds within which every write (REST or socket) settles, counted from the call, offline time and
   * retries included: still unanswered then, it rejects with a TidingsError of status 408 (an `error`
   * event too) and its optimistic change is rolled back. Default: 10.
   */
  writeTimeout?: number;
}

export interface CollectionOptions<T extends TidingsRecord = TidingsRecord> {
  /** Overrides the client's `writes` for this collection. */
  writes?: 'rest' | 'socket';
  /** Order of `toArray()`. Default: arrival order. */
  comparator?: ((a: T, b: T) => number) | null;
  /**
   * Events past a gap held while the gap is fetched (`GET ?since`); past this many they are dropped
   * and the collection reloads instead. Default: the client's `maxHeld`, else 1000.
   */
  maxHeld?: number;
}

export class Emitter {
  on(event: string, listener: (...args: any[]) => void): () => void;
  once(event: string, listener: (...args: any[]) => void): () => void;
  off(event: string, listener?: (...args: any[]) => void): void;
  emit(event: string, ...args: any[]): void;
}

export class TidingsError extends Error {
  /** HTTP status or Bayeux error code; 0 when there was no answer; 408 when a socket write got no reply in time. */
  status: number;
  /** Field name → messages. */
  errors: Record<string, string[]>;
  /** The RFC 9457 problem details, when the server sent them. */
  problem?: any;
  operation?: 'create' | 'update' | 'remove' | 'load' | 'subscribe' | string;
  id?: string;
  readonly network: boolean;
}

export class LiveCollection<T extends TidingsRecord = TidingsRecord> extends Emitter {
  readonly client: TidingsClient;
  readonly path: string;
  writes: 'rest' | 'socket';
  comparator: ((a: T, b: T) => number) | null;
  /** Events past a gap held before the collection gives up on catch-up and reloads. */
  maxHeld: number;
  /** What the collection shows, by id. */
  items: Map<string, T>;
  /** Last change applied; null before the first snapshot and during a reload. */
  seq: number | null;
  epoch: string | null;
  loaded: boolean;
  /** The last snapshot or list was cut by a server limit: `items` is only part of the collection. */
  truncated: boolean;
  /** A sorted collection (the server said so): `toArray()` is in its order, by `position`. */
  sorted: boolean;
  /** Resolves once the first snapshot has been applied. */
  readonly ready: Promise<void>;
  readonly size: number;
  /** Ids with writes not yet answered. */
  readonly pendingIds: string[];

  get(id: string): T | undefined;
  toArray(): T[];
  /** `place`: only in a sorted collection (default: at the end). */
  create(attrs: Partial<T>, place?: Placement): Promise<T>;
  /** Moves a record of a sorted collection; shown at once, put back if the server refuses. */
  move(id: string, place: Placement): Promise<T>;
  update(id: string, attrs: Partial<T>, options?: { replace?: boolean; version?: number | true }): Promise<T>;
  remove(id: string, options?: { version?: number | true }): Promise<void>;
  catchUp(): void;
  reload(): void;
  close(): void;

  on(event: 'add' | 'remove', listener: (record: T) => void): () => void;
  on(event: 'change', listener: (record: T, previous: T) => void): () => void;
  on(event: 'reset', listener: (items: T[]) => void): () => void;
  on(event: 'error', listener: (error: TidingsError) => void): () => void;
  on(event: 'ready', listener: () => void): () => void;
  on(event: string, listener: (...args: any[]) => void): () => void;
}

export class TidingsClient extends Emitter {
  constructor(options?: ClientOptions);
  readonly url: string;
  writes: 'rest' | 'socket';
  retry: number;
  maxHeld: number | undefined;
  writeTimeout: number;
  /** Socket writes awaiting their reply. */
  readonly pendingSocketWrites: number;
  token: ClientOptions['token'];
  /** The Faye client underneath. */
  readonly faye: any;
  /** False between Faye's `transport:down` and `transport:up`. */
  online: boolean;
  collection<T extends TidingsRecord = TidingsRecord>(path: string, options?: CollectionOptions<T>): LiveCollection<T>;
  /**
   * Subscribes to a channel or pattern, inner wildcards included (a `*` before the last segment); the handler runs
   * once per event per subscription, with the concrete channel. Rejects with a TidingsError when refused.
   */
  subscribe(pattern: string, handler: (data: any, channel: string) => void): Promise<{ cancel(): void }>;
  request(method: string, path: string, options?: { body?: any; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  close(): void;
  on(event: 'up' | 'down', listener: () => void): () => void;
  on(event: string, listener: (...args: any[]) => void): () => void;
}

export function createClient(options?: ClientOptions): TidingsClient;
/** The page's shared client (created on first call with these options). */
export function defaultClient(options?: ClientOptions): TidingsClient;
/** A live collection on the page's shared client. */
export function collection<T extends TidingsRecord = TidingsRecord>(path: string, options?: CollectionOptions<T>): LiveCollection<T>;
export function uuid(): string;
