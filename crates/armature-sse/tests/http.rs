//! SSE over real HTTP/1.1 on loopback: a hyper server, hyper (and raw TCP) clients.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use armature_sse::{Error, ReceiverStream, ServerSentEvent, SseBroadcaster, SseConfig, SseStream};
use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// Serves `/events` from `broadcaster` and `/single` from a fresh [`SseStream`] per request.
async fn serve(broadcaster: Arc<SseBroadcaster>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let broadcaster = broadcaster.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let broadcaster = broadcaster.clone();
                    async move { Ok::<_, Infallible>(route(&broadcaster, req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

fn route(broadcaster: &SseBroadcaster, req: Request<Incoming>) -> Response<ReceiverStream> {
    match req.uri().path() {
        "/events" => broadcaster.response_for(req.headers()),
        "/single" => {
            let (stream, receiver) = SseStream::new();
            tokio::spawn(async move {
                stream
                    .send(ServerSentEvent {
                        retry: Some(2500),
                        ..Default::default()
                    })
                    .await?;
                stream
                    .send_event("greeting".into(), "hello\nworld".into())
                    .await?;
                stream
                    .send_json(&serde_json::json!({ "symbol": "AAPL", "price": 150.5 }))
                    .await?;
                stream.send_keep_alive().await?;
                stream
                    .send(ServerSentEvent::full(
                        "7".into(),
                        "done".into(),
                        "bye".into(),
                        1000,
                    ))
                    .await?;
                Ok::<_, Error>(())
            });
            receiver.into_response()
        }
        _ => {
            let (_, receiver) = SseStream::new();
            let mut response = Response::new(receiver);
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// A streaming HTTP client: GET `path`, optionally with `Last-Event-ID`.
async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    last_event_id: Option<&str>,
) -> Response<Incoming> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::get(path).header("host", "localhost");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let response = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    // The connection task ends (and closes the socket) once the response body is dropped.
    response
}

/// Reads a body as blank-line-terminated blocks, exactly as they were sent.
struct Blocks {
    body: BodyDataStream<Incoming>,
    buf: Vec<u8>,
}

impl Blocks {
    fn new(response: Response<Incoming>) -> Self {
        Blocks {
            body: response.into_body().into_data_stream(),
            buf: Vec::new(),
        }
    }

    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..at + 2).collect();
                return Some(String::from_utf8(block).unwrap());
            }
            match timeout(WAIT, self.body.next())
                .await
                .expect("no event in time")
            {
                Some(chunk) => self.buf.extend_from_slice(&chunk.unwrap()),
                None => return None,
            }
        }
    }
}

/// Parses a body with `eventsource-stream`.
fn events(response: Response<Incoming>) -> impl Stream<Item = Event> + Unpin {
    response
        .into_body()
        .into_data_stream()
        .eventsource()
        .map(|e| e.unwrap())
}

async fn wait_for_clients(broadcaster: &SseBroadcaster, n: usize) {
    timeout(WAIT, async {
        while broadcaster.client_count().await != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("client count stayed at {}", broadcaster.stats().clients));
}

#[tokio::test]
async fn headers_and_exact_bytes_of_typed_json_keep_alive_and_retry() {
    let addr = serve(Arc::new(SseBroadcaster::new())).await;
    let response = get(addr, "/single", None).await;
    assert_eq!(response.status(), 200);
    let h = response.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    assert_eq!(h["transfer-encoding"], "chunked");
    assert!(h.get("content-length").is_none());
    assert!(h.get("content-encoding").is_none());

    let body = timeout(WAIT, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "retry: 2500\n\n\
         event: greeting\ndata: hello\ndata: world\n\n\
         data: {\"price\":150.5,\"symbol\":\"AAPL\"}\n\n\
         : keep-alive\n\n\
         id: 7\nevent: done\nretry: 1000\ndata: bye\n\n"
    );
}

#[tokio::test]
async fn a_streaming_client_parses_typed_events_and_json() {
    let addr = serve(Arc::new(SseBroadcaster::new())).await;
    let got: Vec<Event> = events(get(addr, "/single", None).await).collect().await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].event, "greeting");
    assert_eq!(got[0].data, "hello\nworld");
    assert_eq!(got[1].event, "message");
    let json: serde_json::Value = serde_json::from_str(&got[1].data).unwrap();
    assert_eq!(json["price"], 150.5);
    assert_eq!(got[2].event, "done");
    assert_eq!(got[2].id, "7");
    assert_eq!(got[2].retry, Some(Duration::from_millis(1000)));
}

#[tokio::test]
async fn each_broadcast_arrives_before_the_next_is_sent() {
    let broadcaster = Arc::new(SseBroadcaster::new());
    let addr = serve(broadcaster.clone()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(Blocks::new(get(addr, "/events", None).await));
    }
    wait_for_clients(&broadcaster, 3).await;
    // Lock-step: if hyper held an event back waiting for more, this would time out.
    for i in 0..20 {
        broadcaster
            .broadcast_event("tick".into(), i.to_string())
            .await
            .unwrap();
        for c in &mut clients {
            assert_eq!(
                c.next().await.unwrap(),
                format!("event: tick\ndata: {i}\n\n")
            );
        }
    }
    broadcaster.send_keep_alive();
    for c in &mut clients {
        assert_eq!(c.next().await.unwrap(), ": keep-alive\n\n");
    }
}

#[tokio::test]
async fn client_count_drops_when_the_http_client_goes_away() {
    let broadcaster = Arc::new(SseBroadcaster::new());
    let addr = serve(broadcaster.clone()).await;
    let mut responses = Vec::new();
    for _ in 0..5 {
        responses.push(get(addr, "/events", None).await);
    }
    wait_for_clients(&broadcaster, 5).await;
    // Two clients close their connections; nothing is broadcast meanwhile, so only hyper
    // noticing the closed socket (and dropping the body) can remove them.
    responses.truncate(3);
    wait_for_clients(&broadcaster, 3).await;
    assert_eq!(broadcaster.stats().disconnects, 2);
    drop(responses);
    wait_for_clients(&broadcaster, 0).await;
}

#[tokio::test]
async fn resume_with_last_event_id_after_a_disconnect() {
    let broadcaster = Arc::new(SseBroadcaster::with_config(
        SseConfig::default().history_len(100).auto_ids(true),
    ));
    let addr = serve(broadcaster.clone()).await;

    let mut first = events(get(addr, "/events", None).await);
    wait_for_clients(&broadcaster, 1).await;
    for i in 1..=3 {
        broadcaster
            .broadcast_message(format!("m{i}"))
            .await
            .unwrap();
    }
    let mut last_id = String::new();
    for i in 1..=3 {
        let e = timeout(WAIT, first.next()).await.unwrap().unwrap();
        assert_eq!(e.data, format!("m{i}"));
        last_id = e.id;
    }
    assert_eq!(last_id, "3");
    drop(first);
    wait_for_clients(&broadcaster, 0).await;

    // Missed while away.
    broadcaster.broadcast_message("m4".into()).await.unwrap();
    broadcaster.broadcast_message("m5".into()).await.unwrap();

    let mut again = events(get(addr, "/events", Some(&last_id)).await);
    wait_for_clients(&broadcaster, 1).await;
    broadcaster.broadcast_message("m6".into()).await.unwrap();
    for i in 4..=6 {
        let e = timeout(WAIT, again.next()).await.unwrap().unwrap();
        assert_eq!(
            (e.id.as_str(), e.data.as_str()),
            (i.to_string().as_str(), format!("m{i}").as_str())
        );
    }

    // An id the server never issued: a reset event, then live.
    let mut lost = events(get(addr, "/events", Some("no-such-id")).await);
    let reset = timeout(WAIT, lost.next()).await.unwrap().unwrap();
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.id, "6");
    wait_for_clients(&broadcaster, 2).await;
    broadcaster.broadcast_message("m7".into()).await.unwrap();
    assert_eq!(
        timeout(WAIT, lost.next()).await.unwrap().unwrap().data,
        "m7"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_while_the_others_keep_receiving() {
    let broadcaster = Arc::new(SseBroadcaster::with_config(
        SseConfig::default().max_queued_events(8),
    ));
    let addr = serve(broadcaster.clone()).await;

    // The slow client sends its request and never reads; a small receive buffer makes the
    // kernel's buffers fill sooner.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    slow.write_all(b"GET /events HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();

    let mut fast = Blocks::new(get(addr, "/events", None).await);
    wait_for_clients(&broadcaster, 2).await;

    let payload = "x".repeat(16 * 1024);
    let mut sent = 0;
    while broadcaster.stats().slow_clients_dropped == 0 {
        assert!(sent < 20_000, "the slow client was never dropped");
        broadcaster
            .broadcast_message(payload.clone())
            .await
            .unwrap();
        sent += 1;
        let block = fast.next().await.unwrap();
        assert_eq!(block.len(), payload.len() + 8, "event {sent}");
    }
    assert_eq!(broadcaster.client_count().await, 1);
    // The fast client is unaffected.
    broadcaster.broadcast_message("after".into()).await.unwrap();
    assert_eq!(fast.next().await.unwrap(), "data: after\n\n");
    drop(slow);
}
