// The guide's WebSocket service, controller and module, adding only decorators, imports
// and a socket argument for the handler.
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

    #[allow(dead_code)]
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

#[controller]
impl WebSocketController {
    #[websocket("/chat/:room_name")]
    async fn handle_chat(&self, room_name: String, socket: WebSocket) -> Result<(), Error> {
        let room = self.chat_service.get_room(&room_name).await;
        room.add_connection(socket.id(), socket.connection()).await?;
        Ok(())
    }
}

#[module(
    providers: [ChatService],
    controllers: [WebSocketController]
)]
#[derive(Default)]
struct AppModule;

fn main() {
    let _app = App::new().module::<AppModule>();
}
