//! The one error type of Armature Realtime's runtime crates.
//!
//! `armature-ws` (connections, rooms) and `armature-sse` (streams, broadcasters) both return
//! this [`Error`], so that user code written as the design guide shows it — a service method
//! returning `Result<(), Error>` straight from `room.broadcast_text(..).await`, or an SSE
//! controller returning `ReceiverStream<Result<String, Error>>` — names a single type.
//! The facade re-exports it as `armature_realtime::Error`.
//!
//! The variants the guide names (`Validation`, `Internal`, `Serialization`) are kept as the
//! guide writes them; the others describe what can go wrong on a live connection.
//!
//! ```
//! use armature_realtime_error::Error;
//!
//! fn check(len: usize) -> Result<(), Error> {
//!     if len > 10 {
//!         return Err(Error::Validation("Too many messages".into()));
//!     }
//!     Ok(())
//! }
//! assert!(check(11).unwrap_err().is_validation());
//! ```
//!
//! The text of an error's `Display` is for people and may change between releases; match on
//! the variant or use the `is_*` predicates instead.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::io;

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Armature Realtime's connection, room and stream APIs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input was refused (the guide's `Error::Validation`): a bad event field, a rate limit.
    #[error("validation failed: {0}")]
    Validation(String),
    /// Something went wrong inside the server (the guide's `Error::Internal`), such as a full
    /// room (`Error::Internal("Room full")`, see [`Error::is_room_full`]).
    #[error("internal error: {0}")]
    Internal(String),
    /// A value could not be turned into JSON (the guide's `Error::Serialization`).
    #[error("serialization failed: {0}")]
    Serialization(String),
    /// The connection or stream is closed: the peer went away, or the receiving side was
    /// dropped. Nothing was queued.
    #[error("connection closed")]
    Closed,
    /// The recipient's bounded send queue is full (it is not reading fast enough). Nothing was
    /// queued; the back-pressure policy decides what happens to the recipient.
    #[error("send queue full")]
    QueueFull,
    /// The peer broke the WebSocket protocol; the text names the rule.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A request could not be served: the HTTP status to answer with and a short reason.
    #[error("http {status}: {reason}")]
    Http {
        /// The status code the request was (or should be) answered with.
        status: u16,
        /// A short reason, suitable for the response body.
        reason: String,
    },
    /// An I/O error on the underlying socket.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// The reason text of the guide's per-room connection limit error.
pub const ROOM_FULL: &str = "Room full";

impl Error {
    /// The guide's "Room full" error: `Error::Internal("Room full")`.
    pub fn room_full() -> Self {
        Error::Internal(ROOM_FULL.to_owned())
    }

    /// True for [`Error::Validation`].
    pub fn is_validation(&self) -> bool {
        matches!(self, Error::Validation(_))
    }

    /// True for [`Error::Serialization`].
    pub fn is_serialization(&self) -> bool {
        matches!(self, Error::Serialization(_))
    }

    /// True when the connection or stream is closed ([`Error::Closed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }

    /// True when a recipient's send queue was full ([`Error::QueueFull`]).
    pub fn is_queue_full(&self) -> bool {
        matches!(self, Error::QueueFull)
    }

    /// True for the guide's "Room full" error (see [`Error::room_full`]).
    pub fn is_room_full(&self) -> bool {
        matches!(self, Error::Internal(reason) if reason == ROOM_FULL)
    }

    /// True for [`Error::Protocol`].
    pub fn is_protocol(&self) -> bool {
        matches!(self, Error::Protocol(_))
    }

    /// The HTTP status this error maps to when it ends a request before any upgrade.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Validation(_) => 400,
            Error::Http { status, .. } => *status,
            Error::Closed | Error::QueueFull => 503,
            _ => 500,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Serialization(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_full_is_the_guides_internal_error() {
        let err = Error::room_full();
        assert!(err.is_room_full());
        assert!(matches!(&err, Error::Internal(r) if r == "Room full"));
        assert!(!Error::Internal("other".into()).is_room_full());
        assert_eq!(err.to_string(), "internal error: Room full");
    }

    #[test]
    fn serde_errors_become_serialization() {
        let bad: std::result::Result<u8, _> = serde_json::from_str::<u8>("\"x\"");
        let err: Error = bad.unwrap_err().into();
        assert!(err.is_serialization());
    }

    #[test]
    fn http_status_mapping() {
        assert_eq!(Error::Validation("x".into()).http_status(), 400);
        assert_eq!(
            Error::Http {
                status: 401,
                reason: "no token".into()
            }
            .http_status(),
            401
        );
        assert_eq!(Error::Closed.http_status(), 503);
        assert_eq!(Error::Internal("x".into()).http_status(), 500);
    }
}
