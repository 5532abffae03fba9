use armature_realtime::prelude::*;

#[controller("/events")]
struct C;

#[controller]
impl C {
    #[sse("/none")]
    async fn none(&self) {}

    #[sse("/text")]
    async fn text(&self) -> String {
        String::new()
    }

    #[sse("/result")]
    async fn result(&self) -> Result<Vec<u8>, Error> {
        Ok(Vec::new())
    }
}

fn main() {}
