//! SSE with `Content-Encoding: gzip` over real sockets: an `#[sse]` route that opts in with
//! `gzip`, a client that accepts gzip and one that does not, every event readable as soon
//! as it is broadcast (nothing waits in a compressor).

mod common;

use std::io::Read;

use armature_realtime::prelude::*;
use armature_realtime::sse::SseBroadcaster;
use armature_realtime::sse_route::gzip;
use bytes::Bytes;
use common::{TIMEOUT, send};
use http_body_util::{BodyExt, Empty};

/// The test's broadcaster, shared with the service the controller gets.
static BROADCASTER: std::sync::LazyLock<Arc<SseBroadcaster>> =
    std::sync::LazyLock::new(|| Arc::new(SseBroadcaster::new()));

#[injectable]
#[derive(Clone)]
struct Feed {
    broadcaster: Arc<SseBroadcaster>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            broadcaster: Arc::clone(&BROADCASTER),
        }
    }
}

#[controller("/feed")]
struct FeedController {
    feed: Feed,
}

#[controller]
impl FeedController {
    #[sse("/gzip")]
    async fn gzipped(&self) -> http::Response<armature_realtime::body::Body> {
        gzip(self.feed.broadcaster.register().await)
    }

    #[sse("/plain")]
    async fn plain(&self) -> ReceiverStream<Result<String, Error>> {
        self.feed.broadcaster.register().await
    }
}

#[module(providers: [Feed], controllers: [FeedController])]
struct FeedModule;

fn request(addr: std::net::SocketAddr, path: &str, gzip: bool) -> http::Request<Empty<Bytes>> {
    let mut builder = http::Request::get(path).header("host", addr.to_string());
    if gzip {
        builder = builder.header("accept-encoding", "gzip, deflate, br");
    }
    builder.body(Empty::new()).unwrap()
}

/// Inflates the raw deflate data after the 10-byte gzip header, as far as it goes.
fn inflate_so_far(wire: &[u8]) -> String {
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&wire[10..], &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn gzip_route_compresses_for_clients_that_accept_it_and_flushes_every_event() {
    let app = App::new().module::<FeedModule>();
    let feed = Feed::default();
    let server = app.bind("127.0.0.1:0").await.unwrap().spawn();
    let addr = server.local_addr();

    let zipped = send(addr, request(addr, "/feed/gzip", true)).await;
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["content-type"], "text/event-stream");
    assert_eq!(zipped.headers()["vary"], "accept-encoding");
    let plain_client = send(addr, request(addr, "/feed/gzip", false)).await;
    assert!(plain_client.headers().get("content-encoding").is_none());
    let not_opted_in = send(addr, request(addr, "/feed/plain", true)).await;
    assert!(not_opted_in.headers().get("content-encoding").is_none());

    let mut zipped = zipped.into_body();
    let mut plain_client = plain_client.into_body();
    let mut wire = Vec::new();
    let mut expected = String::new();
    for i in 0..20 {
        // A dashboard-style event of a few hundred bytes: each event is deflated on its own,
        // so it is its own repetition that compresses.
        let cells: Vec<String> = (0..12)
            .map(|c| {
                format!(
                    r#"{{"metric":"cpu.load.{c}","value":{}.{c},"unit":"percent"}}"#,
                    i + c
                )
            })
            .collect();
        let json = format!(
            r#"{{"seq":{i},"host":"web-01","cells":[{}]}}"#,
            cells.join(",")
        );
        feed.broadcaster
            .broadcast_message(json.clone())
            .await
            .unwrap();
        expected.push_str(&format!("data: {json}\n\n"));
        // The event is readable from what arrived, before any later event is sent.
        while wire.len() < 10 || inflate_so_far(&wire) != expected {
            let frame = tokio::time::timeout(TIMEOUT, zipped.frame())
                .await
                .expect("event flushed without waiting for more")
                .unwrap()
                .unwrap();
            wire.extend_from_slice(&frame.into_data().unwrap());
        }
        let frame = tokio::time::timeout(TIMEOUT, plain_client.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), format!("data: {json}\n\n"));
    }
    assert!(
        wire.len() * 10 < expected.len() * 4,
        "{} bytes compressed vs {}",
        wire.len(),
        expected.len()
    );

    // Shutdown ends the stream with the gzip trailer: a plain gzip decoder reads it all.
    tokio::time::timeout(TIMEOUT, server.shutdown())
        .await
        .unwrap()
        .unwrap();
    let rest = tokio::time::timeout(TIMEOUT, zipped.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    wire.extend_from_slice(&rest);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&wire[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, expected);
}
