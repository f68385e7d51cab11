/**
 * Position keys of sorted collections, as the server makes them (src/Tidings/Collections/PositionKeys.cs):
 * base-62 digit strings read as fractions 0.d1d2…, never ending in `0`, compared as plain strings. The client
 * makes one only to show an optimistic move or placed create at once; the server's key replaces it.
 */
const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE = 62;

/**
 * A key after `before` (null: the start) and before `after` (null: the end).
 * @param {string | null | undefined} before
 * @param {string | null | undefined} after
 * @returns {string}
 */
export function positionBetween(before, after) {
  before = before ?? null;
  after = after ?? null;
  if (before !== null && after !== null && before >= after) throw new RangeError(`'${before}' is not below '${after}'`);
  if (after === null && before !== null) {
    for (let i = 0; i < before.length; i++) {
      const digit = DIGITS.indexOf(before[i]);
      if (digit < BASE - 1) return before.slice(0, i) + DIGITS[digit + 1];
    }
    return before + DIGITS[BASE / 2];
  }
  return midpoint(before ?? '', after);
}

function midpoint(low, high) {
  if (high !== null) {
    let n = 0;
    while (n < high.length && (n < low.length ? low[n] : '0') === high[n]) n++;
    if (n > 0) return high.slice(0, n) + midpoint(n < low.length ? low.slice(n) : '', high.slice(n));
  }
  const digitLow = low.length > 0 ? DIGITS.indexOf(low[0]) : 0;
  const digitHigh = high !== null ? DIGITS.indexOf(high[0]) : BASE;
  if (digitHigh - digitLow > 1) return DIGITS[Math.floor((digitLow + digitHigh + 1) / 2)];
  if (high !== null && high.length > 1) return high.slice(0, 1);
  return DIGITS[digitLow] + midpoint(low.length > 0 ? low.slice(1) : '', null);
}

/** Orders records by `position` as the server does: without one first, then by key (plain string order). */
export function byPosition(a, b) {
  const pa = typeof a.position === 'string' ? a.position : null;
  const pb = typeof b.position === 'string' ? b.position : null;
  if (pa === pb) return 0;
  if (pa === null) return -1;
  if (pb === null) return 1;
  return pa < pb ? -1 : 1;
}
