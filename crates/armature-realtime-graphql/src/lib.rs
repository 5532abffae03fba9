//! GraphQL over Armature Realtime: an async-graphql schema (execution, validation,
//! introspection stay async-graphql's) served over our WebSocket and SSE servers.
//!
//! | transport | how a client gets it |
//! | --- | --- |
//! | `graphql-transport-ws` ([`protocol::TransportWs`]) | WebSocket with `Sec-WebSocket-Protocol: graphql-transport-ws` (the `graphql-ws` npm client) |
//! | legacy `graphql-ws` ([`protocol::LegacyWs`]) | WebSocket with `Sec-WebSocket-Protocol: graphql-ws` (subscriptions-transport-ws, older Apollo clients) |
//! | GraphQL over SSE, distinct connections | `GET`/`POST` with `Accept: text/event-stream` (the `graphql-sse` npm client) |
//! | GraphQL over HTTP | `GET`/`POST` returning JSON |
//!
//! All four on one path, through one [`GraphQL`] endpoint. The protocols are sans-I/O
//! state machines ([`protocol`]), unit-tested without sockets; the session glue feeds them
//! a socket. Subscriptions can be fed from the broadcast paths ([`topic`]): a resolver
//! streams what a `WebSocketRoom` or an `SseBroadcaster` carries, typed with serde, so a
//! room shared through the Redis adapter feeds subscriptions on every node.
//!
//! Usable three ways: in an armature `App` (the facade's `graphql` feature,
//! `App::graphql`), with `armature-ws` alone ([`GraphQL::handle`] in `armature_ws::serve`,
//! or [`GraphQL::serve_socket`] on an accepted socket), and mounted in axum or tower
//! (feature `tower`).
//!
//! ```no_run
//! use armature_realtime_graphql::GraphQL;
//! use armature_ws::{serve, Hub, WebSocketConfig};
//! use async_graphql::{EmptyMutation, Object, Schema, Subscription};
//! use futures_util::Stream;
//!
//! struct Query;
//! #[Object]
//! impl Query {
//!     async fn hello(&self) -> &str { "world" }
//! }
//! struct Subscription;
//! #[Subscription]
//! impl Subscription {
//!     async fn count(&self) -> impl Stream<Item = i32> { futures_util::stream::iter(0..3) }
//! }
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let graphql = GraphQL::new(Schema::new(Query, EmptyMutation, Subscription));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, Hub::new(WebSocketConfig::default()), move |req| {
//!     let graphql = graphql.clone();
//!     async move { graphql.handle(req).await }
//! }, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod body;
mod config;
mod connect;
mod endpoint;
mod error;
mod http;
mod operation;
pub mod protocol;
mod request_data;
mod session;
mod shared;
pub mod sse;
pub mod topic;
#[cfg(feature = "tower")]
mod tower;

pub use armature_realtime_error::{Error, Result};
pub use body::Body;
pub use config::GraphQLConfig;
pub use connect::{Accepted, ConnectFuture, ConnectionInit, Rejected};
pub use endpoint::{GraphQL, PROTOCOLS};
pub use error::RequestError;
