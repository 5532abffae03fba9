use armature_realtime::prelude::*;

#[controller("/ws")]
struct C;

#[controller]
impl C {
    #[websocket("/chat")]
    fn chat(&self, socket: WebSocket) -> Result<(), Error> {
        let _ = socket;
        Ok(())
    }
}

fn main() {}
