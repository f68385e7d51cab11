// A JS client (clients/js, on the real Node faye client from tests/browser/node_modules) in the .NET convergence
// test: opens one live collection, writes at random, and answers the test on stdin, one command a line:
//   stop   → stops writing, waits for its writes to settle, prints {"stopped": {...}}
//   state  → prints {"state": {items, pending, seq, applied, problems, errors}}
//   exit   → closes the client and exits (so does the end of stdin, and the time limit)
// Prints "js live collection ready: <url><path>" once loaded, and "progress <applied events>" as it goes.
//
//   node live-collection.mjs --url http://127.0.0.1:PORT --path /api/todos [--seed 1] [--writes rest|socket] [--limit 170]
//
// "Applied twice": every event the collection applies moves its `seq` to seq + 1; an applied seq at or below the
// highest position it already had (same epoch) is a problem, and so is an `add` of a record the events already show
// or a `remove`/`change` of one they do not (a mirror kept from the events must end equal to the items).
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const require = createRequire(path.join(root, 'tests/browser/package.json'));
const faye = require('faye');
const { createClient } = await import(pathToFileURL(path.join(root, 'clients/js/src/index.js')).href);

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, value, i, all) =>
  (i % 2 === 0 ? [...pairs, [value.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const base = args.url;
const collectionPath = args.path ?? '/api/todos';
const limit = Number(args.limit ?? 170);
if (!base) {
  console.error('usage: node live-collection.mjs --url http://127.0.0.1:PORT --path /api/todos');
  process.exit(2);
}

// A whole run is bounded, whatever the parent does.
const deadline = setTimeout(() => {
  console.log(`time limit: ${limit} s`);
  process.exit(3);
}, limit * 1000);
deadline.unref();

// A seeded generator, so a failing run can be repeated.
let state = Number(args.seed ?? 1) >>> 0 || 1;
const random = (n) => {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state % n;
};

const fayeClient = new faye.Client(`${base}/bayeux`, { retry: 0.3, timeout: 10 });
// A REST call through a cut connection must fail (status 0, retried by the client) rather than wait forever.
const boundedFetch = (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
const client = createClient({ url: base, faye: fayeClient, writes: args.writes ?? 'rest', retry: 0.3, writeTimeout: 20, fetch: boundedFetch });
const collection = client.collection(collectionPath);

// Watch every position the collection takes.
const problems = [];
let applied = 0;
let highest = null;
let highestEpoch = null;
let position = collection.seq;
Object.defineProperty(collection, 'seq', {
  configurable: true,
  enumerable: true,
  get: () => position,
  set: (value) => {
    const previous = position;
    position = value;
    if (typeof value !== 'number') return;
    if (typeof previous === 'number' && value === previous + 1) {
      applied++;
      if (highest !== null && collection.epoch === highestEpoch && value <= highest) {
        problems.push(`seq ${value} applied after ${highest}`);
      }
    }
    if (highest === null || collection.epoch !== highestEpoch || value > highest) {
      highest = value;
      highestEpoch = collection.epoch;
    }
  },
});

// A mirror kept from the events alone, as a UI list would be.
const mirror = new Map();
collection.on('reset', (items) => {
  mirror.clear();
  for (const item of items) mirror.set(item.id, item);
});
collection.on('add', (record) => {
  if (mirror.has(record.id)) problems.push(`add of ${record.id}, which is shown already`);
  mirror.set(record.id, record);
});
collection.on('change', (record) => {
  if (!mirror.has(record.id)) problems.push(`change of ${record.id}, which is not shown`);
  mirror.set(record.id, record);
});
collection.on('remove', (record) => {
  if (!mirror.delete(record.id)) problems.push(`remove of ${record.id}, which is not shown`);
});
// `error` also carries the refusals the writer expects; those are counted there.
collection.on('error', () => {});

await collection.ready;
console.log(`js live collection ready: ${base}${collectionPath}`);

let reported = -1;
const progress = setInterval(() => {
  if (applied !== reported) {
    reported = applied;
    console.log(`progress ${applied}`);
  }
}, 100);

// Random writes, one at a time, until told to stop.
let writing = true;
const counts = { creates: 0, updates: 0, deletes: 0, refused: 0 };
const errors = [];
const writer = (async () => {
  let n = 0;
  while (writing) {
    const items = collection.toArray();
    const roll = random(10);
    try {
      if (items.length < 5 || roll < 5) {
        counts.creates++;
        await collection.create({ title: `js${n++}`, order: random(100) });
      } else if (roll < 8) {
        counts.updates++;
        await collection.update(items[random(items.length)].id, { title: `jsu${n++}`, completed: random(2) === 1 });
      } else {
        counts.deletes++;
        await collection.remove(items[random(items.length)].id);
      }
    } catch (error) {
      // Another client deleted it first (404, 409), or the write's answer was lost in a cut (408): the stream settles it.
      if ([404, 408, 409].includes(error.status)) counts.refused++;
      else errors.push(`${error.status} ${error.message}`);
    }
  }
})();

async function close(code) {
  writing = false;
  clearInterval(progress);
  client.close();
  const done = fayeClient.disconnect();
  if (done) await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 1000))]);
  process.exit(code);
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  switch (line.trim()) {
    case 'stop':
      writing = false;
      await writer;
      console.log(JSON.stringify({ stopped: counts }));
      break;
    case 'state': {
      const items = collection.toArray();
      const shown = [...mirror.values()];
      const mirrorProblems = items.length === shown.length && items.every((item) => JSON.stringify(mirror.get(item.id)) === JSON.stringify(item))
        ? [] : ['the mirror kept from the events differs from the items'];
      console.log(JSON.stringify({
        state: {
          items, pending: collection.pendingIds, seq: collection.seq, epoch: collection.epoch, applied,
          problems: [...problems, ...mirrorProblems], errors, writes: counts,
        },
      }));
      break;
    }
    case 'exit':
      await close(0);
      break;
    default:
      console.log(`unknown command: ${line}`);
  }
});
lines.on('close', () => close(0));
