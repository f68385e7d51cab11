// The Tidings admin page: live figures over the app's own Bayeux, on a WebSocket (no polling loop: the server pushes one
// sample a second while this page is subscribed, and stops sampling when nobody watches). Plain ES module, no build step.
const bayeuxPath = document.querySelector('meta[name="tidings-bayeux"]').content;
const CHANNEL = '/tidings/admin/stats';
const KEEP = 300; // samples charted: five minutes at one a second

const $ = (id) => document.getElementById(id);
const series = { sessions: [], subscriptions: [], publishes: [], deliveries: [], queued: [], commit: [] };
let lastSessionFigures = null;

// --- A minimal Bayeux client over one WebSocket: handshake, subscribe, connect after connect (the server holds each
// connect and pushes deliveries meanwhile). Reconnects after the socket closes.
let socket = null;
let clientId = null;
let messageId = 0;

function open() {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  socket = new WebSocket(scheme + location.host + bayeuxPath);
  socket.onopen = handshake;
  socket.onmessage = (event) => { for (const message of JSON.parse(event.data)) receive(message); };
  socket.onclose = () => {
    clientId = null;
    status('disconnected; reconnecting…');
    setTimeout(open, 2000);
  };
}

function send(message) {
  message.id = String(++messageId);
  if (clientId) message.clientId = clientId;
  socket.send(JSON.stringify([message]));
}

function handshake() {
  clientId = null;
  send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] });
}

function receive(message) {
  switch (message.channel) {
    case '/meta/handshake':
      if (!message.successful) return status('handshake refused: ' + message.error);
      clientId = message.clientId;
      send({ channel: '/meta/subscribe', subscription: CHANNEL });
      send({ channel: '/meta/connect', connectionType: 'websocket' });
      return;
    case '/meta/subscribe':
      return message.successful ? status('live', true) : status('refused: ' + message.error);
    case '/meta/connect': {
      const reconnect = message.advice && message.advice.reconnect;
      if (reconnect === 'none') return status('the server asked not to reconnect');
      if (reconnect === 'handshake' || !message.successful) return handshake();
      return send({ channel: '/meta/connect', connectionType: 'websocket' });
    }
    case CHANNEL:
      return onStats(message.data);
    default:
      return undefined;
  }
}

function status(text, live = false) {
  $('status').textContent = text;
  $('status').classList.toggle('live', live);
}

// --- Figures and charts.
function onStats(event) {
  if (event.method === 'HISTORY') {
    for (const key of Object.keys(series)) series[key].length = 0;
    for (const sample of event.history || []) record(sample);
    if (event.history && event.history.length) show(event.history[event.history.length - 1]);
  } else if (event.method === 'SAMPLE') {
    record(event.sample);
    show(event.sample);
  }
  draw();
}

function record(s) {
  const push = (key, value) => {
    series[key].push(value ?? 0);
    if (series[key].length > KEEP) series[key].shift();
  };
  push('sessions', s.sessions.total);
  push('subscriptions', s.subscriptions);
  push('publishes', s.publishesPerSecond);
  push('deliveries', s.deliveriesPerSecond);
  push('queued', s.queuedBytes);
  push('commit', s.store.commitMilliseconds);
}

const number = (value, digits = 0) => (value == null ? '–' : Number(value).toLocaleString(undefined, { maximumFractionDigits: digits }));

function show(s) {
  $('node').textContent = s.node ? 'node ' + s.node : '';
  $('sessions').textContent = number(s.sessions.total);
  $('sessions-split').textContent = `${s.sessions.webSocket} WebSocket · ${s.sessions.longPolling} long-polling`;
  $('subscriptions').textContent = number(s.subscriptions);
  $('channels').textContent = `${s.channels} channels`;
  $('publishes').textContent = number(s.publishesPerSecond, 1);
  $('deliveries').textContent = number(s.deliveriesPerSecond, 1);
  $('queued').textContent = number(s.queuedBytes);
  $('commit').textContent = number(s.store.commitMilliseconds, 2);
  $('commit-writes').textContent = s.store.writesPerCommit == null ? '' : `${number(s.store.writesPerCommit, 1)} writes/commit`;

  const st = s.store;
  const parts = [];
  if (st.commitsPerSecond != null) parts.push(`${number(st.commitsPerSecond, 1)} commits/s`);
  if (st.queuedWrites != null) parts.push(`writes waiting ${st.queuedWrites}${st.writeCapacity ? ' / ' + st.writeCapacity : ''}`);
  if (st.queuedChangeBatches != null) parts.push(`change batches waiting ${st.queuedChangeBatches}${st.changeBufferCapacity ? ' / ' + st.changeBufferCapacity : ''}`);
  if (st.tailLagMilliseconds != null) parts.push(`change tail lag ${number(st.tailLagMilliseconds)} ms`);
  $('store').textContent = parts.join(' · ');

  rows($('logs'), s.changeLogs, (l) => [l.path, number(l.seq), number(l.oldestSeq), number(l.entries)]);
  rows($('jobs'), s.jobs, (j) => [j.queue, j.queued, j.running, j.failed, j.dead, j.succeeded, j.cancelled].map((v) => String(v)));

  // The inspector follows the figures: it reloads when sessions or subscriptions change or a session ended (one may have
  // taken its place), never on a timer.
  const figures = `${s.sessions.total}/${s.sessions.webSocket}/${s.subscriptions}`;
  if (lastSessionFigures !== figures || s.sessions.closed > 0) {
    lastSessionFigures = figures;
    loadSessions();
  }
}

function rows(table, items, cells) {
  const body = table.tBodies[0];
  body.replaceChildren(...(items || []).map((item) => {
    const tr = document.createElement('tr');
    for (const text of cells(item)) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

function draw() {
  for (const [key, values] of Object.entries(series)) {
    const svg = document.querySelector(`figure[data-figure="${key}"] svg`);
    const max = Math.max(1, ...values);
    const points = values.map((v, i) => `${KEEP - values.length + i},${(40 - (v / max) * 38 - 1).toFixed(1)}`).join(' ');
    svg.setAttribute('viewBox', `0 0 ${KEEP} 40`);
    svg.setAttribute('preserveAspectRatio', 'none');
    let line = svg.querySelector('polyline');
    if (!line) {
      line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      svg.append(line);
    }
    line.setAttribute('points', points);
  }
}

// --- Session inspector.
let listing = 0; // the latest listing asked for: an older answer arriving late must not replace a newer one

async function loadSessions() {
  const mine = ++listing;
  const response = await fetch('/tidings/admin/sessions', { credentials: 'same-origin' });
  if (!response.ok || mine !== listing) return;
  const list = await response.json();
  if (mine !== listing) return;
  $('session-count').textContent = list.count > list.sessions.length ? `(${list.sessions.length} of ${list.count})` : `(${list.count})`;
  const body = $('inspector').tBodies[0];
  body.replaceChildren(...list.sessions.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.session = s.id;
    const cells = [s.user ?? '(anonymous)', s.transport, s.address, s.subscriptions.join(' '), number(s.queuedBytes), `${number(s.ageSeconds)} s`];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 3) td.className = 'subs';
      tr.append(td);
    });
    const td = document.createElement('td');
    if (s.id !== clientId) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Disconnect';
      button.addEventListener('click', () => disconnect(s.id));
      td.append(button);
    } else {
      td.textContent = '(this page)';
    }
    tr.append(td);
    return tr;
  }));
}

async function disconnect(id) {
  await fetch(`/tidings/admin/sessions/${encodeURIComponent(id)}/disconnect`, { method: 'POST', credentials: 'same-origin' });
  await loadSessions();
}

$('refresh').addEventListener('click', loadSessions);
open();
