//! A hostile SSE client over real HTTP/1.1: it subscribes, then stops reading while events
//! keep coming. Its answer (docs/hostile-clients.md): the slow-client policy drops it once
//! its bounded queue is full (its response body ends), and the other subscriber receives
//! every event, in order.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use armature_sse::{ReceiverStream, ServerSentEvent, SseBroadcaster, SseConfig};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use http_body_util::{BodyDataStream, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);
/// Events broadcast at least; more until the slow client is dropped (its socket buffers
/// hold a few MB first, depending on the kernel's autotuning).
const EVENTS: u64 = 20_000;
/// Give up past this many events (~43 MB).
const MAX_EVENTS: u64 = 200_000;

async fn serve(broadcaster: Arc<SseBroadcaster>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let broadcaster = broadcaster.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let response: Response<ReceiverStream> =
                        broadcaster.response_for(req.headers());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// Waits until `check` holds; panics after [`WAIT`].
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_client_that_stops_reading_is_dropped_and_others_get_every_event() {
    let broadcaster = Arc::new(SseBroadcaster::with_config(
        SseConfig::default().max_queued_events(64),
    ));
    let addr = serve(broadcaster.clone()).await;

    // The hostile client: a small receive buffer, subscribes, never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow: TcpStream = socket.connect(addr).await.unwrap();
    slow.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();

    // The healthy client: hyper's client, events parsed by eventsource-stream.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(
            Request::get("/events")
                .header("host", "localhost")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut events = BodyDataStream::new(response.into_body()).eventsource();
            let mut next = 0u64;
            loop {
                let event = timeout(WAIT, events.next())
                    .await
                    .expect("the healthy client stopped receiving")
                    .expect("the healthy client's stream ended")
                    .expect("parse error");
                if event.data == "end" {
                    return (next, events); // kept open: the client stays registered
                }
                assert_eq!(event.data, format!("event {next} {}", "x".repeat(200)));
                next += 1;
                received.store(next, Ordering::Release);
            }
        })
    };
    eventually("both clients registered", async || {
        broadcaster.client_count().await == 2
    })
    .await;

    // Broadcast, staying at most 32 events ahead of the healthy client (half its queue), so
    // only the client that does not read can fall behind.
    let padding = "x".repeat(200);
    let mut sent = 0u64;
    while sent < EVENTS || broadcaster.stats().slow_clients_dropped == 0 {
        assert!(sent < MAX_EVENTS, "the slow client was never dropped");
        while sent >= received.load(Ordering::Acquire) + 32 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        broadcaster
            .broadcast(ServerSentEvent::new(format!("event {sent} {padding}")))
            .await
            .unwrap();
        sent += 1;
    }
    broadcaster
        .broadcast(ServerSentEvent::new("end".to_owned()))
        .await
        .unwrap();
    let (got_by_healthy, _healthy) = timeout(WAIT, reader)
        .await
        .expect("healthy client did not get every event")
        .unwrap();
    assert_eq!(got_by_healthy, sent, "the healthy client got every event");

    let stats = broadcaster.stats();
    assert_eq!(stats.slow_clients_dropped, 1, "{stats:?}");
    assert_eq!(broadcaster.client_count().await, 1);

    // The dropped client, reading at last, finds a prefix of the events and then the end of
    // its response body (the chunked terminator): a browser would reconnect.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = timeout(WAIT, slow.read(&mut chunk))
            .await
            .expect("the dropped client's body did not end")
            .unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.ends_with(b"\r\n0\r\n\r\n") {
            break;
        }
    }
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    assert!(
        raw.ends_with(b"\r\n0\r\n\r\n"),
        "the dropped client's body did not end"
    );
    let text = String::from_utf8_lossy(&raw);
    let got: Vec<u64> = text
        .match_indices("data: event ")
        .map(|(at, _)| {
            let rest = &text[at + "data: event ".len()..];
            rest[..rest.find(' ').unwrap()].parse().unwrap()
        })
        .collect();
    assert!(
        (got.len() as u64) < EVENTS,
        "the slow client got everything"
    );
    assert!(
        got.iter().enumerate().all(|(i, n)| *n == i as u64),
        "the dropped client's events are a prefix, in order"
    );
    println!(
        "slow SSE client dropped after {} of {sent} events ({} bytes)",
        got.len(),
        raw.len()
    );
}
