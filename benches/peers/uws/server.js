// uWebSockets (C++, through Node) peer for `cargo xtask bench`; speaks
// ../shared/bench/PROTOCOL.md: `node server.js PORT` (or PORT=...).
//
// Written the way uWebSockets.js documents it: `App().ws(pattern, behavior)` with
// `subscribe`/`publish` pub/sub for /fanout (the library queues per subscriber and sends
// what is queued once per event-loop turn), and plain HttpResponse streaming for SSE.
// WORKERS is ignored: a uWS app runs on Node's single event-loop thread.
'use strict';

const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2] || process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.js PORT (or set PORT)');
  process.exit(2);
}

const ROOM = 'room';
const MAX_PUBLISH_BODY = 64 * 1024;
const sseClients = new Set();
const DATA = Buffer.from('data: ');
const END = Buffer.from('\n\n');

const app = uWS.App();

// COMPRESSION=shared turns permessage-deflate on with uWS's SHARED_COMPRESSOR (one
// compressor for all sockets, no context takeover), the mode our `shared` is measured against;
// COMPRESSION=dedicated uses DEDICATED_COMPRESSOR (a compressor per socket, 32 KiB window).
const COMPRESSION = {
  shared: uWS.SHARED_COMPRESSOR,
  dedicated: uWS.DEDICATED_COMPRESSOR,
}[process.env.COMPRESSION || ''] ?? uWS.DISABLED;
// send and publish compress only when asked (their `compress` argument defaults to false).
const COMPRESS = COMPRESSION !== uWS.DISABLED;

const wsBehavior = {
  compression: COMPRESSION,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0, // no idle timeout, like the other peers
};

app.ws('/echo', {
  ...wsBehavior,
  message: (ws, message, isBinary) => {
    ws.send(message, isBinary, COMPRESS);
  },
});

app.ws('/fanout', {
  ...wsBehavior,
  open: (ws) => {
    ws.subscribe(ROOM);
  },
  message: (ws, message, isBinary) => {
    // app.publish reaches every subscriber, the sender included (ws.publish would skip it).
    app.publish(ROOM, message, isBinary, COMPRESS);
  },
});

app.get('/sse', (res) => {
  res.onAborted(() => {
    sseClients.delete(res);
  });
  res.cork(() => {
    res.writeStatus('200 OK');
    res.writeHeader('Content-Type', 'text/event-stream');
    res.writeHeader('Cache-Control', 'no-cache');
    // A comment line sends the head and opens the (chunked) stream.
    res.write(': ok\n\n');
  });
  sseClients.add(res);
});

app.post('/publish', (res) => {
  const chunks = [];
  let size = 0;
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((chunk, isLast) => {
    // The ArrayBuffer is only valid during this call: copy it.
    const copy = Buffer.from(chunk.slice(0));
    size += copy.length;
    chunks.push(copy);
    if (!isLast || aborted) {
      return;
    }
    const body = Buffer.concat(chunks, size);
    if (size > MAX_PUBLISH_BODY || body.includes(10) || body.includes(13)) {
      res.cork(() => res.writeStatus('400 Bad Request').end());
      return;
    }
    const event = Buffer.concat([DATA, body, END]);
    for (const client of sseClients) {
      client.cork(() => client.write(event));
    }
    res.cork(() => res.writeStatus('204 No Content').end());
  });
});

app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end('not found\n');
});

app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error(`uws: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  console.error(`uws: listening on 127.0.0.1:${port}`);
});
