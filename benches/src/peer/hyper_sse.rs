//! Server-Sent Events on plain hyper, as the tokio-tungstenite and fastwebsockets peers
//! serve them (neither library does HTTP): one `tokio::sync::broadcast` channel of
//! pre-encoded events, each `/sse` response body a stream over a receiver.

use std::convert::Infallible;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::{BROADCAST_CAPACITY, MAX_PUBLISH_BODY};

/// The response body type of the hyper-based peers.
pub type PeerBody = BoxBody<Bytes, Infallible>;

/// An empty body.
pub fn empty() -> PeerBody {
    Empty::new().boxed()
}

/// A response with `status` and no body.
pub fn status(status: StatusCode) -> Response<PeerBody> {
    let mut res = Response::new(empty());
    *res.status_mut() = status;
    res
}

/// The SSE room: every `/sse` client, fed by `POST /publish`.
#[derive(Debug, Clone)]
pub struct SseHub {
    tx: broadcast::Sender<Bytes>,
}

impl Default for SseHub {
    fn default() -> Self {
        Self::new()
    }
}

impl SseHub {
    /// An empty room.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }

    /// Serves `/sse` and `/publish`; any other request is handed back as `Err`.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<PeerBody>, Request<Incoming>> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/sse") => Ok(self.subscribe()),
            (&Method::POST, "/publish") => Ok(self.publish(req).await),
            _ => Err(req),
        }
    }

    /// A `text/event-stream` response that receives every event published from now on.
    /// A client that falls more than the channel's capacity behind skips what it missed.
    pub fn subscribe(&self) -> Response<PeerBody> {
        let events = BroadcastStream::new(self.tx.subscribe()).filter_map(|r| {
            std::future::ready(r.ok().map(|b| Ok::<_, Infallible>(Frame::data(b))))
        });
        let mut res = Response::new(BodyExt::boxed(StreamBody::new(events)));
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/event-stream"),
        );
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-cache"),
        );
        res
    }

    /// Reads the body `P`, encodes `data: P\n\n` once and queues it for every client;
    /// `204`, or `400` for a body with a line break, `413` for one too large.
    pub async fn publish(&self, req: Request<Incoming>) -> Response<PeerBody> {
        let body = match Limited::new(req.into_body(), MAX_PUBLISH_BODY)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE),
        };
        if body.iter().any(|&b| b == b'\n' || b == b'\r') {
            return status(StatusCode::BAD_REQUEST);
        }
        let mut event = BytesMut::with_capacity(body.len() + 8);
        event.extend_from_slice(b"data: ");
        event.extend_from_slice(&body);
        event.extend_from_slice(b"\n\n");
        // No subscribers is not an error: the event is queued for all zero of them.
        let _ = self.tx.send(event.freeze());
        status(StatusCode::NO_CONTENT)
    }
}

/// A `404` with a short text body.
pub fn not_found() -> Response<PeerBody> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"not found\n")).boxed());
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}
