//! The guide's connection limit per room, checked before the upgrade: a full room refuses
//! the WebSocket with the guide's `Error::Internal("Room full")`, which the server answers
//! with `503 Service Unavailable` (no upgrade happens).
//!
//! ```text
//! cargo run -p examples --example room_limit
//! websocat ws://localhost:3000/rooms/lobby
//! ```

use armature_realtime::prelude::*;

// Limit connections per room (the guide's constant).
const MAX_CONNECTIONS: usize = 1000;

#[injectable]
#[derive(Clone)]
struct RoomService {
    manager: Arc<WebSocketManager>,
    max_connections: usize,
}

impl Default for RoomService {
    fn default() -> Self {
        Self {
            // The manager enforces the limit too, so two clients racing for the last place
            // cannot both get in (the second gets "Room full" from `add_connection`).
            manager: Arc::new(WebSocketManager::new().room_limit(MAX_CONNECTIONS)),
            max_connections: MAX_CONNECTIONS,
        }
    }
}

#[controller("/rooms")]
struct RoomController {
    rooms: RoomService,
}

#[controller]
impl RoomController {
    #[websocket("/:name")]
    async fn join(&self, name: String, upgrade: PendingUpgrade) -> Result<(), Error> {
        let room = self.rooms.manager.get_or_create_room(&name).await;
        if room.connection_count().await >= self.rooms.max_connections {
            return Err(Error::Internal("Room full".into()));
        }
        let mut socket = upgrade.accept().await?;
        room.add_connection(socket.id(), socket.connection())
            .await?;
        socket
            .send_text(format!(
                "{} of {}",
                room.connection_count().await,
                self.rooms.max_connections
            ))
            .await?;
        while let Some(Ok(_)) = socket.recv().await {}
        Ok(())
    }
}

#[module(providers: [RoomService], controllers: [RoomController])]
struct AppModule;

#[tokio::main]
async fn main() -> Result<(), Error> {
    examples::init_tracing();
    let port = examples::port_from_env(3000);
    println!("room limit: ws://localhost:{port}/rooms/<name> ({MAX_CONNECTIONS} per room)");
    App::new()
        .module::<AppModule>()
        .serve(("127.0.0.1", port))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use examples::testing::{next_text, ws_connect};
    use tokio_tungstenite::tungstenite;

    #[tokio::test]
    async fn third_client_is_refused_with_503() {
        let small = RoomService {
            manager: Arc::new(WebSocketManager::new().room_limit(2)),
            max_connections: 2,
        };
        let server = App::new()
            .module::<AppModule>()
            .provide(small)
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn();
        let addr = server.local_addr();
        let mut a = ws_connect(&format!("ws://{addr}/rooms/r")).await;
        assert_eq!(next_text(&mut a).await, "1 of 2");
        let mut b = ws_connect(&format!("ws://{addr}/rooms/r")).await;
        assert_eq!(next_text(&mut b).await, "2 of 2");

        match tokio_tungstenite::connect_async(format!("ws://{addr}/rooms/r")).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 503);
                assert_eq!(
                    response.body().as_deref(),
                    Some(&b"internal error: Room full"[..])
                );
            }
            other => panic!("expected a 503 refusal, got {:?}", other.map(|r| r.1)),
        }
        // Another room is not affected.
        let mut c = ws_connect(&format!("ws://{addr}/rooms/other")).await;
        assert_eq!(next_text(&mut c).await, "1 of 2");
        drop((a, b, c));
        server.shutdown().await.unwrap();
    }
}
