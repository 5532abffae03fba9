//! The tokio-tungstenite peer: hyper answers the upgrade (tokio-tungstenite's
//! `server-custom-accept` example), `WebSocketStream::from_raw_socket` takes the upgraded
//! connection with default buffers; echo is its `echo-server` example's
//! `read.forward(write)`; fan-out is a `tokio::sync::broadcast` of `Message`s with one
//! sending and one receiving task per connection; SSE is [`hyper_sse`](super::hyper_sse).

use std::convert::Infallible;
use std::io;

use futures_util::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::hyper_sse::{PeerBody, SseHub, not_found, status};
use super::{BROADCAST_CAPACITY, serve_hyper};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Serves PROTOCOL.md on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let room = broadcast::channel::<Message>(BROADCAST_CAPACITY).0;
    let hub = SseHub::new();
    serve_hyper(
        listener,
        service_fn(move |req| {
            let (room, hub) = (room.clone(), hub.clone());
            async move { Ok::<_, Infallible>(route(req, room, hub).await) }
        }),
    )
    .await
}

async fn route(
    req: Request<Incoming>,
    room: broadcast::Sender<Message>,
    hub: SseHub,
) -> Response<PeerBody> {
    match req.uri().path() {
        "/echo" => upgrade(req, echo),
        "/fanout" => upgrade(req, move |ws| fanout(ws, room)),
        _ => match hub.handle(req).await {
            Ok(res) => res,
            Err(_) => not_found(),
        },
    }
}

/// Checks the handshake, answers `101` and hands the upgraded stream to `on_ws`.
fn upgrade<F, Fut>(mut req: Request<Incoming>, on_ws: F) -> Response<PeerBody>
where
    F: FnOnce(Ws) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let headers = req.headers();
    let has_token = |name, token: &str| {
        headers
            .get(name)
            .and_then(|h: &header::HeaderValue| h.to_str().ok())
            .is_some_and(|h| h.split([' ', ',']).any(|p| p.eq_ignore_ascii_case(token)))
    };
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()));
    let valid = req.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    let Some(accept) = key
        .filter(|_| valid)
        .and_then(|k| header::HeaderValue::from_str(&k).ok())
    else {
        return status(StatusCode::BAD_REQUEST);
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(&mut req).await {
            on_ws(
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await,
            )
            .await;
        }
    });
    let mut res = status(StatusCode::SWITCHING_PROTOCOLS);
    let h = res.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    res
}

async fn echo(ws: Ws) {
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| std::future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

async fn fanout(ws: Ws, room: broadcast::Sender<Message>) {
    let (mut write, mut read) = ws.split();
    let mut rx = room.subscribe();
    let mut send_task = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    if write.send(msg).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let mut recv_task = tokio::spawn(async move {
        while let Some(Ok(msg)) = read.next().await {
            if msg.is_text() || msg.is_binary() {
                let _ = room.send(msg);
            } else if msg.is_close() {
                break;
            }
        }
    });
    tokio::select! {
        _ = &mut send_task => recv_task.abort(),
        _ = &mut recv_task => send_task.abort(),
    }
}
