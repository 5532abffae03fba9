//! The WebSocket server of Armature Realtime, on tokio and hyper 1.
//!
//! - [`WebSocketUpgrade`] turns a hyper request into a `101` response and a [`WebSocket`]
//!   handed to your handler; [`serve`] is a small accept loop with a connection limit and
//!   graceful shutdown that also covers upgraded connections.
//! - [`WebSocket`] is the handler's socket: a `Stream` of incoming messages, and sending.
//!   [`WebSocketConnection`] is a cheap handle any task can use to reach that client.
//! - [`WebSocketRoom`] and [`WebSocketManager`] are the guide's rooms: a broadcast is encoded
//!   once and every member gets a reference-counted frame; a connection leaves all its rooms
//!   when it ends; broadcasts go through a [`BroadcastTransport`] seam.
//! - [`Hub`] tracks live connections: ids, limits, heartbeat (one shared sweeper, no timer
//!   per connection), [`Stats`], shutdown. [`WebSocketConfig`] holds every limit.
//!
//! # Design
//!
//! One tokio task per connection does both reading and writing: the handler's own loop
//! over [`WebSocket::recv`] also writes the frames other tasks queued for this client (see
//! [`WebSocket`] for why, and the price). Each connection's send queue is
//! bounded in bytes of already-encoded frames; enqueueing is a short `parking_lot` critical
//! section and a wake, never an `.await`, so a broadcast never waits for a slow client. The
//! writer takes everything queued at once, copies runs of small frames into one buffer and
//! writes large frames from where they are, so a burst of broadcasts costs one system call
//! per client rather than one per message. An idle connection holds no read buffer and no
//! timer.
//!
//! # Measured
//!
//! On the project's 2-core machine, server and load generator pinned to one core each,
//! `examples/bench_server` (release) against the `benches` load generator:
//!
//! - 10,000 idle connections: 1.48 KiB of server resident memory per connection. Of that,
//!   about 1.0 KiB is live heap: the task (an echo handler's future is 120 bytes), the
//!   boxed socket state (240 B), the shared queue state (200 B) and tokio's socket
//!   registration (about 280 B); the rest is the allocator's.
//! - Fan-out to 1,000 subscribers, 64-byte messages: 0.76–0.86 M deliveries per second,
//!   none missing, where tokio-tungstenite with `tokio::sync::broadcast` made 0.06 M in
//!   the same run.
//! - Autobahn|Testsuite (no compression), `/echo` and `/fanout`: 298 OK, 3 INFORMATIONAL,
//!   0 FAILED (invalid UTF-8 is refused while its frame is still arriving).
//! - Hostile clients (trickled or oversized requests, huge frame lengths, ping floods,
//!   resets mid-frame, …): each answer and its test in `docs/hostile-clients.md`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use armature_ws::{serve, Hub, WebSocketConfig, WebSocketManager, WebSocketMessage, WebSocketUpgrade};
//! use bytes::Bytes;
//! use http_body_util::Full;
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let manager = Arc::new(WebSocketManager::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let hub = Hub::new(WebSocketConfig::default());
//! serve(listener, hub, move |mut req| {
//!     let manager = manager.clone();
//!     async move {
//!         let upgrade = match WebSocketUpgrade::from_request(&mut req) {
//!             Ok(upgrade) => upgrade,
//!             Err(rejection) => return rejection.into_response::<Full<Bytes>>(),
//!         };
//!         upgrade.on_upgrade(move |mut socket| async move {
//!             let room = manager.get_or_create_room("chat").await;
//!             if room.add_connection(socket.id(), socket.connection()).await.is_err() {
//!                 return;
//!             }
//!             while let Some(Ok(msg)) = socket.recv().await {
//!                 if let WebSocketMessage::Text(text) = msg {
//!                     let _ = room.broadcast_except(socket.id(), WebSocketMessage::Text(text)).await;
//!                 }
//!             }
//!         })
//!     }
//! }, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

// No panic on what a peer sends: these hold for every module of the library (tests may
// unwrap). Arithmetic on peer-supplied lengths is checked in armature-ws-core's decoder;
// docs/hostile-clients.md records the audit.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod burst;
mod clock;
mod compress;
mod config;
mod connection;
mod driver;
mod frames;
mod hub;
mod inbox;
mod io;
mod lean;
mod manager;
mod outcome;
mod queue;
mod rate;
mod room;
mod serve;
mod socket;
mod stats;
mod task;
mod transport;
mod upgrade;
mod writer;

pub use armature_realtime_error::{Error, Result};
pub use armature_ws_core::{CloseCode, CloseFrame, Utf8Bytes, WebSocketMessage};

pub use armature_ws_core::permessage_deflate;
pub use armature_ws_core::{OriginPolicy, OriginRefusal};
pub use burst::{Coalesced, coalesced};
pub use config::{Backpressure, WebSocketConfig};
pub use connection::{WebSocketConnection, WebSocketReceiver};
pub use hub::Hub;
pub use io::RawStream;
pub use lean::{LeanRoutes, MAX_HEADERS};
pub use manager::WebSocketManager;
pub use outcome::HandlerOutcome;
pub use rate::{MessageRate, OnExcess};
pub use room::{BroadcastTransport, Delivery, MemberReady, WebSocketRoom};
pub use serve::{PeerAddr, serve, serve_with};
pub use socket::{WebSocket, WebSocketReader, WebSocketSender};
pub use stats::{Stats, StatsSnapshot};
pub use transport::LocalTransport;
pub use upgrade::{WebSocketRejection, WebSocketUpgrade, check_origin};
