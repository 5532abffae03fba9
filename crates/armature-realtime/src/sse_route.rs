//! SSE routes: what an `#[sse]` handler may return ([`IntoSse`]), [`EventStream`] for any
//! stream of events, and the response body that ends when the server shuts down.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::Response;
use http_body::{Frame, SizeHint};

use crate::Error;
use crate::body::{Body, error_response};
use crate::shutdown::ShutdownSignal;
use crate::sse::{KEEP_ALIVE, ReceiverStream, ServerSentEvent, sse_response};

/// A value an `#[sse]` handler can return: it becomes a `text/event-stream` response.
///
/// Implemented for [`ReceiverStream`] (what `SseBroadcaster::register` and `SseStream::new`
/// give), [`EventStream`] (any stream of [`ServerSentEvent`]s), an already-built
/// `http::Response` (such as `SseBroadcaster::response_for`), and `Result<T, E>` of those,
/// where `Err` refuses the request with the error's status.
pub trait IntoSse {
    /// The response to send.
    fn into_sse(self) -> Response<Body>;
}

impl<T: Send + 'static> IntoSse for ReceiverStream<T> {
    fn into_sse(self) -> Response<Body> {
        sse_response(crate::body::boxed(InfallibleBody(self)))
    }
}

impl<B> IntoSse for Response<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    fn into_sse(self) -> Response<Body> {
        use http_body_util::BodyExt;
        self.map(|b| {
            b.map_err(|e| Error::Internal(format!("event stream failed: {e}")))
                .boxed_unsync()
        })
    }
}

impl<T: IntoSse, E: Into<Error>> IntoSse for Result<T, E> {
    fn into_sse(self) -> Response<Body> {
        match self {
            Ok(value) => value.into_sse(),
            Err(err) => error_response(&err.into()),
        }
    }
}

/// An SSE response sent gzip-compressed to clients that accept it (`Accept-Encoding:
/// gzip`); others get it as it is. Every event is flushed on its own, so none waits in a
/// compressor, and a broadcast event is deflated once per thread, not once per client; a
/// client costs 24 bytes more than an uncompressed one (see [`armature_sse::gzip`]).
///
/// Return it from an `#[sse]` handler (it is a `Response`, which is [`IntoSse`]), or call
/// [`EventStream::gzip`].
///
/// ```
/// use armature_realtime::sse_route::gzip;
/// use armature_realtime::sse::SseStream;
///
/// let (_stream, receiver) = SseStream::new();
/// let response = gzip(receiver);
/// // The App compresses it once it has seen the request's Accept-Encoding.
/// assert_eq!(response.headers()["vary"], "accept-encoding");
/// ```
pub fn gzip(value: impl IntoSse) -> Response<Body> {
    let mut response = value.into_sse();
    if response.status().is_success() {
        response.extensions_mut().insert(GzipRequested);
        response.headers_mut().append(
            http::header::VARY,
            http::HeaderValue::from_static("accept-encoding"),
        );
    }
    response
}

/// The mark a [`gzip`] response carries until the [`App`](crate::App) has read the
/// request's `Accept-Encoding`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GzipRequested;

/// A response of a route that asked for gzip ([`gzip`]), compressed when the client
/// accepts it; any other response unchanged.
pub(crate) fn gzip_if_requested(mut response: Response<Body>, accepts: bool) -> Response<Body> {
    if response
        .extensions_mut()
        .remove::<GzipRequested>()
        .is_none()
        || !accepts
    {
        return response;
    }
    let response = armature_sse::gzip_response(response);
    // `gzip_response` adds its own `Vary`; keep one.
    let (mut parts, body) = response.into_parts();
    let vary: Vec<_> = parts
        .headers
        .get_all(http::header::VARY)
        .iter()
        .cloned()
        .collect();
    if vary.len() > 1 {
        parts.headers.remove(http::header::VARY);
        parts.headers.insert(
            http::header::VARY,
            http::HeaderValue::from_static("accept-encoding"),
        );
    }
    Response::from_parts(parts, crate::body::boxed(body))
}

/// One item of an [`EventStream`]: a [`ServerSentEvent`], or a `Result` of one.
pub trait IntoEvent {
    /// The event, or why there is none.
    ///
    /// # Errors
    /// The item's own error.
    fn into_event(self) -> Result<ServerSentEvent, Error>;
}

impl IntoEvent for ServerSentEvent {
    fn into_event(self) -> Result<ServerSentEvent, Error> {
        Ok(self)
    }
}

impl<E: Into<Error>> IntoEvent for Result<ServerSentEvent, E> {
    fn into_event(self) -> Result<ServerSentEvent, Error> {
        self.map_err(Into::into)
    }
}

/// Any stream of events as an SSE response: each event is encoded as it arrives and
/// flushed at once. An item that is an error, or an event that cannot be encoded (an `id`
/// with a line break, say), ends the stream.
///
/// `#[sse]` wraps a handler returning `impl Stream<Item = ServerSentEvent>` in one itself.
///
/// ```
/// use armature_realtime::sse_route::{EventStream, IntoSse};
/// use armature_realtime::sse::ServerSentEvent;
///
/// let events = futures_util::stream::iter([ServerSentEvent::new("hi".to_string())]);
/// let response = EventStream::new(events).into_sse();
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// ```
#[derive(Debug)]
pub struct EventStream<S> {
    stream: S,
    keep_alive: Option<Duration>,
}

impl<S> EventStream<S> {
    /// Wraps `stream`.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            keep_alive: None,
        }
    }

    /// Sends a `: keep-alive` comment whenever `interval` passes without an event, so
    /// proxies do not close a quiet stream. Off by default.
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = Some(interval);
        self
    }

    /// This stream as a response gzip-compressed for clients that accept it (see
    /// [`gzip`](fn@gzip)).
    pub fn gzip(self) -> Response<Body>
    where
        Self: IntoSse,
    {
        gzip(self)
    }
}

impl<S, I> IntoSse for EventStream<S>
where
    S: Stream<Item = I> + Send + 'static,
    I: IntoEvent,
{
    fn into_sse(self) -> Response<Body> {
        use futures_util::StreamExt;
        let frames = Box::pin(self.stream).map(|item| {
            item.into_event()
                .and_then(|event| event.encode())
                .map(Frame::data)
        });
        let body = KeepAlive {
            frames: Box::pin(frames),
            timer: self
                .keep_alive
                .map(|every| (every, Box::pin(tokio::time::sleep(every)))),
        };
        sse_response(crate::body::boxed(body))
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, Error>> + Send>>;

/// The body of an [`EventStream`]: its frames, with a keep-alive comment after each quiet
/// interval when one is set.
struct KeepAlive {
    frames: FrameStream,
    timer: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
}

impl http_body::Body for KeepAlive {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Poll::Ready(item) = self.frames.as_mut().poll_next(cx) {
            if let Some((every, sleep)) = &mut self.timer {
                sleep.as_mut().reset(tokio::time::Instant::now() + *every);
            }
            return Poll::Ready(item);
        }
        if let Some((every, sleep)) = &mut self.timer
            && sleep.as_mut().poll(cx).is_ready()
        {
            sleep.as_mut().reset(tokio::time::Instant::now() + *every);
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
        }
        Poll::Pending
    }
}

struct InfallibleBody<B>(B);

impl<B> http_body::Body for InfallibleBody<B>
where
    B: http_body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(|never| match never {})))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// A body that ends (cleanly) when the server shuts down, so an endless event stream does
/// not hold graceful shutdown until its deadline.
struct UntilShutdown {
    inner: Body,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    stopped: bool,
}

impl http_body::Body for UntilShutdown {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.stopped {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.stop.as_mut().poll(cx).is_ready() {
            self.stopped = true;
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.stopped || self.inner.is_end_stream()
    }
}

/// The response of an `#[sse]` handler: `value` as an event stream that ends when `signal`
/// fires. Error responses (a refused request) pass unchanged.
pub fn sse_response_until(signal: ShutdownSignal, value: impl IntoSse) -> Response<Body> {
    let response = value.into_sse();
    if !response.status().is_success() {
        return response;
    }
    response.map(|inner| {
        crate::body::boxed(UntilShutdown {
            inner,
            stop: Box::pin(async move { signal.wait().await }),
            stopped: false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn keep_alive_fills_quiet_intervals_only() {
        let events = futures_util::stream::unfold(0u32, |n| async move {
            // Two quick events, then a long silence, then one more.
            let wait = if n == 2 { 35 } else { 1 };
            tokio::time::sleep(Duration::from_secs(wait)).await;
            (n < 3).then(|| (ServerSentEvent::new(n.to_string()), n + 1))
        });
        let response = EventStream::new(events)
            .keep_alive(Duration::from_secs(15))
            .into_sse();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body,
            "data: 0\n\ndata: 1\n\n: keep-alive\n\n: keep-alive\n\ndata: 2\n\n"
        );
    }

    #[tokio::test]
    async fn a_bad_event_ends_the_stream_with_an_error() {
        let events = futures_util::stream::iter([
            ServerSentEvent::new("ok".into()),
            ServerSentEvent::new("x".into()).id("bad\nid"),
        ]);
        let mut body = EventStream::new(events).into_sse().into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "data: ok\n\n");
        assert!(body.frame().await.unwrap().unwrap_err().is_validation());
    }

    #[tokio::test]
    async fn errors_refuse_with_their_status() {
        let refused: Result<EventStream<futures_util::stream::Empty<ServerSentEvent>>, Error> =
            Err(Error::Http {
                status: 401,
                reason: "no".into(),
            });
        assert_eq!(refused.into_sse().status(), 401);
    }
}
