// Team tasks: a sorted feed (/api/users/{me}/tasks, drag to reorder), a "ship" button that enqueues a job on the
// server's `ship` queue, the job's progress live (/api/queues/ship/jobs) and the shipped list (/api/users/{me}/shipped).
import { createClient } from '/lib/tidings/index.js';

const $ = (id) => document.getElementById(id);
let tidings = null;
let me = null;
let tasks = null;
let jobs = null;
let shipped = null;
let dragged = null;

function showError(error) {
  const fields = error?.errors ? Object.values(error.errors).flat().join(' ') : '';
  $('error').textContent = fields || error?.message || String(error ?? '');
}

function item(text, attrs = {}) {
  const li = document.createElement('li');
  Object.assign(li.dataset, attrs);
  li.append(Object.assign(document.createElement('span'), { className: 'title', textContent: text }));
  return li;
}

function renderTasks() {
  $('tasks').replaceChildren(...tasks.toArray().map((task) => {
    const li = item(task.title, { id: task.id });
    li.draggable = true;
    li.classList.toggle('pending', task.version === undefined);
    li.append(Object.assign(document.createElement('button'), { className: 'ship', textContent: 'Ship', type: 'button' }));
    return li;
  }));
}

function renderJobs() {
  const mine = jobs.toArray().filter((job) => job.requestedBy === me)
    .sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
  $('jobs').replaceChildren(...mine.map((job) => {
    const li = item(job.result?.title ? `shipped "${job.result.title}"` : `ship ${job.payload?.task?.slice(0, 8)}…`, { id: job.id });
    const detail = job.state === 'running' && job.progress?.step ? `${job.state}: ${job.progress.step}` : job.state;
    li.append(Object.assign(document.createElement('span'), { className: `state ${job.state}`, textContent: detail }));
    if (job.error) li.append(Object.assign(document.createElement('span'), { className: 'error', textContent: String(job.error) }));
    return li;
  }));
}

function renderShipped() {
  $('shipped').replaceChildren(...shipped.toArray().map((task) => item(task.title, { id: task.id })));
}

function open(path, render) {
  const collection = tidings.collection(path);
  for (const event of ['reset', 'add', 'change', 'remove']) collection.on(event, render);
  collection.on('error', showError);
  return collection;
}

async function start(name) {
  me = name;
  $('me').textContent = me;
  $('signin').classList.add('hidden');
  $('app').classList.remove('hidden');
  tidings = createClient();
  tasks = open(`/api/users/${encodeURIComponent(me)}/tasks`, renderTasks);
  jobs = open('/api/queues/ship/jobs', renderJobs);
  shipped = open(`/api/users/${encodeURIComponent(me)}/shipped`, renderShipped);
  await Promise.all([tasks.ready, jobs.ready, shipped.ready]);
  document.body.dataset.ready = me;
}

$('signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const response = await fetch('/api/session', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: $('name').value.trim() }),
  });
  const body = await response.json();
  if (!response.ok) { showError(body.detail ?? 'sign-in failed'); return; }
  await start(body.name);
});

$('add').addEventListener('submit', (e) => {
  e.preventDefault();
  const title = $('title').value.trim();
  if (!title) return;
  $('title').value = '';
  tasks.create({ title }).catch(showError);
});

$('tasks').addEventListener('click', async (e) => {
  const li = e.target.closest('li');
  if (!e.target.classList.contains('ship') || !li) return;
  const response = await fetch('/api/queues/ship/jobs', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payload: { task: li.dataset.id } }),
  });
  if (!response.ok) showError((await response.json()).detail);
});

// Drag to reorder: dropping a task on another places it before that one.
$('tasks').addEventListener('dragstart', (e) => { dragged = e.target.closest('li')?.dataset.id ?? null; });
$('tasks').addEventListener('dragover', (e) => {
  e.preventDefault();
  for (const li of $('tasks').children) li.classList.toggle('over', li.contains(e.target));
});
$('tasks').addEventListener('drop', (e) => {
  e.preventDefault();
  const target = e.target.closest('li')?.dataset.id;
  for (const li of $('tasks').children) li.classList.remove('over');
  if (dragged && target && dragged !== target) tasks.move(dragged, { before: target }).catch(showError);
  dragged = null;
});

const session = await (await fetch('/api/session')).json();
if (session.name) await start(session.name);
