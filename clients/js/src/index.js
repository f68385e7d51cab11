/**
 * Tidings client: live collections on a Tidings server.
 *
 *     import { createClient } from '/lib/tidings/index.js';
 *     const tidings = createClient();                 // same origin, global Faye (faye-browser.js)
 *     const todos = tidings.collection('/api/todos');
 *     todos.on('add', (todo) => render(todo));
 *     await todos.create({ title: 'milk' });           // shows at once; reconciled with the server
 *
 * Or, with one shared client for the page: `collection('/api/todos')`.
 */
import { TidingsClient } from './client.js';

export { TidingsClient } from './client.js';
export { LiveCollection } from './collection.js';
export { TidingsError } from './errors.js';
export { Emitter } from './emitter.js';
export { uuid } from './uuid.js';

/**
 * A new client. Options: `url` (server origin; default the page's), `faye` (a Faye.Client, or the
 * Faye namespace; default the global `Faye`), `writes` ('rest' | 'socket'), `retry` (seconds),
 * `writeTimeout` (seconds a socket write waits for its reply), `maxHeld` (events held past a gap).
 * @param {import('../types/index.js').ClientOptions} [options]
 */
export function createClient(options) {
  return new TidingsClient(options);
}

/** @type {TidingsClient | null} */
let shared = null;

/**
 * The page's shared client, created on first use with `options` (later options are ignored).
 * @param {import('../types/index.js').ClientOptions} [options]
 */
export function defaultClient(options) {
  shared ??= new TidingsClient(options);
  return shared;
}

/**
 * A live collection on the page's shared client.
 * @param {string} path e.g. `/api/flows/main/messages`
 * @param {import('../types/index.js').CollectionOptions} [options]
 */
export function collection(path, options) {
  return defaultClient().collection(path, options);
}
