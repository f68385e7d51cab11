// 5. Server restart mid-session: every client is told its session is gone (401 + handshake advice),
// re-handshakes, re-subscribes (faye by itself, cometd from its /meta/handshake listener as the CometD
// docs recommend) and receives what is published after the restart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, connectClient, disconnectAll, CLIENT_KINDS, RawClient, FayeAdapter, CometdAdapter, withTimeout, quietPeriod } from './server.mjs';

const CHANNEL = '/restart/news';

describe('server restart', () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startServer({ ConnectTimeout: '00:00:05', SessionGrace: '00:00:05' });
  });

  after(async () => {
    await disconnectAll(clients);
    await server?.dispose();
  });

  it('faye and cometd clients on every transport re-handshake, re-subscribe and receive after a restart', async () => {
    const entries = [];
    for (const kind of CLIENT_KINDS) {
      let client;
      if (kind.startsWith('faye')) {
        client = new FayeAdapter(kind, server);
        await client.connect();
        await client.subscribe(CHANNEL);
      } else {
        client = new CometdAdapter(kind, server);
        const { cometd } = client;
        // The CometD way: (re-)subscribe whenever a handshake succeeds.
        cometd.addListener('/meta/handshake', (reply) => {
          if (reply.successful) cometd.batch(() => cometd.subscribe(CHANNEL, () => {}));
        });
        await client.connect();
        await client.replies.next((m) => m.channel === '/meta/subscribe' && m.subscription === CHANNEL && m.successful, 5000, 'first subscribe');
      }
      clients.push(client);
      entries.push({ kind, client, firstId: client.clientId });
    }

    // Before the restart everybody receives.
    const before = new RawClient(server);
    await before.handshake();
    assert.equal((await before.publish(CHANNEL, { phase: 'before' })).successful, true);
    for (const { client, kind } of entries) {
      await client.deliveries.next((m) => m.data.phase === 'before', 5000, `${kind}: message before restart`);
    }
    const repliesBefore = new Map(entries.map(({ client }) => [client, client.replies.items.length]));

    await server.restart(); // same port, all sessions gone

    for (const { client, kind, firstId } of entries) {
      const since = repliesBefore.get(client);
      const after = (m, i) => client.replies.items.indexOf(m) >= since;
      // The old session is unknown: a connect answered 401 with handshake advice…
      const refused = await client.replies.next(
        (m) => after(m) && m.channel === '/meta/connect' && m.successful === false, 20_000, `${kind}: 401 on connect after restart`);
      assert.match(refused.error, /^401:/, `${kind}: ${JSON.stringify(refused)}`);
      assert.equal(refused.advice?.reconnect, 'handshake', `${kind}: ${JSON.stringify(refused)}`);
      // …then a new handshake and a new subscription.
      const handshake = await client.replies.next(
        (m) => after(m) && m.channel === '/meta/handshake' && m.successful, 20_000, `${kind}: re-handshake`);
      assert.notEqual(handshake.clientId, firstId, `${kind}: a new clientId after restart`);
      await client.replies.next(
        (m) => after(m) && m.channel === '/meta/subscribe' && m.successful && [].concat(m.subscription).includes(CHANNEL),
        20_000, `${kind}: re-subscribe`);
      assert.equal(client.clientId, handshake.clientId);
    }

    const publisher = new RawClient(server);
    await publisher.handshake();
    assert.equal((await publisher.publish(CHANNEL, { phase: 'after' })).successful, true);
    for (const { client, kind } of entries) {
      const message = await client.deliveries.next((m) => m.data.phase === 'after', 10_000, `${kind}: message after restart`);
      assert.deepEqual(message, { channel: CHANNEL, data: { phase: 'after' } });
      assert.equal(client.deliveries.filter((m) => m.data.phase === 'after').length, 1, `${kind}: exactly one copy`);
    }
  });

  it('a raw session from before the restart gets 401 with reconnect "handshake" on every meta message', async () => {
    const raw = new RawClient(server);
    await raw.handshake();
    assert.equal((await raw.subscribe('/restart/raw')).successful, true);
    await withTimeout(server.restart(), 30_000, 'restart');
    for (const reply of [
      (await raw.connect({ timeout: 0 })).reply,
      await raw.subscribe('/restart/raw'),
      await raw.publish('/restart/raw', { x: 1 }),
    ]) {
      assert.equal(reply.successful, false, JSON.stringify(reply));
      assert.match(reply.error, /^401:/);
      assert.equal(reply.advice?.reconnect, 'handshake');
    }
  });

  it('SIGTERM with live clients: held connects are answered, websockets closed, and the process exits promptly', async () => {
    const live = [];
    for (const kind of ['faye-websocket', 'cometd-websocket', 'cometd-long-polling']) live.push(await connectClient(kind, server));
    clients.push(...live);
    const raw = new RawClient(server);
    await raw.handshake();
    const held = raw.connect().then((result) => ({ result }), (error) => ({ error }));
    await quietPeriod(300); // (only to let the connect reach the server and be held)
    const { ms, forced } = await server.stop({ killAfter: 10_000 });
    const outcome = await withTimeout(held, 5000, 'the held connect to end');
    await server.start(); // for the after hook and any later test
    assert.equal(forced, false, `the server needed SIGKILL: still running ${ms} ms after SIGTERM`);
    assert.ok(ms < 5000, `exited ${ms} ms after SIGTERM`);
    assert.ok(outcome.result, `the held connect was answered, not dropped (${outcome.error?.cause?.code ?? outcome.error?.message})`);
  });
});
