// Fuzzing /bayeux (long-polling POSTs on one keep-alive connection, WebSocket frames, JSONP GETs) and REST with
// generated hostile inputs from a fixed seed. Every input is invalid by construction (a wrong type, a bad channel,
// a schema violation, a bad If-Match, a body the server must refuse...), so the store must not change at all.
// Asserted over the whole run: the server never crashes, never answers 5xx, a Bayeux `500:` error or WebSocket
// close 1011, never logs an unhandled exception, never desynchronises a keep-alive connection, never reflects an
// unsafe JSONP callback — and every collection's items and seq are the same after the run as before it.
//
// CHAOS_SEED=<n> replays a run; CHAOS_LONG=1 sends 10,000+ inputs instead of 2,000.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { ChaosServer, LONG, SEED, Random, RawHttp, rest, signIn, storeState } from './support.mjs';

const INPUTS = Number(process.env.CHAOS_FUZZ_INPUTS ?? (LONG ? 12_000 : 2_000));

// ---------------------------------------------------------------------------------------------
// Hostile values

const LONE_HIGH = '\\ud800'; // JSON escapes: lone surrogates, written into raw JSON text
const LONE_LOW = '\\udfff';

/** Values of the wrong type (or of absurd size) for any field. */
function wrongValue(random) {
  return random.pick([
    () => null, () => true, () => 0, () => -1, () => 1.5, () => 2 ** 53 + 1, () => '', () => 'x',
    () => [], () => ({}), () => [null], () => ({ a: { b: { c: 1 } } }), () => 'x'.repeat(70_000),
    () => nest(random.int(200) + 40), () => Array.from({ length: 2000 }, (_, i) => i),
    () => '\u0000', () => '\u202e\u200b\ufeff', () => '😀'.repeat(100), () => '../../etc/passwd',
    () => '<script>alert(1)</script>', () => '${7*7}', () => '%00', () => '/meta/handshake',
  ])();
}

function nest(depth) {
  let value = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** Channel names a client must not be able to use as given (or that carry nothing of value). */
function badChannel(random) {
  return random.pick([
    '', '/', '//', 'api/todos', '/api//todos', '/api/todos/', '/a/**/b', '/**/x', '/a/*b', '/a/b*', '/*/**/*',
    '/meta', '/meta/', '/meta/unknown', '/meta/handshake/x', '/service', '/api/todos\u0000', '/api/to\ndos',
    `/${'a'.repeat(5000)}`, '/api/todos?x=1', '/api/todos#x', '/api/%2e%2e/todos', '/ API/todos', 12, null, [],
    {}, '/api/users/*/notes/**/x', '/api/\u202etodos',
  ]);
}

/** A raw JSON fragment (text) for a string field: an escaped lone surrogate, or an ordinary hostile string. */
function hostileStringJson(random) {
  return random.pick([
    `"${LONE_HIGH}"`, `"${LONE_LOW}"`, `"a${LONE_HIGH}b"`, `"${LONE_LOW}${LONE_HIGH}"`,
    JSON.stringify(wrongValue(random)),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Bayeux messages

/** One hostile Bayeux message as raw JSON text. */
function hostileMessage(random, ctx) {
  const clientId = random.pick([ctx.ownClientId, ctx.stolenClientId, 'unknown-client-id', '', 12, null, 'x'.repeat(3000)]);
  const shapes = [
    // handshake with wrong field types
    () => ({ channel: '/meta/handshake', version: random.pick(['1.0', wrongValue(random)]), supportedConnectionTypes: random.pick([['long-polling'], wrongValue(random)]), ext: random.pick([undefined, wrongValue(random), { token: wrongValue(random) }, { token: 'not.a.jwt' }]) }),
    // connect (held at most Bayeux:ConnectTimeout)
    () => ({ channel: '/meta/connect', clientId, connectionType: random.pick(['long-polling', 'websocket', 'carrier-pigeon', wrongValue(random)]), advice: random.pick([{ timeout: 0 }, { timeout: wrongValue(random) }, wrongValue(random)]) }),
    // the ack extension's batch number (the own session asked for acks) of every wrong type
    () => ({ channel: '/meta/connect', clientId: ctx.ownClientId, connectionType: 'long-polling', advice: { timeout: 0 }, ext: { ack: wrongValue(random) } }),
    // subscribe to invalid channels or with invalid catch-up arguments
    () => ({ channel: '/meta/subscribe', clientId, subscription: random.pick([badChannel(random), [badChannel(random), badChannel(random)], wrongValue(random)]) }),
    () => ({ channel: '/meta/subscribe', clientId, subscription: random.pick(['/api/todos', '/api/users/ada/notes', '/api/flows/*/messages']), ext: random.pick([{ since: wrongValue(random) }, { since: -5, epoch: wrongValue(random) }, { snapshot: wrongValue(random) }, wrongValue(random)]) }),
    () => ({ channel: '/meta/unsubscribe', clientId, subscription: random.pick([badChannel(random), wrongValue(random)]) }),
    () => ({ channel: random.pick(['/meta/disconnect', '/meta/unknown', '/meta/']), clientId }),
    // publishes on invalid channels or with hostile data
    () => ({ channel: badChannel(random), clientId, data: wrongValue(random) }),
    () => ({ channel: '/service/echo', clientId, data: wrongValue(random) }),
    // socket writes that must be refused: bad method, bad body, another user's record, schema violations
    () => ({ channel: '/api/todos', clientId, data: random.pick([{ method: wrongValue(random), body: { title: 'x' } }, { method: 'POST', body: badRecord(random) }, { method: 'PUT', body: { id: 'no-such-id', title: 'x' } }, { method: 'DELETE', body: { id: wrongValue(random) } }, { method: random.pick(['PUT', 'DELETE']), body: { id: ctx.todoId, title: 'x' }, version: random.pick([ctx.todoVersion + 5, -1, 'x', [ctx.todoVersion], { v: 1 }]) }, { method: random.pick(['PUT', 'PATCH', 'DELETE']), body: { id: ctx.todoId, title: 5 }, version: wrongValue(random) }, { method: random.pick(['PUT', 'DELETE']), body: { id: ctx.todoId, title: 'x' }, version: random.pick([ctx.todoVersion + 5, -1, String(ctx.todoVersion), [ctx.todoVersion], ctx.todoVersion + 0.5]) }, wrongValue(random)]) }),
    () => ({ channel: '/api/users/bob/notes', clientId: random.pick([ctx.ownClientId, 'unknown']), data: { method: random.pick(['POST', 'PUT', 'DELETE']), body: { id: ctx.bobNoteId, text: 'overwritten' } } }),
    // fields of every wrong type on an otherwise ordinary message
    () => ({ channel: wrongValue(random), clientId, id: wrongValue(random) }),
    () => wrongValue(random),
  ];
  const message = random.pick(shapes)();
  let text = JSON.stringify(message);
  // Lone surrogates cannot come from JSON.stringify: splice them into a string field of the raw text.
  if (text && text.startsWith('{') && random.chance(0.25)) {
    const field = random.pick(['id', 'channel', 'clientId', 'version', 'connectionType']);
    text = `{"${field}":${hostileStringJson(random)},${text.slice(1)}`.replace(/,}$/, '}');
  } else if (text && text.startsWith('{') && random.chance(0.1)) {
    text = `{"channel":"/meta/handshake","channel":"/meta/connect",${text.slice(1)}`.replace(/,}$/, '}'); // duplicate keys
  }
  return text ?? 'null';
}

/** A record body that violates the todos schema or writable list (raw JSON text or a value). */
function badRecord(random) {
  return random.pick([
    {}, { title: 123 }, { title: null }, { title: '' }, { title: 'x'.repeat(501) }, { title: ['a'] }, { title: { a: 1 } },
    { title: 'ok', completed: 'yes' }, { title: 'ok', order: '1' }, { title: 'ok', extra: 1 }, { title: 'ok', order: nest(50) },
    { title: 'ok', user: 'bob' }, [], 'text', 7,
  ]);
}

/** A whole /bayeux request body: a batch of hostile messages, or bytes that are not a batch at all. */
function hostileBayeuxBody(random, ctx) {
  const kind = random.int(10);
  if (kind < 7) {
    const count = 1 + random.int(5);
    return Buffer.from(`[${Array.from({ length: count }, () => hostileMessage(random, ctx)).join(',')}]`, 'utf8');
  }
  return random.pick([
    () => Buffer.from('not json'), () => Buffer.from('{'), () => Buffer.from('[}'), () => Buffer.from(''),
    () => Buffer.from('[]'), () => Buffer.from('{}'), () => Buffer.from('[1,2,3]'), () => Buffer.from('"str"'),
    () => Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    () => Buffer.concat([Buffer.from('[{"channel":"/meta/handshake","version":"1.0","id":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]')]), // invalid UTF-8
    () => Buffer.concat([Buffer.from('[{"channel":"/meta/connect","clientId":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]')]), // UTF-8-encoded surrogate
    () => Buffer.from(`[${Array.from({ length: 150 }, () => '{"channel":"/meta/handshake","version":"1.0"}').join(',')}]`), // over MaxMessagesPerBatch
    () => Buffer.from(`[{"channel":"/x","data":"${'y'.repeat(1_100_000)}"}]`), // over MaxRequestBytes
    () => Buffer.from([0, 1, 2, 3, 255, 254]),
  ])();
}

// ---------------------------------------------------------------------------------------------
// REST requests

const BAD_CONTENT_TYPES = ['text/plain', 'text/plain;;;', 'json', 'application/', 'application/xml',
  'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/json-patch', '*/*', 'application/jsonx'];

/** A hostile REST request: { method, target, headers, body, note }. */
function hostileRest(random, ctx) {
  const todo = `/api/todos/${ctx.todoId}`;
  const shapes = [
    // a valid body with a wrong (or malformed) content type: must be 415, not parsed as JSON
    () => ({ method: random.pick(['POST', 'PUT']), target: random.pick(['/api/todos', todo]), headers: { 'content-type': random.pick(BAD_CONTENT_TYPES) }, body: '{"title":"sneaked in"}', note: 'content type' }),
    // invalid JSON, non-objects, duplicate keys, lone surrogates, invalid UTF-8, 1e400, huge or deep bodies
    () => ({ method: random.pick(['POST', 'PUT', 'PATCH']), target: random.pick(['/api/todos', todo]), headers: { 'content-type': 'application/json' }, body: badJsonBody(random), note: 'body' }),
    // schema violations
    // (an empty object is a valid, empty merge patch: PATCH gets only bodies that are invalid as patches too)
    () => ({ method: random.pick(['POST', 'PUT', 'PATCH']), target: random.pick(['/api/todos', todo]), headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(badRecord(random))), note: 'schema' }),
    // If-Match that must not match the current strong ETag
    () => ({ method: random.pick(['PUT', 'PATCH', 'DELETE']), target: todo, headers: { 'content-type': 'application/json', 'if-match': badIfMatch(random, ctx.todoVersion) }, body: '{"title":"stale write"}', note: 'if-match' }),
    // odd and encoded ids and paths (writes with a body that is invalid anyway, reads, deletes of nothing)
    () => ({ method: random.pick(['GET', 'DELETE', 'PUT']), target: `/api/todos/${oddId(random)}`, headers: { 'content-type': 'application/json' }, body: '{"title":5}', note: 'odd id' }),
    () => ({ method: random.pick(['GET', 'POST', 'DELETE']), target: random.pick(['/api%2Ftodos', '/api/todos%2F', '//api/todos', '/api/todos/..', '/api/users/ada%2Fnotes', '/api/users/%61da/notes', '/API/TODOS/x', '/api/users/bob/notes/../../ada/notes', '/api/todos/%', '/api/todos?since=abc', '/api/todos?since=-1&epoch=%00', '/api/todos?since=99999999999999999999']), headers: { 'content-type': 'application/json' }, body: '{"text":"x"}', note: 'encoded path' }),
    // writes to collections that need another user (anonymous, or as bob on ada's notes)
    () => ({ method: random.pick(['POST', 'PUT', 'DELETE']), target: random.pick(['/api/users/ada/notes', `/api/users/ada/notes/${ctx.adaNoteId}`, '/api/users/ada/tasks', `/api/flows/main/messages/${ctx.flowMessageId}`]), headers: { 'content-type': 'application/json', ...(random.chance(0.5) ? { authorization: `Bearer ${ctx.bobToken}` } : {}) }, body: '{"text":"x","title":"x","content":"x"}', note: 'not allowed' }),
    // broken authorization headers on a body that is invalid anyway
    () => ({ method: 'POST', target: '/api/users/ada/notes', headers: { 'content-type': 'application/json', authorization: random.pick(['Bearer', 'Bearer ', 'Bearer x.y.z', `Bearer ${ctx.adaToken}x`, 'Basic YWRhOmFkYQ==', `Bearer ${'a'.repeat(10000)}`, 'Bearer \u00ff']) }, body: '{"text":"forged"}', note: 'bad auth' }),
    // sorted moves with bad places
    () => ({ method: 'POST', target: `/api/users/ada/tasks/${random.pick([ctx.taskId, oddId(random)])}/move`, headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.adaToken}` }, body: JSON.stringify(random.pick([{}, { before: 'nope' }, { to: 'middle' }, { before: ctx.taskId }, { after: wrongValue(random) }, { to: 'start', before: 'x' }, wrongValue(random)])), note: 'move' }),
  ];
  return random.pick(shapes)();
}

function badJsonBody(random) {
  return random.pick([
    () => Buffer.from('{'), () => Buffer.from('{"title":}'), () => Buffer.from("{'title':'a'}"), () => Buffer.from('{"title":"a",}'),
    () => Buffer.from('{"title":NaN}'), () => Buffer.from('{"title":"a"} {"title":"b"}'), () => Buffer.from('/* c */{"title":"a"'),
    () => Buffer.from('{"title":"a","title":"b"}'), () => Buffer.from('{"title":"a","completed":true,"completed":false}'),
    () => Buffer.from(`{"title":"${LONE_HIGH}"}`), () => Buffer.from(`{"title":"ok${LONE_LOW}"}`), () => Buffer.from(`{"title":"a","${LONE_HIGH}":1}`),
    () => Buffer.concat([Buffer.from('{"title":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    () => Buffer.concat([Buffer.from('{"title":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
    () => Buffer.concat([Buffer.from('{"title":"a'), Buffer.from([0xc3]), Buffer.from('"}')]),
    () => Buffer.from('{"title":"ok","order":1e400}'), () => Buffer.from('{"title":"ok","order":-1e400}'),
    () => Buffer.from(`{"title":"ok","completed":false,"x":"${'p'.repeat(70_000)}"}`),
    () => Buffer.from(`{"title":"ok","order":${'['.repeat(100)}${']'.repeat(100)}}`),
    () => Buffer.from('[]'), () => Buffer.from('null'), () => Buffer.from(''), () => Buffer.from('\ufeff{'),
  ])();
}

function badIfMatch(random, version) {
  return random.pick([`" ${version}"`, `"+${version}"`, `"0${version}"`, `"${version} "`, `W/"${version}"`, `"${version + 1}"`,
    `${version}`, '""', 'garbage', `"${version}`, `"${version + 7}", "x"`, `"${'9'.repeat(40)}"`, `"-${version}"`, `"${version}.0"`]);
}

function oddId(random) {
  return random.pick(['%00', '..', '%2e%2e', 'a%2Fb', '%ED%A0%80', '%FF', '%C0%AF', 'x'.repeat(3000), '%3Cscript%3E', '%F0%9F%98%80',
    '%E2%80%AE', ' ', '%20', 'no-such-id', '00000000-0000-0000-0000-000000000000', '-1', '1e400', '%25', '*', '%2A', '~', 'CON', 'null']);
}

// ---------------------------------------------------------------------------------------------
// Root causes: which known kind of hostile content an input that caused a problem carries (for the summary; a
// problem tagged "other" points at a defect of its own).

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function causes(raw) {
  if (typeof raw === 'string' && /^(content-type|if-match) /.test(raw)) return raw.split(' ')[0];
  const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw), 'utf8');
  const tags = [];
  try { strictUtf8.decode(bytes); } catch { tags.push('invalid UTF-8'); }
  const text = bytes.toString('latin1');
  if (/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/i.test(text)) tags.push('lone surrogate');
  if (/"(\w+)":("[^"]*"|[^,{}\[\]"]*),"\1":/.test(text)) tags.push('duplicate keys');
  if (/\de\d{3}/i.test(text)) tags.push('1e400');
  return tags.length ? tags.join('+') : 'other';
}

// ---------------------------------------------------------------------------------------------
// The run

const JS_IDENTIFIER_PATH = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;

test(`fuzz: ${INPUTS} hostile inputs to /bayeux and REST change nothing and never fail the server (seed ${SEED})`, { timeout: LONG ? 1_800_000 : 240_000 }, async () => {
  const server = await ChaosServer.start();
  try {
    const random = new Random(SEED);
    const ada = await signIn(server, 'ada');
    const bob = await signIn(server, 'bob');

    // Data the inputs aim at.
    const todo = await rest(server, 'POST', '/api/todos', { body: { title: 'seed todo' } });
    for (let i = 0; i < 2; i++) await rest(server, 'POST', '/api/todos', { body: { title: `todo ${i}`, order: i } });
    const adaNote = await rest(server, 'POST', '/api/users/ada/notes', { token: ada.token, body: { text: 'ada private' } });
    const bobNote = await rest(server, 'POST', '/api/users/bob/notes', { token: bob.token, body: { text: 'bob private' } });
    const task = await rest(server, 'POST', '/api/users/ada/tasks', { token: ada.token, body: { title: 'task a' } });
    await rest(server, 'POST', '/api/users/ada/tasks', { token: ada.token, body: { title: 'task b' } });
    const message = await rest(server, 'POST', '/api/flows/main/messages', { token: ada.token, body: { content: 'hello' } });
    for (const created of [todo, adaNote, bobNote, task, message]) assert.equal(created.status, 201, created.text);

    const collections = [['/api/todos'], ['/api/users/ada/notes', ada.token], ['/api/users/bob/notes', bob.token],
      ['/api/users/ada/tasks', ada.token], ['/api/flows/main/messages', ada.token], ['/api/users/ada/shipped', ada.token]];
    const before = await storeState(server, collections);

    const http = new RawHttp(server);
    const handshake = async (token) => {
      const reply = await http.request('POST', '/bayeux', { headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket'], ext: token ? { token, ack: true } : undefined }]) });
      return JSON.parse(reply.body)[0].clientId;
    };
    const ctx = {
      ownClientId: await handshake(ada.token),
      stolenClientId: await handshake(bob.token),
      todoId: todo.json.id, todoVersion: Number(todo.headers.get('etag')?.replaceAll('"', '') ?? todo.json.version ?? 1),
      adaNoteId: adaNote.json.id, bobNoteId: bobNote.json.id, taskId: task.json.id, flowMessageId: message.json.id,
      adaToken: ada.token, bobToken: bob.token,
    };

    const problems = [];
    const shapes = new Map();
    const problem = (index, where, what, input, raw = input) => {
      const cause = causes(raw);
      const key = `${where}: ${what.replace(/, next .*$/, '')} [${cause}]`;
      // Problems of no known kind are each shown: they point at a defect of their own.
      if (cause === 'other' && problems.length >= 40 && problems.length < 80) problems.push(`#${index} ${where}: ${what} [other] — input ${String(raw).slice(0, 2000)}`);
      shapes.set(key, (shapes.get(key) ?? 0) + 1);
      if (problems.length < 40) problems.push(`#${index} ${where}: ${what} [${cause}] — input ${String(cause === 'other' ? raw : input).slice(0, cause === 'other' ? 2000 : 300)}`);
    };
    const checkReplies = (index, where, text, input, raw) => {
      let replies;
      try { replies = JSON.parse(text); } catch { return; }
      for (const reply of Array.isArray(replies) ? replies : [replies]) {
        if (typeof reply?.error === 'string' && reply.error.startsWith('500:')) problem(index, where, `Bayeux error ${reply.error.slice(0, 4)}`, input, raw);
      }
    };

    let ws = null;
    let wsProbe = 0;
    const wsInbox = [];
    const openSocket = async () => {
      ws = new WebSocket(`ws://127.0.0.1:${server.port}/bayeux`);
      ws.closeCode = null;
      ws.on('message', (data) => wsInbox.push(data.toString()));
      ws.on('close', (code) => { ws.closeCode = code; });
      ws.on('error', () => {});
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    };

    const counts = { bayeuxHttp: 0, websocket: 0, jsonp: 0, rest: 0 };
    for (let index = 0; index < INPUTS; index++) {
      const target = random.pick(['bayeuxHttp', 'bayeuxHttp', 'websocket', 'jsonp', 'rest', 'rest', 'rest']);
      counts[target]++;
      if (target === 'bayeuxHttp') {
        const body = hostileBayeuxBody(random, ctx);
        const contentType = random.pick(['application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']);
        const response = await http.request('POST', '/bayeux', { headers: { 'content-type': contentType }, body });
        const input = body.subarray(0, 300).toString('latin1');
        if (response.desync !== undefined) problem(index, 'bayeux http', `keep-alive desync, next bytes ${JSON.stringify(response.desync.slice(0, 80))}`, input, body);
        else if (response.status >= 500) problem(index, 'bayeux http', `HTTP ${response.status}`, input, body);
        else if (response.body) checkReplies(index, 'bayeux http', response.body, input, body);
        // The response must also leave the connection clean: the next request sees its own response.
        const probe = await http.request('GET', '/api/session');
        if (probe.desync !== undefined) problem(index, 'bayeux http', `keep-alive desync, next response began ${JSON.stringify(probe.desync.slice(0, 80))}`, input, body);
      } else if (target === 'websocket') {
        if (!ws || ws.closeCode !== null) await openSocket();
        const frame = random.pick([
          () => ({ data: Buffer.from(`[${hostileMessage(random, ctx)}]`), binary: false }),
          () => ({ data: Buffer.from(hostileMessage(random, ctx)), binary: false }),
          () => ({ data: hostileBayeuxBody(random, ctx), binary: false }),
          () => ({ data: Buffer.from(Array.from({ length: 1 + random.int(64) }, () => random.int(256))), binary: true }),
          () => ({ data: Buffer.from('[{"channel":"/meta/handshake","version":"1.0"}]'), binary: true }),
          () => ({ data: Buffer.from([0x5b, 0xff, 0xfe, 0x5d]), binary: false }), // invalid UTF-8 in a text frame
        ])();
        const input = frame.data.subarray(0, 300).toString('latin1');
        wsInbox.length = 0;
        const probeId = `probe-${++wsProbe}`;
        ws.send(frame.data, { binary: frame.binary });
        // A probe after the frame: its reply (or the close) says the frame has been handled.
        ws.send(JSON.stringify([{ channel: '/meta/disconnect', clientId: 'no-such-client', id: probeId }]));
        const deadline = Date.now() + 10_000;
        while (ws.closeCode === null && !wsInbox.some((text) => text.includes(probeId)) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        if (ws.closeCode === 1011) problem(index, 'websocket', 'close 1011', input, frame.data);
        else if (ws.closeCode === null && Date.now() >= deadline) problem(index, 'websocket', 'no answer within 10 s', input, frame.data);
        for (const text of wsInbox) checkReplies(index, 'websocket', text, input, frame.data);
      } else if (target === 'jsonp') {
        const callback = random.pick(['cb', 'a.b', '__jsonp1__', 'alert(1)//', 'cb;alert(document.cookie)', '</script><script>alert(1)</script>', 'a[0]', 'a-b', '', '1a', 'cb\u2028', 'x'.repeat(500), 'constructor.constructor', 'a.b.', '\u00e9']);
        const message = `[${hostileMessage(random, ctx)}]`;
        const url = `/bayeux?jsonp=${encodeURIComponent(callback)}&message=${encodeURIComponent(message)}`;
        const response = await fetch(`${server.base}${url}`, { headers: { cookie: ada.cookie } });
        const text = await response.text();
        const input = `jsonp=${callback} message=${message}`;
        if (response.status >= 500) problem(index, 'jsonp', `HTTP ${response.status}`, input, message);
        if (callback && !JS_IDENTIFIER_PATH.test(callback) && response.status === 200) problem(index, 'jsonp', 'unsafe callback accepted', input, message);
        if (/"error"\s*:\s*"500:/.test(text)) problem(index, 'jsonp', 'Bayeux error 500:', input, message);
      } else {
        const request = hostileRest(random, ctx);
        request.body ??= 'null';
        if (request.method === 'PATCH' && String(request.body) === '{}') request.method = 'PUT';
        const response = await fetch(`${server.base}${request.target}`, { method: request.method, headers: request.headers, body: request.method === 'GET' ? undefined : request.body });
        await response.arrayBuffer();
        const input = `${request.method} ${request.target.slice(0, 120)} ${JSON.stringify(request.headers).slice(0, 200)} ${Buffer.from(request.body).subarray(0, 200).toString('latin1')}`;
        const rawBody = request.note === 'content type' ? `content-type ${request.headers['content-type']}` : request.note === 'if-match' ? `if-match ${request.headers['if-match']}` : Buffer.from(request.body);
        if (response.status >= 500) problem(index, `rest ${request.note}`, `HTTP ${response.status}`, input, rawBody);
        if (request.method !== 'GET' && response.status >= 200 && response.status < 300) problem(index, `rest ${request.note}`, `accepted with ${response.status}`, input, rawBody);
      }
      if (server.child === null || server.child.exitCode !== null) {
        problem(index, 'process', 'the server exited', '');
        break;
      }
    }
    ws?.terminate();
    http.close();

    const after = await storeState(server, collections);
    const failures = server.failures();
    console.log(`# fuzz inputs: ${JSON.stringify(counts)}; problem shapes: ${JSON.stringify(Object.fromEntries(shapes))}; unhandled-exception log lines: ${failures.length}`);
    console.log(`# store unchanged: ${isDeepStrictEqual(after, before)}`);
    for (const line of problems) console.log(`#   ${line}`);
    assert.deepEqual(problems, [], `seed ${SEED}: ${[...shapes].map(([k, n]) => `${n}× ${k}`).join('; ')}`);
    assert.deepEqual(after, before, 'invalid input changed the store (items or seq)');
    assert.deepEqual(failures.slice(0, 10), [], 'the server logged unhandled exceptions');
  } finally {
    await server.dispose();
  }
});
