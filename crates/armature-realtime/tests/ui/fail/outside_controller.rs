use armature_realtime::prelude::*;

struct C;

impl C {
    #[websocket("/chat")]
    async fn chat(&self, socket: WebSocket) {
        let _ = socket;
    }
}

fn main() {}
