//! The broadcast seam: [`SseTransport`], [`LocalSseTransport`], [`EncodedEvent`].

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::{Error, ServerSentEvent, SseBroadcaster};

/// An event encoded once: its wire bytes and its id (the history needs the id to resume).
/// Cloning it shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    id: Option<Arc<str>>,
    bytes: Bytes,
}

impl EncodedEvent {
    /// The id, shared.
    pub(crate) fn shared_id(&self) -> Option<Arc<str>> {
        self.id.clone()
    }

    /// Encodes `event`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad `event` or `id` field.
    pub fn from_event(event: &ServerSentEvent) -> Result<Self, Error> {
        Ok(EncodedEvent {
            id: event.id.as_deref().map(Arc::from),
            bytes: event.encode()?,
        })
    }

    /// Rebuilds an event from what an adapter carried: the `id` and wire `bytes` of an
    /// [`EncodedEvent`] made in another process.
    ///
    /// # Errors
    /// [`Error::Validation`] when `bytes` is not UTF-8 or does not end with a blank line (it
    /// would corrupt the stream of every client), or `id` has a line break or NUL.
    pub fn from_parts(id: Option<String>, bytes: Bytes) -> Result<Self, Error> {
        if std::str::from_utf8(&bytes).is_err() || !bytes.ends_with(b"\n\n") {
            return Err(Error::Validation(
                "encoded sse event must be utf-8 and end with a blank line".into(),
            ));
        }
        if id
            .as_deref()
            .is_some_and(|id| id.contains(['\r', '\n', '\0']))
        {
            return Err(Error::Validation(
                "sse event id must not contain a line break or NUL".into(),
            ));
        }
        Ok(EncodedEvent {
            id: id.map(Arc::from),
            bytes,
        })
    }

    pub(crate) fn new(id: Option<Arc<str>>, bytes: Bytes) -> Self {
        EncodedEvent { id, bytes }
    }

    /// The event's id, if it has one (given or assigned by the broadcaster).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The wire bytes, shared.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// The broadcast seam: every broadcast goes through an [`SseTransport`], so a later adapter
/// (Redis pub/sub, say) can carry SSE broadcasts between server processes without a change to
/// user code. The same shape as `armature-ws`'s `BroadcastTransport` for rooms.
///
/// [`SseBroadcaster::broadcast`](crate::SseBroadcaster::broadcast) (and its `_message`,
/// `_event`, `_json` variants) encodes the event once into an [`EncodedEvent`] and hands it to
/// the broadcaster's transport. The default, [`LocalSseTransport`], delivers it at once to the
/// clients registered in this process with
/// [`SseBroadcaster::deliver_local`](crate::SseBroadcaster::deliver_local). A multi-process
/// adapter would publish the event's id and bytes ([`EncodedEvent::id`],
/// [`EncodedEvent::bytes`]) on its bus and, on every process (this one included), rebuild it
/// with [`EncodedEvent::from_parts`] and call `deliver_local` on its broadcaster.
///
/// `publish` is synchronous on purpose: a broadcast never waits. An adapter with a network
/// behind it hands the event to its own bounded outbox and returns.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use armature_sse::{EncodedEvent, Error, SseBroadcaster, SseTransport};
///
/// /// Counts broadcasts, then delivers locally.
/// #[derive(Debug, Default)]
/// struct Counting(AtomicUsize);
///
/// impl SseTransport for Counting {
///     fn publish(&self, broadcaster: &SseBroadcaster, event: EncodedEvent) -> Result<(), Error> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         broadcaster.deliver_local(&event);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// use futures_util::StreamExt;
/// let transport = Arc::new(Counting::default());
/// let broadcaster = SseBroadcaster::new().with_transport(transport.clone());
/// let mut client = broadcaster.register().await;
/// broadcaster.broadcast_message("hi".into()).await?;
/// assert_eq!(transport.0.load(Ordering::Relaxed), 1);
/// assert_eq!(client.next().await.unwrap()?, "data: hi\n\n");
/// # Ok(())
/// # }
/// ```
///
/// The broadcaster calls `publish` outside its client lock. When the broadcaster numbers
/// events itself ([`SseConfig::auto_ids`](crate::SseConfig::auto_ids)) it calls `publish` in
/// id order, one call at a time, so that ids reach clients in increasing order.
pub trait SseTransport: Send + Sync + fmt::Debug + 'static {
    /// Delivers `event` to every client of `broadcaster`; its error becomes the error of
    /// `broadcast`.
    fn publish(&self, broadcaster: &SseBroadcaster, event: EncodedEvent) -> Result<(), Error>;
}

/// The in-process transport: delivers to the clients registered in this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalSseTransport;

impl SseTransport for LocalSseTransport {
    fn publish(&self, broadcaster: &SseBroadcaster, event: EncodedEvent) -> Result<(), Error> {
        broadcaster.deliver_local(&event);
        Ok(())
    }
}
