//! Heartbeat and idle timeout, with real sockets and the shared sweeper.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use armature_ws::WebSocketConfig;

fn fast_heartbeat() -> WebSocketConfig {
    WebSocketConfig::default()
        .ping_interval(Some(Duration::from_millis(200)))
        .pong_timeout(Duration::from_millis(400))
}

#[tokio::test]
async fn silent_peer_is_pinged_then_closed_and_leaves_its_rooms() {
    let server = TestServer::start(fast_heartbeat()).await;
    // A raw client that completes the handshake and then never answers anything.
    let (mut silent, mut pending) = raw_connect(server.addr, "/join/hb", &[]).await;
    let (opcode, joined_line) = read_server_frame(&mut silent, &mut pending).await.unwrap();
    assert_eq!(opcode, 0x1);
    let silent_id = String::from_utf8(joined_line)
        .unwrap()
        .replace("joined ", "");
    let room = server.manager.room("hb");
    assert!(room.contains(&silent_id));

    let mut saw_ping = false;
    let mut close = None;
    while let Some((opcode, payload)) = read_server_frame(&mut silent, &mut pending).await {
        match opcode {
            0x9 => saw_ping = true,
            0x8 => close = Some(u16::from_be_bytes([payload[0], payload[1]])),
            other => panic!("unexpected opcode {other}"),
        }
    }
    assert!(saw_ping, "the server pinged first");
    assert_eq!(close, Some(1011));
    assert_eq!(server.hub.stats().ping_timeouts, 1);
    eventually("left the room", || !room.contains(&silent_id)).await;
}

/// Pings often, but waits long for the answer: a loaded machine must not fail the test.
fn fast_pings_patient_pongs() -> WebSocketConfig {
    fast_heartbeat().pong_timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn peer_answering_pings_stays_connected() {
    let server = TestServer::start(fast_pings_patient_pongs()).await;
    let mut client = server.connect("/echo").await;
    // tokio-tungstenite answers pings while it is being read.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(next) = tokio::time::timeout_at(until, client.next()).await {
        match next {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 2, "pinged {pings} times");
    assert_eq!(server.hub.stats().ping_timeouts, 0);
    send_text(&mut client, "still here").await;
    assert_eq!(next_data(&mut client).await, Message::text("still here"));
}

#[tokio::test]
async fn idle_timeout_closes_with_1001_although_pings_are_answered() {
    let config = fast_pings_patient_pongs().idle_timeout(Some(Duration::from_millis(600)));
    let server = TestServer::start(config).await;
    let mut client = server.connect("/echo").await;
    assert_eq!(close_code(&mut client).await, Some(1001));
    assert_eq!(server.hub.stats().idle_closed, 1);
    eventually("connection gone", || server.hub.connection_count() == 0).await;
}

#[tokio::test]
async fn sweeper_restarts_after_the_hub_was_empty() {
    let server = TestServer::start(fast_heartbeat()).await;
    let mut first = server.connect("/echo").await;
    first.close(None).await.unwrap();
    eventually("first gone", || server.hub.connection_count() == 0).await;
    // Long enough for the sweeper to notice the hub is empty and stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut silent, mut pending) = raw_connect(server.addr, "/echo", &[]).await;
    assert_eq!(raw_close_code(&mut silent, &mut pending).await, Some(1011));
    assert_eq!(server.hub.stats().ping_timeouts, 1);
}
