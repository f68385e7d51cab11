// Bayeux channel patterns as a Tidings server reads them: `*` is one segment anywhere (`/api/flows/*/messages`),
// a trailing `**` one or more. Faye's own matcher knows only a trailing `*` or `**`.

// True for a pattern with `*` before its last segment, which Faye cannot route (`/api/flows/*/messages`).
export function hasInnerWildcard(pattern) {
  return pattern.slice(0, pattern.lastIndexOf('/') + 1).includes('/*/');
}

/** True when the concrete `channel` matches `pattern`. */
export function channelMatches(pattern, channel) {
  const p = pattern.split('/');
  const c = channel.split('/');
  for (let i = 1; i < p.length; i++) {
    if (p[i] === '**') return i === p.length - 1 && c.length > i;
    if (i >= c.length || (p[i] !== '*' && p[i] !== c[i])) return false;
  }
  return p.length === c.length;
}
