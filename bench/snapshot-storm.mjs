// Snapshot storm: write latency while many clients subscribe with {snapshot: true} to a large collection at once
// (what a server restart or a network blip causes). Tidings only; not part of run.sh's table.
//   node bench/snapshot-storm.mjs [records=3000] [clients=60]
// Starts the demo server (Release build) on a free loopback port with a fresh data directory; a writer in a
// separate process (so the clients' JSON parsing does not delay it) POSTs every 5 ms during the storm.
import { spawn } from 'node:child_process';
import faye from 'faye';
import { startServer } from '../tests/browser/server.mjs';

const records = Number(process.argv[2] ?? 3000);
const clientCount = Number(process.argv[3] ?? 60);

if (process.argv[2] === 'writer') {
  // Writes until told to stop; only the writes started after "start" are timed.
  const base = process.argv[3];
  const latencies = [];
  let timing = false;
  let stop = false;
  process.stdin.setEncoding('utf8').on('data', (text) => {
    if (text.includes('start')) timing = true;
    if (text.includes('stop')) stop = true;
  });
  while (!stop) {
    const timed = timing;
    const started = performance.now();
    const response = await fetch(`${base}/api/todos`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"during the storm"}',
    });
    await response.text();
    if (timed) latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  console.log(JSON.stringify(latencies));
  process.exit(0);
}

// Limits lifted so that every client gets the whole snapshot (4 MiB queue: up to 2 MiB per snapshot).
const server = await startServer({
  'Tidings:RequestsPerSecond': 1_000_000, 'Tidings:RequestBurst': 1_000_000,
  'Tidings:MaxSnapshotItems': 100_000, 'Bayeux:MaxQueuedBytes': 4 * 1024 * 1024,
});
const clients = [];
try {
  for (let i = 0; i < records; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, records - i) },
      (_, j) => server.rest('POST', '/api/todos', { title: `item ${i + j} `.padEnd(120, 'x') })));
  }

  const writer = spawn(process.execPath, [new URL(import.meta.url).pathname, 'writer', server.base], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  writer.stdout.on('data', (chunk) => { output += chunk; });
  const writerDone = new Promise((resolve) => writer.on('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 500)); // the writer warms up, untimed
  writer.stdin.write('start\n');
  const started = performance.now();
  await Promise.all(Array.from({ length: clientCount }, () => new Promise((resolve, reject) => {
    const client = new faye.Client(`${server.base}/bayeux`);
    client.disable('websocket'); // long-polling: each snapshot is one HTTP response
    client.addExtension({ outgoing(message, callback) {
      if (message.channel === '/meta/subscribe') message.ext = { snapshot: true };
      callback(message);
    } });
    clients.push(client);
    client.subscribe('/api/todos', (data) => { if (data.method === 'SNAPSHOT') resolve(); }).errback(reject);
  })));
  const storm = performance.now() - started;

  writer.stdin.write('stop\n');
  await writerDone;
  const latencies = JSON.parse(output).sort((a, b) => a - b);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(1);
  console.log(`${clientCount} snapshots of ${records} records in ${storm.toFixed(0)} ms; ` +
    `${latencies.length} writes meanwhile: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1).toFixed(1)} ms`);
} finally {
  for (const client of clients) client.disconnect();
  await server.dispose();
}
process.exit(0);
