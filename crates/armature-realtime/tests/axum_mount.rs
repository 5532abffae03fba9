//! The decorated controllers mounted inside an axum application (feature `tower`), over
//! real sockets: axum's own route, an SSE route and a WebSocket route of the app.

mod common;

use armature_realtime::prelude::*;
use common::{TIMEOUT, get};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[controller("/rt")]
struct EchoController;

#[controller]
impl EchoController {
    #[websocket("/echo")]
    async fn echo(&self, mut socket: WebSocket) -> Result<(), Error> {
        while let Some(Ok(message)) = socket.recv().await {
            if let WebSocketMessage::Text(text) = message {
                socket.send_text(format!("echo: {}", text.as_str())).await?;
            }
        }
        Ok(())
    }

    #[sse("/numbers/:n")]
    async fn numbers(&self, n: u8) -> impl futures_util::Stream<Item = ServerSentEvent> + Send {
        futures_util::stream::iter((1..=n).map(|i| ServerSentEvent::new(i.to_string())))
    }
}

#[module(controllers: [EchoController])]
struct RealtimeModule;

#[tokio::test]
async fn app_mounted_in_axum_serves_sse_and_websocket() {
    let realtime = App::new().module::<RealtimeModule>().build().unwrap();
    let router = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .fallback_service(realtime);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    assert_eq!(get(addr, "/health").await, (200, "ok".into()));
    assert_eq!(
        get(addr, "/rt/numbers/2").await,
        (200, "data: 1\n\ndata: 2\n\n".into())
    );
    assert_eq!(get(addr, "/rt/none").await.0, 404);

    let (mut ws, _) = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/rt/echo")),
    )
    .await
    .unwrap()
    .unwrap();
    ws.send(Message::text("through axum")).await.unwrap();
    let reply = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::text("echo: through axum"));
    server.abort();
}
