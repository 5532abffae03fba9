use armature_realtime::prelude::*;

#[controller("/ws")]
struct C;

#[controller]
impl C {
    #[websocket("/mut")]
    async fn with_mut(&mut self, socket: WebSocket) {
        let _ = socket;
    }

    #[websocket("/none")]
    async fn no_self(socket: WebSocket) {
        let _ = socket;
    }

    #[sse("/generic")]
    async fn generic<T>(&self) -> ReceiverStream {
        SseStream::new().1
    }

    #[websocket("/two")]
    async fn two(&self, a: WebSocket, b: PendingUpgrade) {
        let _ = (a, b);
    }

    #[sse("/both")]
    #[websocket("/both")]
    async fn both(&self) -> ReceiverStream {
        SseStream::new().1
    }
}

fn main() {}
