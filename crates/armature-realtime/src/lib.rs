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
//!
//! It also holds the application server: [`App`] mounts modules (`#[module]`), their
//! injectable services (`#[injectable]`) and controllers (`#[controller]`) and serves them on
//! hyper 1.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod body;
pub mod di;
pub mod module;
pub mod prelude;
pub mod request;
pub mod router;
pub mod server;
pub mod shutdown;
pub mod sse_route;
pub mod static_files;
pub mod ws_route;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use app::{App, AppService};
pub use armature_realtime_error::{Error, Result};
pub use armature_realtime_macros::{controller, injectable, module, sse, websocket};
pub use armature_sse as sse;
pub use armature_ws as ws;
pub use armature_ws_core as ws_core;
pub use di::{Container, Injectable};
pub use module::{Controller, ControllerRoutes, Module, ModuleBuilder, Route, RouteKind};
pub use request::{FromParam, RequestHead};
pub use server::{RunningServer, Server};
pub use sse_route::{EventStream, IntoSse};
pub use ws_route::PendingUpgrade;
