use armature_realtime::prelude::*;

#[controller("/ws")]
struct C;

#[controller]
impl C {
    #[websocket("/chat/:room")]
    async fn chat(&self, socket: WebSocket) {
        let _ = socket;
    }
}

fn main() {}
