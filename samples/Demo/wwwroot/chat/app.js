// Chat flows in plain JavaScript on the framework-free core: one live collection per flow
// (/api/flows/{flow}/messages), messages with tags, a tag filter, sign-in by name (cookie).
import { createClient } from '/lib/tidings/index.js';

const $ = (id) => document.getElementById(id);
const writes = new URLSearchParams(location.search).get('writes') === 'socket' ? 'socket' : 'rest';

let tidings = null;
let messages = null;
let presence = null;
/** Who watches the open flow, from its presence channel: SNAPSHOT, then JOIN and LEAVE. */
const present = new Set();
let filterTag = null;
let me = null;

async function session(method, body) {
  const response = await fetch('/api/session', {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return response.status === 204 ? {} : response.json();
}

function showError(error) {
  const fields = error?.errors ? Object.values(error.errors).flat().join(' ') : '';
  $('error').textContent = fields || error?.message || String(error ?? '');
}

// ---------------------------------------------------------------------------------------------
// Rendering: each collection event touches one <li>.

const byTime = (a, b) => String(a.createdAt ?? '\uffff').localeCompare(String(b.createdAt ?? '\uffff'));

function row(message) {
  const li = document.createElement('li');
  li.dataset.id = message.id;
  fill(li, message);
  return li;
}

function fill(li, message) {
  li.replaceChildren();
  const user = Object.assign(document.createElement('span'), { className: 'user', textContent: message.user ?? me });
  const content = Object.assign(document.createElement('span'), { className: 'content', textContent: message.content });
  li.append(user, content);
  for (const tag of message.tags ?? []) {
    li.append(Object.assign(document.createElement('button'), { className: 'tag', textContent: tag, type: 'button' }));
  }
  if (message.createdAt) {
    const time = new Date(message.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    li.append(Object.assign(document.createElement('span'), { className: 'time', textContent: time }));
  }
  if ((message.user ?? me) === me) {
    li.append(Object.assign(document.createElement('button'), { className: 'delete', textContent: '×', title: 'delete', type: 'button' }));
  }
  // Not yet confirmed by the server: no version.
  li.classList.toggle('pending', message.version === undefined);
  li.classList.toggle('hidden', filterTag !== null && !(message.tags ?? []).includes(filterTag));
}

function place(li, message) {
  // Keep the list in createdAt order; unconfirmed messages (no createdAt yet) stay at the end.
  const list = $('messages');
  for (const other of list.children) {
    const record = messages.get(other.dataset.id);
    if (record && other !== li && byTime(message, record) < 0) {
      list.insertBefore(li, other);
      return;
    }
  }
  list.append(li);
}

function renderAll() {
  const list = $('messages');
  list.replaceChildren(...messages.toArray().map(row));
  renderTags();
}

function renderTags() {
  const tags = new Set();
  for (const message of messages.items.values()) for (const tag of message.tags ?? []) tags.add(tag);
  $('tag-list').replaceChildren(...[...tags].sort().map((tag) => Object.assign(document.createElement('button'), {
    className: `tag${tag === filterTag ? ' active' : ''}`, textContent: tag, type: 'button',
  })));
  $('clear-filter').hidden = filterTag === null;
}

function setFilter(tag) {
  filterTag = tag;
  for (const li of $('messages').children) {
    const message = messages.get(li.dataset.id);
    li.classList.toggle('hidden', tag !== null && !(message?.tags ?? []).includes(tag));
  }
  renderTags();
}

// ---------------------------------------------------------------------------------------------
// The live collection

function openFlow(flow) {
  messages?.close();
  filterTag = null;
  $('flow-name').textContent = flow;
  $('flow').value = flow;
  messages = tidings.collection(`/api/flows/${encodeURIComponent(flow)}/messages`, { comparator: byTime });
  messages.on('reset', renderAll);
  messages.on('add', (message) => {
    const li = row(message);
    place(li, message);
    renderTags();
  });
  messages.on('change', (message) => {
    const li = $('messages').querySelector(`li[data-id="${CSS.escape(message.id)}"]`);
    if (!li) return;
    fill(li, message);
    place(li, message);
    renderTags();
  });
  messages.on('remove', (message) => {
    $('messages').querySelector(`li[data-id="${CSS.escape(message.id)}"]`)?.remove();
    renderTags();
  });
  messages.on('error', showError);
  if (messages.loaded) renderAll();
  messages.ready.then(() => { document.body.dataset.ready = flow; });
  watchPresence(`/api/flows/${encodeURIComponent(flow)}/messages`);
}

/** Shows who is in the flow: /tidings/presence + the flow's path says who watches it, live. */
function watchPresence(path) {
  presence?.cancel();
  present.clear();
  renderPresent();
  presence = tidings.faye.subscribe(`/tidings/presence${path}`, (event) => {
    if (event.method === 'SNAPSHOT') {
      present.clear();
      for (const user of event.users) present.add(user.name);
    } else if (event.method === 'JOIN') {
      present.add(event.user);
    } else if (event.method === 'LEAVE') {
      present.delete(event.user);
    }
    renderPresent();
  });
}

function renderPresent() {
  const list = $('present');
  list.replaceChildren(...[...present].sort().map((name) => {
    const span = document.createElement('span');
    span.className = 'who';
    span.textContent = name;
    return span;
  }));
}

function start(name) {
  me = name;
  $('me').textContent = name;
  $('sign-in').hidden = true;
  $('chat').hidden = false;
  // The Bayeux session takes its user at handshake, from the sign-in cookie: connect after sign-in.
  tidings = createClient({ writes });
  const status = $('status');
  const show = (online) => {
    status.textContent = online ? `live (${writes})` : 'offline — messages will be sent';
    status.classList.toggle('offline', !online);
  };
  show(true);
  tidings.on('up', () => show(true));
  tidings.on('down', () => show(false));
  openFlow(decodeURIComponent(location.hash.slice(1)) || 'main');
  $('content').focus();
}

// ---------------------------------------------------------------------------------------------
// Wiring

$('sign-in').addEventListener('submit', async (e) => {
  e.preventDefault();
  const reply = await session('POST', { name: $('name').value.trim() });
  if (reply.name) start(reply.name);
  else showError(reply.detail ?? 'sign-in failed');
});

$('sign-out').addEventListener('click', async () => {
  await session('DELETE');
  location.reload();
});

$('flow-form').addEventListener('submit', (e) => {
  e.preventDefault();
  location.hash = encodeURIComponent($('flow').value.trim());
});

window.addEventListener('hashchange', () => {
  if (tidings) openFlow(decodeURIComponent(location.hash.slice(1)) || 'main');
});

$('compose').addEventListener('submit', (e) => {
  e.preventDefault();
  const content = $('content').value.trim();
  if (!content) return;
  const tags = $('tags').value.split(',').map((t) => t.trim()).filter(Boolean);
  $('error').textContent = '';
  messages.create(tags.length ? { content, tags } : { content });
  $('content').value = '';
});

$('messages').addEventListener('click', (e) => {
  const li = e.target.closest('li');
  if (e.target.classList.contains('tag')) setFilter(e.target.textContent);
  else if (e.target.classList.contains('delete') && li) messages.remove(li.dataset.id);
});

$('tag-list').addEventListener('click', (e) => {
  if (e.target.classList.contains('tag')) setFilter(e.target.textContent === filterTag ? null : e.target.textContent);
});

$('clear-filter').addEventListener('click', () => setFilter(null));

const current = await session('GET');
if (current.name) start(current.name);
else $('sign-in').hidden = false;
