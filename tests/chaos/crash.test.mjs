// Crash durability: concurrent writers create, update and delete todos over REST while the server is killed with
// SIGKILL at random moments, then restarted on the same data. After every restart:
// - every acknowledged write is there with its acknowledged version and content, every acknowledged delete is gone
//   (a write in flight at the kill may have landed or not — either is allowed, nothing else is);
// - the change log (GET ?since=0) replays to exactly the stored records, and its seq runs 1, 2, … without a gap up
//   to the list's seq.
//
// Each writer owns its records, so the acknowledged state of every record is known exactly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ChaosServer, LONG, SEED, Random, rest } from './support.mjs';

const KILLS = Number(process.env.CHAOS_KILLS ?? (LONG ? 25 : 4));
const WRITERS = LONG ? 8 : 4;

/** The fields a writer sets; compared after the restart. */
const content = (record) => ({ title: record.title, completed: record.completed });

test(`crash durability: ${WRITERS} writers, ${KILLS} × kill -9 at random moments, no acknowledged write lost (seed ${SEED})`, { timeout: LONG ? 1_800_000 : 180_000 }, async () => {
  const random = new Random(SEED ^ 0x5eed);
  const server = await ChaosServer.start({ 'Tidings:MaxReplay': 10_000_000, 'Tidings:MaxListItems': 10_000_000 });
  // model: id → { state: 'present', version, content } | { state: 'deleted' }, plus the write in flight when killed.
  const model = new Map();
  const owned = Array.from({ length: WRITERS }, () => []);
  const totals = { acknowledged: 0, inFlightAtKill: 0, kills: 0, landed: 0 };
  try {
    for (let round = 0; round < KILLS; round++) {
      let stop = false;
      const writer = async (w) => {
        let n = 0;
        while (!stop) {
          const mine = owned[w].filter((id) => model.get(id).state === 'present');
          const op = mine.length < 3 || random.chance(0.45) ? 'create' : random.chance(0.7) ? 'update' : 'delete';
          const title = `w${w}-r${round}-${++n}`;
          const id = op === 'create' ? randomUUID() : random.pick(mine);
          const before = model.get(id);
          const pending = op === 'create' ? { op, content: { title, completed: false } }
            : op === 'update' ? { op, content: { title, completed: random.chance(0.5) }, from: before.version }
            : { op, from: before.version };
          if (op === 'create') {
            model.set(id, { state: 'absent', pending });
            owned[w].push(id);
          } else {
            before.pending = pending;
          }
          let response;
          try {
            response = op === 'create'
              ? await rest(server, 'POST', '/api/todos', { body: { id, ...pending.content } })
              : op === 'update'
                ? await rest(server, 'PUT', `/api/todos/${id}`, { body: pending.content, headers: { 'if-match': `"${before.version}"` } })
                : await rest(server, 'DELETE', `/api/todos/${id}`, { headers: { 'if-match': `"${before.version}"` } });
          } catch {
            // The connection died with the server: the outcome is unknown, the pending write stays recorded.
            totals.inFlightAtKill++;
            return;
          }
          const record = model.get(id);
          delete record.pending;
          if (op === 'create') {
            assert.equal(response.status, 201, response.text);
            Object.assign(record, { state: 'present', version: response.json.version, content: content(response.json) });
          } else if (op === 'update') {
            assert.equal(response.status, 200, `${response.status} ${response.text}`);
            assert.equal(response.json.version, before.version + 1);
            Object.assign(record, { version: response.json.version, content: content(response.json) });
          } else {
            assert.equal(response.status, 204, response.text);
            model.set(id, { state: 'deleted' });
          }
          totals.acknowledged++;
        }
      };
      const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
      await delay(300 + random.int(LONG ? 2500 : 1200));
      await server.kill();
      totals.kills++;
      stop = true;
      await Promise.all(writers);
      await server.start();
      totals.landed += await verify(server, model);
    }
    console.log(`# crash durability: ${JSON.stringify(totals)}; records ${model.size}`);
  } finally {
    await server.dispose();
  }
});

/** Compares the restarted server with the model; resolves in-flight writes to what landed. Returns how many landed. */
async function verify(server, model) {
  const list = await rest(server, 'GET', '/api/todos');
  assert.equal(list.status, 200, list.text);
  const stored = new Map(list.json.items.map((item) => [item.id, item]));
  let landed = 0;
  for (const [id, expected] of model) {
    const actual = stored.get(id);
    const pending = expected.pending;
    delete expected.pending;
    if (expected.state === 'deleted') {
      assert.equal(actual, undefined, `acknowledged delete of ${id} came back`);
      continue;
    }
    if (expected.state === 'absent') {
      // A create in flight: absent, or present exactly as sent.
      if (actual) {
        assert.deepEqual({ version: actual.version, ...content(actual) }, { version: 1, ...pending.content }, `in-flight create ${id}`);
        Object.assign(expected, { state: 'present', version: 1, content: content(actual) });
        landed++;
      } else {
        model.set(id, { state: 'deleted' }); // never created; its writer will not touch it again
      }
      continue;
    }
    if (pending?.op === 'delete' && !actual) {
      model.set(id, { state: 'deleted' });
      landed++;
      continue;
    }
    assert.ok(actual, `acknowledged record ${id} (version ${expected.version}) is missing`);
    if (pending?.op === 'update' && actual.version === expected.version + 1) {
      assert.deepEqual(content(actual), pending.content, `in-flight update of ${id}`);
      Object.assign(expected, { version: actual.version, content: content(actual) });
      landed++;
      continue;
    }
    assert.deepEqual({ version: actual.version, ...content(actual) }, { version: expected.version, ...expected.content }, `acknowledged state of ${id}`);
  }
  for (const id of stored.keys()) assert.ok(model.has(id), `a record nobody wrote: ${id}`);

  // The log replays to the stored state, with contiguous seq.
  const log = await rest(server, 'GET', `/api/todos?since=0&epoch=${list.json.epoch}`);
  assert.equal(log.status, 200, log.text);
  const replayed = new Map();
  log.json.changes.forEach((change, index) => {
    assert.equal(change.seq, index + 1, 'seq must be contiguous from 1');
    if (change.method === 'DELETE') replayed.delete(change.body.id);
    else replayed.set(change.body.id, change.body);
  });
  assert.equal(log.json.changes.length, list.json.seq, 'the log ends at the list\'s seq');
  assert.deepEqual(new Map([...replayed].sort()), new Map([...stored].sort()), 'the log replays to the stored records');
  return landed;
}
