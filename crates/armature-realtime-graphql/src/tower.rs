//! [`GraphQL`] as a `tower_service::Service` (feature `tower`), to mount the endpoint in
//! axum or any tower stack. WebSockets work there too: axum keeps hyper's upgrade handle
//! in the request extensions.
//!
//! ```no_run
//! use armature_realtime_graphql::GraphQL;
//! use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
//!
//! struct Query;
//! #[Object]
//! impl Query {
//!     async fn hello(&self) -> &str { "world" }
//! }
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let graphql = GraphQL::new(Schema::new(Query, EmptyMutation, EmptySubscription));
//! let app = axum::Router::new().route_service("/graphql", graphql);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_graphql::Executor;
use bytes::Bytes;
use http::{Request, Response};

use crate::http::BoxError;
use crate::{Body, GraphQL};

impl<E, B> tower_service::Service<Request<B>> for GraphQL<E>
where
    E: Executor,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}
