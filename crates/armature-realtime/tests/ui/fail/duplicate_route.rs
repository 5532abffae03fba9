use armature_realtime::prelude::*;

#[controller("/ws")]
struct C;

#[controller]
impl C {
    #[websocket("/chat/:room")]
    async fn chat(&self, room: String, socket: WebSocket) {
        let _ = (room, socket);
    }

    #[websocket("/chat/:name")]
    async fn chat_again(&self, name: String, socket: WebSocket) {
        let _ = (name, socket);
    }
}

fn main() {}
