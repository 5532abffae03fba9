//! The decorated controllers inside an existing axum application: axum keeps its own
//! routes and hands everything else to the Armature app (feature `tower` of
//! `armature-realtime`).
//!
//! ```text
//! cargo run -p examples --example axum_mount
//! curl http://localhost:3000/health
//! curl -N http://localhost:3000/events/clock
//! websocat ws://localhost:3000/ws/echo
//! ```

use armature_realtime::prelude::*;

#[controller("/")]
struct RealtimeController;

#[controller]
impl RealtimeController {
    #[websocket("/ws/echo")]
    async fn echo(&self, mut socket: WebSocket) -> Result<(), Error> {
        while let Some(Ok(message)) = socket.recv().await {
            if let WebSocketMessage::Text(text) = message {
                socket.send_text(text).await?;
            }
        }
        Ok(())
    }

    #[sse("/events/clock")]
    async fn clock(&self) -> impl futures_util::Stream<Item = ServerSentEvent> + Send {
        futures_util::stream::unfold(0u64, |n| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((
                ServerSentEvent::with_event("tick".into(), n.to_string()),
                n + 1,
            ))
        })
    }
}

#[module(controllers: [RealtimeController])]
struct RealtimeModule;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples::init_tracing();
    let port = examples::port_from_env(3000);
    let realtime = App::new().module::<RealtimeModule>().build()?;
    let router = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .fallback_service(realtime);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("axum + armature on http://localhost:{port}: /health, /events/clock, /ws/echo");
    axum::serve(listener, router).await?;
    Ok(())
}
