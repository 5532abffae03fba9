use armature_realtime::prelude::*;

#[controller("ws")]
struct Bad;

#[controller("/rooms/:id")]
struct WithParam;

#[controller("/ok")]
struct C;

#[controller]
impl C {
    #[sse("events")]
    async fn a(&self) -> ReceiverStream {
        SseStream::new().1
    }

    #[sse("/a//b")]
    async fn b(&self) -> ReceiverStream {
        SseStream::new().1
    }

    #[sse("/c/:")]
    async fn c(&self) -> ReceiverStream {
        SseStream::new().1
    }

    #[sse("/d/:x/:x")]
    async fn d(&self, x: String) -> ReceiverStream {
        let _ = x;
        SseStream::new().1
    }

    #[sse(42)]
    async fn e(&self) -> ReceiverStream {
        SseStream::new().1
    }
}

fn main() {}
