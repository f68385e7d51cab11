// The Backbone adapter in Node (Backbone runs without a DOM for models and collections): an app's
// plain Backbone.Model in a LiveCollection saves through the live core, and remote changes arrive as
// ordinary add/change/remove events — each record once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import faye from 'faye';
import Backbone from 'backbone';

import { createClient } from '../../clients/js/src/index.js';
import { liveBackbone } from '../../clients/js/src/backbone.js';
import { startServer, waitFor, withTimeout, closeFaye } from './server.mjs';

describe('Backbone LiveCollection', { timeout: 60_000 }, () => {
  let server;
  let tidings;

  before(async () => {
    server = await startServer();
    tidings = createClient({ url: server.base, faye: new faye.Client(`${server.base}/bayeux`, { retry: 0.3 }), retry: 0.3 });
  });
  after(async () => {
    tidings?.close();
    if (tidings) await closeFaye(tidings.faye); // before the server stops, or faye retries forever
    await server?.dispose();
  });

  it('works for an existing app by changing the base class, with ordinary events for remote changes', async () => {
    const { LiveCollection } = liveBackbone(Backbone, { client: tidings });
    const Todo = Backbone.Model.extend({ defaults: { completed: false } }); // the app's own model, unchanged
    const Todos = LiveCollection.extend({ url: '/api/todos', model: Todo, comparator: 'order' });
    const todos = new Todos();
    const events = [];
    todos.on('add remove', (model, _collection, options) => events.push([model.get('title'), options?.live === true]));
    todos.on('change', (model, options) => events.push([model.get('title'), options?.live === true]));

    const existing = (await server.rest('POST', '/api/todos', { title: 'already there', order: 0 })).body;
    await todos.fetch({ reset: true });
    assert.deepEqual(todos.pluck('title'), ['already there']);

    // Local create: shown at once, saved with a client UUID, never duplicated by its own event.
    const model = todos.create({ title: 'mine', order: 1 });
    assert.equal(todos.length, 2);
    assert.ok(model.id, 'the id is assigned before the write');
    await waitFor(() => model.get('version') === 1, { message: 'the server record' });
    await waitFor(() => todos.live.seq === 2, { message: 'the event' });
    assert.equal(todos.where({ title: 'mine' }).length, 1);

    // Local save: only the changed field is sent; local destroy.
    await model.save({ completed: true });
    await waitFor(() => model.get('version') === 2);
    assert.equal((await server.rest('GET', `/api/todos/${model.id}`)).body.completed, true);

    // Remote changes: add, change, remove — flagged live.
    events.length = 0;
    const remote = (await server.rest('POST', '/api/todos', { title: 'theirs', order: 2 })).body;
    await server.rest('PATCH', `/api/todos/${existing.id}`, { title: 'renamed remotely' });
    await server.rest('DELETE', `/api/todos/${model.id}`);
    await waitFor(() => todos.length === 2 && todos.get(existing.id)?.get('title') === 'renamed remotely', { message: 'remote changes' });
    assert.deepEqual(todos.pluck('title'), ['renamed remotely', 'theirs']);
    assert.deepEqual(events.filter(([, live]) => live).map(([t]) => t).sort(), ['mine', 'renamed remotely', 'theirs']);
    assert.equal(todos.get(remote.id).get('version'), 1);

    // A refused save rolls the model back and reports the field.
    const theirs = todos.get(remote.id);
    const failure = await new Promise((resolve) => theirs.save({ title: '' }, { error: (_m, error) => resolve(error) }));
    assert.equal(failure.status, 422);
    await waitFor(() => theirs.get('title') === 'theirs', { message: 'the rollback' });

    await theirs.destroy();
    assert.equal(todos.get(remote.id), undefined);
    await waitFor(async () => (await server.state('/api/todos')).items.size === 1);
    todos.closeLive();
  });

  it('fetch fails like Backbone fetches do when the subscribe is refused, and later fetches and resets work', async () => {
    const token = await server.signIn('ada');
    const ada = createClient({ url: server.base, faye: new faye.Client(`${server.base}/bayeux`, { retry: 0.3 }), retry: 0.3, token });
    try {
      const { LiveCollection } = liveBackbone(Backbone, { client: ada });
      // Only {user} may list their notes: ada's subscribe to bob's is refused (403).
      const Notes = LiveCollection.extend({ url() { return `/api/users/${this.owner}/notes`; } });
      const notes = new Notes();
      notes.owner = 'bob';
      const errorEvents = [];
      notes.on('error', (collection, error) => errorEvents.push([collection, error]));
      let callbackError;
      const refused = notes.fetch({ error: (collection, error) => { callbackError = [collection, error]; } });
      const error = await withTimeout(refused.then(() => null, (e) => e), 15_000, 'the refused fetch to settle');
      assert.equal(error?.status, 403, String(error));
      assert.equal(error.operation, 'subscribe');
      assert.deepEqual(callbackError, [notes, error], 'options.error(collection, error)');
      assert.deepEqual(errorEvents, [[notes, error]], "an 'error' event");
      assert.equal(notes.live, null, 'the refused core is let go');

      const mine = await server.rest('POST', '/api/users/ada/notes', { text: 'mine' }, { authorization: `Bearer ${token}` });
      assert.equal(mine.status, 201);
      notes.owner = 'ada';
      await withTimeout(notes.fetch({ reset: true }), 15_000, 'a later fetch');
      assert.deepEqual(notes.pluck('text'), ['mine']);
      assert.equal(errorEvents.length, 1);

      // A later reset of the live core is applied, not dropped as if a fetch were still under way.
      notes.remove(mine.body.id); // local only: nothing is sent
      assert.equal(notes.length, 0);
      notes.live.reload();
      await waitFor(() => notes.get(mine.body.id)?.get('text') === 'mine', { message: 'the reload to be applied' });
      notes.closeLive();
    } finally {
      ada.close();
      await closeFaye(ada.faye);
    }
  });
});
