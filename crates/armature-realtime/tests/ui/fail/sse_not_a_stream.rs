use armature_realtime::prelude::*;

struct Prices;

#[controller("/events")]
struct C;

#[controller]
impl C {
    #[sse("/prices")]
    async fn prices(&self) -> Prices {
        Prices
    }
}

fn main() {}
