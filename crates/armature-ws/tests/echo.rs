//! Echo, control frames, fragmentation and the close handshake, with real sockets.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use armature_ws::WebSocketConfig;

#[tokio::test]
async fn echoes_text_and_binary_with_the_same_opcode() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/echo").await;
    client.send(Message::text("hello")).await.unwrap();
    client
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let big = "x".repeat(200_000);
    client.send(Message::text(big.clone())).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("hello"));
    assert_eq!(
        next_data(&mut client).await,
        Message::binary(vec![0u8, 1, 2, 255])
    );
    assert_eq!(next_data(&mut client).await, Message::text(big));
}

#[tokio::test]
async fn many_messages_in_flight_come_back_in_order() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/echo").await;
    for i in 0..500 {
        client.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    client.flush().await.unwrap();
    for i in 0..500 {
        assert_eq!(next_data(&mut client).await, Message::text(format!("m{i}")));
    }
}

#[tokio::test]
async fn client_ping_gets_a_pong_with_its_payload() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/echo").await;
    client
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, client.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::Pong(b"are you there".to_vec().into()));
}

#[tokio::test]
async fn fragmented_client_message_is_reassembled_with_a_ping_between_fragments() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &[]).await;
    let mut wire = client_frame(0x1, false, b"Hel");
    wire.extend(client_frame(0x9, true, b"p")); // a ping between fragments
    wire.extend(client_frame(0x0, false, b"lo, "));
    wire.extend(client_frame(0x0, true, "wörld".as_bytes()));
    for byte in wire.chunks(3) {
        stream.write_all(byte).await.unwrap(); // split anywhere
    }
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        Some((0xA, b"p".to_vec()))
    );
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        Some((0x1, "Hello, wörld".as_bytes().to_vec()))
    );
}

#[tokio::test]
async fn bytes_sent_right_behind_the_handshake_are_not_lost() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut early = client_frame(0x1, true, b"early");
    early.extend(client_frame(0x2, true, b"bird"));
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &early).await;
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        Some((0x1, b"early".to_vec()))
    );
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        Some((0x2, b"bird".to_vec()))
    );
}

#[tokio::test]
async fn close_code_round_trips_and_the_server_drops_tcp() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/echo").await;
    client
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, Some(4001));
    // After the handshake the server closes the TCP connection: the stream ends.
    let end = tokio::time::timeout(WAIT, client.next()).await.unwrap();
    assert!(matches!(end, None | Some(Err(_))), "{end:?}");
    eventually("the hub forgets the connection", || {
        server.hub.connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn close_without_code_is_answered_with_1000() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) =
        raw_connect(server.addr, "/echo", &client_frame(0x8, true, b"")).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1000));
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        None,
        "TCP closed"
    );
}

#[tokio::test]
async fn subprotocol_is_agreed_from_the_clients_list() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut request = server.url("/protocol").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v9, superchat, chat".parse().unwrap(),
    );
    let (mut client, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "superchat");
    assert_eq!(next_data(&mut client).await, Message::text("superchat"));
}

#[tokio::test]
async fn upgraded_connections_run_on_the_raw_tcp_stream() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/debug").await;
    let Message::Text(debug) = next_data(&mut client).await else {
        panic!("no text")
    };
    assert!(debug.as_str().contains("io: Tcp("), "{debug}");
}

#[tokio::test]
async fn from_stream_runs_on_any_byte_stream() {
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let hub = armature_ws::Hub::new(WebSocketConfig::default());
    let (server_end, client_end) = tokio::io::duplex(64 * 1024);
    let mut socket =
        armature_ws::WebSocket::from_stream(server_end, bytes::Bytes::new(), &hub).unwrap();
    assert_eq!(hub.connection_count(), 1);
    let server = tokio::spawn(async move {
        // The socket is also a `futures::Stream`.
        while let Some(Ok(message)) = socket.next().await {
            if message.is_text() {
                socket.send(message).await.unwrap();
            }
        }
    });
    let mut client = WebSocketStream::from_raw_socket(client_end, Role::Client, None).await;
    client.send(Message::text("over a pipe")).await.unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::text("over a pipe")
    );
    client.close(None).await.unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
    assert_eq!(hub.connection_count(), 0);
}

#[tokio::test]
async fn a_handler_that_returns_still_flushes_its_queue_then_closes_with_1000() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/hello-then-return").await;
    assert_eq!(next_data(&mut client).await, Message::text("hello"));
    assert_eq!(close_code(&mut client).await, Some(1000));
    eventually("connection gone", || server.hub.connection_count() == 0).await;

    let mut client = server.connect("/hello-bye").await;
    assert_eq!(
        close_code(&mut client).await,
        Some(1000),
        "nothing queued after the drop"
    );
}

#[tokio::test]
async fn a_handle_from_another_task_sends_and_closes_with_a_code() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/join/kick").await;
    let id = joined(&mut client).await;
    let handle = server.manager.room("kick").connection(&id).unwrap();
    assert_eq!(handle.id(), id);
    // The hub finds it by id too, without a room.
    let by_hub = server.hub.connection(&id).unwrap();
    assert!(by_hub.same_connection(&handle));
    assert!(server.hub.connection("not-an-id").is_none());
    tokio::spawn(async move {
        handle.send_text("you are being kicked").await.unwrap();
        handle.close(4003u16, "kicked").await.unwrap();
        assert!(handle.send_text("gone").await.unwrap_err().is_closed());
    })
    .await
    .unwrap();
    assert_eq!(
        next_data(&mut client).await,
        Message::text("you are being kicked")
    );
    assert_eq!(close_code(&mut client).await, Some(4003));
    eventually("left the room", || {
        !server.manager.room("kick").contains(&id)
    })
    .await;
}

/// A client that sends far more than the inbox holds in one write (a publisher's burst):
/// the handler takes them over several turns of the connection task (inbox of 4, 300
/// messages), and every echo comes back once, in order, with a room member of the same
/// connection's broadcasts interleaved correctly (current-thread runtime, as the bench
/// server runs).
#[tokio::test(flavor = "current_thread")]
async fn a_burst_larger_than_the_inbox_is_taken_over_several_turns_in_order() {
    const N: usize = 300;
    let server = TestServer::start(WebSocketConfig::default().inbox_capacity(4, 64 * 1024)).await;
    // A listener in the room, so each broadcast goes to two connections.
    let mut listener = server.connect("/room/burst").await;
    joined(&mut listener).await;
    let (mut publisher, mut pending) = raw_connect(server.addr, "/room/burst", &[]).await;
    let (_, joined_frame) = read_server_frame(&mut publisher, &mut pending)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&joined_frame).starts_with("joined "));
    let mut burst = Vec::new();
    for i in 0..N {
        burst.extend_from_slice(&client_frame(1, true, format!("m{i}").as_bytes()));
    }
    publisher.write_all(&burst).await.unwrap();
    for i in 0..N {
        let (opcode, payload) = read_server_frame(&mut publisher, &mut pending)
            .await
            .unwrap_or_else(|| panic!("publisher: no frame {i}"));
        assert_eq!((opcode, payload), (1, format!("m{i}").into_bytes()));
        assert_eq!(
            next_data(&mut listener).await,
            Message::text(format!("m{i}"))
        );
    }
}
