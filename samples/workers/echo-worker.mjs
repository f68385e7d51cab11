// A worker for the demo's `echo` queue in plain Node (no Tidings code, HTTP only): it signs in, claims jobs, and
// finishes each with its payload as the result. Any language can work a Tidings queue this way.
//
//   node samples/workers/echo-worker.mjs --url http://127.0.0.1:5080 --name echo-bot [--once]
//
// Claims up to 10 jobs under a 30 s lease; when there is nothing to do it waits a little longer each time (up to 2 s).
// A production worker would also heartbeat long jobs and listen on /api/queues/echo/available to wake at once.

const args = Object.fromEntries(process.argv.slice(2).join(' ').split('--').filter(Boolean)
  .map(a => a.trim().split(/\s+/)).map(([k, v]) => [k, v ?? true]));
const url = args.url ?? 'http://127.0.0.1:5080';
const name = args.name ?? 'echo-bot';

async function call(path, body, token) {
  const response = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw Object.assign(new Error(`${path}: ${response.status} ${text}`), { status: response.status });
  return text ? JSON.parse(text) : null;
}

const { token } = await call('/api/session', { name });
console.log(`echo worker signed in as ${name}`);
let idle = 100;
let stopping = false;
process.on('SIGTERM', () => { stopping = true; });
process.on('SIGINT', () => { stopping = true; });

while (!stopping) {
  let jobs = [];
  try {
    ({ jobs } = await call('/api/queues/echo/claim', { max: 10, leaseSeconds: 30 }, token));
  } catch (error) {
    console.error(`claim failed: ${error.message}`);
  }

  for (const job of jobs) {
    try {
      await call(`/api/queues/echo/jobs/${job.id}/finish`, { lease: job.lease, result: job.payload }, token);
      console.log(`finished ${job.id}`);
    } catch (error) {
      // 409: the lease is no longer ours (cancelled, or it ran out and another worker has the job).
      console.error(`finish ${job.id} failed: ${error.message}`);
    }
  }

  if (args.once && jobs.length === 0) break;
  idle = jobs.length > 0 ? 100 : Math.min(idle * 2, 2000);
  if (jobs.length === 0) await new Promise(resolve => setTimeout(resolve, idle));
}
