// The npm `ws` client with `perMessageDeflate` against our server (run by
// tests/node_deflate.rs): `node deflate_client.cjs ws://127.0.0.1:PORT MODE`, MODE being
// the server's `shared` or `dedicated`. Prints "ok ..." per check and "node deflate ok"
// at the end; exits 1 on the first mismatch.
'use strict';

const WebSocket = require('ws');

const [base, mode] = process.argv.slice(2);

function fail(what, got, want) {
  console.log(`FAIL ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  process.exit(1);
}

function check(what, got, want) {
  if (got !== want) fail(what, got, want);
  console.log(`ok   ${what}`);
}

// Opens `path`; resolves with the socket and the server's Sec-WebSocket-Extensions.
function open(path, perMessageDeflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, { perMessageDeflate });
    // Messages are queued from the start: one can arrive with the 101, before `open`'s
    // caller gets to listen.
    ws.inbox = [];
    ws.waiters = [];
    ws.on('message', (data, isBinary) => {
      const message = isBinary ? data : data.toString();
      const waiter = ws.waiters.shift();
      if (waiter) waiter(message);
      else ws.inbox.push(message);
    });
    let header = '';
    ws.on('upgrade', (res) => {
      header = res.headers['sec-websocket-extensions'] || '';
    });
    ws.once('open', () => resolve({ ws, header }));
    ws.once('error', reject);
  });
}

// The next message, as a string for text and a Buffer for binary.
function next(ws) {
  if (ws.inbox.length > 0) return Promise.resolve(ws.inbox.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message within 10 s')), 10000);
    ws.waiters.push((message) => {
      clearTimeout(timer);
      resolve(message);
    });
  });
}

async function echo() {
  // threshold 0: the client compresses every message it sends, small ones included.
  const { ws, header } = await open('/echo', { threshold: 0 });
  console.log(`extensions: ${header}`);
  check('permessage-deflate negotiated', header.startsWith('permessage-deflate'), true);
  // ws.extensions is the agreed header, as in a browser; the parsed parameters are the
  // extension object's.
  check('ws.extensions has it', ws.extensions.startsWith('permessage-deflate'), true);
  const params = ws._extensions['permessage-deflate'].params;
  check(
    'server_no_context_takeover as the mode says',
    params.server_no_context_takeover === true,
    mode === 'shared',
  );
  for (let i = 0; i < 50; i++) {
    const doc = JSON.stringify({ seq: i, user: 'ada', text: 'hello '.repeat(40) });
    ws.send(doc);
    const got = await next(ws);
    if (got !== doc) fail(`json echo ${i}`, got, doc);
  }
  console.log('ok   50 json echoes');
  // On the wire, both ways: 200 KB of repetitive JSON must take far fewer bytes.
  const big = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ id: i, kind: 'tick', v: i % 7 })));
  const read0 = ws._socket.bytesRead;
  const written0 = ws._socket.bytesWritten;
  ws.send(big);
  check('large json echo', await next(ws), big);
  const read = ws._socket.bytesRead - read0;
  const written = ws._socket.bytesWritten - written0;
  console.log(`large json: ${big.length} bytes, ${written} written, ${read} read`);
  check('the server sent it compressed', read < big.length / 4, true);
  check('the client sent it compressed', written < big.length / 4, true);
  const data = Buffer.alloc(16384, 0).map((_, i) => i % 251);
  ws.send(data);
  check('binary echo', Buffer.compare(await next(ws), data), 0);
  ws.send('hi');
  check('small text echo', await next(ws), 'hi');
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(4002, 'done');
  check('close code echoed', await closed, 4002);
}

async function room() {
  // Two compressing members and one that declines: one broadcast reaches all three.
  const members = [];
  for (const deflate of [{}, {}, false]) {
    const m = await open('/room/node-deflate', deflate);
    await next(m.ws); // "joined ID"
    members.push(m);
  }
  check('a member without deflate negotiated none', members[2].header, '');
  const text = JSON.stringify({ event: 'tick', payload: 'abc'.repeat(300) });
  const got = members.map((m) => next(m.ws));
  const reads = members.map((m) => m.ws._socket.bytesRead);
  members[0].ws.send(text);
  const all = await Promise.all(got);
  all.forEach((t, i) => check(`room member ${i} got the broadcast`, t, text));
  const wire = members.map((m, i) => m.ws._socket.bytesRead - reads[i]);
  console.log(`room broadcast: ${text.length} bytes, read per member ${wire.join(', ')}`);
  check('compressing members read it compressed', wire[0] < text.length / 4 && wire[1] < text.length / 4, true);
  check('the plain member read it plain', wire[2] > text.length, true);
  for (const m of members) m.ws.close(1000);
}

(async () => {
  await echo();
  await room();
  console.log('node deflate ok');
})().catch((e) => {
  console.log(`FAIL ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
