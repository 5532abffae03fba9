//! Hostile clients at the frame level, over real sockets: huge announced lengths, tens of
//! thousands of one-byte fragments, ping floods, unmasked frames, invalid UTF-8 in the middle
//! of a fragmented text, invalid close codes. Each has a defined answer
//! (docs/hostile-clients.md) and another client is served normally afterwards.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// A masked client frame header announcing `len` payload bytes (64-bit length form), with
/// no payload.
fn header_with_len64(opcode: u8, len: u64) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode, 0x80 | 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame
}

#[tokio::test]
async fn frame_announcing_2_pow_63_minus_1_bytes_is_closed_with_1009_on_its_header() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    // Only the 14-byte header is sent: the answer cannot depend on allocating or waiting
    // for the payload.
    let (mut stream, mut pending) =
        raw_connect(server.addr, "/echo", &header_with_len64(0x2, (1 << 63) - 1)).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1009));
    assert_eq!(read_server_frame(&mut stream, &mut pending).await, None);
    // The same just past the configured frame limit.
    let limit = server.hub.config().get_max_frame_size() as u64;
    let (mut stream, mut pending) =
        raw_connect(server.addr, "/echo", &header_with_len64(0x1, limit + 1)).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1009));
    assert_healthy(&server).await;
    eventually("both connections gone", || {
        server.hub.connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn frame_length_with_the_top_bit_set_is_closed_with_1002() {
    // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) =
        raw_connect(server.addr, "/echo", &header_with_len64(0x2, 1 << 63)).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1002));
    assert_healthy(&server).await;
}

/// `count` one-byte text fragments spelling `count` letters 'a', the first opening the
/// message; a ping is slipped in between every 1,000 fragments.
fn one_byte_fragments(count: usize, last_fin: bool) -> Vec<u8> {
    let mut wire = Vec::with_capacity(count * 8);
    for i in 0..count {
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        let fin = last_fin && i + 1 == count;
        wire.extend(client_frame(opcode, fin, b"a"));
        if i % 1000 == 999 {
            wire.extend(client_frame(0x9, true, b"mid"));
        }
    }
    wire
}

#[tokio::test]
async fn fifty_thousand_one_byte_fragments_make_one_message() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let count = 50_000;
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &[]).await;
    stream
        .write_all(&one_byte_fragments(count, true))
        .await
        .unwrap();
    // Pings between fragments are answered; then the whole message is echoed once.
    let mut pongs = 0;
    loop {
        let (opcode, payload) = read_server_frame(&mut stream, &mut pending)
            .await
            .expect("connection ended before the echo");
        match opcode {
            0xA => {
                assert_eq!(payload, b"mid");
                pongs += 1;
            }
            0x1 => {
                assert_eq!(payload.len(), count);
                assert!(payload.iter().all(|&b| b == b'a'));
                break;
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    assert_eq!(pongs, count / 1000);
    assert_healthy(&server).await;
}

#[tokio::test]
async fn one_byte_fragments_past_the_message_limit_are_closed_with_1009() {
    let server = TestServer::start(WebSocketConfig::default().max_message_size(10_000)).await;
    // The final fragment never comes: the limit is enforced fragment by fragment.
    let (mut stream, mut pending) =
        raw_connect(server.addr, "/echo", &one_byte_fragments(20_000, false)).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1009));
    assert_healthy(&server).await;
}

#[tokio::test]
async fn ping_flood_from_a_client_that_reads_gets_every_pong() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (stream, mut pending) = raw_connect(server.addr, "/echo", &[]).await;
    let (mut read, mut write) = stream.into_split();
    let count = 20_000u32;
    let writer = tokio::spawn(async move {
        let mut wire = Vec::new();
        for i in 0..count {
            wire.extend(client_frame(0x9, true, &i.to_be_bytes()));
        }
        write.write_all(&wire).await.unwrap();
        write
    });
    // Pongs come back in order, one per ping, with the ping's payload.
    let mut next = 0u32;
    let mut buf = [0u8; 65536];
    while next < count {
        while pending.len() >= 6 {
            assert_eq!(&pending[..2], &[0x8A, 4], "a pong with a 4-byte payload");
            let got = u32::from_be_bytes([pending[2], pending[3], pending[4], pending[5]]);
            assert_eq!(got, next);
            next += 1;
            pending.drain(..6);
        }
        if next == count {
            break;
        }
        let n = tokio::time::timeout(WAIT, read.read(&mut buf))
            .await
            .expect("pongs stopped")
            .unwrap();
        assert!(n > 0, "connection ended after {next} pongs");
        pending.extend_from_slice(&buf[..n]);
    }
    let _write = writer.await.unwrap();
    assert_healthy(&server).await;
}

/// `raw_connect` with a small receive buffer, so that what the server can write ahead of
/// a client that does not read is small.
async fn raw_connect_small_rcvbuf(
    addr: std::net::SocketAddr,
    path: &str,
) -> (tokio::net::TcpStream, Vec<u8>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "server closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 101"));
            return (stream, buf[end + 4..].to_vec());
        }
    }
}

#[tokio::test]
async fn ping_flood_from_a_client_that_does_not_read_keeps_only_the_latest_pongs() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) = raw_connect_small_rcvbuf(server.addr, "/echo").await;
    // 32 MiB of pings with the largest control payload, written without reading a byte.
    // The server reads them all; what it cannot write is capped (the pending pongs are
    // replaced by the latest), so this never stalls for lack of server memory.
    let mut batch = Vec::new();
    for _ in 0..512 {
        batch.extend(client_frame(0x9, true, &[7u8; 125]));
    }
    let batches = (32 << 20) / batch.len();
    let pings = batches * 512;
    for _ in 0..batches {
        tokio::time::timeout(WAIT, stream.write_all(&batch))
            .await
            .expect("the server stopped reading pings")
            .unwrap();
    }
    stream
        .write_all(&client_frame(0x9, true, b"last"))
        .await
        .unwrap();
    // Meanwhile the server serves others.
    assert_healthy(&server).await;
    // Reading at last: pongs, far fewer than the pings, ending with the latest one.
    let mut pongs = 0usize;
    loop {
        let (opcode, payload) = read_server_frame(&mut stream, &mut pending)
            .await
            .expect("connection ended");
        assert_eq!(opcode, 0xA);
        pongs += 1;
        if payload == b"last" {
            break;
        }
        assert_eq!(payload, [7u8; 125]);
    }
    println!("ping flood: {pings} pings sent without reading, {pongs} pongs received");
    assert!(
        pongs < pings / 2,
        "{pongs} pongs for {pings} pings: the server kept every pong for a client that does not read"
    );
    // The connection still works.
    stream
        .write_all(&client_frame(0x1, true, b"after the flood"))
        .await
        .unwrap();
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        Some((0x1, b"after the flood".to_vec()))
    );
}

#[tokio::test]
async fn unmasked_frame_is_closed_with_1002() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let (mut stream, mut pending) = raw_connect(
        server.addr,
        "/echo",
        &masked_frame(0x2, true, b"bare", None),
    )
    .await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1002));
    assert_eq!(read_server_frame(&mut stream, &mut pending).await, None);
    assert_healthy(&server).await;
}

#[tokio::test]
async fn invalid_utf8_mid_fragmented_text_is_closed_with_1007_before_the_final_fragment() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut wire = client_frame(0x1, false, "héllo ".as_bytes());
    wire.extend(client_frame(0x0, false, b"ok "));
    wire.extend(client_frame(0x0, false, &[0xC3, 0x28])); // not a UTF-8 sequence
    // The final fragment is never sent: the answer comes on the bad fragment.
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &wire).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1007));
    assert_healthy(&server).await;
}

#[tokio::test]
async fn utf8_sequence_split_across_fragments_is_accepted() {
    // The counterpart: a valid character cut between two fragments is not an error.
    let server = TestServer::start(WebSocketConfig::default()).await;
    let euro = "€".as_bytes();
    let mut wire = client_frame(0x1, false, &euro[..1]);
    wire.extend(client_frame(0x0, false, &euro[1..2]));
    wire.extend(client_frame(0x0, true, &euro[2..]));
    let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &wire).await;
    assert_eq!(
        read_server_frame(&mut stream, &mut pending).await,
        Some((0x1, euro.to_vec()))
    );
}

#[tokio::test]
async fn close_with_an_invalid_code_is_answered_with_1002() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    // Codes a peer must not send (RFC 6455 §7.4), and a 1-byte close payload.
    let mut payloads: Vec<Vec<u8>> = [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]
        .iter()
        .map(|code| code.to_be_bytes().to_vec())
        .collect();
    payloads.push(vec![0x03]);
    for payload in payloads {
        let (mut stream, mut pending) =
            raw_connect(server.addr, "/echo", &client_frame(0x8, true, &payload)).await;
        assert_eq!(
            raw_close_code(&mut stream, &mut pending).await,
            Some(1002),
            "close payload {payload:?}"
        );
    }
    // A valid code with a reason that is not UTF-8: 1007.
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0xff, 0xfe]);
    let (mut stream, mut pending) =
        raw_connect(server.addr, "/echo", &client_frame(0x8, true, &payload)).await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1007));
    // And a valid private code is echoed back.
    let (mut stream, mut pending) = raw_connect(
        server.addr,
        "/echo",
        &client_frame(0x8, true, &4321u16.to_be_bytes()),
    )
    .await;
    assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(4321));
    assert_healthy(&server).await;
    eventually("every connection gone", || {
        server.hub.connection_count() == 0
    })
    .await;
    assert!(server.hub.stats().protocol_errors >= 11);
}

#[tokio::test]
async fn messages_read_before_a_protocol_error_are_answered_before_the_close() {
    // Autobahn 3.2 / 5.15 in one write: a valid text, then a frame with a reserved bit (or
    // a continuation with nothing to continue). A strict endpoint echoes the text first,
    // then closes with 1002, then drops the connection.
    for bad in [
        {
            let mut f = client_frame(0x1, true, b"bad");
            f[0] |= 0x20; // RSV2
            f
        },
        client_frame(0x0, true, b"nothing to continue"),
    ] {
        let server = TestServer::start(WebSocketConfig::default()).await;
        let mut wire = client_frame(0x1, true, b"Hello");
        wire.extend(bad);
        let (mut stream, mut pending) = raw_connect(server.addr, "/echo", &wire).await;
        assert_eq!(
            read_server_frame(&mut stream, &mut pending).await,
            Some((0x1, b"Hello".to_vec())),
            "the echo comes before the close"
        );
        assert_eq!(raw_close_code(&mut stream, &mut pending).await, Some(1002));
        // No close reply is awaited after a protocol error: the server drops the
        // connection (well before the 5 s close timeout).
        let started = std::time::Instant::now();
        assert_eq!(read_server_frame(&mut stream, &mut pending).await, None);
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
        assert_healthy(&server).await;
    }
}
