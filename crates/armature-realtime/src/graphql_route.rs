//! [`App::graphql`] (feature `graphql`): a GraphQL endpoint of
//! [`armature_realtime_graphql`] mounted on a path of the app, for WebSocket
//! (`graphql-transport-ws` and the legacy `graphql-ws`), SSE and plain HTTP at once.
//!
//! ```no_run
//! use armature_realtime::App;
//! use armature_realtime::graphql::GraphQL;
//! use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
//!
//! struct Query;
//! #[Object]
//! impl Query {
//!     async fn hello(&self) -> &str { "world" }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), armature_realtime::Error> {
//! App::new()
//!     .graphql("/graphql", GraphQL::new(Schema::new(Query, EmptyMutation, EmptySubscription)))
//!     .serve("127.0.0.1:3000")
//!     .await
//! # }
//! ```

use armature_realtime_graphql::GraphQL;
use async_graphql::Executor;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};

use crate::module::{Route, RouteKind};
use crate::request::{BoxError, RequestBody};
use crate::{App, Error};

impl App {
    /// Serves `endpoint` at `path`: `GET` (WebSocket upgrades, SSE and queries) and `POST`
    /// (SSE and GraphQL over HTTP). WebSockets count against the app's hub like every
    /// other socket and close with 1001 on shutdown.
    pub fn graphql<E: Executor>(self, path: &str, endpoint: GraphQL<E>) -> Self {
        let get = endpoint.clone();
        self.route(Route::new(
            Method::GET,
            path,
            RouteKind::WebSocket,
            move |head| {
                let endpoint = get.clone();
                async move { endpoint.handle(rebuild(head)).await }
            },
        ))
        .route(Route::new(
            Method::POST,
            path,
            RouteKind::Http,
            move |head| {
                let endpoint = endpoint.clone();
                async move { endpoint.handle(rebuild(head)).await }
            },
        ))
    }
}

/// The request again: the head's parts and the body the app kept aside.
fn rebuild(head: crate::RequestHead) -> Request<crate::body::Body> {
    let parts = head.into_parts();
    let body = match parts
        .extensions
        .get::<RequestBody>()
        .and_then(RequestBody::take)
    {
        Some(body) => body
            .map_err(|err: BoxError| Error::Io(std::io::Error::other(err)))
            .boxed_unsync(),
        None => Empty::new()
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync(),
    };
    Request::from_parts(parts, body)
}
