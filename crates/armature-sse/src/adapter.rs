//! The broadcast seam: how a broadcaster's events can reach clients held by other processes.
//!
//! A broadcaster always delivers to its own clients. With an [`SseAdapter`] installed
//! ([`SseBroadcaster::with_adapter`](crate::SseBroadcaster::with_adapter)), every event it
//! broadcasts is also handed, already encoded, to the adapter, which carries it elsewhere
//! (a Redis channel, say). On the receiving process the adapter calls
//! [`SseBroadcaster::deliver_remote`](crate::SseBroadcaster::deliver_remote), which delivers
//! to the local clients (and history) without publishing again. User code keeps calling
//! `broadcast(..)` and never changes.
//!
//! ```
//! use std::sync::Arc;
//! use armature_sse::{EncodedEvent, Error, SseAdapter, SseBroadcaster};
//! use futures_util::future::BoxFuture;
//!
//! /// Carries events to a second broadcaster, standing in for another process.
//! struct Mirror(Arc<SseBroadcaster>);
//!
//! impl SseAdapter for Mirror {
//!     fn publish(&self, event: EncodedEvent) -> BoxFuture<'static, Result<(), Error>> {
//!         let other = Arc::clone(&self.0);
//!         Box::pin(async move {
//!             other.deliver_remote(event);
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! use futures_util::StreamExt;
//! let remote = Arc::new(SseBroadcaster::new());
//! let mut far_client = remote.register().await;
//! let local = SseBroadcaster::new().with_adapter(Arc::new(Mirror(remote.clone())));
//! local.broadcast_message("hi".into()).await?;
//! assert_eq!(far_client.next().await.unwrap()?, "data: hi\n\n");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::{Error, ServerSentEvent};

/// An event encoded once: its wire bytes and its id (the history needs the id to resume).
/// Cloning it shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    id: Option<Arc<str>>,
    bytes: Bytes,
}

impl EncodedEvent {
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
    /// [`EncodedEvent`] made elsewhere.
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

/// Carries a broadcaster's events to other processes; see the [module docs](self).
///
/// `publish` is called after the event was delivered to this process's clients, outside any
/// lock; the broadcaster awaits the returned future, and its error becomes the error of
/// `broadcast`.
pub trait SseAdapter: Send + Sync + 'static {
    /// Hands `event` to the other processes.
    fn publish(&self, event: EncodedEvent) -> BoxFuture<'static, Result<(), Error>>;
}
