//! The axum peer, written like axum's own examples: `extract::ws` (the `websockets` and
//! `chat` examples, with a `tokio::sync::broadcast` room) and `response::sse` (the `sse`
//! example, with `KeepAlive::default()`), served by `axum::serve`.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::ListenerExt as _;
use futures_util::{SinkExt as _, Stream, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::BROADCAST_CAPACITY;

#[derive(Clone)]
struct AppState {
    room: broadcast::Sender<Message>,
    events: broadcast::Sender<Arc<str>>,
}

/// The peer's router (exposed for tests).
pub fn app() -> Router {
    let state = AppState {
        room: broadcast::channel(BROADCAST_CAPACITY).0,
        events: broadcast::channel(BROADCAST_CAPACITY).0,
    };
    Router::new()
        .route("/echo", any(echo))
        .route("/fanout", any(fanout))
        .route("/sse", get(sse))
        .route("/publish", post(publish))
        .with_state(state)
}

/// Serves PROTOCOL.md on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app()).await
}

async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket: WebSocket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            let echoed = matches!(msg, Message::Text(_) | Message::Binary(_));
            if matches!(msg, Message::Close(_)) || (echoed && socket.send(msg).await.is_err()) {
                break;
            }
        }
    })
}

async fn fanout(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| async move {
        let (mut sender, mut receiver) = socket.split();
        let mut rx = state.room.subscribe();
        let mut send_task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(msg) => {
                        if sender.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let room = state.room.clone();
        let mut recv_task = tokio::spawn(async move {
            while let Some(Ok(msg)) = receiver.next().await {
                match msg {
                    Message::Text(_) | Message::Binary(_) => {
                        let _ = room.send(msg);
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        });
        tokio::select! {
            _ = &mut send_task => recv_task.abort(),
            _ = &mut recv_task => send_task.abort(),
        }
    })
}

async fn sse(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(state.events.subscribe())
        .filter_map(|r| std::future::ready(r.ok().map(|data| Ok(Event::default().data(&*data)))));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn publish(State(state): State<AppState>, body: String) -> impl IntoResponse {
    if body.contains(['\n', '\r']) {
        return StatusCode::BAD_REQUEST;
    }
    let _ = state.events.send(body.into());
    StatusCode::NO_CONTENT
}
