use armature_realtime::prelude::*;

#[controller]
struct NoPrefix;

#[controller("/ok")]
struct C;

#[controller]
impl C {
    #[websocket]
    async fn chat(&self, socket: WebSocket) {
        let _ = socket;
    }

    #[sse()]
    async fn events(&self) -> ReceiverStream {
        SseStream::new().1
    }
}

fn main() {}
