/**
 * The smallest event emitter that does the job: `on`, `once`, `off`, `emit`. Unlike Node's, an
 * `error` with no listener is not thrown — a live collection reports failed writes both as an `error`
 * event and as the write's rejected promise, and either is enough.
 */
export class Emitter {
  /** @type {Map<string, Set<Function>>} */
  #listeners = new Map();

  /**
   * @param {string} event
   * @param {Function} listener
   * @returns {() => void} a function that removes the listener
   */
  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * @param {string} event
   * @param {Function} listener
   * @returns {() => void}
   */
  once(event, listener) {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  /**
   * @param {string} event
   * @param {Function} [listener] omitted: every listener of `event`
   */
  off(event, listener) {
    if (!listener) this.#listeners.delete(event);
    else this.#listeners.get(event)?.delete(listener);
  }

  /**
   * Calls the listeners in the order they were added. A listener that throws does not stop the
   * others; its exception is rethrown asynchronously so it still shows up (console, test runner).
   * @param {string} event
   * @param {...any} args
   */
  emit(event, ...args) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
  }
}
