//! Protocol errors, size limits, bad upgrades and the connection limit, with real sockets.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use armature_ws::WebSocketConfig;

#[tokio::test]
async fn oversize_message_is_closed_with_1009() {
    let server = TestServer::start(WebSocketConfig::default().max_message_size(1024)).await;
    let mut client = server.connect("/echo").await;
    client.send(Message::text("small")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("small"));
    let _ = client.send(Message::text("y".repeat(2000))).await;
    assert_eq!(close_code(&mut client).await, Some(1009));
    eventually("protocol error counted", || {
        server.hub.stats().protocol_errors == 1
    })
    .await;
}

#[tokio::test]
async fn oversize_fragmented_message_is_closed_with_1009() {
    let server = TestServer::start(WebSocketConfig::default().max_message_size(1000)).await;
    let mut wire = client_frame(0x2, false, &[1u8; 600]);
    wire.extend(client_frame(0x0, true, &[2u8; 600]));
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &wire).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1009));
}

#[tokio::test]
async fn invalid_utf8_is_closed_with_1007() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &[]).await;
    stream
        .write_all(&client_frame(0x1, true, &[0x68, 0xff, 0x69]))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1007));
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        None,
        "TCP closed"
    );
}

#[tokio::test]
async fn unmasked_client_frame_is_closed_with_1002() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &[]).await;
    stream
        .write_all(&masked_frame(0x1, true, b"hi", None))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1002));
}

#[tokio::test]
async fn reserved_opcode_is_closed_with_1002() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) =
        raw_connect(server.addr, "/echo", &client_frame(0x3, true, b"")).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1002));
}

#[tokio::test]
async fn bad_upgrade_requests_get_400_or_426_with_a_reason() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let addr = server.addr;
    let no_upgrade = raw_http(addr, &format!("GET /echo HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert!(no_upgrade.starts_with("HTTP/1.1 400"), "{no_upgrade}");
    let body = no_upgrade.split("\r\n\r\n").nth(1).unwrap();
    assert!(
        !body.is_empty() && body.len() < 200,
        "short reason: {body:?}"
    );

    let no_key = raw_http(
        addr,
        &format!(
            "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        ),
    )
    .await;
    assert!(no_key.starts_with("HTTP/1.1 400"), "{no_key}");

    let old_version = raw_http(
        addr,
        &format!(
            "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        ),
    )
    .await;
    assert!(old_version.starts_with("HTTP/1.1 426"), "{old_version}");
    assert!(
        old_version
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{old_version}"
    );

    let post = raw_http(
        addr,
        &format!(
            "POST /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
        ),
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 400"), "{post}");
}

#[tokio::test]
async fn upgrades_past_max_connections_get_503() {
    let server = TestServer::start(WebSocketConfig::default().max_connections(2)).await;
    let _a = server.connect("/echo").await;
    let _b = server.connect("/echo").await;
    let err = tokio_tungstenite::connect_async(server.url("/echo"))
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
    assert_eq!(server.hub.stats().connections_rejected, 1);
    drop(_a);
    eventually("a slot frees up", || {
        server.hub.stats().connections_active < 2
    })
    .await;
    let _c = server.connect("/echo").await;
}
