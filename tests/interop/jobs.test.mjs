// Jobs through real clients against the demo server: the sample external worker (samples/workers/echo-worker.mjs, plain
// Node over HTTP) finishes echo jobs with their payload, and the in-process ship worker moves a task from a user's list
// to their "shipped" list in one transaction while a faye subscriber watches the job's states, the task leave and the
// shipped one arrive.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { startServer, FayeAdapter, Inbox, waitFor, withTimeout } from './server.mjs';

const WORKER = fileURLToPath(new URL('../../samples/workers/echo-worker.mjs', import.meta.url));

async function signIn(server, name) {
  const response = await fetch(`${server.base}/api/session`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

async function rest(server, token, method, path, body) {
  const response = await fetch(server.base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

describe('jobs', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });

  it('the sample external worker finishes echo jobs with their payload as the result', async () => {
    const token = await signIn(server, 'ada');
    const payloads = [{ say: 'hello' }, { n: 2, list: [1, 2] }, { nested: { ok: true } }];
    const ids = [];
    for (const payload of payloads) {
      const { status, json } = await rest(server, token, 'POST', '/api/queues/echo/jobs', { payload });
      assert.equal(status, 201);
      assert.equal(json.state, 'queued');
      ids.push(json.id);
    }

    const worker = spawn(process.execPath, [WORKER, '--url', server.base, '--name', 'echo-bot', '--once'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    worker.stdout.on('data', chunk => { output += chunk; });
    worker.stderr.on('data', chunk => { output += chunk; });
    try {
      const code = await withTimeout(new Promise(resolve => worker.on('exit', resolve)), 30_000, 'the echo worker');
      assert.equal(code, 0, output);
    } finally {
      if (worker.exitCode === null) worker.kill('SIGKILL');
    }

    for (const [i, id] of ids.entries()) {
      const { status, json } = await rest(server, token, 'GET', `/api/queues/echo/jobs/${id}`);
      assert.equal(status, 200);
      assert.equal(json.state, 'succeeded', output);
      assert.deepEqual(json.result, payloads[i]);
      assert.equal(json.requestedBy, 'ada');
    }
  });

  it('after a worker dies mid-job and the server is killed with kill -9, every job still finishes once it restarts', { timeout: 120_000 }, async () => {
    const token = await signIn(server, 'cy');
    const ids = [];
    for (let i = 0; i < 12; i++) {
      ids.push((await rest(server, token, 'POST', '/api/queues/echo/jobs', { payload: { i } })).json.id);
    }

    // A worker takes half of them under a 2 s lease and dies without a word (never finishes, never fails).
    const taken = (await rest(server, token, 'POST', '/api/queues/echo/claim', { max: 6, leaseSeconds: 2 })).json.jobs;
    assert.equal(taken.length, 6);

    // The server dies too, at once (SIGKILL: no shutdown, no flush beyond what each commit already made durable).
    const child = server.child;
    child.kill('SIGKILL');
    await child.exitedPromise;
    server.child = null;
    await server.start();

    const worker = spawn(process.execPath, [WORKER, '--url', server.base, '--name', 'echo-bot-2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    worker.stdout.on('data', chunk => { output += chunk; });
    worker.stderr.on('data', chunk => { output += chunk; });
    try {
      await waitFor(async () => {
        const states = await Promise.all(ids.map(async id => (await rest(server, token, 'GET', `/api/queues/echo/jobs/${id}`)).json.state));
        return states.every(state => state === 'succeeded');
      }, { timeout: 60_000, interval: 250, message: 'every job to succeed after the crash' });
    } finally {
      worker.kill('SIGTERM');
    }

    const takenIds = new Set(taken.map(job => job.id));
    for (const [i, id] of ids.entries()) {
      const job = (await rest(server, token, 'GET', `/api/queues/echo/jobs/${id}`)).json;
      assert.deepEqual(job.result, { i }, output);
      assert.equal(job.attempts, takenIds.has(id) ? 2 : 1, `job ${i}: the dead worker's run counts as an attempt`);
    }
  });

  it('shipping a task moves it to the shipped list in one transaction, seen live with the job progress and result', async () => {
    const token = await signIn(server, 'bea');
    const task = (await rest(server, token, 'POST', '/api/users/bea/tasks', { title: 'ship me' })).json;
    const watcher = new FayeAdapter('faye-websocket', server, { token });
    const inbox = new Inbox('bea');
    await watcher.subscribe('/api/queues/ship/jobs', data => inbox.push({ channel: 'jobs', data }));
    await watcher.subscribe('/api/users/bea/tasks', data => inbox.push({ channel: 'tasks', data }));
    await watcher.subscribe('/api/users/bea/shipped', data => inbox.push({ channel: 'shipped', data }));

    const job = (await rest(server, token, 'POST', '/api/queues/ship/jobs', { payload: { task: task.id } })).json;
    assert.equal(job.state, 'queued');
    const finished = await inbox.next(m => m.channel === 'jobs' && m.data.body?.id === job.id && m.data.body.state === 'succeeded', 20_000, 'the ship job to succeed');
    assert.equal(finished.data.body.result.title, 'ship me');

    await inbox.next(m => m.channel === 'tasks' && m.data.method === 'DELETE' && m.data.body.id === task.id, 10_000, 'the task to leave');
    const shipped = await inbox.next(m => m.channel === 'shipped' && m.data.method === 'POST', 10_000, 'the shipped task to arrive');
    assert.equal(shipped.data.body.title, 'ship me');
    assert.equal(shipped.data.body.task, task.id);
    const states = inbox.filter(m => m.channel === 'jobs' && m.data.body?.id === job.id).map(m => m.data.body.state);
    assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), ['queued', 'running', 'succeeded']);
    assert.ok(inbox.filter(m => m.channel === 'jobs').some(m => m.data.body?.progress?.step === 'shipping'));

    // Shipping someone else's task, or one that is gone, fails the job (and never moves anything).
    const again = (await rest(server, token, 'POST', '/api/queues/ship/jobs', { payload: { task: task.id }, maxAttempts: 1 })).json;
    await waitFor(async () => (await rest(server, token, 'GET', `/api/queues/ship/jobs/${again.id}`)).json.state === 'dead',
      { timeout: 20_000, message: 'the second ship job to die' });
    assert.equal((await rest(server, token, 'GET', '/api/users/bea/shipped')).json.items.length, 1);
    await watcher.disconnect();
  });
});
