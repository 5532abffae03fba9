//! Logout across nodes: one `close_user` call closes every WebSocket of that user on this
//! node and on another node, through a private `redis-server` (a `CloseUser` envelope on
//! the users channel), and leaves other users' connections alone.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use armature_realtime::guard::Guard;
use armature_realtime::prelude::*;
use armature_realtime_redis::{RedisConfig, RedisRealtime};
use futures_util::{SinkExt, StreamExt};
use support::{RedisServer, WAIT};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Admits the user named in `x-user` (a stand-in for the JWT guard: it sets the `UserId`
/// the connection is registered under).
#[injectable]
#[derive(Clone, Default)]
struct HeaderUser;

impl Guard for HeaderUser {
    async fn check(&self, head: &mut RequestHead) -> Result<(), Refusal> {
        let user = head
            .header("x-user")
            .ok_or_else(|| Refusal::unauthorized("who are you"))?
            .to_owned();
        head.extensions_mut().insert(UserId(user));
        Ok(())
    }
}

#[controller("/")]
struct Echo;

#[controller]
#[use_guards(HeaderUser)]
impl Echo {
    #[websocket("/ws")]
    async fn ws(&self, mut socket: WebSocket) -> Result<(), Error> {
        while let Some(Ok(message)) = socket.recv().await {
            if message.is_text() {
                socket.send(message).await?;
            }
        }
        Ok(())
    }
}

#[module(controllers: [Echo])]
struct EchoModule;

/// One node: an app, and its Redis node closing users through the app's sessions.
async fn node(redis: &RedisServer, id: &str) -> (armature_realtime::RunningServer, RedisRealtime) {
    let realtime = RedisRealtime::connect(RedisConfig::new(redis.url()).node_id(id))
        .await
        .unwrap();
    let server = App::new()
        .module::<EchoModule>()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let app = server.service().clone();
    realtime.on_close_user(move |user, _reason| app.close_user(user));
    assert!(realtime.wait_synced(WAIT).await, "{id} subscribed");
    (server, realtime)
}

async fn connect(addr: SocketAddr, user: &str) -> Client {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-user", user.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    echo(&mut ws).await;
    ws
}

/// One round trip: the connection is open and registered.
async fn echo(ws: &mut Client) {
    ws.send(Message::text("ping?")).await.unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "ping?"),
        other => panic!("expected the echo, got {other:?}"),
    }
}

async fn close_code(ws: &mut Client) -> Option<(u16, String)> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return None,
        }
    }
}

#[tokio::test]
async fn logout_closes_every_connection_of_the_user_on_both_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (server_a, node_a) = node(&redis, "logout-a-").await;
    let (server_b, node_b) = node(&redis, "logout-b-").await;
    let mut alice_a1 = connect(server_a.local_addr(), "alice").await;
    let mut alice_a2 = connect(server_a.local_addr(), "alice").await;
    let mut alice_b = connect(server_b.local_addr(), "alice").await;
    let mut bob_b = connect(server_b.local_addr(), "bob").await;
    assert_eq!(server_b.service().sessions().count("alice"), 1);

    // Logout on node A: its two connections at once, node B's through Redis.
    assert_eq!(node_a.close_user("alice", "logged out"), 2);
    let logged_out = Some((1008, "logged out".to_string()));
    assert_eq!(close_code(&mut alice_a1).await, logged_out);
    assert_eq!(close_code(&mut alice_a2).await, logged_out);
    assert_eq!(
        close_code(&mut alice_b).await,
        logged_out,
        "the other node's too"
    );

    // Bob, on node B, is untouched.
    echo(&mut bob_b).await;
    assert_eq!(server_b.service().sessions().count("bob"), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server_b.service().sessions().count("alice"), 0);
    assert!(node_b.stats().delivered >= 1, "{:?}", node_b.stats());

    server_a.shutdown().await.unwrap();
    server_b.shutdown().await.unwrap();
}
