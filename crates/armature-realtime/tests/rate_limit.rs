//! `#[rate_limit]` over real sockets: a flooding WebSocket client is closed with 1008 while
//! its room-mate loses nothing; drop mode keeps the connection; N+1 connections from one
//! address inside the window get `429` with `Retry-After`, before any guard; concurrent
//! SSE streams per address; the app-wide limit; `#[use_guards]` on the controller struct.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use armature_realtime::guard::Guard;
use armature_realtime::prelude::*;
use armature_realtime::rate_limit::ConnectionLimit;
use common::TIMEOUT;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Every broadcast the flood room's handler made.
static BROADCASTS: AtomicUsize = AtomicUsize::new(0);
/// How often the counting guard ran.
static GUARD_RUNS: AtomicUsize = AtomicUsize::new(0);

#[injectable]
#[derive(Clone)]
struct Rooms {
    manager: Arc<WebSocketManager>,
}

impl Default for Rooms {
    fn default() -> Self {
        Self {
            manager: Arc::new(WebSocketManager::new()),
        }
    }
}

/// Admits everything; counts its runs (to show the 429 comes first).
#[injectable]
#[derive(Clone, Default)]
struct Counting;

impl Guard for Counting {
    async fn check(&self, _head: &mut RequestHead) -> Result<(), Refusal> {
        GUARD_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[controller("/rl")]
struct Limited {
    rooms: Rooms,
}

#[controller]
impl Limited {
    /// Joins the room `flood` and broadcasts every text message; 20 messages a second.
    #[websocket("/room")]
    #[rate_limit(messages = 20, per = "1s")]
    async fn room(&self, mut socket: WebSocket) -> Result<(), Error> {
        let room = self.rooms.manager.get_or_create_room("flood").await;
        room.add_connection(socket.id(), socket.connection())
            .await?;
        while let Some(Ok(message)) = socket.recv().await {
            if let WebSocketMessage::Text(text) = message {
                BROADCASTS.fetch_add(1, Ordering::SeqCst);
                room.broadcast_text(text).await?;
            }
        }
        Ok(())
    }

    /// Echoes; 5 messages an hour, the excess dropped.
    #[websocket("/drop")]
    #[rate_limit(messages = 5, per = "1h", on_excess = "drop")]
    async fn drop_excess(&self, mut socket: WebSocket) -> Result<(), Error> {
        while let Some(Ok(message)) = socket.recv().await {
            if message.is_text() {
                socket.send(message).await?;
            }
        }
        Ok(())
    }

    /// Three new connections a minute per address, checked before the guard.
    #[websocket("/few")]
    #[rate_limit(connections = 3, per = "1m")]
    #[use_guards(Counting)]
    async fn few(&self, mut socket: WebSocket) -> Result<(), Error> {
        while let Some(Ok(_)) = socket.recv().await {}
        Ok(())
    }

    /// Two streams open at once per address; each ends after 1 s.
    #[sse("/events")]
    #[rate_limit(concurrent = 2)]
    async fn events(&self) -> impl futures_util::Stream<Item = ServerSentEvent> + Send {
        futures_util::stream::once(async { ServerSentEvent::new("hello".to_string()) }).chain(
            futures_util::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                ServerSentEvent::new("bye".to_string())
            }),
        )
    }
}

#[module(providers: [Rooms], controllers: [Limited])]
struct LimitedModule;

async fn server() -> armature_realtime::RunningServer {
    App::new()
        .module::<LimitedModule>()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

type Refused = Box<tungstenite::http::Response<Option<Vec<u8>>>>;

async fn ws_open(addr: SocketAddr, path: &str) -> Result<Client, Refused> {
    let request = format!("ws://{addr}{path}").into_client_request().unwrap();
    match tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => Err(response),
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

/// The next text message, or `None` at a close or the end.
async fn next_text(ws: &mut Client) -> Option<String> {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads to the close; its code.
async fn close_code(ws: &mut Client) -> Option<u16> {
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
async fn a_flooding_client_is_closed_1008_and_its_room_mate_loses_nothing() {
    let server = server().await;
    let addr = server.local_addr();
    let mut calm = ws_open(addr, "/rl/room").await.unwrap();
    // Joined: its own messages come back through the room.
    for i in 0..5 {
        calm.send(Message::text(format!("b{i}"))).await.unwrap();
    }
    for i in 0..5 {
        assert_eq!(
            next_text(&mut calm).await.as_deref(),
            Some(&*format!("b{i}"))
        );
    }
    let mut flood = ws_open(addr, "/rl/room").await.unwrap();
    for i in 0..500 {
        if flood.feed(Message::text(format!("a{i}"))).await.is_err() {
            break;
        }
    }
    let _ = flood.flush().await;
    assert_eq!(
        close_code(&mut flood).await,
        Some(1008),
        "the flooder is closed with 1008"
    );
    // Its handler has broadcast what it accepted once its connection is gone.
    let hub = server.service().websocket_hub().clone();
    tokio::time::timeout(TIMEOUT, async {
        while hub.stats().connections_active > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the flooder's connection ends");

    // Everything broadcast reaches the calm client, and it is still served.
    calm.send(Message::text("final")).await.unwrap();
    let mut from_flood = 0;
    loop {
        let text = next_text(&mut calm)
            .await
            .expect("the calm client stays open");
        if text == "final" {
            break;
        }
        assert!(text.starts_with('a'), "{text}");
        assert_eq!(text, format!("a{from_flood}"), "in order, none missing");
        from_flood += 1;
    }
    let broadcasts = BROADCASTS.load(Ordering::SeqCst);
    assert_eq!(
        from_flood + 6,
        broadcasts,
        "the calm client got every broadcast"
    );
    assert!(
        (20..100).contains(&from_flood),
        "the burst (20) and little more passed: {from_flood}"
    );

    let stats = server.service().websocket_hub().stats();
    assert_eq!(stats.rate_limit_closes, 1);
    assert!(stats.messages_rate_limited >= 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn drop_mode_drops_the_excess_and_keeps_the_connection() {
    let server = server().await;
    let mut ws = ws_open(server.local_addr(), "/rl/drop").await.unwrap();
    for i in 0..12 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    for i in 0..5 {
        assert_eq!(next_text(&mut ws).await.as_deref(), Some(&*format!("m{i}")));
    }
    let hub = server.service().websocket_hub().clone();
    tokio::time::timeout(TIMEOUT, async {
        while hub.stats().messages_rate_limited < 7 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("7 messages dropped");
    // Still open: a ping (not a message under the limit) is answered.
    ws.send(Message::Ping(b"still there".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Pong(data) => {
                assert_eq!(&data[..], b"still there");
                break;
            }
            Message::Text(t) => panic!("a dropped message was delivered: {t}"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
    let stats = hub.stats();
    assert_eq!(
        (stats.messages_rate_limited, stats.rate_limit_closes),
        (7, 0)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn n_plus_one_connections_inside_the_window_get_429_with_retry_after_before_the_guard() {
    let server = server().await;
    let addr = server.local_addr();
    let before = GUARD_RUNS.load(Ordering::SeqCst);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(ws_open(addr, "/rl/few").await.expect("within the limit"));
    }
    let Err(refused) = ws_open(addr, "/rl/few").await else {
        panic!("the 4th is refused");
    };
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "Retry-After: {retry}"); // one token per 20 s
    assert_eq!(
        GUARD_RUNS.load(Ordering::SeqCst) - before,
        3,
        "the guard never saw the 4th"
    );
    // Closing one does not give a new-connection token back (that is `concurrent`).
    drop(open.pop());
    assert_eq!(
        ws_open(addr, "/rl/few")
            .await
            .err()
            .map(|r| r.status().as_u16()),
        Some(429)
    );
    // A foreign Origin is refused 403 first, even past the limit.
    let mut request = format!("ws://{addr}/rl/few").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let stats = server.service().rate_limit_stats();
    assert_eq!(stats.refused_rate, 2);
    assert_eq!(stats.tracked_addresses, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_sse_streams_per_address_are_bounded_until_one_ends() {
    use http_body_util::BodyExt;
    let server = server().await;
    let addr = server.local_addr();
    let open_stream = || async move {
        let req = http::Request::get("/rl/events")
            .header("host", addr.to_string())
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        common::send(addr, req).await
    };
    let mut first = open_stream().await;
    assert_eq!(first.status(), 200);
    let chunk = tokio::time::timeout(TIMEOUT, first.body_mut().frame())
        .await
        .unwrap();
    assert!(chunk.is_some(), "the stream is live");
    let second = open_stream().await;
    assert_eq!(second.status(), 200);
    let third = open_stream().await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    // The first stream ends (its body, which held the permit, is dropped by the server).
    tokio::time::timeout(TIMEOUT, first.into_body().collect())
        .await
        .expect("the stream ends")
        .unwrap();
    let reopened = tokio::time::timeout(TIMEOUT, async {
        loop {
            let res = open_stream().await;
            if res.status() == 200 {
                return res;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a slot frees once a stream ends");
    drop((second, reopened));
    assert!(server.service().rate_limit_stats().refused_concurrent >= 1);
    server.shutdown().await.unwrap();
}

mod app_wide {
    use super::*;

    /// Refuses requests without `x-key: yes`; `#[use_guards]` on the struct.
    #[injectable]
    #[derive(Clone, Default)]
    pub(crate) struct KeyGuard;

    impl Guard for KeyGuard {
        async fn check(&self, head: &mut RequestHead) -> Result<(), Refusal> {
            if head.header("x-key") != Some("yes") {
                return Err(Refusal::unauthorized("no key"));
            }
            head.extensions_mut().insert(Auth("keyed".to_string()));
            Ok(())
        }
    }

    #[controller("/app")]
    #[use_guards(KeyGuard)]
    pub(crate) struct Guarded;

    #[controller]
    impl Guarded {
        #[websocket("/ws")]
        async fn ws(&self, user: Auth<String>, mut socket: WebSocket) -> Result<(), Error> {
            socket.send_text(format!("hello {}", user.0)).await
        }
    }

    #[module(controllers: [Guarded])]
    pub(crate) struct GuardedModule;
}

#[tokio::test]
async fn app_wide_limit_and_guards_on_the_controller_struct() {
    let server = App::new()
        .rate_limit(ConnectionLimit::per_ip(
            2,
            std::time::Duration::from_secs(60),
        ))
        .module::<app_wide::GuardedModule>()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    // The struct's guard refuses without the key: 401, no upgrade (counts for the limit).
    assert_eq!(
        ws_open(addr, "/app/ws")
            .await
            .err()
            .map(|r| r.status().as_u16()),
        Some(401)
    );
    let mut request = format!("ws://{addr}/app/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-key", "yes".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request.clone())
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("hello keyed"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    assert_eq!(server.service().rate_limit_stats().refused_rate, 1);
    server.shutdown().await.unwrap();
}

/// The status code of a `POST {"query": "{ hello }"}` to `path` (one request per
/// connection), and whether the answer carried `Retry-After`.
async fn graphql_post(addr: SocketAddr, path: &str) -> (u16, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"query":"{ hello }"}"#;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(&answer).expect("an HTTP response");
    let retry_after = response
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("retry-after"));
    (response.code.expect("a status"), retry_after)
}

/// `App::rate_limit` also holds for a hand-written `ws_route::websocket` route and for an
/// `App::graphql` path: past the limit, `429` with `Retry-After`, before any upgrade or
/// GraphQL execution.
#[tokio::test]
async fn the_app_limit_covers_hand_written_websocket_routes_and_graphql_paths() {
    use armature_realtime::graphql::GraphQL;
    use armature_realtime::ws_route;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    let limit = || ConnectionLimit::per_ip(2, std::time::Duration::from_secs(60));
    let plain = App::new()
        .rate_limit(limit())
        .get("/plain", |head| {
            ws_route::websocket(head, |pending, _head| async move {
                let mut socket = pending.accept().await?;
                socket.send_text("hi").await?;
                while let Some(Ok(_)) = socket.recv().await {}
                Ok(())
            })
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = plain.local_addr();
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut ws = ws_open(addr, "/plain").await.expect("admitted");
        assert_eq!(next_text(&mut ws).await.as_deref(), Some("hi"));
        open.push(ws);
    }
    let Err(refused) = ws_open(addr, "/plain").await else {
        panic!("the third connection inside the window was admitted");
    };
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(plain.service().rate_limit_stats().refused_rate, 1);
    drop(open);
    plain.shutdown().await.unwrap();

    struct Query;
    #[Object]
    impl Query {
        async fn hello(&self) -> &'static str {
            "world"
        }
    }
    let graphql = App::new()
        .rate_limit(limit())
        .graphql(
            "/gql",
            GraphQL::new(Schema::new(Query, EmptyMutation, EmptySubscription)),
        )
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = graphql.local_addr();
    assert_eq!(graphql_post(addr, "/gql").await, (200, false));
    assert_eq!(graphql_post(addr, "/gql").await, (200, false));
    assert_eq!(graphql_post(addr, "/gql").await, (429, true));
    assert_eq!(graphql.service().rate_limit_stats().refused_rate, 1);
    graphql.shutdown().await.unwrap();
}
