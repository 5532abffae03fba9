//! The decorators end to end, over real sockets: a module with a shared service, a
//! WebSocket controller with path/query/header arguments and a refusal before the upgrade,
//! and an SSE controller; tokio-tungstenite and a streaming HTTP client are the peers.

mod common;

use armature_realtime::prelude::*;
use common::{TIMEOUT, get, send};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

#[injectable]
#[derive(Clone)]
struct ChatService {
    manager: Arc<WebSocketManager>,
}

impl Default for ChatService {
    fn default() -> Self {
        Self {
            manager: Arc::new(WebSocketManager::new()),
        }
    }
}

impl ChatService {
    async fn get_room(&self, name: &str) -> Arc<WebSocketRoom> {
        self.manager.get_or_create_room(name).await
    }
}

#[injectable]
#[derive(Clone)]
struct Feed {
    broadcaster: Arc<SseBroadcaster>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            broadcaster: Arc::new(SseBroadcaster::new()),
        }
    }
}

#[controller("/ws")]
struct ChatController {
    chat: ChatService,
    feed: Feed,
}

#[controller]
impl ChatController {
    /// Joins `:room` as `?name=`, relays texts to the room as "name: text".
    #[websocket("/chat/:room")]
    async fn chat(
        &self,
        room: String,
        #[query] name: Option<String>,
        mut socket: WebSocket,
    ) -> Result<(), Error> {
        let name = name.unwrap_or_else(|| "anon".into());
        let room = self.chat.get_room(&room).await;
        room.add_connection(socket.id(), socket.connection())
            .await?;
        socket
            .send_text(format!(
                "joined {} ({})",
                room.name(),
                room.connection_count().await
            ))
            .await?;
        while let Some(Ok(message)) = socket.recv().await {
            if let WebSocketMessage::Text(text) = message {
                let line = format!("{name}: {}", text.as_str());
                room.broadcast_text(line.clone()).await?;
                self.feed
                    .broadcaster
                    .broadcast(ServerSentEvent::with_event("chat".into(), line))
                    .await?;
            }
        }
        Ok(())
    }

    /// Refuses without the right `Authorization` header, before any upgrade.
    #[websocket("/secure")]
    async fn secure(
        &self,
        #[header] authorization: Option<String>,
        upgrade: PendingUpgrade,
    ) -> Result<(), Error> {
        if authorization.as_deref() != Some("Bearer sesame") {
            return Err(Error::Http {
                status: 401,
                reason: "missing or bad token".into(),
            });
        }
        let mut socket = upgrade.protocols(["chat.v2", "chat.v1"]).accept().await?;
        let protocol = socket.protocol().unwrap_or("none").to_owned();
        socket.send_text(format!("welcome ({protocol})")).await
    }
}

/// The guide's "validate on connection", with the whole request head.
fn validate_connection(req: &RequestHead) -> Result<String, Error> {
    let token = req.header("authorization").ok_or(Error::Http {
        status: 401,
        reason: "no token".into(),
    })?;
    token
        .strip_prefix("Bearer user-")
        .map(str::to_owned)
        .ok_or(Error::Http {
            status: 403,
            reason: "bad token".into(),
        })
}

#[controller("/guarded")]
struct GuardedController;

#[controller]
impl GuardedController {
    #[websocket("/ws")]
    async fn ws(&self, head: &RequestHead, upgrade: PendingUpgrade) -> Result<(), Error> {
        let user = validate_connection(head)?;
        let mut socket = upgrade.accept().await?;
        socket
            .send_text(format!("hello {user} via {}", head.uri().path()))
            .await
    }

    #[sse("/events")]
    async fn events(
        &self,
        head: &RequestHead,
    ) -> Result<impl futures_util::Stream<Item = ServerSentEvent> + Send, Error> {
        let user = validate_connection(head)?;
        Ok(futures_util::stream::iter(vec![ServerSentEvent::new(user)]))
    }
}

#[controller("/admin")]
struct AdminController {
    chat: ChatService,
}

#[controller]
impl AdminController {
    /// Announces to a room from another controller: proves the service is shared.
    #[sse("/announce/:room")]
    async fn announce(
        &self,
        room: String,
        #[query("text")] text: String,
    ) -> Result<EventStream<futures_util::stream::Iter<std::vec::IntoIter<ServerSentEvent>>>, Error>
    {
        let room = self.chat.get_room(&room).await;
        let delivered = room.connection_count().await;
        room.broadcast_text(format!("admin: {text}")).await?;
        Ok(EventStream::new(futures_util::stream::iter(vec![
            ServerSentEvent::with_event("delivered".into(), delivered.to_string()),
        ])))
    }
}

#[controller("/events")]
struct EventsController {
    feed: Feed,
}

#[controller]
impl EventsController {
    #[sse("/chat")]
    async fn chat_events(
        &self,
        #[header("last-event-id")] last: Option<String>,
    ) -> ReceiverStream<Result<String, Error>> {
        self.feed.broadcaster.register_from(last.as_deref())
    }

    #[sse("/count/:n")]
    async fn count(&self, n: u32) -> impl futures_util::Stream<Item = ServerSentEvent> + Send {
        futures_util::stream::iter((1..=n).map(|i| ServerSentEvent::new(i.to_string())))
    }
}

#[module(
    providers: [ChatService, Feed],
    controllers: [ChatController, AdminController, EventsController, GuardedController]
)]
struct AppModule;

async fn start() -> armature_realtime::RunningServer {
    App::new()
        .module::<AppModule>()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: String) -> Client {
    let (ws, response) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

async fn next_text(ws: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("message in time")
            .expect("stream open")
            .unwrap();
        if let tungstenite::Message::Text(text) = msg {
            return text.to_string();
        }
    }
}

#[tokio::test]
async fn chat_rooms_over_decorated_controller() {
    let server = start().await;
    let addr = server.local_addr();
    let mut ada = connect(format!("ws://{addr}/ws/chat/rust%20fans?name=ada")).await;
    assert_eq!(next_text(&mut ada).await, "joined rust fans (1)");
    let mut bob = connect(format!("ws://{addr}/ws/chat/rust%20fans?name=bob")).await;
    assert_eq!(next_text(&mut bob).await, "joined rust fans (2)");
    let mut eve = connect(format!("ws://{addr}/ws/chat/other")).await;
    assert_eq!(next_text(&mut eve).await, "joined other (1)");

    ada.send(tungstenite::Message::text("hello")).await.unwrap();
    assert_eq!(next_text(&mut ada).await, "ada: hello");
    assert_eq!(next_text(&mut bob).await, "ada: hello");

    // Another controller's ChatService is the same instance: its broadcast reaches both.
    let (status, body) = get(addr, "/admin/announce/rust%20fans?text=hi+all").await;
    assert_eq!(status, 200);
    assert_eq!(body, "event: delivered\ndata: 2\n\n");
    assert_eq!(next_text(&mut bob).await, "admin: hi all");
    assert_eq!(next_text(&mut ada).await, "admin: hi all");

    // The other room saw nothing: its next message is its own echo.
    eve.send(tungstenite::Message::text("anyone?"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut eve).await, "anon: anyone?");
    drop((ada, bob, eve));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusal_before_upgrade_and_bad_requests() {
    let server = start().await;
    let addr = server.local_addr();

    // No token: 401 with the handler's reason, and no upgrade.
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/secure"))
        .await
        .unwrap_err();
    match err {
        tungstenite::Error::Http(res) => {
            assert_eq!(res.status(), 401);
            assert_eq!(res.body().as_deref(), Some(&b"missing or bad token"[..]));
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }

    let mut req = format!("ws://{addr}/ws/secure")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer sesame".parse().unwrap());
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "chat.v1, chat.v3".parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    assert_eq!(next_text(&mut ws).await, "welcome (chat.v1)");

    // A plain GET on a WebSocket route is not an upgrade: 400 from the handshake check.
    assert_eq!(get(addr, "/ws/chat/x").await.0, 400);
    // A path parameter that does not parse: 400 naming it.
    let (status, body) = get(addr, "/events/count/many").await;
    assert_eq!(status, 400);
    assert!(body.contains("path parameter `n`"), "{body}");
    // A missing required query parameter: 400.
    let (status, body) = get(addr, "/admin/announce/r").await;
    assert_eq!(status, 400);
    assert!(body.contains("query parameter `text` is missing"), "{body}");
    drop(ws);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn handlers_can_read_the_whole_request_head() {
    let server = start().await;
    let addr = server.local_addr();
    assert_eq!(get(addr, "/guarded/events").await, (401, "no token".into()));
    let bad = [("authorization", "Basic x")];
    assert_eq!(
        common::get_with(addr, "/guarded/events", &bad).await,
        (403, "bad token".into())
    );
    let good = [("authorization", "Bearer user-ada")];
    assert_eq!(
        common::get_with(addr, "/guarded/events", &good).await,
        (200, "data: ada\n\n".into())
    );

    let mut req = format!("ws://{addr}/guarded/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer user-bob".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "hello bob via /guarded/ws");
    match tokio_tungstenite::connect_async(format!("ws://{addr}/guarded/ws")).await {
        Err(tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|r| r.1)),
    }
    drop(ws);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sse_routes_stream_and_resume() {
    let server = start().await;
    let addr = server.local_addr();

    let (status, body) = get(addr, "/events/count/3").await;
    assert_eq!(status, 200);
    assert_eq!(body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");

    // A live subscription sees chat lines as `chat` events.
    let res = send(
        addr,
        http::Request::get("/events/chat")
            .body(Empty::new())
            .unwrap(),
    )
    .await;
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body();
    let mut ws = connect(format!("ws://{addr}/ws/chat/lobby?name=cy")).await;
    next_text(&mut ws).await;
    ws.send(tungstenite::Message::text("ping")).await.unwrap();
    let frame = tokio::time::timeout(TIMEOUT, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert_eq!(text, "event: chat\ndata: cy: ping\n\n");

    // Shutdown ends the endless stream cleanly.
    drop(ws);
    tokio::time::timeout(TIMEOUT, server.shutdown())
        .await
        .unwrap()
        .unwrap();
    let rest = tokio::time::timeout(TIMEOUT, body.collect()).await.unwrap();
    assert!(rest.is_ok());
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001() {
    let server = start().await;
    let addr = server.local_addr();
    let mut ws = connect(format!("ws://{addr}/ws/chat/room?name=z")).await;
    assert_eq!(next_text(&mut ws).await, "joined room (1)");
    let reader = tokio::spawn(async move {
        loop {
            match tokio::time::timeout(TIMEOUT, ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(tungstenite::Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    });
    tokio::time::timeout(TIMEOUT, server.shutdown())
        .await
        .expect("shutdown in time")
        .unwrap();
    let code = reader.await.unwrap();
    assert_eq!(
        code,
        Some(tungstenite::protocol::frame::coding::CloseCode::Away)
    );
}
