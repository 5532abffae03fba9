//! `../shared/bench/PROTOCOL.md`'s `/echo`, `/fanout` and `/sse` served through the facade
//! and the decorators (`App`, `#[controller]`, `#[websocket]`, `#[sse]`), to measure what the
//! decorated path costs next to `bench_server` (armature-ws used directly). `/publish` is
//! not served: the facade's handlers see the request head only, never a body.
//!
//! `cargo run --release -p examples --example facade_bench_server -- 9002`
//! (port from the first argument or `PORT`, default 9002; one runtime thread unless
//! `WORKERS` says otherwise).
//!
//! Measured on the 2-core CI machine (loadgen pinned to core 1, server unpinned, 2026-11-27),
//! with `loadgen SCENARIO --addr 127.0.0.1:PORT --server-pid PID` against this server and
//! against `bench_server` in the same run:
//!
//! | scenario | facade + decorators | armature-ws directly |
//! | --- | --- | --- |
//! | idle WebSocket, 5,000 connections | 1.77 KiB each | 1.63 KiB each |
//! | echo, 64 × 16 in flight, 32 B | 456 k round trips/s | 446 k round trips/s |
//! | fan-out, 1,000 subscribers × 500 | 1.27 M deliveries/s | 1.35 M deliveries/s |
//! | idle SSE, 5,000 clients | 12.1 KiB each (hyper's buffers) | – |

use armature_realtime::prelude::*;
use armature_realtime::ws::WebSocketConfig;

#[injectable]
#[derive(Clone, Default)]
struct Channels {
    rooms: Arc<WebSocketManager>,
    sse: Arc<SseBroadcaster>,
}

#[controller("/")]
struct BenchController {
    channels: Channels,
}

#[controller]
impl BenchController {
    #[websocket("/echo")]
    async fn echo(&self, mut socket: WebSocket) {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(
                message,
                WebSocketMessage::Text(_) | WebSocketMessage::Binary(_)
            ) && socket.send(message).await.is_err()
            {
                break;
            }
        }
    }

    #[websocket("/fanout")]
    async fn fanout(&self, mut socket: WebSocket) -> Result<(), Error> {
        let room = self.channels.rooms.get_or_create_room("fanout").await;
        room.add_connection(socket.id(), socket.connection())
            .await?;
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(
                message,
                WebSocketMessage::Text(_) | WebSocketMessage::Binary(_)
            ) {
                room.broadcast(message).await?;
            }
        }
        Ok(())
    }

    #[sse("/sse")]
    async fn sse(&self) -> ReceiverStream {
        self.channels.sse.register().await
    }
}

#[module(providers: [Channels], controllers: [BenchController])]
struct BenchModule;

fn main() -> Result<(), Error> {
    let port = examples::port_from_env(9002);
    let runtime = examples::runtime_from_env()?;
    runtime.block_on(async move {
        let server = App::new()
            .module::<BenchModule>()
            .websocket_config(WebSocketConfig::default().max_connections(1_000_000))
            .bind(("127.0.0.1", port))
            .await?;
        eprintln!("facade_bench_server listening on {}", server.local_addr());
        server
            .run_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
