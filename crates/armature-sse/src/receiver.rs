//! [`ReceiverStream`]: the receiving end of one client's queue, as a `Stream` and as an HTTP
//! response body.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};

use crate::Error;
use crate::broadcaster::Registration;
use crate::queue::{ClientQueue, Closed, Pop};

/// The receiving end of an SSE client: what [`SseBroadcaster::register`](crate::SseBroadcaster::register)
/// and [`SseStream::new`](crate::SseStream::new) hand out.
///
/// It carries the encoded event bytes shared with every other client of the same broadcast.
/// How you consume it picks the item type:
///
/// - as `ReceiverStream<Result<String, Error>>` (the guide's type) it is a `Stream` of the
///   wire text of each event (`"data: Test\n\n"`); the `String` is made only here, for a
///   consumer that asks for it;
/// - [`into_bytes`](Self::into_bytes) gives a `Stream` of `Result<Bytes, Error>` with no copy;
/// - for any `T` it is an [`http_body::Body`] whose frames are the shared `Bytes`, and
///   [`into_response`](Self::into_response) wraps it in a ready `text/event-stream` response
///   for hyper or any tower server.
///
/// Dropping it (the consumer or the HTTP connection went away) removes the client from its
/// broadcaster at once.
///
/// When the slow-client policy drops the client, a `Result` stream yields one
/// `Err(Error::QueueFull)` and ends; the body just ends.
///
/// ```
/// use armature_sse::{Error, ReceiverStream, SseBroadcaster};
/// use futures_util::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let broadcaster = SseBroadcaster::new();
/// let mut stream: ReceiverStream<Result<String, Error>> = broadcaster.register().await;
/// broadcaster.broadcast_message("Test".to_string()).await?;
/// assert_eq!(stream.next().await.unwrap()?, "data: Test\n\n");
/// # Ok(())
/// # }
/// ```
pub struct ReceiverStream<T = Result<String, Error>> {
    guard: Guard,
    _item: PhantomData<fn() -> T>,
}

/// Owns the receiving side: closes the queue and leaves the broadcaster when dropped.
struct Guard {
    queue: Arc<ClientQueue>,
    registration: Option<Registration>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.queue.close(Closed::ReceiverGone);
        if let Some(registration) = self.registration.take() {
            registration.unregister();
        }
    }
}

impl<T> ReceiverStream<T> {
    pub(crate) fn new(queue: Arc<ClientQueue>, registration: Option<Registration>) -> Self {
        ReceiverStream {
            guard: Guard {
                queue,
                registration,
            },
            _item: PhantomData,
        }
    }

    fn retype<U>(self) -> ReceiverStream<U> {
        ReceiverStream {
            guard: self.guard,
            _item: PhantomData,
        }
    }

    /// The same stream, yielding the shared encoded `Bytes` of each event.
    pub fn into_bytes(self) -> ReceiverStream<Result<Bytes, Error>> {
        self.retype()
    }

    /// The same stream, yielding the wire text of each event.
    pub fn into_strings(self) -> ReceiverStream<Result<String, Error>> {
        self.retype()
    }

    /// A `200 OK` `text/event-stream` response with this stream as its body; see
    /// [`sse_response`](crate::sse_response) for the headers.
    pub fn into_response(self) -> http::Response<Self> {
        crate::http::sse_response(self)
    }

    /// Events waiting in this client's queue.
    pub fn queued(&self) -> usize {
        self.guard.queue.len()
    }

    /// True when the sending side is gone or dropped this client; queued events may remain.
    pub fn is_closed(&self) -> bool {
        self.guard.queue.is_closed()
    }

    fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Pop> {
        self.guard.queue.poll_pop(cx)
    }
}

impl<T> fmt::Debug for ReceiverStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverStream")
            .field("queued", &self.guard.queue.len())
            .field("closed", &self.guard.queue.is_closed())
            .finish()
    }
}

impl Stream for ReceiverStream<Result<String, Error>> {
    type Item = Result<String, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_pop(cx).map(|pop| match pop {
            // Encoded events are built from `String`s, so they are UTF-8.
            Pop::Item(bytes) => Some(Ok(String::from_utf8_lossy(&bytes).into_owned())),
            Pop::Overflow => Some(Err(Error::QueueFull)),
            Pop::End => None,
        })
    }
}

impl Stream for ReceiverStream<Result<Bytes, Error>> {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_pop(cx).map(|pop| match pop {
            Pop::Item(bytes) => Some(Ok(bytes)),
            Pop::Overflow => Some(Err(Error::QueueFull)),
            Pop::End => None,
        })
    }
}

impl<T> Body for ReceiverStream<T> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        // A body's frames need not be one event each: a run queued meanwhile goes as one.
        self.guard.queue.poll_pop_run(cx).map(|pop| match pop {
            Pop::Item(bytes) => Some(Ok(Frame::data(bytes))),
            Pop::Overflow | Pop::End => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.guard.queue.is_finished()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
