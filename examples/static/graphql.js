// The GraphQL card: a minimal graphql-transport-ws client (connection_init, subscribe,
// next, ping/pong) streaming `subscription { ticker { seq price } }` from /graphql.
"use strict";

(() => {
  const el = (id) => document.getElementById(id);
  let received = 0;
  let retry = 500;

  function status(text, cls) {
    const badge = el("gql-status");
    badge.textContent = text;
    badge.className = "badge" + (cls ? " " + cls : "");
  }

  function open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/graphql`, "graphql-transport-ws");
    ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init" }));
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "connection_ack") {
        status("subscribed", "ok");
        retry = 500;
        ws.send(JSON.stringify({
          id: "ticker",
          type: "subscribe",
          payload: { query: "subscription { ticker { seq price } }" },
        }));
      } else if (msg.type === "ping") {
        ws.send(JSON.stringify({ type: "pong" }));
      } else if (msg.type === "next" && msg.payload.data) {
        const tick = msg.payload.data.ticker;
        el("gql-price").textContent = tick.price.toFixed(2);
        el("gql-seq").textContent = String(tick.seq);
        el("gql-received").textContent = String(++received);
      } else if (msg.type === "error") {
        status("error", "bad");
      }
    };
    ws.onclose = () => {
      status("reconnecting", "bad");
      setTimeout(open, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  open();
})();
