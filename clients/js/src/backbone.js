/**
 * Backbone adapter: an existing Backbone app goes live by changing its collection's base class.
 *
 *     const Todos = LiveCollection.extend({ url: '/api/todos', model: Todo, comparator: 'order' });
 *     const todos = new Todos();
 *     todos.fetch();            // the live snapshot; afterwards remote changes arrive by themselves
 *
 * Remote changes become ordinary `add`, `change` and `remove` events (with `options.live === true`). A sorted
 * collection is kept in the server's order (comparator `position` unless the app set one; `sort` events) and
 * has `move(id, {before | after | to})`.
 * Models in a LiveCollection save and destroy through the live core — optimistic, reconciled, never
 * duplicated — even when their class is a plain `Backbone.Model`, so the app's model stays as it is.
 */
import { defaultClient } from './index.js';
import { uuid } from './uuid.js';

/**
 * Builds `LiveModel` and `LiveCollection` for a Backbone instance.
 * @param {any} Backbone
 * @param {{client?: import('./client.js').TidingsClient}} [options] default: the page's shared client
 */
export function liveBackbone(Backbone, { client } = {}) {
  const resultOf = (object, key) => (typeof object[key] === 'function' ? object[key]() : object[key]);

  /** `sync` for a model whose collection is live. */
  function liveSync(method, model, options = {}) {
    const live = model.collection?.live;
    if (!live) return Backbone.sync(method, model, options);
    let promise;
    switch (method) {
      case 'create': {
        // The id is set before the write (and not silently, so the collection indexes the model by
        // it): the core's own `add` for this id then merges into this model instead of adding a twin.
        if (model.isNew()) model.set(model.idAttribute, uuid());
        promise = live.create({ ...(options.attrs ?? model.toJSON()), id: model.id });
        break;
      }
      case 'update':
      case 'patch': {
        // Only what differs from the live copy is sent (a merge patch), so a save never reverts a
        // field somebody else changed meanwhile.
        const attrs = options.attrs ?? model.toJSON();
        const known = live.get(model.id) ?? {};
        const changed = {};
        for (const [key, value] of Object.entries(attrs)) {
          if (JSON.stringify(known[key]) !== JSON.stringify(value)) changed[key] = value;
        }
        promise = live.update(model.id, changed);
        break;
      }
      case 'delete':
        promise = live.remove(model.id);
        break;
      default:
        promise = live.client.request('GET', `${live.path}/${encodeURIComponent(model.id)}`).then((r) => r.body);
    }
    model.trigger('request', model, promise, options);
    promise.then((record) => options.success?.(record), (error) => options.error?.(error));
    return promise;
  }

  const LiveModel = Backbone.Model.extend({ sync: liveSync });
  const base = Backbone.Collection.prototype;

  const LiveCollection = Backbone.Collection.extend({
    model: LiveModel,

    /** The live core (`LiveCollection` of clients/js) once `fetch()` or `live()` opened it. */
    live: null,

    constructor: function LiveCollection(models, options = {}) {
      if (options.tidings) this.tidings = options.tidings;
      if (options.url) this.url = options.url;
      this._liveFetches = 0;
      base.constructor.call(this, models, options);
    },

    /** Opens the live collection at `url` (idempotent) and returns the core. */
    openLive() {
      if (this.live) return this.live;
      const tidings = this.tidings ?? client ?? defaultClient();
      const live = tidings.collection(resultOf(this, 'url'));
      this.live = live;
      const remote = { merge: true, live: true };
      // A sorted collection keeps the server's order: without a comparator of its own, sort by `position`
      // (Backbone then sorts again, with a `sort` event, whenever a record's position changes).
      const adoptOrder = () => {
        if (live.sorted && !this.comparator) this.comparator = 'position';
      };
      this._adoptOrder = adoptOrder;
      this._liveOff = [
        live.on('add', (record) => this.add(record, remote)),
        live.on('change', (record) => this.add(record, remote)),
        live.on('remove', (record) => this.remove(record.id, { live: true })),
        live.on('reset', (items) => {
          adoptOrder();
          if (this._liveFetches > 0) return; // fetch() applies it, as Backbone's fetch does
          this.set(items, { ...remote, remove: true });
        }),
        live.on('error', (error) => {
          this.trigger('live:error', this, error);
          // A refused subscribe is final for this core (Faye does not try it again): let it go, so
          // the next fetch opens a new one and subscribes again.
          if (error.operation === 'subscribe' && !live.loaded && this.live === live) this.closeLive();
        }),
      ];
      if (live.loaded) {
        adoptOrder();
        this.set(live.toArray(), { ...remote, remove: true });
      }
      return live;
    },

    /**
     * Moves a record of a sorted collection — `{before: idOrModel}`, `{after: idOrModel}` or `{to: 'start' | 'end'}` —
     * at once (a `sort` event), and back again if the server refuses (an `error` on the core, `live:error` here).
     * @returns {Promise<object>} the server's record
     */
    move(idOrModel, place) {
      const idOf = (value) => (value instanceof Backbone.Model ? value.id : value);
      const placement = { ...place };
      if (placement.before !== undefined) placement.before = idOf(placement.before);
      if (placement.after !== undefined) placement.after = idOf(placement.after);
      return this.openLive().move(idOf(idOrModel), placement);
    },

    /** Stops following the server. */
    closeLive() {
      for (const off of this._liveOff ?? []) off();
      this._liveOff = null;
      this.live?.close();
      this.live = null;
    },

    sync(method, collection, options = {}) {
      if (method !== 'read') return Backbone.sync(method, collection, options);
      const live = this.openLive();
      // While a fetch waits for the snapshot, the core's `reset` is left to it (Backbone's fetch
      // applies the result); it settles either way, so later resets apply again.
      this._liveFetches++;
      const promise = new Promise((resolve, reject) => {
        let offError = null;
        const settle = (fn, value) => {
          if (!offError) return;
          offError();
          offError = null;
          this._liveFetches--;
          fn(value);
        };
        offError = live.on('error', (error) => {
          if (error.operation === 'subscribe' && !live.loaded) settle(reject, error);
        });
        live.ready.then(() => {
          this._adoptOrder?.();
          settle(resolve, live.toArray());
        });
      });
      this.trigger('request', this, promise, options);
      // As Backbone.sync does: options.error, which Backbone's fetch turns into the 'error' event.
      promise.then((items) => options.success?.(items), (error) => options.error?.(error));
      return promise;
    },

    _prepareModel(attrs, options) {
      const model = base._prepareModel.call(this, attrs, options);
      // A plain Backbone.Model (the app's own class) syncs through the live core too.
      if (model && model.sync === Backbone.Model.prototype.sync) model.sync = liveSync;
      return model;
    },
  });

  return { LiveModel, LiveCollection, liveSync };
}

const globalBackbone = globalThis.Backbone;
const built = globalBackbone ? liveBackbone(globalBackbone) : {};

/** Built on the global `Backbone` (script tag) with the page's shared client; undefined without one. */
export const LiveCollection = built.LiveCollection;
/** @see LiveCollection */
export const LiveModel = built.LiveModel;
