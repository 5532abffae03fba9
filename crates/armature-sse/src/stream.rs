//! [`SseStream`]: the sending side of one client's stream.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::event::{KEEP_ALIVE, encode_comment};
use crate::queue::{ClientQueue, Closed, Push};
use crate::{Error, ReceiverStream, ServerSentEvent};

/// The sending side of a single client's SSE stream, as the guide shows it.
///
/// [`SseStream::new`] returns it with its [`ReceiverStream`] (return that from a handler, or
/// turn it into an HTTP response with [`ReceiverStream::into_response`]). The queue between
/// them is bounded: a send to a full queue fails with [`Error::QueueFull`] and a send after the
/// receiver is gone with [`Error::Closed`]; nothing waits. Clones send into the same stream;
/// the stream ends (after what is queued) when the last clone is dropped.
///
/// ```
/// use armature_sse::{Error, SseStream};
/// use futures_util::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let (stream, mut receiver) = SseStream::new();
///
/// // Send events
/// stream.send_message("Hello".to_string()).await?;
/// stream.send_event("update".to_string(), "Data".to_string()).await?;
/// stream.send_json(&serde_json::json!({ "n": 1 })).await?;
///
/// // Keep-alive
/// stream.send_keep_alive().await?;
///
/// drop(stream);
/// let all: Vec<String> = receiver.map(|item| item.unwrap()).collect().await;
/// assert_eq!(
///     all,
///     [
///         "data: Hello\n\n",
///         "event: update\ndata: Data\n\n",
///         "data: {\"n\":1}\n\n",
///         ": keep-alive\n\n",
///     ]
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SseStream {
    sender: Arc<Sender>,
}

#[derive(Debug)]
struct Sender {
    queue: Arc<ClientQueue>,
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.queue.close(Closed::Finished);
    }
}

/// Default bound of an [`SseStream`]'s queue, in events.
pub const DEFAULT_STREAM_EVENTS: usize = 256;
/// Default bound of an [`SseStream`]'s queue, in bytes.
pub const DEFAULT_STREAM_BYTES: usize = 1 << 20;

impl SseStream {
    /// A stream and its receiver, with a queue of at most [`DEFAULT_STREAM_EVENTS`] events
    /// and [`DEFAULT_STREAM_BYTES`] bytes.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (SseStream, ReceiverStream<Result<String, Error>>) {
        SseStream::with_limits(DEFAULT_STREAM_EVENTS, DEFAULT_STREAM_BYTES)
    }

    /// A stream whose queue holds at most `max_events` events and `max_bytes` bytes
    /// (each at least 1).
    pub fn with_limits(
        max_events: usize,
        max_bytes: usize,
    ) -> (SseStream, ReceiverStream<Result<String, Error>>) {
        let queue = Arc::new(ClientQueue::new(
            max_events.max(1),
            max_bytes.max(1),
            VecDeque::new(),
        ));
        let stream = SseStream {
            sender: Arc::new(Sender {
                queue: Arc::clone(&queue),
            }),
        };
        (stream, ReceiverStream::new(queue, None))
    }

    /// Sends `event`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad field, [`Error::QueueFull`] when the receiver is
    /// behind by the queue's bound, [`Error::Closed`] when the receiver is gone.
    pub async fn send(&self, event: ServerSentEvent) -> Result<(), Error> {
        self.send_encoded(event.encode()?)
    }

    /// Sends a plain `message` event with `data`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_message(&self, data: String) -> Result<(), Error> {
        self.send(ServerSentEvent::new(data)).await
    }

    /// Sends an event of type `event` with `data`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_event(&self, event: String, data: String) -> Result<(), Error> {
        self.send(ServerSentEvent::with_event(event, data)).await
    }

    /// Sends `value` as JSON in a plain `message` event.
    ///
    /// # Errors
    /// [`Error::Serialization`], or as [`send`](Self::send).
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.send(ServerSentEvent::json(value)?).await
    }

    /// Sends the keep-alive comment (`: keep-alive`).
    ///
    /// # Errors
    /// [`Error::QueueFull`] or [`Error::Closed`].
    pub async fn send_keep_alive(&self) -> Result<(), Error> {
        self.send_encoded(Bytes::from_static(KEEP_ALIVE))
    }

    /// Sends a comment, which clients ignore.
    ///
    /// # Errors
    /// [`Error::QueueFull`] or [`Error::Closed`].
    pub async fn send_comment(&self, text: &str) -> Result<(), Error> {
        self.send_encoded(encode_comment(text))
    }

    /// True once the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.sender.queue.is_closed()
    }

    fn send_encoded(&self, bytes: Bytes) -> Result<(), Error> {
        match self.sender.queue.push(bytes) {
            Push::Queued => Ok(()),
            Push::Full => Err(Error::QueueFull),
            Push::Closed => Err(Error::Closed),
        }
    }
}
