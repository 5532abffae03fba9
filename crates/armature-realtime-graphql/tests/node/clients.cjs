// Real GraphQL clients against the armature-realtime-graphql test server
// (tests/support/mod.rs). Usage: node clients.cjs <mode> <url>
// Prints "OK <case>" per passed case and exits 0; any failure exits 1.
'use strict';

const assert = require('node:assert/strict');
const WebSocket = require('ws');

const [mode, url] = process.argv.slice(2);

function ok(name) {
  console.log(`OK ${name}`);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- graphql-ws
async function graphqlWs() {
  const { createClient } = require('graphql-ws');
  const client = createClient({ url, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });

  // Subscribe, N events in order, completed by the server.
  const values = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      client.subscribe(
        { query: 'subscription { count(to: 100) }' },
        {
          next: (r) => values.push(r.data.count),
          error: reject,
          complete: resolve,
        },
      );
    }),
    10000,
    'count',
  );
  assert.deepEqual(values, [...Array(100).keys()]);
  ok('subscription: 100 events in order, completed by the server');

  // Completed by the client: the iterator's return() sends `complete`.
  const iterator = client.iterate({ query: 'subscription { ticks(ms: 10) }' });
  const seen = [];
  for await (const result of iterator) {
    seen.push(result.data.ticks);
    if (seen.length === 5) break; // return() -> complete
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4]);
  ok('subscription: completed by the client');

  // A resolver error is a result with errors.
  const failed = await client.iterate({ query: '{ fails }' }).next();
  assert.equal(failed.value.errors[0].message, 'this field always fails');
  ok('query: error result');

  // A validation error is an `error` message: the sink's error callback.
  const validation = await withTimeout(
    new Promise((resolve) => {
      client.subscribe(
        { query: '{ nosuchfield }' },
        { next: () => resolve(null), error: resolve, complete: () => {} },
      );
    }),
    5000,
    'validation error',
  );
  assert.ok(Array.isArray(validation), 'errors list');
  assert.match(validation[0].message, /nosuchfield/);
  ok('operation: validation errors through error()');

  // A query and a mutation over the socket.
  const hello = await client.iterate({ query: '{ hello }' }).next();
  assert.deepEqual(hello.value.data, { hello: 'world' });
  const add = await client
    .iterate({ query: 'mutation ($by: Int!) { add(by: $by) }', variables: { by: 3 } })
    .next();
  assert.deepEqual(add.value.data, { add: 3 });
  const value = await client.iterate({ query: '{ value }' }).next();
  assert.deepEqual(value.value.data, { value: 3 });
  ok('query and mutation over the socket');

  // The on-connect payload reaches the resolvers.
  const ada = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { user: 'ada' },
    retryAttempts: 0,
  });
  const who = await ada.iterate({ query: '{ whoami }' }).next();
  assert.deepEqual(who.value.data, { whoami: 'ada' });
  await ada.dispose();

  // A refused connection is fatal for the client (4403).
  const refused = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { token: 'bad' },
    retryAttempts: 0,
  });
  const closed = await withTimeout(
    new Promise((resolve) => {
      refused.subscribe({ query: '{ hello }' }, { next() {}, error: resolve, complete() {} });
    }),
    5000,
    'refusal',
  );
  assert.equal(closed.code, 4403);
  await refused.dispose();
  ok('on-connect: payload reaches resolvers, refusal closes 4403');

  await client.dispose();
}

// Reconnect after a server restart: prints "EVENT <n>" and "CONNECTED <k>" lines for the
// Rust side, which restarts the server once it saw events, and exits after events
// arrive on the second connection.
async function graphqlWsReconnect() {
  const { createClient } = require('graphql-ws');
  let connects = 0;
  let afterReconnect = 0;
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    retryAttempts: 50,
    retryWait: async () => new Promise((r) => setTimeout(r, 100)),
    shouldRetry: () => true,
    on: {
      connected: () => {
        connects += 1;
        console.log(`CONNECTED ${connects}`);
      },
    },
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      client.subscribe(
        { query: 'subscription { ticks(ms: 20) }' },
        {
          next: (r) => {
            console.log(`EVENT ${r.data.ticks}`);
            if (connects >= 2 && ++afterReconnect >= 3) resolve();
          },
          error: reject,
          complete: () => reject(new Error('completed')),
        },
      );
    }),
    20000,
    'events after the restart',
  );
  await client.dispose();
  ok('reconnect after a server restart');
}

// ------------------------------------------------- subscriptions-transport-ws
async function legacy() {
  const { SubscriptionClient } = require('subscriptions-transport-ws');
  const client = new SubscriptionClient(url, { reconnect: false, lazy: false }, WebSocket);

  const values = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      client.request({ query: 'subscription { count(to: 20) }' }).subscribe({
        next: (r) => values.push(r.data.count),
        error: reject,
        complete: resolve,
      });
    }),
    10000,
    'legacy count',
  );
  assert.deepEqual(values, [...Array(20).keys()]);
  ok('legacy: subscription, 20 events in order, complete');

  const hello = await withTimeout(
    new Promise((resolve, reject) => {
      client.request({ query: '{ hello }' }).subscribe({ next: resolve, error: reject });
    }),
    5000,
    'legacy query',
  );
  assert.deepEqual(hello.data, { hello: 'world' });
  ok('legacy: query');

  // Unsubscribe sends `stop`.
  const ticks = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      const sub = client.request({ query: 'subscription { ticks(ms: 10) }' }).subscribe({
        next: (r) => {
          ticks.push(r.data.ticks);
          if (ticks.length === 3) {
            sub.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    }),
    5000,
    'legacy stop',
  );
  assert.deepEqual(ticks, [0, 1, 2]);
  ok('legacy: stop');

  const failed = await withTimeout(
    new Promise((resolve) => {
      client.request({ query: '{ nosuchfield }' }).subscribe({
        next: (r) => resolve(r.errors),
        error: (e) => resolve(Array.isArray(e) ? e : [e]),
      });
    }),
    5000,
    'legacy validation',
  );
  assert.match(failed[0].message, /nosuchfield/);
  ok('legacy: validation errors');
  // Leave time for `stop` to reach the server before the socket goes.
  await new Promise((r) => setTimeout(r, 200));
  client.close();
}

// ---------------------------------------------------------------- graphql-sse
async function sse() {
  const { createClient } = require('graphql-sse');
  const client = createClient({ url, retryAttempts: 0 });

  const values = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      client.subscribe(
        { query: 'subscription { count(to: 30) }' },
        { next: (r) => values.push(r.data.count), error: reject, complete: resolve },
      );
    }),
    10000,
    'sse count',
  );
  assert.deepEqual(values, [...Array(30).keys()]);
  ok('sse: subscription, 30 events in order, complete');

  const greetings = [];
  for await (const r of client.iterate({ query: 'subscription { greetings }' })) {
    greetings.push(r.data.greetings);
  }
  assert.deepEqual(greetings, ['Hi', 'Bonjour', 'Hola']);
  ok('sse: subscription without arguments');

  const hello = await client.iterate({ query: '{ hello }' }).next();
  assert.deepEqual(hello.value.data, { hello: 'world' });
  const add = await client.iterate({ query: 'mutation { add(by: 4) }' }).next();
  assert.deepEqual(add.value.data, { add: 4 });
  ok('sse: query and mutation');

  const failed = await client.iterate({ query: '{ nosuchfield }' }).next();
  assert.match(failed.value.errors[0].message, /nosuchfield/);
  ok('sse: validation errors as a next event');

  const ticks = [];
  for await (const r of client.iterate({ query: 'subscription { ticks(ms: 10) }' })) {
    ticks.push(r.data.ticks);
    if (ticks.length === 4) break; // aborts the request
  }
  assert.deepEqual(ticks, [0, 1, 2, 3]);
  ok('sse: client abort');
  client.dispose();
}

// ---------------------------------------------------------------- guarded (facade)
// A GraphQL path behind the facade's JwtAuth guard (crates/armature-realtime/tests/
// graphql_guards.rs): `url` is ws://host/path; the token is in GRAPHQL_TOKEN. The
// WebSocket carries it in Sec-WebSocket-Protocol after `bearer` (what a browser can do),
// SSE in `Authorization`.
async function guarded() {
  const token = process.env.GRAPHQL_TOKEN;
  const httpUrl = url.replace(/^ws/, 'http');
  const { createClient: wsClient } = require('graphql-ws');
  const { createClient: sseClient } = require('graphql-sse');
  class Bearer extends WebSocket {
    constructor(address, protocols) {
      super(address, [].concat(protocols, 'bearer', token));
    }
  }

  const ws = wsClient({ url, webSocketImpl: Bearer, retryAttempts: 0 });
  const me = await ws.iterate({ query: '{ me user }' }).next();
  assert.deepEqual(me.value.data, { me: 'ada', user: 'ada' });
  const greetings = [];
  for await (const r of ws.iterate({ query: 'subscription { greetings }' })) {
    greetings.push(r.data.greetings);
  }
  assert.deepEqual(greetings, ['hi ada', 'hello ada', 'bye ada']);
  await ws.dispose();
  ok('guarded ws: the guard admitted the token, resolvers see the identity');

  const anonymous = wsClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 });
  const closed = await withTimeout(
    new Promise((resolve) => {
      anonymous.subscribe({ query: '{ me }' }, { next() {}, error: resolve, complete() {} });
    }),
    5000,
    'refusal',
  );
  assert.equal(closed.code, 4401);
  await anonymous.dispose();
  ok('guarded ws: no token, closed with 4401');

  const sse = sseClient({
    url: httpUrl,
    retryAttempts: 0,
    headers: { authorization: `Bearer ${token}` },
  });
  const viaSse = await sse.iterate({ query: '{ me user }' }).next();
  assert.deepEqual(viaSse.value.data, { me: 'ada', user: 'ada' });
  const sseGreetings = [];
  for await (const r of sse.iterate({ query: 'subscription { greetings }' })) {
    sseGreetings.push(r.data.greetings);
  }
  assert.deepEqual(sseGreetings, ['hi ada', 'hello ada', 'bye ada']);
  sse.dispose();
  ok('guarded sse: the guard admitted the token, resolvers see the identity');

  const refusedSse = sseClient({ url: httpUrl, retryAttempts: 0 });
  let refusal;
  try {
    await refusedSse.iterate({ query: '{ me }' }).next();
  } catch (err) {
    refusal = err;
  }
  assert.equal(refusal?.response?.status, 401, String(refusal));
  refusedSse.dispose();
  ok('guarded sse: no token, 401');
}

const modes = {
  'graphql-ws': graphqlWs,
  'graphql-ws-reconnect': graphqlWsReconnect,
  legacy,
  sse,
  guarded,
};
if (!modes[mode]) {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
modes[mode]().then(
  () => process.exit(0),
  (err) => {
    console.error('FAILED', err);
    process.exit(1);
  },
);
