// Uses the generated client the way the demo page does; compiled with `tsc --strict` by
// examples/tests/asyncapi.rs. The `@ts-expect-error` lines are the point: a wrong event
// name or a wrong data type must not compile (tsc fails if any of them compiles).
import { connectChat, subscribeBeats, chatPath, type Message } from "../../static/generated/client";

export function demo(): void {
  const socket = connectChat(`ws://localhost:3000${chatPath({ room: "lobby" })}?name=ann`);
  socket.send("chat:send", { text: "hello" });
  socket.on("chat:message", (line: Message) => console.log(line.id, line.name, line.text));
  socket.on("chat:members", ({ count }) => console.log(count + 1));
  socket.onError((error) => console.log(error.kind, error.message));
  void socket.request("chat:send", { text: "with a reply" }).then((reply) => {
    if (reply.event === "chat:sent") console.log(reply.data.id + 1);
  });

  // @ts-expect-error: no such event
  socket.send("chat:shout", { text: "hi" });
  // @ts-expect-error: `text` is a string
  socket.send("chat:send", { text: 42 });
  // @ts-expect-error: `chat:message` is the server's, not the client's
  socket.send("chat:message", { id: 1, name: "x", text: "y" });
  // @ts-expect-error: the handler's data type is the event's
  socket.on("chat:members", (line: Message) => console.log(line));

  const beats = subscribeBeats("/typed/beats/3");
  beats.on("beat", ({ n }) => console.log(n * 2));
  // @ts-expect-error: no such SSE event
  beats.on("tick", () => {});
  beats.close();
}
