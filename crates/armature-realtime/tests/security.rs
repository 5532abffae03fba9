//! Security at the handshake over real sockets: the `Origin` check (on by default), guards,
//! JWT authentication.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use armature_realtime::ws::{OriginPolicy, WebSocketConfig};
use armature_realtime::ws_route::websocket_with_origins;
use armature_realtime::{App, Error, RequestHead, Route, RouteKind};
use common::TIMEOUT;
use http::Method;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `path` with extra headers; the `101`'s client, or the refusal's
/// status.
async fn ws_open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Client, u16> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
    {
        Ok((ws, response)) => {
            assert_eq!(response.status(), 101);
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

/// An echo route that counts how often its handler ran.
fn echo_route(path: &str, ran: Arc<AtomicUsize>, origins: Option<OriginPolicy>) -> Route {
    Route::new(
        Method::GET,
        path,
        RouteKind::WebSocket,
        move |head: RequestHead| {
            let ran = Arc::clone(&ran);
            let origins = origins.clone();
            async move {
                websocket_with_origins(head, origins.as_ref(), move |pending, _head| async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    let mut socket = pending.accept().await?;
                    while let Some(Ok(message)) = socket.recv().await {
                        if message.is_text() {
                            socket.send(message).await?;
                        }
                    }
                    Ok::<(), Error>(())
                })
                .await
            }
        },
    )
}

async fn echo_once(ws: &mut Client) {
    use futures_util::{SinkExt, StreamExt};
    ws.send(Message::text("hi")).await.unwrap();
    let reply = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::text("hi"));
}

#[tokio::test]
async fn foreign_origin_gets_403_before_the_upgrade_by_default() {
    let ran = Arc::new(AtomicUsize::new(0));
    let server = App::new()
        .route(echo_route("/ws", Arc::clone(&ran), None))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    let port = addr.port();

    // A page from another origin (another port is another origin).
    for foreign in [
        format!("http://127.0.0.1:{}", port + 1),
        "https://evil.test".to_owned(),
        format!("http://127.0.0.1:{port}.evil.test"),
        "null".to_owned(),
    ] {
        assert_eq!(
            ws_open(addr, "/ws", &[("origin", &foreign)]).await.err(),
            Some(403),
            "{foreign}"
        );
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "no handler ran for a refused origin"
    );
    // The server's own page, and a client without Origin, are served.
    let own = format!("http://127.0.0.1:{port}");
    echo_once(&mut ws_open(addr, "/ws", &[("origin", &own)]).await.unwrap()).await;
    echo_once(&mut ws_open(addr, "/ws", &[]).await.unwrap()).await;
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn origin_policy_per_app_and_per_route() {
    let ran = Arc::new(AtomicUsize::new(0));
    let server = App::new()
        .websocket_config(WebSocketConfig::default())
        .origin_policy(
            OriginPolicy::default()
                .allow("https://app.example.com")
                .allow_missing(false),
        )
        .route(echo_route("/ws", Arc::clone(&ran), None))
        // This route accepts any origin (a public feed).
        .route(echo_route(
            "/public",
            Arc::clone(&ran),
            Some(OriginPolicy::any()),
        ))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    echo_once(
        &mut ws_open(addr, "/ws", &[("origin", "https://app.example.com")])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        ws_open(addr, "/ws", &[("origin", "https://other.example.com")])
            .await
            .err(),
        Some(403)
    );
    // Missing Origin refused by this app's policy.
    assert_eq!(ws_open(addr, "/ws", &[]).await.err(), Some(403));
    echo_once(
        &mut ws_open(addr, "/public", &[("origin", "https://evil.test")])
            .await
            .unwrap(),
    )
    .await;
    server.shutdown().await.unwrap();

    let err = App::new()
        .origin_policy(OriginPolicy::default().allow("app.example.com"))
        .build()
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
}
