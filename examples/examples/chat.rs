//! The guide's chat: `ChatService` (rooms in a `WebSocketManager`), `WebSocketController`
//! and `AppModule`, as the guide writes them plus the decorators, imports, and the handler's
//! "full implementation" (upgrade, handle incoming messages, broadcast to the room).
//!
//! ```text
//! cargo run -p examples --example chat            # port 3000 (or PORT, or the first argument)
//! websocat ws://localhost:3000/ws/chat/lobby      # in two terminals; type lines
//! ```

use armature_realtime::prelude::*;

// 1. The WebSocket service (the guide's code, plus `#[injectable]`).

#[injectable]
#[derive(Clone)]
struct ChatService {
    manager: Arc<WebSocketManager>,
}

impl Default for ChatService {
    fn default() -> Self {
        Self {
            manager: Arc::new(WebSocketManager::new()),
        }
    }
}

impl ChatService {
    async fn get_room(&self, name: &str) -> Arc<WebSocketRoom> {
        self.manager.get_or_create_room(name).await
    }

    async fn broadcast(&self, room: &str, msg: &str) -> Result<(), Error> {
        let room = self.get_room(room).await;
        room.broadcast_text(msg.to_string()).await
    }
}

// 2. The WebSocket controller.

#[controller("/ws")]
#[derive(Default, Clone)]
struct WebSocketController {
    chat_service: ChatService,
}

#[controller]
impl WebSocketController {
    #[websocket("/chat/:room_name")]
    async fn handle_chat(&self, room_name: String, mut socket: WebSocket) -> Result<(), Error> {
        let room = self.chat_service.get_room(&room_name).await;

        // 1. The HTTP connection is already upgraded (`socket`): join the room.
        room.add_connection(socket.id(), socket.connection())
            .await?;
        // 2. Handle incoming messages, 3. broadcast them to the room.
        while let Some(message) = socket.recv().await {
            match message {
                Ok(WebSocketMessage::Text(text)) => {
                    self.chat_service
                        .broadcast(&room_name, text.as_str())
                        .await?;
                }
                Ok(WebSocketMessage::Close) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // Leaving the room happens when the socket drops.
        Ok(())
    }
}

// 3. Register in the module.

#[module(
    providers: [ChatService],
    controllers: [WebSocketController]
)]
#[derive(Default)]
struct AppModule;

#[tokio::main]
async fn main() -> Result<(), Error> {
    examples::init_tracing();
    let port = examples::port_from_env(3000);
    println!("chat: ws://localhost:{port}/ws/chat/<room>");
    App::new()
        .module::<AppModule>()
        .serve(("127.0.0.1", port))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use examples::testing::{joined, next_text, ws_connect};
    use futures_util::SinkExt;

    #[tokio::test]
    async fn two_clients_in_a_room_see_each_other_and_others_do_not() {
        let server = App::new()
            .module::<AppModule>()
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn();
        let addr = server.local_addr();
        let mut a = ws_connect(&format!("ws://{addr}/ws/chat/lobby")).await;
        let mut b = ws_connect(&format!("ws://{addr}/ws/chat/lobby")).await;
        let mut c = ws_connect(&format!("ws://{addr}/ws/chat/elsewhere")).await;
        // Each client is in its room once its own message comes back.
        joined(&mut a, "a is here").await;
        joined(&mut b, "b is here").await;
        assert_eq!(next_text(&mut a).await, "b is here");
        joined(&mut c, "c is here").await;

        a.send("hello lobby".into()).await.unwrap();
        assert_eq!(next_text(&mut b).await, "hello lobby");
        assert_eq!(next_text(&mut a).await, "hello lobby");
        c.send("anyone?".into()).await.unwrap();
        // `c`'s own room echoes; nothing from the lobby arrived before it.
        assert_eq!(next_text(&mut c).await, "anyone?");
        drop((a, b, c));
        server.shutdown().await.unwrap();
    }
}
