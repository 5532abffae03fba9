//! Armature Realtime: WebSockets (full duplex, rooms, broadcast) and Server-Sent Events
//! (server → client streams) for Rust web applications.
//!
//! This facade re-exports the crates you would otherwise pick one by one:
//!
//! | module | crate | what it holds |
//! | --- | --- | --- |
//! | [`ws_core`] | `armature-ws-core` | the sans-I/O RFC 6455 protocol: frames, messages, close codes, handshake |
//! | [`ws`] | `armature-ws` | the WebSocket server on tokio + hyper: upgrade, connections, rooms |
//! | [`sse`](mod@sse) | `armature-sse` | Server-Sent Events: events, streams, broadcaster, resume |
//!
//! and [`Error`], the one error type those runtime crates share.
//!
//! It also holds the application server: [`App`] mounts modules (`#[module]`), their
//! injectable services (`#[injectable]`) and controllers (`#[controller]`) and serves them on
//! hyper 1 (or inside axum/tower with the `tower` feature, see the `tower` module when
//! enabled). `use armature_realtime::prelude::*;` brings in everything below.
//!
//! ```
//! use armature_realtime::prelude::*;
//!
//! #[injectable]
//! #[derive(Clone, Default)]
//! struct ChatService {
//!     manager: Arc<WebSocketManager>,
//! }
//!
//! #[controller("/ws")]
//! struct ChatController {
//!     chat: ChatService, // resolved from the module: one shared instance
//! }
//!
//! #[controller]
//! impl ChatController {
//!     // `room` comes from the path, `name` from the query string.
//!     #[websocket("/chat/:room")]
//!     async fn chat(
//!         &self,
//!         room: String,
//!         #[query] name: Option<String>,
//!         mut socket: WebSocket,
//!     ) -> Result<(), Error> {
//!         let room = self.chat.manager.get_or_create_room(&room).await;
//!         room.add_connection(socket.id(), socket.connection()).await?;
//!         let name = name.unwrap_or_else(|| "anon".into());
//!         while let Some(Ok(WebSocketMessage::Text(text))) = socket.recv().await {
//!             room.broadcast_text(format!("{name}: {}", text.as_str())).await?;
//!         }
//!         Ok(())
//!     }
//!
//!     // A stream of events; `Err` would refuse the request with its status.
//!     #[sse("/count/:n")]
//!     async fn count(&self, n: u32) -> impl futures_util::Stream<Item = ServerSentEvent> + Send {
//!         futures_util::stream::iter((1..=n).map(|i| ServerSentEvent::new(i.to_string())))
//!     }
//! }
//!
//! #[module(providers: [ChatService], controllers: [ChatController])]
//! struct AppModule;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let server = App::new().module::<AppModule>().bind("127.0.0.1:0").await?;
//! let routes = server.service().routes();
//! assert_eq!(routes[0].1, "/ws/chat/:room");
//! assert_eq!(routes[1].1, "/ws/count/:n");
//! let running = server.spawn(); // or `.run_until(signal)`, or `App::serve(addr)`
//! running.shutdown().await
//! # }
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod asyncapi;
pub mod body;
pub mod di;
#[cfg(feature = "graphql")]
pub mod graphql_route;
pub mod guard;
pub mod jwt;
pub mod module;
pub mod prelude;
pub mod rate_limit;
pub mod request;
pub mod router;
pub mod server;
pub mod sessions;
pub mod shutdown;
pub mod sse_route;
pub mod static_files;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "tower")]
pub mod tower;
pub mod typed;
pub mod ws_route;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use app::{App, AppService};
pub use armature_realtime_error::{Error, Result};
#[cfg(feature = "graphql")]
pub use armature_realtime_graphql as graphql;
pub use armature_realtime_macros::{controller, injectable, module, sse, websocket};
pub use armature_sse as sse;
pub use armature_ws as ws;
pub use armature_ws_core as ws_core;
pub use di::{Container, Injectable};
pub use guard::{Auth, FromRequestHead, Guard, Refusal, UserId};
pub use module::{Controller, ControllerRoutes, Module, ModuleBuilder, Route, RouteKind};
pub use request::{FromParam, RequestHead};
pub use server::{RunningServer, Server};
pub use sse_route::{EventStream, IntoSse};
pub use ws_route::PendingUpgrade;

/// The README's code, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
