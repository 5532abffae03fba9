// The demo's typed chat, through the client generated from the server's types
// (generated/client.js; `cargo xtask asyncapi` rewrites it).
import { connectChat, chatPath } from "/generated/client.js";

const $ = (id) => document.getElementById(id);
const name = `guest-${Math.floor(Math.random() * 1000)}`;
const scheme = location.protocol === "https:" ? "wss" : "ws";
const socket = connectChat(
  `${scheme}://${location.host}${chatPath({ room: "typed" })}?name=${encodeURIComponent(name)}`,
);

function line(text, cls) {
  const li = document.createElement("li");
  if (cls) li.className = cls;
  li.textContent = text;
  const list = $("typed-messages");
  list.appendChild(li);
  while (list.children.length > 100) list.removeChild(list.firstChild);
}

socket.on("chat:members", ({ count }) => {
  $("typed-status").textContent = `${count} here as ${name}`;
});
socket.on("chat:message", ({ id, name: from, text }) => line(`#${id} ${from}: ${text}`));
socket.onError((error) => line(`refused (${error.kind}): ${error.message}`, "system"));
socket.ws.addEventListener("close", () => {
  $("typed-status").textContent = "disconnected";
});

$("typed-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("typed-text");
  try {
    const reply = await socket.request("chat:send", { text: input.value });
    if (reply.event === "chat:sent") input.value = "";
  } catch (error) {
    line(`not sent: ${error && error.message ? error.message : error}`, "system");
  }
});
