// The guide's "Create a WebSocket Controller" as written: a `#[controller("/ws")]` struct
// whose `impl` block has no decorator and no route, listed in `#[module(controllers: ..)]`.
// Only the prelude import and the `main` are added.
#![allow(dead_code)]
use armature_realtime::prelude::*;

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

#[controller("/ws")]
#[derive(Default, Clone)]
struct WebSocketController {
    chat_service: ChatService,
}

impl WebSocketController {
    async fn handle_chat(&self, room_name: String) -> Result<(), Error> {
        let room = self.chat_service.get_room(&room_name).await;

        // In full implementation, this would:
        // 1. Upgrade HTTP connection to WebSocket
        // 2. Handle incoming messages
        // 3. Broadcast to room

        Ok(())
    }
}

// A controller whose `#[controller] impl` block has no decorated method.
#[controller("/admin")]
struct AdminController;

#[controller]
impl AdminController {
    fn helper(&self) -> u32 {
        1
    }
}

#[module(
    providers: [ChatService],
    controllers: [WebSocketController, AdminController]
)]
#[derive(Default)]
struct AppModule;

fn main() {
    let app = App::new().module::<AppModule>().build().unwrap();
    assert!(app.routes().is_empty());
}
