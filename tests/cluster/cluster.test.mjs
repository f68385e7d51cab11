// Three demo nodes (a, b, c) on one PostgreSQL behind nginx, driven by the real faye and cometd clients (WebSocket
// and long-polling) and the Tidings JS client (clients/js on the Node faye client): writes on every node converge
// everywhere; a plain publish crosses nodes once; the authorization matrix holds on every node; a long-polling
// client that loses its affinity cookie recovers (measured); PostgreSQL restarted mid-stream loses nothing; a node
// killed with SIGKILL mid-stream costs its clients nothing but a re-handshake through nginx.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import faye from 'faye';

import { createClient } from '../../clients/js/src/index.js';
import { openCollection } from '../browser/server.mjs';
import {
  Cluster, Watcher, KINDS, rest, signIn, state, streamProblem, sortById, closeAll, waitFor, quietPeriod,
} from './cluster.mjs';

const tag = () => randomUUID().slice(0, 8);

/**
 * A writer: creates, edits and deletes records of `flow` through `base` until `count` writes are done or
 * `until()` says stop. Returns the HTTP statuses it got.
 */
async function writer(base, flow, token, label, { count = Infinity, until = () => false } = {}) {
  const statuses = [];
  let last = null;
  for (let i = 0; i < count && !until(); i++) {
    let result;
    if (last && i % 4 === 3) {
      result = await rest(base, 'DELETE', `${flow}/${last}`, undefined, token);
      last = null;
    } else if (last && i % 2 === 1) {
      result = await rest(base, 'PATCH', `${flow}/${last}`, { content: `${label}-${i}-edited` }, token);
    } else {
      result = await rest(base, 'POST', flow, { content: `${label}-${i}` }, token);
      if (result.status === 201) last = result.body.id;
    }
    statuses.push(result.status);
  }
  return statuses;
}

/** A live collection of the Tidings JS client, opened through `base`. */
async function liveCollection(base, flow, token) {
  const fixture = await openCollection(faye, createClient, { base }, flow, { url: base, token });
  fixture.kind = 'js';
  return fixture;
}

/** What a JS client collection got wrong compared to the server (null: nothing). */
function collectionProblem(fixture, final) {
  const local = JSON.stringify(sortById(fixture.collection.toArray()));
  if (fixture.collection.seq !== final.seq) return `collection at seq ${fixture.collection.seq}, server at ${final.seq}`;
  if (local !== JSON.stringify(final.items)) return `collection differs from GET: ${local.slice(0, 400)}`;
  if (fixture.count('reset') !== 1) return `${fixture.count('reset')} resets (expected only the first load)`;
  // Raw deliveries may skip (a gap is filled by GET ?since) or repeat (a since replay after that catch-up): the client
  // applies each seq once, so each record was added once.
  const adds = new Map();
  for (const e of fixture.log) if (e.name === 'add') adds.set(e.record.id, (adds.get(e.record.id) ?? 0) + 1);
  const twice = [...adds].filter(([, n]) => n > 1);
  if (twice.length > 0) return `records added more than once: ${JSON.stringify(twice)}`;
  return null;
}

/** Waits until every watcher's stream of `flow` and every collection reached the server's seq, then checks them. */
async function assertConverged(cluster, flow, token, watchers, collections, { from = 0, initial = [], timeout = 30_000 } = {}) {
  let final;
  await waitFor(async () => {
    final = await state(cluster.base, flow, token);
    return watchers.every((w) => (w.byChannel.get(flow) ?? []).at(-1)?.seq >= final.seq)
      && collections.every((f) => f.collection.seq >= final.seq && f.collection.pendingIds.length === 0);
  }, { timeout, interval: 100, message: `every client to reach the server's seq of ${flow}` }).catch((error) => {
    const behind = watchers.filter((w) => !((w.byChannel.get(flow) ?? []).at(-1)?.seq >= final?.seq))
      .map((w) => `${w.kind}@${w.url} at ${(w.byChannel.get(flow) ?? []).at(-1)?.seq}`);
    const behindJs = collections.filter((f) => !(f.collection.seq >= final?.seq)).map((f) => `js at ${f.collection.seq}`);
    throw new Error(`${error.message}; server at ${final?.seq}; behind: ${[...behind, ...behindJs].join(', ')}`);
  });
  // Every node's GET answers the same.
  for (const node of cluster.nodes.filter((n) => n.running)) {
    assert.deepEqual(await state(node.base, flow, token), final, `GET on node ${node.id} equals GET through nginx`);
  }
  for (const w of watchers) {
    const problem = streamProblem(w.byChannel.get(flow), final, { from, initial });
    assert.equal(problem, null, `${w.kind} via ${w.url}: ${problem}`);
  }
  for (const f of collections) {
    const problem = collectionProblem(f, final);
    assert.equal(problem, null, `js client via ${f.client.url}: ${problem}`);
  }
  return final;
}

describe('three nodes on PostgreSQL behind nginx', { timeout: 240_000 }, () => {
  let cluster;
  let ada;
  let bob;
  let writerToken;
  const open = [];

  before(async () => {
    cluster = await Cluster.start();
    writerToken = await signIn(cluster.base, 'writer');
    ada = await signIn(cluster.base, 'ada');
    bob = await signIn(cluster.base, 'bob');
  }, { timeout: 150_000 });

  afterEach(async () => { await closeAll(open); });

  after(async () => {
    await closeAll(open);
    await cluster?.dispose();
  });

  const watch = async (kind, base, { token = writerToken, flow, epoch, ...options } = {}) => {
    const watcher = new Watcher(kind, `${base}/bayeux`, { token, position: flow ? { channel: flow, seq: 0, epoch } : null, ...options });
    open.push(watcher);
    if (flow) await watcher.subscribe(flow);
    return watcher;
  };

  it('nodes started at once on one empty --data accept each other\'s tokens', { timeout: 30_000 }, async () => {
    // They race to write the signing key there; each must end up with the same one.
    for (const issuer of cluster.nodes) {
      const token = await signIn(issuer.base, `issued-by-${issuer.id}`);
      for (const node of cluster.nodes) {
        const { status, body } = await rest(node.base, 'GET', '/api/users/x/tasks', undefined, token);
        assert.equal(status, 200, `a token of node ${issuer.id} on node ${node.id}: ${JSON.stringify(body)}`);
      }
    }
  });

  it('1. writes through nginx and directly on every node converge on every client, each seq once in order', { timeout: 90_000 }, async () => {
    const flow = `/api/flows/converge-${tag()}/messages`;
    const { epoch } = await state(cluster.base, flow, writerToken);
    const watchers = [];
    const collections = [];
    for (const entrance of cluster.entrances()) {
      for (const kind of KINDS) watchers.push(await watch(kind, entrance.base, { flow, epoch }));
      const fixture = await liveCollection(entrance.base, flow, writerToken);
      open.push(fixture);
      collections.push(fixture);
    }

    const writes = cluster.entrances().map((entrance) => writer(entrance.base, flow, writerToken, `w-${entrance.id}`, { count: 16 }));
    // The JS clients write too (REST through their entrance), optimistically.
    const creates = collections.map((f, i) => f.collection.create({ content: `js-${i}` }));
    const statuses = (await Promise.all(writes)).flat();
    await Promise.all(creates);
    assert.ok(statuses.every((s) => s >= 200 && s < 300), `every write succeeded: ${JSON.stringify(statuses)}`);

    const final = await assertConverged(cluster, flow, writerToken, watchers, collections);
    assert.ok(final.seq >= 64, `seq ${final.seq}`);
  });

  it('4. a plain publish through one node reaches faye and cometd subscribers on every node, once', { timeout: 60_000 }, async () => {
    const channel = `/chat/x-${tag()}`;
    const subscribers = [];
    for (const entrance of cluster.entrances()) {
      for (const kind of KINDS) {
        const watcher = await watch(kind, entrance.base);
        await watcher.subscribe(channel);
        subscribers.push(watcher);
      }
    }
    const publisher = await watch('faye-websocket', cluster.node('a').base);
    await publisher.connect();
    const texts = Array.from({ length: 5 }, (_, i) => `hello ${i}`);
    for (const text of texts) await publisher.publish(channel, { text });
    // And one through nginx, from whichever node it lands on.
    const other = await watch('cometd-long-polling', cluster.base);
    await other.connect();
    await other.publish(channel, { text: 'via nginx' });

    await waitFor(() => subscribers.every((w) => (w.byChannel.get(channel) ?? []).length >= texts.length + 1),
      { timeout: 15_000, message: 'every subscriber to receive the six publishes' }).catch((error) => {
      throw new Error(`${error.message}: ${subscribers.map((w) => `${w.kind}@${w.url}=${(w.byChannel.get(channel) ?? []).length}`).join(', ')}`);
    });
    await quietPeriod(500); // (only to catch a late duplicate)
    for (const w of subscribers) {
      const got = w.byChannel.get(channel).map((d) => d.text);
      assert.deepEqual(got.filter((t) => t !== 'via nginx'), texts, `${w.kind} via ${w.url}: each once, in the publisher's order`);
      assert.equal(got.filter((t) => t === 'via nginx').length, 1, `${w.kind} via ${w.url}`);
    }
  });

  it('5. the authorization matrix holds on every node and through nginx', { timeout: 90_000 }, async () => {
    const bobNotes = '/api/users/bob/notes';
    const flow = `/api/flows/members-${tag()}/messages`;
    const adaWildcards = [];
    for (const entrance of cluster.entrances()) {
      // ada may neither read nor write bob's notes, over REST or Bayeux.
      assert.equal((await rest(entrance.base, 'GET', bobNotes, undefined, ada)).status, 403, `${entrance.id}: ada GET bob's notes`);
      assert.equal((await rest(entrance.base, 'POST', bobNotes, { text: 'by ada' }, ada)).status, 403, `${entrance.id}: ada POST bob's notes`);
      for (const kind of ['faye-websocket', 'cometd-long-polling']) {
        const refused = await (await watch(kind, entrance.base, { token: ada })).refusedSubscribe(bobNotes);
        assert.match(String(refused), /^403/, `${entrance.id} ${kind}: ada subscribing to bob's notes: ${refused}`);
      }
      // Signed out: no flow listing, no flow subscription.
      assert.equal((await rest(entrance.base, 'GET', flow)).status, 401, `${entrance.id}: signed-out GET of a flow`);
      const anonymous = await (await watch('faye-long-polling', entrance.base, { token: null })).refusedSubscribe(flow);
      assert.match(String(anonymous), /^403/, `${entrance.id}: signed-out subscribe to a flow: ${anonymous}`);
      // ada's wildcard over every user's collections, on this entrance.
      for (const kind of ['faye-websocket', 'cometd-long-polling']) {
        const watcher = await watch(kind, entrance.base, { token: ada });
        await watcher.subscribe('/api/users/**');
        adaWildcards.push(watcher);
      }
    }

    // bob writes his notes (private) and his tasks (every signed-in user reads them) on every node.
    const tasks = [];
    for (const entrance of cluster.entrances()) {
      assert.equal((await rest(entrance.base, 'POST', bobNotes, { text: `secret via ${entrance.id}` }, bob)).status, 201);
      const task = await rest(entrance.base, 'POST', '/api/users/bob/tasks', { title: `task via ${entrance.id}` }, bob);
      assert.equal(task.status, 201);
      tasks.push(task.body.id);
      assert.equal((await rest(entrance.base, 'GET', bobNotes, undefined, bob)).status, 200, `${entrance.id}: bob reads his notes`);
    }
    const own = await rest(cluster.base, 'POST', '/api/users/ada/notes', { text: 'mine' }, ada);
    assert.equal(own.status, 201);

    await waitFor(() => adaWildcards.every((w) => {
      const seen = w.events.map((e) => e.data?.body?.id);
      return tasks.every((id) => seen.includes(id)) && seen.includes(own.body.id);
    }), { timeout: 15_000, message: "ada's wildcard subscriptions to receive bob's tasks and her own note" });
    await quietPeriod(500); // (only to let a wrongly delivered note arrive)
    for (const w of adaWildcards) {
      const leaked = w.events.filter((e) => e.channel === bobNotes);
      assert.deepEqual(leaked, [], `${w.kind} via ${w.url}: nothing of bob's notes reaches ada`);
    }
  });

  it("6. a long-polling client that loses its affinity cookie handshakes again and catches up (measured)", { timeout: 90_000 }, async () => {
    const flow = `/api/flows/affinity-${tag()}/messages`;
    const { epoch } = await state(cluster.base, flow, writerToken);
    const measurements = [];
    for (const kind of ['faye-long-polling', 'cometd-long-polling']) {
      const watcher = await watch(kind, cluster.base, { flow, epoch });
      for (let trial = 0; trial < 4; trial++) {
        const handshakes = watcher.handshakes.length;
        const before = watcher.nodeCookie;
        const received = (id) => (watcher.byChannel.get(flow) ?? []).some((e) => e.body?.id === id);
        watcher.dropCookie();
        // The held connect still answers (the session is alive on its node); the client's next request has no
        // cookie. W1 ends the held connect; the time until W2, written at once, arrives is what the loss cost.
        const w1 = await rest(cluster.base, 'POST', flow, { content: `${kind} trial ${trial} a` }, writerToken);
        await waitFor(() => received(w1.body.id), { timeout: 20_000, message: `${kind}: the write on the held connect` });
        const lost = Date.now();
        const w2 = await rest(cluster.base, 'POST', flow, { content: `${kind} trial ${trial} b` }, writerToken);
        assert.equal(w2.status, 201);
        await waitFor(() => received(w2.body.id), { timeout: 20_000, message: `${kind} to receive again after losing its cookie` });
        measurements.push({ kind, trial, ms: Date.now() - lost, extraHandshakes: watcher.handshakes.length - handshakes, from: before, to: watcher.nodeCookie });
      }
    }

    // A long-polling client with no cookie jar at all: each request lands on the next node.
    const jarless = await watch('faye-long-polling', cluster.base, { cookies: false });
    const started = Date.now();
    jarless.subscribe('/chat/jarless').catch(() => {});
    const receiving = await waitFor(() => jarless.replies.some((r) => r.channel === '/meta/subscribe' && r.successful),
      { timeout: 8000, message: 'the client without cookies to subscribe' }).then(() => Date.now() - started, () => null);
    const noJar = { kind: 'faye-long-polling without cookies', subscribedAfterMs: receiving, handshakesIn8s: jarless.handshakes.length,
      unknownClient: jarless.replies.filter((r) => String(r.error ?? '').startsWith('401')).length };
    await jarless.close();

    console.log(`affinity loss: ${JSON.stringify(measurements)}`);
    console.log(`no cookie jar: ${JSON.stringify(noJar)}`);
    for (const m of measurements) assert.ok(m.extraHandshakes <= 1, `${m.kind} trial ${m.trial}: ${m.extraHandshakes} handshakes`);
    const final = await state(cluster.base, flow, writerToken);
    for (const w of open.filter((x) => x.byChannel?.has(flow))) {
      assert.equal(streamProblem(w.byChannel.get(flow), final), null, `${w.kind}: nothing lost or repeated`);
    }
  });

  it('3. PostgreSQL restarted mid-stream: writes get 503 meanwhile, every client ends with every committed change once', { timeout: 120_000 }, async () => {
    const flow = `/api/flows/pg-restart-${tag()}/messages`;
    const { epoch } = await state(cluster.base, flow, writerToken);
    const watchers = [];
    for (const kind of KINDS) watchers.push(await watch(kind, cluster.base, { flow, epoch }));
    for (const node of cluster.nodes) {
      for (const kind of ['faye-websocket', 'cometd-long-polling']) watchers.push(await watch(kind, node.base, { flow, epoch }));
    }
    const js = await liveCollection(cluster.base, flow, writerToken);
    open.push(js);

    let phase = 'before';
    const ok = { before: 0, outage: 0, after: 0 };
    const outcomes = [];
    const writers = cluster.entrances().map((entrance) => (async () => {
      let i = 0;
      while (phase !== 'done') {
        const result = await rest(entrance.base, 'POST', flow, { content: `${entrance.id}-${i++}` }, writerToken);
        outcomes.push(result.status);
        if (result.status === 201) ok[phase]++;
        else await new Promise((resolve) => setTimeout(resolve, 50)); // (a refused write is retried as a new one)
      }
    })());
    try {
      await waitFor(() => ok.before >= 10, { timeout: 20_000, message: 'writes before the restart' });
      await cluster.pg.stopServer('immediate');
      phase = 'outage';
      await waitFor(() => outcomes.includes(503), { timeout: 20_000, message: 'a write refused with 503 during the outage' });
      await cluster.pg.startServer();
      phase = 'after';
      await waitFor(() => ok.after >= 15, { timeout: 40_000, message: 'writes succeeding again after the restart' });
    } finally {
      phase = 'done';
      await Promise.all(writers);
    }
    const unexpected = outcomes.filter((s) => s !== 201 && s !== 503);
    const errors = cluster.nodes.flatMap((n) => n.output().split('\n').filter((l) => /Exception|fail:/.test(l))).slice(0, 12);
    assert.deepEqual(unexpected, [], `every write answered 201 or 503: ${JSON.stringify(outcomes)}\n${errors.join('\n')}`);
    await assertConverged(cluster, flow, writerToken, watchers, [js], { timeout: 40_000 });
  });

  it('2. kill -9 of a node mid-stream: its clients reconnect through nginx to another node and catch up exactly', { timeout: 120_000 }, async () => {
    const flow = `/api/flows/kill-${tag()}/messages`;
    const { epoch } = await state(cluster.base, flow, writerToken);
    // Clients through nginx, until one node holds at least one of each kind (faye, cometd, both transports, js).
    const viaNginx = [];
    const kinds = [...KINDS, 'js'];
    const where = async (client) => cluster.nodeOf(client.kind === 'js' ? client.fayeClient._dispatcher.clientId : client.clientId);
    const connectOne = async (kind) => {
      let client;
      if (kind === 'js') {
        client = await liveCollection(cluster.base, flow, writerToken);
        open.push(client);
      } else {
        client = await watch(kind, cluster.base, { flow, epoch });
      }
      client.node = await where(client);
      client.firstClientId = kind === 'js' ? client.fayeClient._dispatcher.clientId : client.clientId;
      viaNginx.push(client);
    };
    for (const kind of kinds) for (let i = 0; i < 2; i++) await connectOne(kind);
    const coverage = (id) => kinds.filter((k) => viaNginx.some((c) => c.kind === k && c.node === id)).length;
    const victim = ['a', 'b', 'c'].sort((x, y) => coverage(y) - coverage(x))[0];
    for (const kind of kinds) {
      // Round-robin puts a new client on the victim one time in three: 30 tries miss about once in 200,000 runs.
      for (let i = 0; i < 30 && !viaNginx.some((c) => c.kind === kind && c.node === victim); i++) await connectOne(kind);
    }
    const onVictim = viaNginx.filter((c) => c.node === victim);
    assert.deepEqual(kinds.filter((k) => !onVictim.some((c) => c.kind === k)), [], `node ${victim} holds a client of each kind`);
    const survivors = cluster.nodes.filter((n) => n.id !== victim);
    const direct = [];
    for (const node of survivors) {
      for (const kind of ['faye-websocket', 'cometd-long-polling']) direct.push(await watch(kind, node.base, { flow, epoch }));
    }

    let stop = false;
    let afterKill = 0;
    let killed = false;
    const statuses = [];
    const entrances = [{ id: 'nginx', base: cluster.base }, { id: 'nginx', base: cluster.base }, ...survivors.map((n) => ({ id: n.id, base: n.base }))];
    const writers = entrances.map((entrance, w) => (async () => {
      let i = 0;
      while (!stop) {
        const result = await rest(entrance.base, 'POST', flow, { content: `${entrance.id}${w}-${i++}` }, writerToken);
        statuses.push(result.status);
        if (killed && result.status === 201) afterKill++;
        if (result.status !== 201) await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })());
    try {
      await waitFor(async () => (await state(cluster.base, flow, writerToken)).seq >= 15, { timeout: 20_000, message: 'writes before the kill' });
      await cluster.node(victim).kill();
      killed = true;
      // Every client that was on the victim handshakes again (through nginx, so elsewhere).
      await waitFor(async () => {
        for (const c of onVictim) {
          const id = c.kind === 'js' ? c.fayeClient._dispatcher.clientId : c.clientId;
          if (!id || id === c.firstClientId) return false;
        }
        return afterKill >= 20;
      }, { timeout: 40_000, message: `the clients of node ${victim} to handshake again, and writes to go on` });
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    // Writes in flight on the killed node may have failed (nginx: 502); everything else succeeded.
    assert.ok(statuses.every((s) => s === 201 || s === 502), `statuses: ${JSON.stringify(statuses.filter((s) => s !== 201))}`);
    for (const c of onVictim) {
      const node = await where(c);
      assert.ok(node && node !== victim, `${c.kind} now on node ${node}`);
    }
    const watchers = [...viaNginx.filter((c) => c.kind !== 'js'), ...direct];
    await assertConverged(cluster, flow, writerToken, watchers, viaNginx.filter((c) => c.kind === 'js'), { timeout: 40_000 });
  });
});
