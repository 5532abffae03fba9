//! The connection runs on its own (issue 11): handlers people write every day — one that
//! only sends, one that awaits something slow between reads, one that fails, one that
//! panics, one stuck forever, one that never reads — against real clients (Python
//! `websockets`, tokio-tungstenite, raw TCP).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use armature_ws::{
    Error, Hub, WebSocket, WebSocketConfig, WebSocketManager, WebSocketMessage, WebSocketUpgrade,
    serve,
};
use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// A server with this file's routes.
struct Server {
    addr: SocketAddr,
    hub: Hub,
    manager: Arc<WebSocketManager>,
    /// Close frames the `/close-frame` route read from its clients.
    closes: Arc<Mutex<Vec<(u16, String)>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

#[derive(Clone)]
struct Routes {
    manager: Arc<WebSocketManager>,
    closes: Arc<Mutex<Vec<(u16, String)>>>,
}

impl Server {
    async fn start(config: WebSocketConfig) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub = Hub::new(config);
        // The default manager: rooms go away when their last member leaves.
        let manager = Arc::new(WebSocketManager::new());
        let closes = Arc::new(Mutex::new(Vec::new()));
        let routes = Routes {
            manager: manager.clone(),
            closes: closes.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            hub.clone(),
            move |mut req| {
                let routes = routes.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    match WebSocketUpgrade::from_request(&mut req) {
                        Ok(upgrade) => {
                            upgrade.on_upgrade(move |socket| route(path, socket, routes))
                        }
                        Err(rejection) => rejection.into_response::<Full<Bytes>>(),
                    }
                }
            },
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            hub,
            manager,
            closes,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    async fn connect(&self, path: &str) -> Client {
        let (client, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(self.url(path)))
                .await
                .expect("connect timed out")
                .expect("connect failed");
        client
    }

    /// Starts graceful shutdown and returns serve's task.
    fn shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("running")
    }
}

/// The routes. Every handler returns `Result<(), Error>`.
async fn route(path: String, mut socket: WebSocket, routes: Routes) -> Result<(), Error> {
    match path.as_str() {
        // Sends a tick every 200 ms and never reads.
        "/ticker" => {
            for n in 0.. {
                socket.send_text(format!("tick {n}")).await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(())
        }
        // Joins the room "slow"; on each message awaits 2 s, then reads again.
        "/slow-reader" => {
            let room = routes.manager.get_or_create_room("slow").await;
            room.add_connection(socket.id(), socket.connection())
                .await?;
            socket.send_text("joined").await?;
            while let Some(message) = socket.recv().await {
                message?;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Ok(())
        }
        "/fail" => {
            socket.recv().await;
            Err(Error::Internal("database unavailable".into()))
        }
        "/fail-long" => {
            socket.recv().await;
            Err(Error::Internal("é".repeat(200)))
        }
        "/panic" => {
            socket.recv().await;
            panic!("handler bug");
        }
        // Never reads, never returns.
        "/stuck" => {
            std::future::pending::<()>().await;
            Ok(())
        }
        // Tells its id, then never reads (but keeps the socket).
        "/never-read" => {
            socket.send_text(socket.id().to_owned()).await?;
            std::future::pending::<()>().await;
            Ok(())
        }
        // Reader and sender halves on two tasks: the reader forwards every text to the
        // sender, which answers "echo: …" and sends ticks in between.
        "/split" => {
            let (mut sender, mut reader) = socket.split();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(8);
            let reading = tokio::spawn(async move {
                while let Some(Ok(message)) = reader.next().await {
                    if let WebSocketMessage::Text(text) = message {
                        if tx.send(text.to_string()).await.is_err() {
                            break;
                        }
                    }
                }
            });
            let sending = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                let mut ticks = 0;
                loop {
                    tokio::select! {
                        text = rx.recv() => match text {
                            Some(text) => sender.send(WebSocketMessage::text(format!("echo: {text}"))).await?,
                            None => return Ok::<(), Error>(()),
                        },
                        _ = tick.tick(), if ticks < 5 => {
                            ticks += 1;
                            sender.send_text(format!("tick {ticks}")).await?;
                        }
                    }
                }
            });
            let _ = reading.await;
            sending.await.map_err(|e| Error::Internal(e.to_string()))?
        }
        // Joins the room "twice" twice.
        "/join-twice" => {
            let room = routes.manager.get_or_create_room("twice").await;
            room.add_connection(socket.id(), socket.connection())
                .await?;
            room.add_connection(socket.id(), socket.connection())
                .await?;
            socket
                .send_text(format!(
                    "{} {}",
                    room.connection_count().await,
                    socket.connection().room_count()
                ))
                .await?;
            while let Some(Ok(_)) = socket.recv().await {}
            Ok(())
        }
        // The guide's match with a unit `Close`; the code is read from the socket.
        "/close-frame" => {
            while let Some(message) = socket.recv().await {
                match message? {
                    WebSocketMessage::Text(text) => socket.send_text(text).await?,
                    WebSocketMessage::Close => {
                        let frame = socket.close_frame();
                        routes
                            .closes
                            .lock()
                            .push(frame.map_or((0, String::new()), |f| {
                                (u16::from(f.code), f.reason.to_string())
                            }));
                        break;
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        _ => {
            while let Some(Ok(message)) = socket.recv().await {
                if message.is_text() || message.is_binary() {
                    socket.send(message).await?;
                }
            }
            Ok(())
        }
    }
}

fn fast_heartbeat() -> WebSocketConfig {
    WebSocketConfig::default()
        .ping_interval(Some(Duration::from_secs(1)))
        .pong_timeout(Duration::from_secs(1))
}

/// A ticker that never calls `recv()` keeps its connection through several heartbeat
/// periods: the connection reads the client's pongs itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_only_handler_survives_the_heartbeat_python_client() {
    let Some(python) = python_with_websockets("python send-only test").await else {
        return;
    };
    let server = Server::start(fast_heartbeat()).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/send_only_client.py"
    );
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(&python)
            .arg(script)
            .arg(server.url("/ticker"))
            .arg("4")
            .output(),
    )
    .await
    .expect("python client timed out")
    .expect("python client did not start");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the server closed the ticker's connection:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("still open"), "{stdout}");
    let ticks: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ticks "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(ticks >= 10, "only {ticks} ticks in 4 s: {stdout}");
    assert_eq!(server.hub.stats().ping_timeouts, 0);
}

/// The same with tokio-tungstenite, counting the pings the server sent meanwhile.
#[tokio::test]
async fn send_only_handler_is_pinged_and_stays_open() {
    let server = Server::start(fast_heartbeat()).await;
    let mut client = server.connect("/ticker").await;
    let (mut ticks, mut pings) = (0, 0);
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(next) = tokio::time::timeout_at(until, client.next()).await {
        match next {
            Some(Ok(Message::Text(_))) => ticks += 1,
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?} after {ticks} ticks"),
        }
    }
    assert!(ticks >= 10, "{ticks} ticks");
    assert!(
        pings >= 1,
        "the heartbeat pinged (it pings a silent client)"
    );
    assert_eq!(server.hub.stats().ping_timeouts, 0);
}

/// A handler that awaits 2 s between reads does not hold up the broadcasts to its client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_keep_arriving_while_the_handler_awaits() {
    let server = Server::start(fast_heartbeat()).await;
    let mut client = server.connect("/slow-reader").await;
    assert_eq!(next_data(&mut client).await, Message::text("joined"));
    let room = server.manager.room("slow");
    let broadcaster = tokio::spawn(async move {
        for n in 0u32.. {
            let _ = room.broadcast_text(format!("b{n}")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // The handler now awaits 2 s after each of these.
    send_text(&mut client, "one").await;
    let start = tokio::time::Instant::now();
    let mut last = start;
    let mut longest = Duration::ZERO;
    let mut received = 0;
    while start.elapsed() < Duration::from_secs(3) {
        match next_data(&mut client).await {
            Message::Text(_) => {
                let now = tokio::time::Instant::now();
                longest = longest.max(now - last);
                last = now;
                received += 1;
                if received == 20 {
                    send_text(&mut client, "two").await;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    broadcaster.abort();
    // Broadcast every 50 ms; before the fix the client saw 2 s of silence.
    assert!(
        longest < Duration::from_millis(1000),
        "{longest:?} of silence ({received} broadcasts)"
    );
    assert!(received >= 20, "{received} broadcasts in 3 s");
    assert_eq!(server.hub.stats().ping_timeouts, 0);
}

/// `Err(e)` after the upgrade: 1011 with the error as the reason.
#[tokio::test]
async fn handler_error_closes_with_1011_and_the_reason() {
    let server = Server::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/fail").await;
    send_text(&mut client, "go").await;
    let (code, reason) = close_frame(&mut client).await.expect("a close frame");
    assert_eq!(code, 1011);
    assert_eq!(reason, "internal error: database unavailable");
    assert_eq!(server.hub.stats().handler_errors, 1);

    // A reason too long for a close frame is cut to 123 bytes at a character boundary.
    let mut client = server.connect("/fail-long").await;
    send_text(&mut client, "go").await;
    let (code, reason) = close_frame(&mut client).await.expect("a close frame");
    assert_eq!(code, 1011);
    assert!(reason.len() <= 123, "{} bytes", reason.len());
    assert!(reason.starts_with("internal error: éé"), "{reason}");
    assert_eq!(server.hub.stats().handler_errors, 2);
}

/// A panic: 1011, contained; the next client is served.
#[tokio::test]
async fn handler_panic_closes_with_1011_and_the_server_keeps_serving() {
    let server = Server::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/panic").await;
    send_text(&mut client, "go").await;
    let (code, reason) = close_frame(&mut client).await.expect("a close frame");
    assert_eq!(code, 1011);
    assert_eq!(reason, "handler panicked");
    assert_eq!(server.hub.stats().handler_panics, 1);

    let mut next = server.connect("/echo").await;
    send_text(&mut next, "still serving").await;
    assert_eq!(next_data(&mut next).await, Message::text("still serving"));
    eventually("the panicked connection is gone", || {
        server.hub.connection_count() == 1
    })
    .await;
}

/// A handler stuck forever does not keep its connection past shutdown: the close
/// handshake completes (1001) without it.
#[tokio::test]
async fn stuck_handler_is_closed_by_shutdown_within_the_deadline() {
    let config = WebSocketConfig::default().shutdown_timeout(Duration::from_secs(3));
    let mut server = Server::start(config).await;
    let mut client = server.connect("/stuck").await;
    eventually("registered", || server.hub.connection_count() == 1).await;
    let serving = server.shutdown();
    assert_eq!(close_code(&mut client).await, Some(1001));
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    assert_eq!(server.hub.connection_count(), 0);
}

/// A client that floods a handler that never reads: the inbox stays at its bound, reading
/// pauses (the client meets TCP back-pressure), and the heartbeat does not close the
/// connection meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_a_handler_that_never_reads_stays_within_the_inbox_bound() {
    use tokio::io::AsyncWriteExt;
    let config = WebSocketConfig::default()
        .ping_interval(Some(Duration::from_millis(200)))
        .pong_timeout(Duration::from_millis(400))
        .inbox_capacity(16, 64 * 1024);
    let server = Server::start(config).await;
    let (stream, mut pending) = raw_connect(server.addr, "/never-read", &[]).await;
    let (mut read_half, mut write_half) = stream.into_split();
    // The handler's first message is its id.
    let mut id = Vec::new();
    while id.is_empty() {
        use tokio::io::AsyncReadExt;
        if pending.len() >= 2 && pending.len() >= 2 + usize::from(pending[1] & 0x7f) {
            let len = usize::from(pending[1] & 0x7f);
            id = pending[2..2 + len].to_vec();
            break;
        }
        let mut chunk = [0u8; 256];
        let n = read_half.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        pending.extend_from_slice(&chunk[..n]);
    }
    let id = String::from_utf8(id).unwrap();
    let connection = server.hub.connection(&id).expect("live connection");

    // 1 KiB messages, 64 MiB in all: far more than the kernel's buffers hold.
    let frame = client_frame(0x2, true, &[7u8; 1024]);
    let flood = tokio::spawn(async move {
        for _ in 0..64 * 1024 {
            if write_half.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    eventually("reading paused", || server.hub.stats().reads_paused >= 1).await;
    assert_eq!(connection.inbox_len(), 16, "the inbox is full, not more");
    // Several heartbeat periods later: still at the bound, still open, not timed out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(connection.inbox_len(), 16);
    assert!(
        !flood.is_finished(),
        "the client is held by TCP back-pressure"
    );
    assert_eq!(server.hub.stats().ping_timeouts, 0);
    assert_eq!(server.hub.connection_count(), 1);
    assert!(!connection.is_closed());
    flood.abort();
}

/// `split()`: the halves work from two tasks at once.
#[tokio::test]
async fn split_halves_work_from_two_tasks() {
    let server = Server::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/split").await;
    send_text(&mut client, "a").await;
    send_text(&mut client, "b").await;
    let mut echoes = Vec::new();
    let mut ticks = 0;
    while echoes.len() < 2 || ticks < 5 {
        match next_data(&mut client).await {
            Message::Text(text) if text.starts_with("echo: ") => echoes.push(text.to_string()),
            Message::Text(text) if text.starts_with("tick ") => ticks += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoes, ["echo: a", "echo: b"]);
    client.close(None).await.unwrap();
    eventually("connection gone", || server.hub.connection_count() == 0).await;
}

/// Rooms made from network input go away with their last member; joining twice records
/// one membership.
#[tokio::test]
async fn rooms_are_removed_when_empty_and_joining_twice_grows_nothing() {
    let server = Server::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/join-twice").await;
    assert_eq!(next_data(&mut client).await, Message::text("1 1"));
    assert!(server.manager.get_room("twice").await.is_some());
    client.close(None).await.unwrap();
    eventually("room removed", || server.manager.room_count() == 0).await;
}

/// The guide's `WebSocketMessage::Close` is a unit variant; the client's code and reason
/// are on the socket.
#[tokio::test]
async fn the_clients_close_frame_is_readable_from_the_socket() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let server = Server::start(WebSocketConfig::default()).await;
    let mut client = server.connect("/close-frame").await;
    send_text(&mut client, "hi").await;
    assert_eq!(next_data(&mut client).await, Message::text("hi"));
    client
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Library(4321),
            reason: "see you".into(),
        })))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, Some(4321));
    eventually("recorded", || !server.closes.lock().is_empty()).await;
    assert_eq!(server.closes.lock()[0], (4321, "see you".to_owned()));
}

/// Reads until the server's close frame: (code, reason).
async fn close_frame(client: &mut Client) -> Option<(u16, String)> {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}
