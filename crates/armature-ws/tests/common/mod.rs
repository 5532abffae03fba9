//! A real server on a loopback port, for the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use armature_ws::{
    Hub, WebSocket, WebSocketConfig, WebSocketManager, WebSocketMessage, WebSocketUpgrade, serve,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous: the machine is shared and loaded.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Hub,
    pub manager: Arc<WebSocketManager>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: WebSocketConfig) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub = Hub::new(config);
        let manager = Arc::new(WebSocketManager::new().remove_empty_rooms(true));
        let (stop, stopped) = oneshot::channel::<()>();
        let routes = manager.clone();
        let task = tokio::spawn(serve(
            listener,
            hub.clone(),
            move |mut req| {
                let manager = routes.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    // `?dedicated`: this route's permessage-deflate is dedicated mode
                    // (context takeover), whatever the server's config says.
                    let dedicated = req.uri().query() == Some("dedicated");
                    let upgrade = match WebSocketUpgrade::from_request(&mut req) {
                        Ok(upgrade) => upgrade.protocols(["chat", "superchat"]),
                        Err(rejection) => return rejection.into_response::<Full<Bytes>>(),
                    };
                    let upgrade = if dedicated {
                        upgrade.compression(Some(
                            armature_ws::permessage_deflate::DeflateConfig::dedicated(15),
                        ))
                    } else {
                        upgrade
                    };
                    upgrade.on_upgrade(move |socket| route(path, socket, manager))
                }
            },
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            hub,
            manager,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub async fn connect(&self, path: &str) -> Client {
        let (client, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(self.url(path)))
                .await
                .expect("connect timed out")
                .expect("connect failed");
        client
    }

    /// Starts graceful shutdown; `join` waits for serve to return.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn join(&mut self) {
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("serve did not return")
                .unwrap()
                .unwrap();
        }
    }
}

/// The test routes: `/echo`, `/room/NAME` (broadcast to all, sender included),
/// `/except/NAME` (broadcast to all but the sender), `/join/A,B,C` (join rooms, read),
/// `/protocol` (sends the agreed subprotocol, then echoes).
async fn route(path: String, mut socket: WebSocket, manager: Arc<WebSocketManager>) {
    if path == "/hello-bye" {
        // Returns at once: the socket is dropped with a message still queued.
        let connection = socket.connection();
        drop(socket);
        let _ = connection.send_text("too late").await; // refused: the connection is closing
        return;
    }
    if path == "/hello-then-return" {
        let _ = socket.connection().send_text("hello").await;
        return; // dropping the socket: queued "hello" is written, then close 1000
    }
    if path == "/debug" {
        let _ = socket.send_text(format!("{socket:?}")).await;
        while let Some(Ok(_)) = socket.recv().await {}
    } else if path == "/echo" || path == "/protocol" {
        if path == "/protocol" {
            let agreed = socket.protocol().unwrap_or("none").to_owned();
            let _ = socket.send_text(agreed).await;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
                break;
            }
        }
    } else if let Some(name) = path.strip_prefix("/room/") {
        let room = manager.get_or_create_room(name).await;
        room.add_connection(socket.id(), socket.connection())
            .await
            .unwrap();
        let _ = socket.send_text(format!("joined {}", socket.id())).await;
        while let Some(Ok(message)) = socket.recv().await {
            if message.is_text() || message.is_binary() {
                let _ = room.broadcast(message).await;
            }
        }
    } else if let Some(name) = path.strip_prefix("/except/") {
        let room = manager.get_or_create_room(name).await;
        room.add_connection(socket.id(), socket.connection())
            .await
            .unwrap();
        let _ = socket.send_text(format!("joined {}", socket.id())).await;
        while let Some(Ok(message)) = socket.recv().await {
            if message.is_text() || message.is_binary() {
                let id = socket.id().to_owned();
                let _ = room.broadcast_except(&id, message).await;
            }
        }
    } else if let Some(names) = path.strip_prefix("/join/") {
        for name in names.split(',') {
            let room = manager.get_or_create_room(name).await;
            room.add_connection(socket.id(), socket.connection())
                .await
                .unwrap();
        }
        let _ = socket.send_text(format!("joined {}", socket.id())).await;
        while let Some(Ok(_)) = socket.recv().await {}
    }
}

/// The next text or binary message (skipping pings and pongs).
pub async fn next_data(client: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no message in time")
            .expect("stream ended")
            .expect("client error");
        if message.is_text() || message.is_binary() || message.is_close() {
            return message;
        }
    }
}

/// Reads the first message of a room route (`joined ID`) and returns the id.
pub async fn joined(client: &mut Client) -> String {
    match next_data(client).await {
        Message::Text(text) => text
            .as_str()
            .strip_prefix("joined ")
            .expect("joined line")
            .to_owned(),
        other => panic!("expected the joined line, got {other:?}"),
    }
}

/// Reads until the server's close frame; returns its code (or None when the connection ended
/// without one).
pub async fn close_code(client: &mut Client) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(frame))) => {
                // Keep polling so the client's reply goes out, until the server drops TCP.
                let _ =
                    tokio::time::timeout(WAIT, async { while client.next().await.is_some() {} })
                        .await;
                return frame.map(|f| u16::from(f.code));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

pub async fn send_text(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.unwrap();
}

/// Waits until `check` holds, polling; panics after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn message_text(message: &WebSocketMessage) -> &str {
    message.as_text().unwrap_or("")
}

/// A raw TCP client: sends `extra` right behind the handshake (in the same write), returns
/// the stream and whatever followed the `101` response head.
pub async fn raw_connect(addr: SocketAddr, path: &str, extra: &[u8]) -> (TcpStream, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(extra);
    stream.write_all(&request).await.unwrap();
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
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            assert!(head.starts_with("HTTP/1.1 101"), "not a 101: {head}");
            assert!(
                head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                "bad accept: {head}"
            );
            return (stream, buf[end + 4..].to_vec());
        }
    }
}

/// A masked client frame.
pub fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    masked_frame(opcode, fin, payload, Some([0x11, 0x22, 0x33, 0x44]))
}

/// A client frame with an optional mask (None: the unmasked frame a client must not send).
pub fn masked_frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => frame.push(mask_bit | n as u8),
        n if n < 65536 => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => frame.extend_from_slice(payload),
    }
    frame
}

/// Reads one unmasked server frame: (opcode, payload). `None` at end of stream.
pub async fn read_server_frame(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    loop {
        if pending.len() >= 2 {
            let opcode = pending[0] & 0x0f;
            let (len, header) = match pending[1] & 0x7f {
                126 if pending.len() >= 4 => {
                    (u16::from_be_bytes([pending[2], pending[3]]) as usize, 4)
                }
                127 if pending.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&pending[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                n if n < 126 => (n as usize, 2),
                _ => (usize::MAX, 0),
            };
            if len != usize::MAX && pending.len() >= header + len {
                let payload = pending[header..header + len].to_vec();
                pending.drain(..header + len);
                return Some((opcode, payload));
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// Reads server frames until a close frame; returns its code.
pub async fn raw_close_code(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<u16> {
    while let Some((opcode, payload)) = read_server_frame(stream, pending).await {
        if opcode == 8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
    None
}

/// Sends a raw HTTP request and returns the whole response text (the server closes or
/// the head is complete).
pub async fn raw_http(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if n == 0 {
            return text;
        }
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if text.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// The Python interpreter that has the `websockets` package: `ARMATURE_PYTHON` (set by
/// `cargo xtask test`), else `python3`. Without one, `None` and a loud message naming
/// `test`; under `CI=true` a panic instead (a skipped interop test must not pass CI).
pub async fn python_with_websockets(test: &str) -> Option<String> {
    let python = std::env::var("ARMATURE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = tokio::process::Command::new(&python)
        .args(["-c", "import websockets"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success());
    if ok {
        return Some(python);
    }
    let message = "no Python with the `websockets` package: set ARMATURE_PYTHON or run \
                   `cargo xtask test`";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{message}");
    }
    eprintln!("\n!!!!!!!! SKIPPED {test}: {message} !!!!!!!!\n");
    None
}
