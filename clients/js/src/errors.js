/**
 * Why a write or a load failed. `status` is the HTTP status (or the code of a Bayeux
 * `code:args:message` error), 0 for a network failure; `errors` maps field names to messages
 * (from RFC 9457 problem details' `errors`, or a Bayeux error's args).
 */
export class TidingsError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, errors?: Record<string, string[]>, problem?: any, operation?: string, id?: string, cause?: any}} [details]
   */
  constructor(message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TidingsError';
    /** @type {number} */
    this.status = details.status ?? 0;
    /** @type {Record<string, string[]>} */
    this.errors = details.errors ?? {};
    /** @type {any} */
    this.problem = details.problem;
    /** @type {string | undefined} create, update, remove, load */
    this.operation = details.operation;
    /** @type {string | undefined} the record's id */
    this.id = details.id;
  }

  /** True when the request never got an answer (offline, connection refused): worth retrying. */
  get network() {
    return this.status === 0;
  }
}

/**
 * Parses a Bayeux error string `code:arg1,arg2:message` (Faye's format) into a TidingsError.
 * @param {string} text
 * @param {object} [details]
 */
export function fromBayeuxError(text, details = {}) {
  const match = /^(\d+):([^:]*):(.*)$/s.exec(text ?? '');
  if (!match) return new TidingsError(text || 'write refused', { status: 500, ...details });
  const [, code, args, message] = match;
  const errors = {};
  for (const field of args.split(',').filter(Boolean)) errors[field] = [message];
  return new TidingsError(message, { status: Number(code), errors, ...details });
}
