//! Server-Sent Events for Armature Realtime: spec-exact events, single-client streams, a
//! broadcaster with bounded per-client queues, keep-alive and `Last-Event-ID` resume, served
//! by hyper (or any tower server) as an [`http_body::Body`].
//!
//! | type | what it is |
//! | --- | --- |
//! | [`ServerSentEvent`] | one event; [`encode`](ServerSentEvent::encode) writes it once into `Bytes` by the WHATWG rules |
//! | [`SseStream`] | the sending side of one client's stream |
//! | [`SseBroadcaster`] | one event to many clients, encoded once, shared by reference count |
//! | [`ReceiverStream`] | a client's receiving side: a `Stream` of the guide's `Result<String, Error>`, or of `Bytes`, and an HTTP body |
//! | [`SseTransport`] | the seam every broadcast goes through, so a later adapter (Redis, say) can reach other processes |
//!
//! The guide's integration test, as written:
//!
//! ```
//! use std::sync::Arc;
//! use armature_sse::SseBroadcaster;
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let broadcaster = Arc::new(SseBroadcaster::new());
//! let mut stream = broadcaster.register().await;
//!
//! // Broadcast message
//! broadcaster.broadcast_message("Test".to_string()).await.unwrap();
//!
//! // Receive message
//! let msg = stream.next().await.unwrap().unwrap();
//! assert!(msg.contains("Test"));
//! # }
//! ```
//!
//! ## Memory per client
//!
//! The library's own share of an idle client is its queue (an empty `VecDeque` and a waker
//! behind a lock, in an `Arc`) and one map entry: about 100 bytes. Served by hyper 1 over
//! HTTP/1, an idle client measured about 11 KiB resident, nearly all of it hyper's 8 KiB read
//! and 8 KiB head buffers, which hyper offers no option to shrink. On our own server's lean
//! path (`armature_ws::serve_with`: the `App`'s server, the bench server) the same client
//! (a small task, its socket, its queue) measured 1.0 KiB (1.16 KiB through the `App`;
//! `docs/benchmarks.md`, "SSE after issue 15"). The crate's `MEMORY.md` has the earlier
//! figures, the method and the breakdown.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod broadcaster;
mod clients;
mod config;
mod event;
pub mod gzip;
mod history;
mod hold;
mod http;
mod queue;
mod receiver;
mod stream;
mod transport;

pub use armature_realtime_error::{Error, Result};
pub use broadcaster::{RESET_DATA, RESET_EVENT, SseBroadcaster, SseStats};
pub use clients::{Clients, ClientsWrite, SseClient};
pub use config::{SlowClientPolicy, SseConfig};
pub use event::{KEEP_ALIVE, ServerSentEvent, encode_comment};
pub use gzip::{GzipBody, accepts_gzip, gzip_response};
pub use hold::{Coalesced, MAX_HELD_BYTES, MAX_HELD_EVENTS, coalesced, in_turn, release_held};
pub use http::{LAST_EVENT_ID, X_ACCEL_BUFFERING, last_event_id, sse_response};
pub use receiver::ReceiverStream;
pub use stream::{DEFAULT_STREAM_BYTES, DEFAULT_STREAM_EVENTS, SseStream};
pub use transport::{EncodedEvent, LocalSseTransport, SseTransport};
