//! Clients that vanish with a TCP reset (`SO_LINGER` 0) in the middle of a frame or of the
//! close handshake: no panic, the connection leaves every room, the hub's live count returns
//! to zero, and other clients keep being served.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use armature_ws::WebSocketConfig;

const ROOMS: [&str; 3] = ["r1", "r2", "r3"];

/// Joins `/join/r1,r2,r3` over raw TCP; returns the stream, buffered bytes and the id.
async fn join_rooms(server: &TestServer) -> (TcpStream, Vec<u8>, String) {
    let (mut stream, mut pending) = raw_connect(server.addr, "/join/r1,r2,r3", &[]).await;
    let (opcode, payload) = read_server_frame(&mut stream, &mut pending)
        .await
        .expect("joined line");
    assert_eq!(opcode, 0x1);
    let line = String::from_utf8(payload).unwrap();
    let id = line
        .strip_prefix("joined ")
        .expect("joined line")
        .to_owned();
    for room in ROOMS {
        assert!(
            server.manager.room(room).contains(&id),
            "{id} not in {room}"
        );
    }
    (stream, pending, id)
}

/// Resets the connection: `SO_LINGER` 0, then close, so the kernel sends RST.
fn reset(stream: TcpStream) {
    stream.set_zero_linger().unwrap();
    drop(stream);
}

/// After the resets: no member left in any room, no live connection, and a room broadcast
/// still reaches a fresh member.
async fn assert_nothing_left(server: &TestServer) {
    eventually("every connection gone", || {
        server.hub.connection_count() == 0
    })
    .await;
    eventually("every room empty", || {
        ROOMS
            .iter()
            .all(|room| server.manager.room(room).is_empty())
    })
    .await;
    let mut client = server.connect("/room/r1").await;
    joined(&mut client).await;
    client.send(Message::text("after")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("after"));
    assert_eq!(server.manager.room("r1").len(), 1);
}

#[tokio::test]
async fn reset_in_the_middle_of_a_frame_leaves_every_room() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, _, _) = join_rooms(&server).await;
    // A frame announcing 1,000 bytes, of which 10 arrive.
    let frame = client_frame(0x2, true, &[9u8; 1000]);
    stream.write_all(&frame[..18]).await.unwrap();
    reset(stream);
    assert_nothing_left(&server).await;
}

#[tokio::test]
async fn reset_in_the_middle_of_a_frame_header_leaves_every_room() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, _, _) = join_rooms(&server).await;
    stream.write_all(&[0x82, 0xFE, 0x10]).await.unwrap(); // 16-bit length cut in half
    reset(stream);
    assert_nothing_left(&server).await;
}

#[tokio::test]
async fn reset_after_sending_close_before_the_reply_leaves_every_room() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, _, _) = join_rooms(&server).await;
    stream
        .write_all(&client_frame(0x8, true, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    reset(stream);
    assert_nothing_left(&server).await;
}

#[tokio::test]
async fn reset_in_the_middle_of_a_close_frame_leaves_every_room() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, _, _) = join_rooms(&server).await;
    let close = client_frame(0x8, true, b"\x03\xe8going away");
    stream.write_all(&close[..9]).await.unwrap();
    reset(stream);
    assert_nothing_left(&server).await;
}

#[tokio::test]
async fn reset_while_the_server_waits_for_the_close_reply_leaves_every_room() {
    // The server starts the close handshake (a protocol error: 1002), the client resets
    // instead of answering.
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending, _) = join_rooms(&server).await;
    stream
        .write_all(&masked_frame(0x1, true, b"unmasked", None))
        .await
        .unwrap();
    let (opcode, payload) = read_server_frame(&mut stream, &mut pending)
        .await
        .expect("the server's close");
    assert_eq!((opcode, &payload[..2]), (0x8, &1002u16.to_be_bytes()[..]));
    reset(stream);
    assert_nothing_left(&server).await;
}

#[tokio::test]
async fn many_resets_at_every_point_while_broadcasts_flow_leak_nothing() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    // A listener in r1 receives broadcasts throughout.
    let mut listener = server.connect("/room/r1").await;
    let listener_id = joined(&mut listener).await;
    let mut sender = server.connect("/room/r2").await;
    joined(&mut sender).await;
    let frame = client_frame(0x1, true, &[b'x'; 300]);
    let close = client_frame(0x8, true, &1000u16.to_be_bytes());
    for i in 0..200usize {
        let (mut stream, _, _) = join_rooms(&server).await;
        // Cut at a different point each time: inside a data frame, between frames, inside
        // a close frame, after it.
        let mut wire = frame.clone();
        wire.extend_from_slice(&close);
        let cut = (i * 37) % (wire.len() + 1);
        stream.write_all(&wire[..cut]).await.unwrap();
        reset(stream);
        if i % 20 == 0 {
            let _ = server
                .manager
                .room("r1")
                .broadcast_text(format!("tick {i}"))
                .await;
        }
    }
    // The listener got every tick, in order, and the room sized back to it alone.
    for i in (0..200).step_by(20) {
        loop {
            let message = next_data(&mut listener).await;
            let text = message.to_text().unwrap().to_owned();
            if text.starts_with("tick ") {
                assert_eq!(text, format!("tick {i}"));
                break;
            }
        }
    }
    sender.close(None).await.unwrap();
    assert_eq!(close_code(&mut sender).await, Some(1000));
    listener.close(None).await.unwrap();
    assert_eq!(close_code(&mut listener).await, Some(1000));
    let _ = listener_id;
    assert_nothing_left(&server).await;
}
