//! Broadcast bursts over real sockets: what a handler broadcasts in one poll is delivered as
//! one run per member (see `burst.rs`), and every guarantee of a single broadcast holds —
//! every member gets every frame once and in order, what the handler broadcasts and then
//! sends arrives in that order, and a handler that returns or panics after broadcasting
//! still delivers what it broadcast.

mod common;

use std::sync::Arc;
use std::time::Duration;

use armature_ws::{
    Hub, WebSocket, WebSocketConfig, WebSocketManager, WebSocketMessage, WebSocketRoom,
    WebSocketUpgrade, serve,
};
use bytes::Bytes;
use common::{Client, WAIT, close_code, next_data, send_text};
use http_body_util::Full;
use tokio_tungstenite::tungstenite::Message;

struct Rooms {
    a: Arc<WebSocketRoom>,
    b: Arc<WebSocketRoom>,
}

async fn start() -> (std::net::SocketAddr, Arc<Rooms>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let manager = WebSocketManager::new();
    let rooms = Arc::new(Rooms {
        a: manager.get_or_create_room("a").await,
        b: manager.get_or_create_room("b").await,
    });
    let routes = rooms.clone();
    tokio::spawn(serve(
        listener,
        Hub::new(WebSocketConfig::default()),
        move |mut req| {
            let rooms = routes.clone();
            async move {
                let path = req.uri().path().to_owned();
                match WebSocketUpgrade::from_request(&mut req) {
                    Ok(upgrade) => upgrade.on_upgrade(move |socket| route(path, socket, rooms)),
                    Err(rejection) => rejection.into_response::<Full<Bytes>>(),
                }
            }
        },
        std::future::pending::<()>(),
    ));
    (addr, rooms)
}

async fn route(path: String, mut socket: WebSocket, rooms: Arc<Rooms>) {
    let id = socket.id().to_owned();
    rooms.a.join(id.clone(), socket.connection()).unwrap();
    if path == "/both" {
        rooms.b.join(id.clone(), socket.connection()).unwrap();
    }
    let _ = socket.send_text("joined").await;
    while let Some(Ok(message)) = socket.recv().await {
        let Some(text) = message.as_text().map(str::to_owned) else {
            continue;
        };
        let (command, n) = text.split_once(' ').unwrap_or((&text, "0"));
        let n: usize = n.parse().unwrap_or(0);
        match command {
            // n broadcasts to room a in one go, then a message to the sender alone.
            "burst" => {
                for i in 0..n {
                    let _ = rooms.a.broadcast_text(format!("a{i}")).await;
                }
                let _ = socket.send_text("end").await;
            }
            // Alternating between the two rooms.
            "alternate" => {
                for i in 0..n {
                    let room = if i % 2 == 0 { &rooms.a } else { &rooms.b };
                    let _ = room.broadcast_text(format!("x{i}")).await;
                }
                let _ = socket.send_text("end").await;
            }
            // Everyone but the sender, then everyone.
            "except" => {
                for i in 0..n {
                    let _ = rooms
                        .a
                        .broadcast_except(&id, WebSocketMessage::text(format!("e{i}")))
                        .await;
                }
                let _ = rooms.a.broadcast_text("all").await;
            }
            // Slow: awaits between broadcasts (each poll delivers what it broadcast).
            "slow" => {
                for i in 0..n {
                    let _ = rooms.a.broadcast_text(format!("s{i}")).await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let _ = socket.send_text("end").await;
            }
            "return" => {
                for i in 0..n {
                    let _ = rooms.a.broadcast_text(format!("r{i}")).await;
                }
                return;
            }
            "panic" => {
                for i in 0..n {
                    let _ = rooms.a.broadcast_text(format!("p{i}")).await;
                }
                panic!("the handler panicked after a burst");
            }
            _ => {}
        }
    }
}

async fn connect(addr: std::net::SocketAddr, path: &str) -> Client {
    let (mut client, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}{path}")),
    )
    .await
    .expect("connect timed out")
    .expect("connect failed");
    assert_eq!(text(&mut client).await, "joined");
    client
}

async fn text(client: &mut Client) -> String {
    match tokio::time::timeout(WAIT, next_data(client))
        .await
        .expect("no message in time")
    {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn expect_seq(client: &mut Client, prefix: &str, n: usize) {
    for i in 0..n {
        assert_eq!(text(client).await, format!("{prefix}{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_every_member_once_in_order_and_before_what_follows() {
    let (addr, rooms) = start().await;
    let mut publisher = connect(addr, "/").await;
    let mut members = Vec::new();
    for _ in 0..20 {
        members.push(connect(addr, "/").await);
    }
    assert_eq!(rooms.a.len(), 21);
    // 300 frames: more than one run holds (256), so runs are cut and still in order.
    send_text(&mut publisher, "burst 300").await;
    expect_seq(&mut publisher, "a", 300).await;
    assert_eq!(
        text(&mut publisher).await,
        "end",
        "the direct send comes after"
    );
    for member in &mut members {
        expect_seq(member, "a", 300).await;
    }
    // A second burst: nothing of the first is repeated.
    send_text(&mut publisher, "burst 3").await;
    expect_seq(&mut publisher, "a", 3).await;
    assert_eq!(text(&mut publisher).await, "end");
    for member in &mut members {
        expect_seq(member, "a", 3).await;
    }
}

#[tokio::test]
async fn broadcasts_to_two_rooms_keep_their_interleaving() {
    let (addr, _rooms) = start().await;
    let mut both = connect(addr, "/both").await;
    let mut only_a = connect(addr, "/").await;
    send_text(&mut both, "alternate 40").await;
    for i in 0..40 {
        assert_eq!(text(&mut both).await, format!("x{i}"));
    }
    assert_eq!(text(&mut both).await, "end");
    for i in (0..40).step_by(2) {
        assert_eq!(text(&mut only_a).await, format!("x{i}"));
    }
}

#[tokio::test]
async fn broadcast_except_in_a_burst_skips_only_the_sender() {
    let (addr, _rooms) = start().await;
    let mut sender = connect(addr, "/").await;
    let mut other = connect(addr, "/").await;
    send_text(&mut sender, "except 10").await;
    assert_eq!(text(&mut sender).await, "all", "none of the e-frames");
    expect_seq(&mut other, "e", 10).await;
    assert_eq!(text(&mut other).await, "all");
}

#[tokio::test]
async fn a_handler_that_awaits_between_broadcasts_delivers_each_at_once() {
    let (addr, _rooms) = start().await;
    let mut publisher = connect(addr, "/").await;
    let mut member = connect(addr, "/").await;
    send_text(&mut publisher, "slow 5").await;
    // The first arrives while the handler still sleeps between the others.
    assert_eq!(text(&mut member).await, "s0");
    expect_seq(&mut publisher, "s", 5).await;
    assert_eq!(text(&mut publisher).await, "end");
    for i in 1..5 {
        assert_eq!(text(&mut member).await, format!("s{i}"));
    }
}

/// A publisher and a member; the publisher sends `command 8`, after which its handler ends
/// (`return` or `panic`): both get the 8 frames, then the publisher's close code.
async fn a_burst_then_the_handler_ends(command: &str, prefix: &str, code: u16) {
    let (addr, _rooms) = start().await;
    let mut publisher = connect(addr, "/").await;
    let mut member = connect(addr, "/").await;
    send_text(&mut publisher, &format!("{command} 8")).await;
    expect_seq(&mut publisher, prefix, 8).await;
    assert_eq!(close_code(&mut publisher).await, Some(code));
    expect_seq(&mut member, prefix, 8).await;
}

#[tokio::test]
async fn a_handler_that_returns_after_a_burst_delivers_it_then_closes_normally() {
    a_burst_then_the_handler_ends("return", "r", 1000).await;
}

#[tokio::test]
async fn a_handler_that_panics_after_a_burst_delivers_it_then_closes_with_1011() {
    a_burst_then_the_handler_ends("panic", "p", 1011).await;
}
