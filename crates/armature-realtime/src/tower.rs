//! Mounting an app inside a tower or axum application (feature `tower`).
//!
//! [`AppService`] is a `tower_service::Service<http::Request<B>>` for any body type, so an
//! existing axum router can serve the decorated controllers next to its own routes, for
//! instance as its fallback. WebSocket routes work there too: axum's server keeps hyper's
//! upgrade handle in the request extensions, where the upgrade finds it.
//!
//! ```no_run
//! use armature_realtime::App;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let realtime = App::new().page("/hello", "hi from armature").build()?;
//! let router = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .fallback_service(realtime);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, router).await?;
//! # Ok(()) }
//! ```
//!
//! Outside an armature [`Server`](crate::Server), shutting down is the host's business: an
//! SSE stream ends when its client goes, and [`AppService::websocket_hub`] can close every
//! WebSocket with 1001 (`hub.shutdown()`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};

use crate::app::AppService;
use crate::body::Body;

impl<B> tower_service::Service<Request<B>> for AppService
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::request::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(AppService::call(&this, req).await) })
    }
}
