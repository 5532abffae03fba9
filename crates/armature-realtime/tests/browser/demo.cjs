// Browser test of the demo page (examples/examples/demo.rs) in headless Chromium, driven by
// playwright-core with the system Chromium.
//
//   node demo.cjs <demo binary> <screenshot path>
//
// Environment: PORT (default 3310), CHROMIUM (default /usr/bin/chromium); playwright-core
// must be resolvable (for instance NODE_PATH=<dir>/node_modules).
//
// Checks: two pages in one room see each other's messages and the member count; a page in
// another room sees none of them; Chromium negotiates permessage-deflate (ws.extensions) and a
// compressed line round-trips; ticker events arrive; after the server is stopped and
// started again, the ticker resumes with Last-Event-ID without a gap or a duplicate
// (including ticks that fell while no server ran). Saves a screenshot of the page.
// Then, with a redis-server of its own on a free port, two demo nodes on PORT+1 and PORT+2
// (REDIS_URL): a page on each, in one room, sees the other's messages (stamped with the
// relaying node) and the cluster-wide member count. Without `redis-server` that part is skipped
// loudly, except under CI=true where it fails.
// Security (a demo node on PORT+3, in memory): a page served from another origin (a second
// local port) cannot open the chat's WebSocket (refused before the upgrade); the demo's own
// page connects; a page that signs in sends its token in Sec-WebSocket-Protocol, the server
// answers "bearer" and the handler sees the user (its lines are marked verified); a page
// sending faster than the documented rate is closed with 1008; signing out closes the
// signed-in page's connection with 1008 "logged out".
"use strict";

const { spawn } = require("node:child_process");
const net = require("node:net");
const path = require("node:path");
const fs = require("node:fs");
const http = require("node:http");
const { chromium } = require("playwright-core");

const [demoBinary, screenshotPath] = process.argv.slice(2);
if (!demoBinary || !screenshotPath) {
  console.error("usage: node demo.cjs <demo binary> <screenshot path>");
  process.exit(2);
}
const PORT = Number(process.env.PORT || 3310);
const BASE = `http://127.0.0.1:${PORT}`;
const TIMEOUT = 30000; // generous: shared, loaded machines
const TICK_MS = 200;

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

function portOpen(port = PORT) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => { socket.destroy(); resolve(true); });
    socket.once("error", () => resolve(false));
  });
}

async function waitFor(predicate, what) {
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// In memory unless `redisUrl` is given (a REDIS_URL of the caller's is ignored).
function startServer(port = PORT, redisUrl = "") {
  const child = spawn(demoBinary, [String(port)], {
    env: { ...process.env, DEMO_TICK_MS: String(TICK_MS), REDIS_URL: redisUrl },
    stdio: ["ignore", "inherit", "inherit"],
  });
  child.exited = new Promise((resolve) => child.once("exit", resolve));
  return child;
}

async function stopServer(child, port = PORT) {
  child.kill("SIGINT"); // graceful: SSE streams end, WebSockets get 1001
  await Promise.race([
    child.exited,
    new Promise((r) => setTimeout(r, TIMEOUT)).then(() => child.kill("SIGKILL")),
  ]);
  await waitFor(async () => !(await portOpen(port)), "the port to close");
}

async function text(page, testId) {
  return (await page.getByTestId(testId).textContent()).trim();
}

async function joinRoom(page, name, room, base = BASE) {
  await page.goto(base + "/");
  await page.getByTestId("name").fill(name);
  await page.getByTestId("room").fill(room);
  await page.getByTestId("join").click();
  await page.getByTestId("text").waitFor({ state: "visible" });
  await waitFor(async () => !(await page.getByTestId("text").isDisabled()), `${name} to join`);
}

async function main() {
  let server = startServer();
  await waitFor(portOpen, "the demo server to listen");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
    const ada = await context.newPage();
    const bob = await context.newPage();
    const eve = await context.newPage();

    // ---- chat ----
    await joinRoom(ada, "Ada", "lobby");
    await joinRoom(bob, "Bob", "lobby");
    await joinRoom(eve, "Eve", "elsewhere");
    await waitFor(async () => (await text(ada, "members")) === "2 online", "Ada to see 2 online");
    check((await text(bob, "members")) === "2 online", "Bob sees 2 online in the lobby");
    check((await text(eve, "members")) === "1 online", "Eve is alone in another room");

    await ada.getByTestId("text").fill("Hello from Ada");
    await ada.getByTestId("send").click();
    await waitFor(async () => (await text(bob, "messages")).includes("Hello from Ada"),
      "Bob to receive Ada's message");
    check((await text(bob, "messages")).includes("AdaHello from Ada"), "Bob sees Ada's message with her name");
    await bob.getByTestId("text").fill("Hi Ada, Bob here");
    await bob.getByTestId("send").click();
    await waitFor(async () => (await text(ada, "messages")).includes("Hi Ada, Bob here"),
      "Ada to receive Bob's reply");
    check(true, "Ada sees Bob's reply");
    // Eve's own message arrives in her room, and nothing from the lobby before or after it.
    await eve.getByTestId("text").fill("Anyone here?");
    await eve.getByTestId("send").click();
    await waitFor(async () => (await text(eve, "messages")).includes("Anyone here?"), "Eve's echo");
    const eveMessages = await text(eve, "messages");
    check(!eveMessages.includes("Ada") && !eveMessages.includes("Bob"),
      "a page in another room sees none of the lobby's messages");
    check(!(await text(ada, "messages")).includes("Anyone here?"), "the lobby does not see Eve's message");
    // permessage-deflate: Chromium offers it on every WebSocket and the demo accepts it
    // (shared mode); a compressed chat line goes out and comes back through the room.
    const deflate = await ada.evaluate(async () => {
      const ws = new WebSocket(`ws://${location.host}/ws/chat/deflate?name=Zip`);
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("no open")); });
      const line = "compress me, ".repeat(36);
      const echoed = new Promise((resolve) => {
        ws.onmessage = (m) => {
          const event = JSON.parse(m.data);
          if (event.type === "message" && event.text === line) resolve(event);
        };
      });
      ws.send(line);
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no echo in 10 s")), 10000));
      const event = await Promise.race([echoed, timeout]);
      const extensions = ws.extensions;
      ws.close(1000);
      return { extensions, name: event.name, length: event.text.length };
    });
    check(deflate.extensions.includes("permessage-deflate"),
      `Chromium negotiated permessage-deflate (ws.extensions: "${deflate.extensions}")`);
    check(deflate.name === "Zip" && deflate.length === 468, "a compressed chat line round-trips through the room");
    await bob.close();
    await waitFor(async () => (await text(ada, "members")) === "1 online", "the count to drop when Bob leaves");
    check(true, "the member count drops to 1 when Bob leaves");

    // ---- typed chat (the client generated from the server's types) ----
    await waitFor(async () => (await text(ada, "typed-status")).includes("here as"), "Ada's typed chat to connect");
    await waitFor(async () => (await text(eve, "typed-status")).includes("here as"), "Eve's typed chat to connect");
    await ada.getByTestId("typed-text").fill("Typed hello");
    await ada.getByTestId("typed-send").click();
    await waitFor(async () => (await text(eve, "typed-messages")).includes("Typed hello"), "Eve to get Ada's typed line");
    await waitFor(async () => (await ada.getByTestId("typed-text").inputValue()) === "", "Ada's chat:sent reply");
    check(true, "a typed message round-trips through the generated client (send, broadcast, ack reply)");
    await ada.getByTestId("typed-text").fill("");
    await ada.getByTestId("typed-send").click();
    await waitFor(async () => (await text(ada, "typed-messages")).includes("validation failed"), "the validation error");
    check(true, "an empty line is refused with a typed validation error");
    await ada.getByTestId("typed-text").fill("Still connected");
    await ada.getByTestId("typed-send").click();
    await waitFor(async () => (await text(eve, "typed-messages")).includes("Still connected"), "a line after the error");
    check(true, "the typed connection survives the refused message");

    // ---- ticker ----
    const ticker = async () => ada.evaluate(() => ({ ...window.armatureDemo.ticker, seqs: window.armatureDemo.seqs.slice() }));
    await waitFor(async () => (await ticker()).received >= 5, "five ticker events");
    check(true, "ticker events arrive");

    const before = await ticker();
    await stopServer(server);
    await waitFor(async () => (await text(ada, "ticker-status")) === "reconnecting", "the page to notice");
    // Ticks keep falling on the clock while no server runs.
    await new Promise((r) => setTimeout(r, 5 * TICK_MS));
    server = startServer();
    await waitFor(portOpen, "the restarted server to listen");
    await waitFor(async () => {
      const t = await ticker();
      return t.reconnects >= 1 && t.received >= before.received + 15;
    }, "the ticker to resume after the restart");
    const after = await ticker();
    check(after.reconnects >= 1, `the page reconnected (${after.reconnects} time(s))`);
    check(after.gaps === 0, `no tick lost across the restart (gaps: ${after.gaps})`);
    check(after.duplicates === 0, `no tick twice (duplicates: ${after.duplicates})`);
    const seqs = after.seqs;
    const consecutive = seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
    check(consecutive, `ticks ${seqs[0]}..${seqs[seqs.length - 1]} arrived in order, none missing`);
    const lastBeforeStop = before.seqs[before.seqs.length - 1];
    check(seqs.includes(lastBeforeStop + 6),
      "ticks that fell while the server was down were delivered after the restart");

    // The chat reconnects by itself too, and the page is fully live again.
    await waitFor(async () => (await text(ada, "members")) === "1 online", "the chat to reconnect");
    check(true, "the chat reconnects to its room after the restart");
    await ada.getByTestId("text").fill("Back after the restart");
    await ada.getByTestId("send").click();
    await waitFor(async () => (await text(ada, "messages")).includes("Back after the restart"),
      "a message after the restart");
    await waitFor(async () => (await text(ada, "rooms")).includes("lobby (1)"), "the rooms list");
    check(true, "messages flow again after the restart");

    fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await ada.screenshot({ path: screenshotPath, fullPage: true });
    check(fs.statSync(screenshotPath).size > 10000, `screenshot saved to ${screenshotPath}`);
  } finally {
    await browser.close();
    await stopServer(server).catch(() => {});
  }
}

// The chat's cross-origin, sign-in, rate-limit and logout checks.
async function security() {
  const port = PORT + 3;
  const base = `http://127.0.0.1:${port}`;
  const server = startServer(port);
  const foreignPort = await freePort();
  // Another origin: the same host, another port, serving a page that tries the chat.
  const foreign = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><title>another origin</title><script>
      window.result = new Promise((resolve) => {
        const ws = new WebSocket("ws://127.0.0.1:${port}/ws/chat/lobby?name=Mallory");
        let opened = false;
        ws.onopen = () => { opened = true; ws.send("hijacked"); };
        ws.onclose = (e) => resolve({ opened, code: e.code });
      });
    </script>`);
  });
  await new Promise((resolve) => foreign.listen(foreignPort, "127.0.0.1", resolve));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    await waitFor(() => portOpen(port), `demo node on ${port} to listen`);
    const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });

    // The demo's own page connects (and will see whatever reaches the lobby).
    const own = await context.newPage();
    await joinRoom(own, "Own", "lobby", base);
    check(true, "the demo's own page opens the chat's WebSocket");

    const evil = await context.newPage();
    await evil.goto(`http://127.0.0.1:${foreignPort}/`);
    const refused = await evil.evaluate(() => window.result);
    check(!refused.opened && refused.code === 1006,
      `a page from another origin (port ${foreignPort}) is refused before the upgrade (opened: ${refused.opened}, close ${refused.code})`);
    check(!(await text(own, "messages")).includes("hijacked"), "nothing from the foreign page reached the room");

    // Sign in: the token goes in Sec-WebSocket-Protocol.
    const zoe = await context.newPage();
    await zoe.goto(base + "/");
    await zoe.getByTestId("name").fill("Zoe");
    await zoe.getByTestId("signin").click();
    await waitFor(async () => (await text(zoe, "auth")).startsWith("Signed in as Zoe"), "Zoe's token");
    await zoe.getByTestId("room").fill("lobby");
    await zoe.getByTestId("join").click();
    await waitFor(async () => (await text(zoe, "auth")).includes("verified by the server"),
      "the server to verify Zoe's token");
    check((await text(zoe, "auth")).includes("(subprotocol bearer)"),
      "a page sending its token in the subprotocol connects; the server answered \"bearer\"");
    await waitFor(async () => !(await zoe.getByTestId("text").isDisabled()), "Zoe to join");
    await zoe.getByTestId("text").fill("Zoe, signed in");
    await zoe.getByTestId("send").click();
    await waitFor(async () => (await text(own, "messages")).includes("Zoe, signed in"), "Zoe's line");
    check((await text(own, "messages")).includes("✔ ZoeZoe, signed in"),
      "the handler sees the user: Zoe's line carries her verified name");

    // Faster than 20 lines a second (bursts of 120): closed with 1008.
    const flood = await own.evaluate((url) => new Promise((resolve) => {
      const ws = new WebSocket(url);
      ws.onopen = () => { for (let i = 0; i < 400; i++) ws.send(`flood ${i}`); };
      ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
    }), `ws://127.0.0.1:${port}/ws/chat/flood?name=Fast`);
    check(flood.code === 1008 && flood.reason === "message rate exceeded",
      `a page sending faster than the documented rate is closed with 1008 (${flood.code} ${flood.reason})`);

    // Sign out: the server closes Zoe's connection with 1008 "logged out".
    await zoe.getByTestId("signout").click();
    await waitFor(async () => (await zoe.getByTestId("chat-status").getAttribute("data-close-code")) === "1008",
      "Zoe's connection to be closed by the logout");
    check((await text(zoe, "chat-status")).includes("logged out"), "signing out closes the user's connection with 1008");
  } finally {
    await browser.close();
    foreign.close();
    await stopServer(server, port).catch(() => {});
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// A redis-server of our own on a free port, or null (loudly) when it cannot start.
async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" });
  const failed = new Promise((resolve) => {
    child.once("error", (e) => resolve(`spawn: ${e.message}`));
    child.once("exit", (code) => resolve(`exited with ${code}`));
  });
  const up = waitFor(() => portOpen(port), "redis-server to listen").then(() => null, (e) => e.message);
  const error = await Promise.race([failed, up]);
  if (error === null) return { child, url: `redis://127.0.0.1:${port}` };
  child.kill("SIGKILL");
  if (process.env.CI === "true") throw new Error(`CI=true and redis-server cannot start: ${error}`);
  console.error(`\n!!!!!!!! SKIPPED the two-node part: redis-server cannot start (${error}) !!!!!!!!\n`);
  return null;
}

// Two demo nodes sharing a room through Redis, a page on each.
async function cluster() {
  const redis = await startRedis();
  if (!redis) return;
  const ports = [PORT + 1, PORT + 2];
  const nodes = ports.map((port) => startServer(port, redis.url));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    for (const port of ports) await waitFor(() => portOpen(port), `demo node on ${port} to listen`);
    const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
    const ada = await context.newPage();
    const bob = await context.newPage();
    await joinRoom(ada, "Ada", "lobby", `http://127.0.0.1:${ports[0]}`);
    await joinRoom(bob, "Bob", "lobby", `http://127.0.0.1:${ports[1]}`);
    for (const page of [ada, bob]) {
      await waitFor(async () => (await text(page, "members")) === "2 online",
        "the cluster-wide member count (2 online) on both nodes");
    }
    check(true, "two nodes: each page counts the members of the room on all nodes");
    const nodeA = (await text(ada, "node")).match(/node (\S+);/)?.[1];
    const nodeB = (await text(bob, "node")).match(/node (\S+);/)?.[1];
    check(nodeA && nodeB && nodeA !== nodeB, `the pages name their nodes (${nodeA}, ${nodeB})`);

    await ada.getByTestId("text").fill("Ada on the first node");
    await ada.getByTestId("send").click();
    await bob.getByTestId("text").fill("Bob on the second node");
    await bob.getByTestId("send").click();
    for (const page of [ada, bob]) {
      await waitFor(async () => {
        const messages = await text(page, "messages");
        return messages.includes("Ada on the first node") && messages.includes("Bob on the second node");
      }, "both messages on both pages");
    }
    for (const page of [ada, bob]) {
      const messages = await text(page, "messages");
      check(messages.includes(`AdaAda on the first nodevia node ${nodeA}`)
        && messages.includes(`BobBob on the second nodevia node ${nodeB}`),
        "both pages see both nodes' messages, each once, stamped with its node");
      check(messages.split("on the first node").length === 2 && messages.split("on the second node").length === 2,
        "no message twice");
    }
  } finally {
    await browser.close();
    for (const [i, node] of nodes.entries()) await stopServer(node, ports[i]).catch(() => {});
    redis.child.kill("SIGKILL");
  }
}

main().then(security).then(cluster).then(
  () => { console.log("browser test passed"); process.exit(0); },
  (err) => { console.error(err); process.exit(1); },
);
