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

// ---- guards and JWT, through the decorators ----

mod guarded {
    use armature_realtime::jwt::JwtAuth;
    use armature_realtime::prelude::*;

    #[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
    pub(crate) struct Claims {
        pub(crate) sub: String,
        pub(crate) exp: u64,
    }

    #[controller("/secure")]
    pub(crate) struct Secure;

    #[controller]
    #[use_guards(JwtAuth<Claims>)]
    impl Secure {
        #[websocket("/ws")]
        async fn ws(&self, user: Auth<Claims>, mut socket: WebSocket) -> Result<(), Error> {
            socket.send_text(format!("hello {}", user.sub)).await?;
            while let Some(Ok(message)) = socket.recv().await {
                if message.is_text() {
                    socket.send(message).await?;
                }
            }
            Ok(())
        }

        #[sse("/events")]
        async fn events(
            &self,
            user: Auth<Claims>,
        ) -> impl futures_util::Stream<Item = ServerSentEvent> + Send {
            futures_util::stream::iter([ServerSentEvent::new(format!("hi {}", user.0.sub))])
        }
    }

    #[module(controllers: [Secure])]
    pub(crate) struct SecureModule;
}

const SECRET: &[u8] = b"test secret, long enough for HS256";

fn token(sub: &str, exp_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = guarded::Claims {
        sub: sub.into(),
        exp: (now + exp_in) as u64,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

async fn secure_server(
    auth: armature_realtime::jwt::JwtAuth<guarded::Claims>,
) -> armature_realtime::RunningServer {
    App::new()
        .provide(auth)
        .module::<guarded::SecureModule>()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

async fn next_text(ws: &mut Client) -> String {
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) => return t.to_string(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

async fn close_code(ws: &mut Client) -> Option<u16> {
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return None,
        }
    }
}

#[tokio::test]
async fn jwt_guard_refuses_missing_bad_and_expired_tokens_with_401() {
    use armature_realtime::jwt::JwtAuth;
    let server = secure_server(JwtAuth::hs256(SECRET)).await;
    let addr = server.local_addr();
    let bad_sig = {
        let mut t = token("ada", 60);
        t.pop();
        t.push('x');
        t
    };
    for header in [
        None,
        Some("Bearer not-a-jwt".to_owned()),
        Some(format!("Bearer {bad_sig}")),
        Some(format!("Bearer {}", token("ada", -120))),
    ] {
        let headers: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("authorization", h.as_str()))
            .collect();
        assert_eq!(
            ws_open(addr, "/secure/ws", &headers).await.err(),
            Some(401),
            "{header:?}"
        );
        let (status, _) = common::get_with(addr, "/secure/events", &headers).await;
        assert_eq!(status, 401, "sse {header:?}");
    }
    // A foreign Origin is refused with 403 even without a token: Origin runs first.
    assert_eq!(
        ws_open(addr, "/secure/ws", &[("origin", "https://evil.test")])
            .await
            .err(),
        Some(403)
    );

    // A valid token: the handler sees the user, for WebSocket and SSE.
    let good = format!("Bearer {}", token("ada", 60));
    let mut ws = ws_open(addr, "/secure/ws", &[("authorization", &good)])
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, "hello ada");
    let (status, body) =
        common::get_with(addr, "/secure/events", &[("authorization", &good)]).await;
    assert_eq!(status, 200);
    assert!(body.contains("data: hi ada"), "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn token_in_the_subprotocol_and_close_on_failure() {
    use armature_realtime::jwt::JwtAuth;
    let server = secure_server(
        JwtAuth::hs256(SECRET)
            .from_subprotocol("bearer")
            .close_on_failure(true),
    )
    .await;
    let addr = server.local_addr();
    let offered = format!("bearer, {}", token("grace", 60));
    let mut request = format!("ws://{addr}/secure/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", offered.parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    // The marker is agreed, never the token.
    assert_eq!(response.headers()["sec-websocket-protocol"], "bearer");
    assert_eq!(next_text(&mut ws).await, "hello grace");

    // A bad token: accepted, then closed with 4401 (what a browser can see).
    let mut request = format!("ws://{addr}/secure/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "bearer, nope".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(4401));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn expiring_token_closes_with_1008_and_logout_closes_every_connection() {
    use armature_realtime::jwt::JwtAuth;
    let server = secure_server(JwtAuth::hs256(SECRET)).await;
    let addr = server.local_addr();
    // Expires in 2 s (whole seconds in `exp`).
    let short = format!("Bearer {}", token("eve", 2));
    let mut ws = ws_open(addr, "/secure/ws", &[("authorization", &short)])
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, "hello eve");
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut ws).await, Some(1008));
    assert!(
        started.elapsed() <= std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Two connections of one user, one of another: logout closes the user's two.
    let long = |who| format!("Bearer {}", token(who, 600));
    let mut a = ws_open(addr, "/secure/ws", &[("authorization", &long("bob"))])
        .await
        .unwrap();
    let mut b = ws_open(addr, "/secure/ws", &[("authorization", &long("bob"))])
        .await
        .unwrap();
    let mut other = ws_open(addr, "/secure/ws", &[("authorization", &long("carol"))])
        .await
        .unwrap();
    for ws in [&mut a, &mut b, &mut other] {
        next_text(ws).await;
    }
    assert_eq!(server.service().sessions().count("bob"), 2);
    assert_eq!(server.service().close_user("bob"), 2);
    assert_eq!(close_code(&mut a).await, Some(1008));
    assert_eq!(close_code(&mut b).await, Some(1008));
    echo_once(&mut other).await;
    server.shutdown().await.unwrap();
}
