//! Hostile clients at the HTTP stage, over real sockets: a trickled upgrade request, one
//! that never finishes, oversized heads. Each has a defined answer (docs/hostile-clients.md)
//! and another client is served normally while it happens.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use armature_ws::WebSocketConfig;

/// Another client connects, gets an echo and closes cleanly: the server is healthy.
async fn assert_healthy(server: &TestServer) {
    let mut client = server.connect("/echo").await;
    client.send(Message::text("still here")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("still here"));
    client.close(None).await.unwrap();
    assert_eq!(close_code(&mut client).await, Some(1000));
}

fn upgrade_request(addr: std::net::SocketAddr) -> Vec<u8> {
    format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Reads until the peer ends the connection (EOF or reset); returns what arrived.
async fn read_to_end_or_reset(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("server did not close the connection in time")
        {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn trickled_upgrade_request_is_served_when_it_completes_in_time() {
    let server = TestServer::start(
        WebSocketConfig::default().header_read_timeout(Some(Duration::from_secs(20))),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = upgrade_request(server.addr);
    for (i, byte) in request.iter().enumerate() {
        stream.write_all(&[*byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        if i == request.len() / 2 {
            // Halfway through the trickle, another client is served normally.
            assert_healthy(&server).await;
        }
    }
    // The upgrade completes: 101, then the socket echoes.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n, 1,
            "server closed a trickled request that completed in time"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
        .write_all(&client_frame(0x1, true, b"trickled"))
        .await
        .unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        Some((0x1, b"trickled".to_vec()))
    );
}

#[tokio::test]
async fn unfinished_request_head_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(1500);
    let server =
        TestServer::start(WebSocketConfig::default().header_read_timeout(Some(timeout))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // Keep trickling header bytes (never the blank line) until the server hangs up: the
    // timeout bounds the whole head, not the gap between bytes.
    let mut closed = false;
    let mut received = Vec::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut chunk)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "the server never closed an unfinished request head");
    assert!(
        received.is_empty(),
        "no response is sent to an unfinished head, got {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        elapsed >= timeout - Duration::from_millis(100),
        "closed after {elapsed:?}, before the {timeout:?} header timeout"
    );
    assert_healthy(&server).await;
    assert_eq!(server.hub.connection_count(), 0);
}

#[tokio::test]
async fn idle_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let server = TestServer::start(
        WebSocketConfig::default().header_read_timeout(Some(Duration::from_millis(500))),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_healthy(&server).await;
    assert!(read_to_end_or_reset(&mut stream).await.is_empty());
}

#[tokio::test]
async fn oversized_request_head_gets_431() {
    let server =
        TestServer::start(WebSocketConfig::default().max_request_head_bytes(16 * 1024)).await;
    // One header value larger than the bound. The request is written whole before the
    // response is read.
    let big = "a".repeat(20 * 1024);
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let response = raw_http(server.addr, &request).await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "expected 431, got {:?}",
        response.lines().next()
    );
    assert_healthy(&server).await;
    // A head just under the bound is still an upgrade.
    let fits = "b".repeat(8 * 1024);
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Big: {fits}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let response = raw_http(server.addr, &request).await;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
}

#[tokio::test]
async fn too_many_request_headers_get_431() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut request = String::from("GET /echo HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..150 {
        request.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    let response = raw_http(server.addr, &request).await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "expected 431, got {:?}",
        response.lines().next()
    );
    assert_healthy(&server).await;
}

#[tokio::test]
async fn many_unfinished_heads_at_once_are_all_closed_and_others_are_served_meanwhile() {
    let server = TestServer::start(
        WebSocketConfig::default().header_read_timeout(Some(Duration::from_millis(1500))),
    )
    .await;
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websock")
            .await
            .unwrap();
        stalled.push(stream);
    }
    // 300 half-sent heads hold no WebSocket slot and do not stop the server.
    assert_healthy(&server).await;
    for stream in &mut stalled {
        assert!(read_to_end_or_reset(stream).await.is_empty());
    }
    assert_healthy(&server).await;
    assert_eq!(server.hub.connection_count(), 0);
}
