use armature_realtime::prelude::*;

#[controller("/ws")]
struct C;

#[controller]
impl C {
    #[websocket("/chat/:room")]
    async fn chat(&self, room: String, user: String, socket: WebSocket) {
        let _ = (room, user, socket);
    }

    #[sse("/events")]
    async fn events(&self, #[query = "x"] x: String, #[cookie] c: String) -> ReceiverStream {
        let _ = (x, c);
        SseStream::new().1
    }
}

fn main() {}
