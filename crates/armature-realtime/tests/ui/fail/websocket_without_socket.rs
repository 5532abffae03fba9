use armature_realtime::prelude::*;

#[controller("/ws")]
struct C;

#[controller]
impl C {
    #[websocket("/chat/:room_name")]
    async fn handle_chat(&self, room_name: String) -> Result<(), Error> {
        let _ = room_name;
        Ok(())
    }

    #[sse("/events")]
    async fn events(&self, socket: WebSocket) -> ReceiverStream {
        let _ = socket;
        SseStream::new().1
    }
}

fn main() {}
