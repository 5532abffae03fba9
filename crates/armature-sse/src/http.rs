//! Serving SSE over HTTP: response headers, `Last-Event-ID`.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::{Error, ReceiverStream, SseBroadcaster};

/// The `Last-Event-ID` request header a reconnecting client sends.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The `X-Accel-Buffering` response header (`no` asks nginx not to buffer the stream).
pub const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Wraps `body` in a `200 OK` response with the headers an event stream needs:
/// `Content-Type: text/event-stream`, `Cache-Control: no-cache` and `X-Accel-Buffering: no`.
/// No `Content-Length` (hyper streams it chunked on HTTP/1.1) and no `Content-Encoding`:
/// a generic compressor would hold events back (tower-http's compression leaves
/// `text/event-stream` alone by default); [`gzip_response`](crate::gzip_response) gzips an
/// event stream flushing every event, for clients that send `Accept-Encoding: gzip`.
///
/// ```
/// let (_stream, receiver) = armature_sse::SseStream::new();
/// let response = armature_sse::sse_response(receiver);
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// assert_eq!(response.headers()["cache-control"], "no-cache");
/// assert_eq!(response.headers()["x-accel-buffering"], "no");
/// ```
pub fn sse_response<B>(body: B) -> http::Response<B> {
    let mut response = http::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    response
}

/// The `Last-Event-ID` a reconnecting client sent, if any (and if it is text).
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(armature_sse::last_event_id(&headers), None);
/// headers.insert("last-event-id", "41".parse().unwrap());
/// assert_eq!(armature_sse::last_event_id(&headers), Some("41"));
/// ```
pub fn last_event_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(LAST_EVENT_ID)?.to_str().ok()
}

impl SseBroadcaster {
    /// Registers a client for the request whose headers are `headers` (resuming from its
    /// `Last-Event-ID`, if any) and returns the `text/event-stream` response to send.
    ///
    /// A [`ReceiverStream`] is an [`http_body::Body`] whose frames are the queued event bytes, so
    /// hyper writes each event as soon as it is queued (and, when several are ready, batches them
    /// into one vectored write). When the client goes away hyper drops the body, which removes
    /// the client from its broadcaster.
    ///
    /// ```no_run
    /// use std::convert::Infallible;
    /// use std::sync::Arc;
    /// use armature_sse::{ReceiverStream, SseBroadcaster};
    /// use hyper::{Request, Response, body::Incoming, service::service_fn};
    ///
    /// # async fn serve(io: hyper_util::rt::TokioIo<tokio::net::TcpStream>) {
    /// let broadcaster = Arc::new(SseBroadcaster::new());
    /// let service = service_fn(move |req: Request<Incoming>| {
    ///     let broadcaster = broadcaster.clone();
    ///     async move {
    ///         // Resumes from `Last-Event-ID` when the client sends one.
    ///         Ok::<Response<ReceiverStream>, Infallible>(broadcaster.response_for(req.headers()))
    ///     }
    /// });
    /// let _ = hyper::server::conn::http1::Builder::new()
    ///     .serve_connection(io, service)
    ///     .await;
    /// # }
    /// ```
    pub fn response_for(
        &self,
        headers: &HeaderMap,
    ) -> http::Response<ReceiverStream<Result<String, Error>>> {
        self.register_from(last_event_id(headers)).into_response()
    }
}
