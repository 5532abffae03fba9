//! The server's lean path for SSE routes, over real sockets and raw bytes: the event stream
//! written without hyper (`Connection: close`, chunked, no `Date`, which hyper would add),
//! a vanished client dropped without an event sent to it, `Last-Event-ID` resume, handlers
//! that refuse, fail and panic; every other request served by hyper with the bytes the
//! accept loop already read (pipelined, trickled); bad heads answered `400` / `431` / by a
//! closed connection after the header timeout.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use armature_realtime::body::{Body, text_response};
use armature_realtime::shutdown::ShutdownSignal;
use armature_realtime::sse::{SseBroadcaster, SseConfig, last_event_id};
use armature_realtime::sse_route::sse_response_until;
use armature_realtime::ws::WebSocketConfig;
use armature_realtime::{App, Error, RequestHead, Route, RouteKind, RunningServer};
use common::TIMEOUT;
use http::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An SSE route registering on `broadcaster` (resuming from `Last-Event-ID`).
fn feed_route(path: &str, broadcaster: Arc<SseBroadcaster>) -> Route {
    Route::new(
        Method::GET,
        path,
        RouteKind::Sse,
        move |head: RequestHead| {
            let broadcaster = Arc::clone(&broadcaster);
            async move {
                let signal = head
                    .extensions()
                    .get::<ShutdownSignal>()
                    .cloned()
                    .expect("the server puts its shutdown signal in every request");
                let receiver = broadcaster.register_from(last_event_id(head.headers()));
                sse_response_until(signal, receiver)
            }
        },
    )
}

/// An SSE route whose handler awaits something slow before it answers.
fn slow_route(path: &str, broadcaster: Arc<SseBroadcaster>) -> Route {
    Route::new(
        Method::GET,
        path,
        RouteKind::Sse,
        move |_head: RequestHead| {
            let broadcaster = Arc::clone(&broadcaster);
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                armature_realtime::sse_route::IntoSse::into_sse(broadcaster.register().await)
            }
        },
    )
}

/// `POST /publish`: broadcasts its body on `broadcaster`, then answers `200`.
fn publish_route(broadcaster: Arc<SseBroadcaster>) -> Route {
    Route::new(
        Method::POST,
        "/publish",
        RouteKind::Http,
        move |head: RequestHead| {
            let broadcaster = Arc::clone(&broadcaster);
            async move {
                use http_body_util::BodyExt;
                let body = head
                    .extensions()
                    .get::<armature_realtime::request::RequestBody>()
                    .and_then(armature_realtime::request::RequestBody::take)
                    .expect("the app keeps the body");
                let Ok(body) = body.collect().await else {
                    return text_response(StatusCode::BAD_REQUEST, "bad body");
                };
                let data = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                match broadcaster.broadcast_message(data).await {
                    Ok(()) => text_response(StatusCode::OK, "queued"),
                    Err(_) => text_response(StatusCode::BAD_REQUEST, "bad event"),
                }
            }
        },
    )
}

/// An SSE route whose handler fails (a refusal), and one that panics.
fn failing_routes(app: App) -> App {
    app.route(Route::new(
        Method::GET,
        "/fails",
        RouteKind::Sse,
        |_head: RequestHead| async move {
            let refused: Result<Response<Body>, Error> = Err(Error::Http {
                status: 401,
                reason: "who are you".into(),
            });
            armature_realtime::sse_route::IntoSse::into_sse(refused)
        },
    ))
    .route(Route::new(
        Method::GET,
        "/panics",
        RouteKind::Sse,
        |_head: RequestHead| async move {
            if std::hint::black_box(true) {
                panic!("sse handler bug");
            }
            text_response(StatusCode::OK, "unreachable")
        },
    ))
}

struct Fixture {
    server: RunningServer,
    addr: SocketAddr,
    feed: Arc<SseBroadcaster>,
}

async fn start(config: WebSocketConfig) -> Fixture {
    let feed = Arc::new(SseBroadcaster::with_config(
        SseConfig::default().history_len(16).auto_ids(true),
    ));
    let app = App::new()
        .websocket_config(config)
        .page("/page", "<p>page</p>")
        .route(feed_route("/feed", Arc::clone(&feed)))
        .route(slow_route("/slow", Arc::clone(&feed)))
        .route(publish_route(Arc::clone(&feed)));
    let server = failing_routes(app)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    Fixture { server, addr, feed }
}

/// Reads until `buf` contains `needle`; panics on EOF or after the timeout.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &[u8]) {
    let deadline = Instant::now() + TIMEOUT;
    while !buf.windows(needle.len()).any(|w| w == needle) {
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "waited for {:?}, got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(buf)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the server closes; returns everything.
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("server closed in time");
    all
}

async fn open(addr: SocketAddr, path: &str, extra: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    read_until(&mut stream, &mut buf, b"\r\n\r\n").await;
    (stream, buf)
}

async fn wait_for_clients(feed: &SseBroadcaster, n: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while feed.client_count().await != n {
        assert!(
            Instant::now() < deadline,
            "{} clients, expected {n}",
            feed.client_count().await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn events_arrive_chunked_on_the_lean_path() {
    let f = start(WebSocketConfig::default()).await;
    let (mut stream, mut buf) = open(f.addr, "/feed", "").await;
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains("content-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    // hyper writes a `Date` on every response; the lean writer does not.
    assert!(!head.contains("date:"), "served by hyper? {head}");
    wait_for_clients(&f.feed, 1).await;
    f.feed.broadcast_message("hello".into()).await.unwrap();
    f.feed.broadcast_message("again".into()).await.unwrap();
    read_until(&mut stream, &mut buf, b"data: again\n\n\r\n").await;
    let text = String::from_utf8_lossy(&buf);
    // Events queued together may share a chunk (chunk boundaries mean nothing to SSE).
    let hello = text.find("id: 1\ndata: hello\n\n").expect(&text);
    let again = text.find("data: again\n\n").expect(&text);
    assert!(hello < again, "{text}");

    // Shutdown ends the stream with the last chunk, then the connection closes.
    let shutdown = tokio::spawn(f.server.shutdown());
    let rest = read_to_end(&mut stream).await;
    assert!(
        rest.ends_with(b"0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    tokio::time::timeout(TIMEOUT, shutdown)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_client_that_goes_away_is_dropped_without_an_event_sent_to_it() {
    let f = start(WebSocketConfig::default()).await;
    let (stream, _) = open(f.addr, "/feed", "").await;
    let (keep, _) = open(f.addr, "/feed", "").await;
    wait_for_clients(&f.feed, 2).await;
    drop(stream);
    // Nothing is broadcast: the read side notices the end, the client's queue is freed.
    wait_for_clients(&f.feed, 1).await;
    // A reset is noticed too (a zero linger makes the close a reset; it does not block).
    #[allow(deprecated)]
    keep.set_linger(Some(Duration::ZERO)).unwrap();
    drop(keep);
    wait_for_clients(&f.feed, 0).await;
    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn last_event_id_resumes_with_the_missed_events() {
    let f = start(WebSocketConfig::default()).await;
    for text in ["one", "two", "three"] {
        f.feed.broadcast_message(text.into()).await.unwrap();
    }
    let (mut stream, mut buf) = open(f.addr, "/feed", "Last-Event-ID: 1\r\n").await;
    read_until(&mut stream, &mut buf, b"data: three\n\n").await;
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("data: one"), "{text}");
    assert!(text.contains("id: 2\ndata: two\n\n"), "{text}");
    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn handlers_that_wait_refuse_and_panic() {
    let f = start(WebSocketConfig::default()).await;
    // Slow: answers once it is ready, then streams.
    let (mut slow, mut buf) = open(f.addr, "/slow", "").await;
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
    wait_for_clients(&f.feed, 1).await;
    f.feed.broadcast_message("late".into()).await.unwrap();
    read_until(&mut slow, &mut buf, b"data: late\n\n").await;

    // Refusing: its status and reason, then the connection closes.
    let (mut refused, mut buf) = open(f.addr, "/fails", "").await;
    buf.extend(read_to_end(&mut refused).await);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    assert!(text.ends_with("who are you"), "{text}");

    // Panicking: 500, and the server goes on.
    let mut panics = TcpStream::connect(f.addr).await.unwrap();
    panics
        .write_all(b"GET /panics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let text = String::from_utf8(read_to_end(&mut panics).await).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
    let (status, body) = common::get(f.addr, "/page").await;
    assert_eq!((status, body.as_str()), (200, "<p>page</p>"));
    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_requests_reach_hyper_with_the_bytes_already_read() {
    let f = start(WebSocketConfig::default()).await;
    // Two requests in one write: hyper reads both, the first from what the accept loop
    // already took.
    let mut stream = TcpStream::connect(f.addr).await.unwrap();
    stream
        .write_all(
            b"GET /page HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let text = String::from_utf8(read_to_end(&mut stream).await).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("<p>page</p>HTTP/1.1 404 Not Found\r\n"),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("date:"),
        "hyper answers: {text}"
    );

    // A head trickled in pieces, the blank line last.
    let mut stream = TcpStream::connect(f.addr).await.unwrap();
    for piece in [
        "GE",
        "T /pa",
        "ge HTTP/1.1\r\n",
        "Host: x\r\nConnection: close\r",
        "\n",
        "\r\n",
    ] {
        stream.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let text = String::from_utf8(read_to_end(&mut stream).await).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("<p>page</p>"), "{text}");

    // An SSE route asked for over HTTP/1.0 is left to hyper (no chunked encoding there).
    let mut stream = TcpStream::connect(f.addr).await.unwrap();
    stream
        .write_all(b"GET /feed HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_until(&mut stream, &mut buf, b"\r\n\r\n").await;
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("date:"), "{head}");
    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_heads_get_400_oversized_431_and_slow_ones_are_closed() {
    let timeout = Duration::from_millis(800);
    let f = start(
        WebSocketConfig::default()
            .max_request_head_bytes(16 * 1024)
            .header_read_timeout(Some(timeout)),
    )
    .await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /feed HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /feed HTTP/1.1\r\nHost: x\r\nX: \x01\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(f.addr).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let text = String::from_utf8(read_to_end(&mut stream).await).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    }

    let big = "a".repeat(20 * 1024);
    let mut stream = TcpStream::connect(f.addr).await.unwrap();
    stream
        .write_all(format!("GET /feed HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let text = String::from_utf8(read_to_end(&mut stream).await).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );

    let mut stream = TcpStream::connect(f.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /feed HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let got = read_to_end(&mut stream).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(started.elapsed() >= timeout - Duration::from_millis(100));

    // Still serving.
    let (_stream, head) = open(f.addr, "/feed", "").await;
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pipelined_publish_burst_reaches_every_client_in_order_exactly_once() {
    // hyper answers the pipelined requests of one read in one poll of the connection; the
    // server holds their broadcasts to the end of that poll and queues them as one run.
    let f = start(WebSocketConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(open(f.addr, "/feed", "").await);
    }
    wait_for_clients(&f.feed, 3).await;
    const N: usize = 200;
    let mut burst = String::new();
    for i in 0..N {
        let body = format!("m{i}");
        burst.push_str(&format!(
            "POST /publish HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n{body}",
            f.addr,
            body.len()
        ));
    }
    let mut publisher = TcpStream::connect(f.addr).await.unwrap();
    publisher.write_all(burst.as_bytes()).await.unwrap();
    let mut answers = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while answers
        .windows(b"queued".len())
        .filter(|w| *w == b"queued")
        .count()
        < N
    {
        assert!(
            Instant::now() < deadline,
            "answers: {}",
            String::from_utf8_lossy(&answers)
        );
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(TIMEOUT, publisher.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "publisher connection closed");
        answers.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&answers);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), N, "{text}");
    let last = format!("data: m{}\n\n", N - 1);
    for (stream, buf) in &mut clients {
        read_until(stream, buf, last.as_bytes()).await;
        let text = String::from_utf8_lossy(buf);
        // Every event once, in order, with its id (ids count up from 1).
        let mut at = 0;
        for i in 0..N {
            let event = format!("id: {}\ndata: m{i}\n\n", i + 1);
            assert_eq!(text.matches(&event).count(), 1, "{event:?} in {text}");
            let found = text.find(&event).unwrap();
            assert!(found >= at, "{event:?} out of order");
            at = found;
        }
    }
    let stats = f.feed.stats();
    assert_eq!((stats.events, stats.deliveries), (N as u64, 3 * N as u64));
    f.server.shutdown().await.unwrap();
}
