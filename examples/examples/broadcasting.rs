//! The guide's three broadcasting patterns over real connections:
//!
//! - room-based: `room.broadcast_json(&message)` to everyone in one room;
//! - targeted: `connection.send_text(..)` to one connection, found by its id;
//! - global: the guide's loop over `["room-1", "room-2", "room-3"]`.
//!
//! Connect with `ws://localhost:3000/ws/<room>` and send commands as text:
//! `say <text>` (your room), `to <id> <text>` (one connection), `all <text>` (every room).
//! The server greets each connection with its id.
//!
//! ```text
//! cargo run -p examples --example broadcasting
//! websocat ws://localhost:3000/ws/room-1
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use armature_realtime::prelude::*;
use serde::Serialize;

#[derive(Serialize)]
struct Message<'a> {
    from: &'a str,
    text: &'a str,
    scope: &'a str,
}

#[injectable]
#[derive(Clone, Default)]
struct BroadcastService {
    manager: Arc<WebSocketManager>,
    // The guide's "Connection Management": track connections, clean up on disconnect.
    // A std mutex held for a map lookup only, never across an `.await`.
    connections: Arc<Mutex<HashMap<String, WebSocketConnection>>>,
}

impl BroadcastService {
    fn connection(&self, id: &str) -> Option<WebSocketConnection> {
        self.connections.lock().ok()?.get(id).cloned()
    }

    async fn command(&self, from: &str, room_name: &str, line: &str) -> Result<(), Error> {
        let manager = &self.manager;
        if let Some(text) = line.strip_prefix("say ") {
            // Room-based broadcasting
            let message = Message {
                from,
                text,
                scope: "room",
            };
            let room = manager.get_or_create_room(room_name).await;
            room.broadcast_json(&message).await?;
        } else if let Some(rest) = line.strip_prefix("to ") {
            // Targeted messaging
            let (id, text) = rest.split_once(' ').unwrap_or((rest, ""));
            match self.connection(id) {
                Some(connection) => {
                    connection
                        .send_text(format!("private from {from}: {text}"))
                        .await?
                }
                None => return Err(Error::Validation(format!("no connection {id}"))),
            }
        } else if let Some(text) = line.strip_prefix("all ") {
            // Global broadcasting
            let message = Message {
                from,
                text,
                scope: "global",
            };
            for room_name in ["room-1", "room-2", "room-3"] {
                if let Some(room) = manager.get_room(room_name).await {
                    room.broadcast_json(&message).await?;
                }
            }
        }
        Ok(())
    }
}

#[controller("/ws")]
struct BroadcastController {
    service: BroadcastService,
}

#[controller]
impl BroadcastController {
    #[websocket("/:room")]
    async fn join(&self, room: String, mut socket: WebSocket) -> Result<(), Error> {
        let id = socket.id().to_owned();
        let joined = self.service.manager.get_or_create_room(&room).await;
        joined.add_connection(&id, socket.connection()).await?;
        if let Ok(mut connections) = self.service.connections.lock() {
            connections.insert(id.clone(), socket.connection());
        }
        socket.send_text(format!("you are {id}")).await?;
        while let Some(Ok(message)) = socket.recv().await {
            if let WebSocketMessage::Text(line) = message
                && let Err(err) = self.service.command(&id, &room, line.as_str()).await
            {
                socket.send_text(format!("error: {err}")).await?;
            }
        }
        // Clean up on disconnect (rooms are left automatically).
        if let Ok(mut connections) = self.service.connections.lock() {
            connections.remove(&id);
        }
        Ok(())
    }
}

#[module(providers: [BroadcastService], controllers: [BroadcastController])]
struct AppModule;

#[tokio::main]
async fn main() -> Result<(), Error> {
    examples::init_tracing();
    let port = examples::port_from_env(3000);
    println!("broadcasting: ws://localhost:{port}/ws/room-1 (commands: say, to, all)");
    App::new()
        .module::<AppModule>()
        .serve(("127.0.0.1", port))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use examples::testing::{Client, next_text, ws_connect};
    use futures_util::SinkExt;

    async fn join(addr: std::net::SocketAddr, room: &str) -> (Client, String) {
        let mut ws = ws_connect(&format!("ws://{addr}/ws/{room}")).await;
        let greeting = next_text(&mut ws).await;
        let id = greeting.strip_prefix("you are ").unwrap().to_owned();
        (ws, id)
    }

    #[tokio::test]
    async fn room_targeted_and_global() {
        let server = App::new()
            .module::<AppModule>()
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn();
        let addr = server.local_addr();
        let (mut a, a_id) = join(addr, "room-1").await;
        let (mut b, b_id) = join(addr, "room-1").await;
        let (mut c, _) = join(addr, "room-2").await;

        a.send("say hi room".into()).await.unwrap();
        let expected = format!(r#"{{"from":"{a_id}","text":"hi room","scope":"room"}}"#);
        assert_eq!(next_text(&mut a).await, expected);
        assert_eq!(next_text(&mut b).await, expected);

        c.send(format!("to {b_id} psst").into()).await.unwrap();
        assert!(next_text(&mut b).await.ends_with(": psst"));

        c.send("all attention".into()).await.unwrap();
        for ws in [&mut a, &mut b, &mut c] {
            assert!(next_text(ws).await.contains(r#""scope":"global""#));
        }
        // `c` never saw room-1's message: its first message was the global one.
        c.send("to nobody x".into()).await.unwrap();
        assert_eq!(
            next_text(&mut c).await,
            "error: validation failed: no connection nobody"
        );
        drop((a, b, c));
        server.shutdown().await.unwrap();
    }
}
