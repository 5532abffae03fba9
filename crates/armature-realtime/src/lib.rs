//! Armature Realtime: WebSockets (full duplex, rooms, broadcast) and Server-Sent Events
//! (server → client streams) for Rust web applications.
//!
//! This facade re-exports the crates you would otherwise pick one by one:
//!
//! | module | crate | what it holds |
//! | --- | --- | --- |
//! | [`ws_core`] | `armature-ws-core` | the sans-I/O RFC 6455 protocol: frames, messages, close codes, handshake |
//! | [`ws`] | `armature-ws` | the WebSocket server on tokio + hyper: upgrade, connections, rooms |
//! | [`sse`] | `armature-sse` | Server-Sent Events: events, streams, broadcaster, resume |
//!
//! and [`Error`], the one error type those runtime crates share.

pub use armature_realtime_error::{Error, Result};
pub use armature_sse as sse;
pub use armature_ws as ws;
pub use armature_ws_core as ws_core;
