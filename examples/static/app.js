// The demo page: chat over WebSocket, ticker over Server-Sent Events. Plain JavaScript.
"use strict";

const $ = (id) => document.getElementById(id);

// ---- chat -------------------------------------------------------------------------

let socket = null;
// The sign-in token (a JWT from /api/token), sent in Sec-WebSocket-Protocol.
let token = null;
let tokenUser = null;

async function signIn() {
  const name = $("name").value.trim();
  if (!name) { $("auth").textContent = "Type a name first, then sign in."; return; }
  try {
    const res = await fetch(`/api/token?name=${encodeURIComponent(name)}`);
    if (!res.ok) throw new Error(`${res.status}`);
    const body = await res.json();
    token = body.token;
    tokenUser = body.user;
    $("auth").textContent = `Signed in as ${tokenUser}; token valid ${Math.round(body.expires_in / 60)} min. Join a room to use it.`;
    $("signout").hidden = false;
  } catch (e) {
    $("auth").textContent = `Sign-in failed (${e.message}).`;
  }
}

async function signOut() {
  if (!token) return;
  const res = await fetch("/api/logout", { headers: { Authorization: `Bearer ${token}` } });
  token = null;
  tokenUser = null;
  $("signout").hidden = true;
  $("auth").textContent = res.ok ? "Signed out: the server closed every chat connection of that user." : "Sign-out failed.";
}

function addLine(text, cls) {
  const li = document.createElement("li");
  if (cls) li.className = cls;
  li.textContent = text;
  appendMessage(li);
}

function appendMessage(li) {
  const list = $("messages");
  list.appendChild(li);
  while (list.children.length > 200) list.removeChild(list.firstChild);
  list.scrollTop = list.scrollHeight;
}

function setChatEnabled(on) {
  $("text").disabled = !on;
  $("send").disabled = !on;
}

function join(event) {
  event.preventDefault();
  const name = $("name").value.trim() || "anonymous";
  const room = $("room").value.trim() || "lobby";
  $("messages").replaceChildren();
  connect(name, room);
}

// Connects to a room; reconnects by itself (after a second) if the server goes away.
function connect(name, room) {
  if (socket) {
    const old = socket;
    socket = null;
    old.close(1000, "switching rooms");
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws/chat/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`;
  // The one way a browser WebSocket carries a token: the subprotocol list. The server
  // answers "bearer" (never echoes the token).
  const ws = token ? new WebSocket(url, ["bearer", token]) : new WebSocket(url);
  socket = ws;
  $("chat-status").textContent = `Joining ${room}…`;
  ws.onopen = () => {
    $("chat-status").textContent = `In room “${room}” as ${name}.`;
    $("members").classList.add("live");
    setChatEnabled(true);
    $("text").focus();
    refreshRooms();
  };
  ws.onmessage = (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch { return; }
    if (data.type === "welcome") {
      // The server verified the token: this connection is the signed-in user's.
      $("auth").textContent = `Signed in as ${data.user}, verified by the server (subprotocol ${ws.protocol}).`;
      $("auth").dataset.verified = "true";
    } else if (data.type === "members") {
      // With Redis the server is one node of several: its count is of this node's members,
      // shown until the cluster-wide count (an `online` message) arrives.
      if (!(data.node && ws.clusterCount)) {
        $("members").textContent = data.node ? `${data.count} online on this node` : `${data.count} online`;
      }
      if (data.node) showNode(data.node);
    } else if (data.type === "online") {
      // With Redis: the members of the room on every node (presence kept in Redis).
      ws.clusterCount = true;
      $("members").textContent = `${data.count} online`;
    } else if (data.type === "message") {
      const li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = data.verified ? `✔ ${data.name}` : data.name;
      li.append(who, document.createTextNode(data.text));
      if (data.node) {
        const via = document.createElement("span");
        via.className = "via";
        via.textContent = `via node ${data.node}`;
        li.append(via);
      }
      appendMessage(li);
    }
  };
  ws.onclose = (event) => {
    if (socket !== ws) return; // replaced by a newer connection
    setChatEnabled(false);
    $("members").classList.remove("live");
    $("members").textContent = "offline";
    // 1008: sent too fast, or logged out; 4401: the token was refused.
    const why = event.code === 1008 || event.code >= 4000
      ? `Closed by the server: ${event.reason || "policy"} (${event.code})`
      : "Connection lost";
    $("chat-status").textContent = `${why}; reconnecting…`;
    $("chat-status").dataset.closeCode = String(event.code);
    if (event.code === 4401 || (event.code === 1008 && event.reason === "logged out")) {
      token = null;
      tokenUser = null;
      $("signout").hidden = true;
    }
    setTimeout(() => { if (socket === ws) connect(name, room); }, 1000);
  };
}

// Shown once a `members` message says this server is a node of a Redis cluster.
function showNode(node) {
  $("node").textContent = `This server is node ${node}; chat rooms are shared with every node on the same Redis.`;
  $("node").hidden = false;
  $("rooms-scope").textContent = " on this node";
}

function send(event) {
  event.preventDefault();
  const text = $("text").value;
  if (!socket || socket.readyState !== WebSocket.OPEN || !text.trim()) return;
  socket.send(text);
  $("text").value = "";
}

async function refreshRooms() {
  try {
    const res = await fetch("/api/rooms");
    const rooms = await res.json();
    $("rooms").textContent = rooms.length
      ? rooms.map((r) => `${r.name} (${r.members})`).join(", ")
      : "none";
  } catch {
    $("rooms").textContent = "unavailable";
  }
}

$("join-form").addEventListener("submit", join);
$("signin").addEventListener("click", signIn);
$("signout").addEventListener("click", signOut);
$("send-form").addEventListener("submit", send);
refreshRooms();
setInterval(refreshRooms, 3000);

// ---- ticker -----------------------------------------------------------------------

const ticker = { lastSeq: null, received: 0, reconnects: 0, gaps: 0, duplicates: 0, wasOpen: false };
// Exposed for the browser tests.
window.armatureDemo = { ticker, seqs: [] };

function tickerStatus(text, cls) {
  const badge = $("ticker-status");
  badge.textContent = text;
  badge.className = `badge ${cls || ""}`;
}

const source = new EventSource("/events/ticker");
source.onopen = () => {
  if (ticker.wasOpen) ticker.reconnects += 1;
  ticker.wasOpen = true;
  $("reconnects").textContent = ticker.reconnects;
  tickerStatus("live", "live");
};
source.onerror = () => {
  // EventSource reconnects by itself and sends Last-Event-ID.
  tickerStatus("reconnecting", "down");
};
source.addEventListener("price", (event) => {
  const tick = JSON.parse(event.data);
  if (ticker.lastSeq !== null) {
    if (tick.seq <= ticker.lastSeq) ticker.duplicates += 1;
    else if (tick.seq !== ticker.lastSeq + 1) ticker.gaps += tick.seq - ticker.lastSeq - 1;
  }
  ticker.lastSeq = Math.max(ticker.lastSeq ?? tick.seq, tick.seq);
  ticker.received += 1;
  window.armatureDemo.seqs.push(tick.seq);
  $("price").textContent = tick.price.toFixed(2);
  $("last-id").textContent = event.lastEventId;
  $("received").textContent = ticker.received;
  $("gaps").textContent = ticker.gaps;
  $("duplicates").textContent = ticker.duplicates;
  const li = document.createElement("li");
  li.textContent = `#${tick.seq}  ${tick.symbol} ${tick.price.toFixed(2)}`;
  const list = $("ticks");
  list.prepend(li);
  while (list.children.length > 50) list.removeChild(list.lastChild);
});
source.addEventListener("reset", () => {
  // The server's history did not reach back to our last id: continue from live.
  ticker.lastSeq = null;
  addLine("Ticker: history did not reach back far enough; continuing live.", "system");
});

// ---- durable rooms: the resume protocol of armature-realtime-redis (docs/redis.md) ----
//
// A durable room's member gets each message as two: `@offset <offset> <room>`, then the
// message. After a reconnect (to any node) it sends `@resume <offset> <room>` with the last
// offset it saw and gets exactly the messages after it, or one `@reset <offset> <room>`
// when that offset is too old or of another epoch (then reload the room's state). The
// server side is `RedisRealtime::join_durable`; a handler reads the client's first message
// and passes the offset. This helper keeps the offset and reconnects:
//
//   const room = durableRoom(url, "orders", {
//     onMessage: (data, offset) => render(data),
//     onReset: (offset) => reloadEverything(),
//   });
//   room.send("text"); room.close();
function durableRoom(url, room, { onMessage, onReset = () => {}, retryMs = 1000 }) {
  let last = null;   // the last `@offset` seen: resume point
  let next = null;   // the offset announced for the message that follows
  let ws = null;
  let closed = false;
  const open = () => {
    ws = new WebSocket(url);
    ws.onopen = () => ws.send(last ? `@resume ${last} ${room}` : "@join");
    ws.onmessage = (msg) => {
      const text = typeof msg.data === "string" ? msg.data : null;
      if (text !== null && text.startsWith("@offset ")) {
        const offset = text.split(" ")[1];
        if (last === null && next === null) { last = offset; return; } // position on join
        next = offset;
        return;
      }
      if (text !== null && text.startsWith("@reset ")) {
        last = text.split(" ")[1];
        next = null;
        onReset(last);
        return;
      }
      if (next !== null) { last = next; next = null; }
      onMessage(msg.data, last);
    };
    ws.onclose = () => { if (!closed) setTimeout(open, retryMs); };
  };
  open();
  return {
    send: (data) => ws && ws.readyState === WebSocket.OPEN && ws.send(data),
    close: () => { closed = true; if (ws) ws.close(1000); },
    offset: () => last,
  };
}
window.durableRoom = durableRoom;
